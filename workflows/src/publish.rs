//! The one way both workflows bring their operators' view ([`crate::ops`]) up to date.

use temporalio_workflow::WorkflowContext;

use crate::{ops::Publication, session_window::PATCH_OPS_VISIBILITY};

/// Sets the run's current details, then (since [`PATCH_OPS_VISIBILITY`]) upserts the search
/// attributes and memo fields `publication` says changed: commands only for what changed.
pub(crate) fn publish<W>(
    ctx: &WorkflowContext<W>,
    details: impl FnOnce(&W) -> String,
    publication: impl FnOnce(&mut W) -> Publication,
) {
    ctx.set_current_details(ctx.state(details));
    if !ctx.patched(PATCH_OPS_VISIBILITY) {
        return;
    }
    let publication = ctx.state_mut(publication);
    if !publication.attributes.is_empty() {
        ctx.upsert_search_attributes(publication.attributes);
    }
    if !publication.memo.is_empty() {
        // String memo values always convert.
        let _ = ctx.upsert_memo(
            publication
                .memo
                .into_iter()
                .map(|(k, v)| (k, v.map(temporalio_common::MemoValue::new))),
        );
    }
}
