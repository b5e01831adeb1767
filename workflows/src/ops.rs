//! What an operator sees of convo's workflows in the Temporal Web UI and the `temporal` CLI:
//! search attributes, memo, static summaries, current details and the `__stack_trace` answer.
//!
//! Everything here is pure: the workflows compute what they should publish from their state,
//! and publish only what changed (see [`Published`]); the API computes the memo and static
//! summary it starts a workflow with from the same functions, so the two never disagree.
//!
//! # Search attributes
//! All are `Keyword`s, so a filter is an exact match (`ConvoContactAddress = '+4917612345678'`).
//! The worker registers them at start-up ([`SEARCH_ATTRIBUTES`]); a SQL visibility store
//! (SQLite, Postgres, MySQL) offers ten custom Keyword attributes per namespace, and convo uses
//! eight.

use std::collections::BTreeMap;

use convo_domain::{Channel, CloseReason, Timestamp};
#[cfg(test)]
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate};

use crate::contracts::{ContactCard, ConversationStatus};

/// The workspace id.
pub const WORKSPACE: SearchAttributeKey<String> = SearchAttributeKey::keyword("ConvoWorkspace");
/// The contact id (`ct_…`).
pub const CONTACT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ConvoContactId");
/// Where the contact is reached: E.164 for phone channels, the e-mail address for e-mail.
pub const CONTACT_ADDRESS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("ConvoContactAddress");
/// The channel (`whatsapp`, `sms`, `rcs`, `messenger`, `email`, …).
pub const CHANNEL: SearchAttributeKey<String> = SearchAttributeKey::keyword("ConvoChannel");
/// A session's window: `open`, `closed`, or `none` (the run never opened one: a template
/// send outside a window, or a send the window refused).
pub const WINDOW_STATE: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("ConvoWindowState");
/// Why a session's latest window closed: `EXPIRED`, `EXPLICIT` or `COMPLIANCE_STOP`. It stays
/// when a later window opens in the same run (read it with [`WINDOW_STATE`]).
pub const CLOSE_REASON: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("ConvoCloseReason");
/// Why a session needs an operator's eye: `send_retrying` while a provider send fails and
/// Temporal retries it (`temporal workflow describe` shows its attempts and last failure),
/// `none` otherwise.
pub const PROBLEM: SearchAttributeKey<String> = SearchAttributeKey::keyword("ConvoProblem");
/// A conversation's status: `pending`, `awaiting_reply`, `active`, `resolved`, `expired`,
/// `failed`.
pub const CONVERSATION_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("ConvoConversationStatus");

/// Every search attribute convo's workflows set (all `Keyword`s): what the worker registers.
pub const SEARCH_ATTRIBUTES: [SearchAttributeKey<String>; 8] = [
    WORKSPACE,
    CONTACT_ID,
    CONTACT_ADDRESS,
    CHANNEL,
    WINDOW_STATE,
    CLOSE_REASON,
    CONVERSATION_STATUS,
    PROBLEM,
];

/// Memo keys.
pub mod memo {
    /// The contact: `{ "id", "address", "name" }`.
    pub const CONTACT: &str = "contact";
    /// The channel.
    pub const CHANNEL: &str = "channel";
    /// On a session: the outbound conversation replies go to (`cv_…`), or none.
    pub const CONVERSATION: &str = "conversation";
    /// On a conversation: the contact's session workflow (`session/{workspace}/{contact}`).
    pub const SESSION: &str = "session";
}

/// The channel as people write it.
pub fn channel_title(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "WhatsApp",
        Channel::Sms => "SMS",
        Channel::Rcs => "RCS",
        Channel::Messenger => "Messenger",
        Channel::Instagram => "Instagram",
        Channel::Email => "E-mail",
    }
}

/// "+4917612345678 (Ada)", "+4917612345678", "Ada", or the contact id when nothing else is
/// known.
pub fn contact_label(contact_id: &str, card: Option<&ContactCard>) -> String {
    let address = card.and_then(|c| c.address.as_deref()).filter(|a| !a.is_empty());
    let name = card.and_then(|c| c.name.as_deref()).map(str::trim).filter(|n| !n.is_empty());
    match (address, name) {
        (Some(a), Some(n)) => format!("{a} ({n})"),
        (Some(a), None) => a.to_owned(),
        (None, Some(n)) => format!("{n} ({contact_id})"),
        (None, None) => contact_id.to_owned(),
    }
}

/// A session's static summary: "WhatsApp session with +4917612345678 (Ada)".
pub fn session_summary(channel: Channel, contact_id: &str, card: Option<&ContactCard>) -> String {
    format!("{} session with {}", channel_title(channel), contact_label(contact_id, card))
}

/// A session's static details: the ids an operator copies into other tools.
pub fn session_details(workspace_id: &str, contact_id: &str) -> String {
    format!("Workspace `{workspace_id}`, contact `{contact_id}`.")
}

/// A conversation's static summary: "WhatsApp conversation with +4917612345678 (Ada)".
pub fn conversation_summary(channel: Channel, contact: &str) -> String {
    format!("{} conversation with {contact}", channel_title(channel))
}

