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
//! seven.

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
/// Why a session's latest window closed: `EXPIRED`, `EXPLICIT` or `COMPLIANCE_STOP`.
pub const CLOSE_REASON: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("ConvoCloseReason");
/// A conversation's status: `pending`, `awaiting_reply`, `active`, `resolved`, `expired`,
/// `failed`.
pub const CONVERSATION_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("ConvoConversationStatus");

/// Every search attribute convo's workflows set (all `Keyword`s): what the worker registers.
pub const SEARCH_ATTRIBUTES: [SearchAttributeKey<String>; 7] = [
    WORKSPACE,
    CONTACT_ID,
    CONTACT_ADDRESS,
    CHANNEL,
    WINDOW_STATE,
    CLOSE_REASON,
    CONVERSATION_STATUS,
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

/// The search attributes a session should carry now.
pub fn session_attributes(
    workspace_id: &str,
    contact_id: &str,
    card: Option<&ContactCard>,
    channel: Channel,
    window_state: &str,
    close_reason: Option<CloseReason>,
) -> Attributes {
    let mut a = Attributes::common(workspace_id, Some(contact_id), card, channel);
    a.set(WINDOW_STATE, Some(window_state.to_owned()));
    // An open window has not closed (yet): a reason from an earlier window would mislead.
    let reason = close_reason.filter(|_| window_state != "open");
    a.set(CLOSE_REASON, reason.map(|r| r.as_str().to_owned()));
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

/// Keyword search attributes by name; `None` means unset.
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
    attributes: BTreeMap<&'static str, Option<String>>,
    memo: BTreeMap<&'static str, Option<String>>,
}

impl Published {
    /// The updates that bring the published attributes to `wanted`, recorded as published.
    /// Unset attributes that were never published need no update.
    pub fn attribute_updates(&mut self, wanted: &Attributes) -> Vec<SearchAttributeUpdate> {
        let mut updates = Vec::new();
        for (name, value) in &wanted.0 {
            let known = self.attributes.get(name);
            let unchanged = match known {
                Some(old) => old == value,
                None => value.is_none(),
            };
            if unchanged {
                continue;
            }
            let key = SearchAttributeKey::<String>::keyword(name);
            updates.push(match value {
                Some(v) => key.value_set(v.clone()),
                None => key.value_unset(),
            });
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
        let open = session_attributes("acme", "ct_1", Some(&ada), Channel::Whatsapp, "open", None);
        let first = published.attribute_updates(&open);
        let names: Vec<&str> = first.iter().map(SearchAttributeUpdate::name).collect();
        // The never-set close reason needs no unset.
        assert_eq!(
            names,
            [
                "ConvoChannel",
                "ConvoContactAddress",
                "ConvoContactId",
                "ConvoWindowState",
                "ConvoWorkspace"
            ]
        );
        assert!(published.attribute_updates(&open).is_empty());

        let closed = session_attributes(
            "acme",
            "ct_1",
            Some(&ada),
            Channel::Whatsapp,
            "closed",
            Some(CloseReason::ComplianceStop),
        );
        let second = published.attribute_updates(&closed);
        let names: Vec<&str> = second.iter().map(SearchAttributeUpdate::name).collect();
        assert_eq!(names, ["ConvoCloseReason", "ConvoWindowState"]);
        assert!(second.iter().all(|u| !u.is_unset()));

        // Reopened: the old reason is unset.
        let reopened = session_attributes(
            "acme",
            "ct_1",
            Some(&ada),
            Channel::Whatsapp,
            "open",
            Some(CloseReason::ComplianceStop),
        );
        let third = published.attribute_updates(&reopened);
        assert_eq!(third.len(), 2);
        assert!(third.iter().any(|u| u.name() == "ConvoCloseReason" && u.is_unset()));
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