/// The value a session's [`WINDOW_STATE`] takes.
pub fn window_state(open: bool, ever_opened: bool) -> &'static str {
    match (open, ever_opened) {
        (true, _) => "open",
        (false, true) => "closed",
        (false, false) => "none",
    }
}

/// The wire name of a conversation status, as the API and [`CONVERSATION_STATUS`] give it.
pub fn status_name(status: ConversationStatus) -> &'static str {
    match status {
        ConversationStatus::Pending => "pending",
        ConversationStatus::AwaitingReply => "awaiting_reply",
        ConversationStatus::Active => "active",
        ConversationStatus::Resolved => "resolved",
        ConversationStatus::Expired => "expired",
        ConversationStatus::Failed => "failed",
    }
}

/// [`PROBLEM`]'s value while a send is retried.
pub const SEND_RETRYING: &str = "send_retrying";
/// [`PROBLEM`]'s value while nothing is wrong.
pub const NO_PROBLEM: &str = "none";

/// The search attributes a session should carry now.
pub fn session_attributes(
    workspace_id: &str,
    contact_id: &str,
    card: Option<&ContactCard>,
    channel: Channel,
    window_state: &str,
    close_reason: Option<CloseReason>,
    problem: Option<&str>,
) -> Attributes {
    let mut a = Attributes::common(workspace_id, Some(contact_id), card, channel);
    a.set(PROBLEM, Some(problem.unwrap_or(NO_PROBLEM).to_owned()));
    a.set(WINDOW_STATE, Some(window_state.to_owned()));
    a.set(CLOSE_REASON, close_reason.map(|r| r.as_str().to_owned()));
    a
}

/// The search attributes a conversation should carry now.
pub fn conversation_attributes(
    workspace_id: &str,
    contact_id: Option<&str>,
    card: Option<&ContactCard>,
    channel: Channel,
    status: ConversationStatus,
) -> Attributes {
    let mut a = Attributes::common(workspace_id, contact_id, card, channel);
    a.set(CONVERSATION_STATUS, Some(status_name(status).to_owned()));
    a
}

/// Keyword search attributes by name; `None` means "nothing to say" (never an unset: the Rust
/// SDK 1.1 encodes an unset as a payload without an encoding, which the Temporal server refuses
/// with `BadSearchAttributes`, failing the workflow task).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<&'static str, Option<String>>);

impl Attributes {
    fn common(
        workspace_id: &str,
        contact_id: Option<&str>,
        card: Option<&ContactCard>,
        channel: Channel,
    ) -> Attributes {
        let mut a = Attributes::default();
        a.set(WORKSPACE, Some(workspace_id.to_owned()));
        a.set(CONTACT_ID, contact_id.map(str::to_owned));
        let address = card.and_then(|c| c.address.clone()).filter(|a| !a.is_empty());
        a.set(CONTACT_ADDRESS, address);
        a.set(CHANNEL, Some(channel.as_str().to_owned()));
        a
    }

    fn set(&mut self, key: SearchAttributeKey<String>, value: Option<String>) {
        self.0.insert(key.name(), value);
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: SearchAttributeKey<String>) -> Option<&str> {
        self.0.get(key.name()).and_then(|v| v.as_deref())
    }
}

/// What a workflow run has published so far, so it upserts only what changed: an upsert is
/// a command and a history event, and most state changes (a send, an inbound that extends the
/// window) change no attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    attributes: BTreeMap<&'static str, String>,
    memo: BTreeMap<&'static str, Option<String>>,
}

impl Published {
    /// The updates that bring the published attributes to `wanted`, recorded as published.
    /// Absent values are left as they are (see [`Attributes`]).
    pub fn attribute_updates(&mut self, wanted: &Attributes) -> Vec<SearchAttributeUpdate> {
        let mut updates = Vec::new();
        for (name, value) in &wanted.0 {
            let Some(value) = value else { continue };
            if self.attributes.get(name) == Some(value) {
                continue;
            }
            updates.push(SearchAttributeKey::<String>::keyword(name).value_set(value.clone()));
            self.attributes.insert(name, value.clone());
        }
        updates
    }

    /// Whether memo field `key` must be upserted to become `value` (recorded as published).
    /// A field never published and still empty needs nothing.
    pub fn memo_changed(&mut self, key: &'static str, value: Option<&str>) -> bool {
        let value = value.map(str::to_owned);
        let unchanged = match self.memo.get(key) {
            Some(old) => old == &value,
            None => value.is_none(),
        };
        if unchanged {
            return false;
        }
        self.memo.insert(key, value);
        true
    }

    /// What to publish to reach `wanted` and the memo fields `memo`.
    pub fn diff(
        &mut self,
        wanted: &Attributes,
        memo: &[(&'static str, Option<String>)],
    ) -> Publication {
        let attributes = self.attribute_updates(wanted);
        let memo = memo
            .iter()
            .filter(|(key, value)| self.memo_changed(key, value.as_deref()))
            .cloned()
            .collect();
        Publication { attributes, memo }
    }
}

/// The commands one publication takes: search attribute upserts and memo fields (`None`
/// removes the field).
#[derive(Debug, Default)]
pub struct Publication {
    /// Search attribute updates.
    pub attributes: Vec<SearchAttributeUpdate>,
    /// Memo fields.
    pub memo: Vec<(&'static str, Option<String>)>,
}

/// An instant for people: `2026-12-02 10:00:00 UTC`.
pub fn instant(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    let s = s.split('.').next().unwrap_or(&s).trim_end_matches('Z');
    format!("{} UTC", s.replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(address: &str, name: Option<&str>) -> ContactCard {
        ContactCard { address: Some(address.into()), name: name.map(Into::into) }
    }

    #[test]
    fn summaries_name_the_channel_and_the_contact() {
        let ada = card("+4917612345678", Some("Ada"));
        assert_eq!(
            session_summary(Channel::Whatsapp, "ct_1", Some(&ada)),
            "WhatsApp session with +4917612345678 (Ada)"
        );
        assert_eq!(
            session_summary(Channel::Sms, "ct_1", Some(&card("+1555", None))),
            "SMS session with +1555"
        );
        assert_eq!(session_summary(Channel::Email, "ct_1", None), "E-mail session with ct_1");
        assert_eq!(
            conversation_summary(Channel::Rcs, &contact_label("ct_2", Some(&ada))),
            "RCS conversation with +4917612345678 (Ada)"
        );
        let blank = ContactCard { address: None, name: Some("  ".into()) };
        assert_eq!(contact_label("ct_3", Some(&blank)), "ct_3");
    }

    #[test]
    fn only_changes_are_published() {
        let ada = card("+4917612345678", Some("Ada"));
        let mut published = Published::default();
        let open =
            session_attributes("acme", "ct_1", Some(&ada), Channel::Whatsapp, "open", None, None);
        let first = published.attribute_updates(&open);
        let names: Vec<&str> = first.iter().map(SearchAttributeUpdate::name).collect();
        // The never-set close reason is not published.
        assert_eq!(
            names,
            [
                "ConvoChannel",
                "ConvoContactAddress",
                "ConvoContactId",
                "ConvoProblem",
                "ConvoWindowState",
                "ConvoWorkspace"
            ]
        );
        assert!(first.iter().all(|u| !u.is_unset()));
        assert!(published.attribute_updates(&open).is_empty());

        let closed = session_attributes(
            "acme",
            "ct_1",
            Some(&ada),
            Channel::Whatsapp,
            "closed",
            Some(CloseReason::ComplianceStop),
            None,
        );
        let second = published.attribute_updates(&closed);
        let names: Vec<&str> = second.iter().map(SearchAttributeUpdate::name).collect();
        assert_eq!(names, ["ConvoCloseReason", "ConvoWindowState"]);
        assert!(second.iter().all(|u| !u.is_unset()));

        // Reopened while a send is retried.
        let reopened = session_attributes(
            "acme",
            "ct_1",
            Some(&ada),
            Channel::Whatsapp,
            "open",
            Some(CloseReason::ComplianceStop),
            Some(SEND_RETRYING),
        );
        let third = published.attribute_updates(&reopened);
        let names: Vec<&str> = third.iter().map(SearchAttributeUpdate::name).collect();
        // The latest close reason stays; nothing is ever unset.
        assert_eq!(names, ["ConvoProblem", "ConvoWindowState"]);
        assert!(third.iter().all(|u| !u.is_unset()));

        // The send was answered: the problem is unset, and nothing else moves.
        let healthy = session_attributes(
            "acme",
            "ct_1",
            Some(&ada),
            Channel::Whatsapp,
            "open",
            Some(CloseReason::ComplianceStop),
            None,
        );
        let fourth = published.attribute_updates(&healthy);
        assert_eq!(fourth.len(), 1);
        assert!(fourth[0].name() == "ConvoProblem" && !fourth[0].is_unset());
    }

    #[test]
    fn memo_fields_are_upserted_once_per_change() {
        let mut published = Published::default();
        assert!(!published.memo_changed(memo::CONVERSATION, None));
        assert!(published.memo_changed(memo::CONVERSATION, Some("cv_1")));
        assert!(!published.memo_changed(memo::CONVERSATION, Some("cv_1")));
        assert!(published.memo_changed(memo::CONVERSATION, None));
    }

    #[test]
    fn window_states() {
        assert_eq!(window_state(true, true), "open");
        assert_eq!(window_state(false, true), "closed");
        assert_eq!(window_state(false, false), "none");
    }

    #[test]
    fn every_attribute_is_registered_once() {
        let mut names: Vec<&str> = SEARCH_ATTRIBUTES.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SEARCH_ATTRIBUTES.len());
        assert!(names.iter().all(|n| n.starts_with("Convo")));
        assert!(
            SEARCH_ATTRIBUTES.iter().all(|k| k.indexed_value_type() == IndexedValueType::Keyword)
        );
    }

    #[test]
    fn instants_read_as_utc() {
        let t = Timestamp::from_epoch_millis(1_796_205_600_123);
        assert_eq!(instant(t), "2026-12-02 10:00:00 UTC");
    }
}
