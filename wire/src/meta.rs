//! Meta's WhatsApp Cloud API webhook: `entry[].changes[].value` with the receiving number's
//! `metadata`, the senders' `contacts`, their `messages` and the `statuses` of sent messages.
//! Lenient: Meta adds fields, and every field convo does not need may be absent.

use convo_domain::Timestamp;
use serde::Deserialize;

/// A webhook body.
#[derive(Debug, Default, Deserialize)]
pub struct Webhook {
    /// One per WhatsApp Business Account.
    #[serde(default)]
    pub entry: Vec<Entry>,
}

impl Webhook {
    /// Decodes a body; an error for anything that is not a webhook's JSON.
    pub fn parse(body: &[u8]) -> Result<Webhook, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// Every change's value, in order.
    pub fn into_values(self) -> impl Iterator<Item = Value> {
        self.entry.into_iter().flat_map(|e| e.changes).map(|c| c.value)
    }
}

/// One account's changes.
#[derive(Debug, Default, Deserialize)]
pub struct Entry {
    /// The changes.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change.
#[derive(Debug, Default, Deserialize)]
pub struct Change {
    /// What changed.
    #[serde(default)]
    pub value: Value,
}

/// A change's content, for one receiving number.
#[derive(Debug, Default, Deserialize)]
pub struct Value {
    /// The receiving number; a change without it is addressed to no one.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// The senders' profiles.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Contacts' messages.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Delivery statuses of sent messages.
    #[serde(default)]
    pub statuses: Vec<Status>,
}

impl Value {
    /// The profile name of the sender with WhatsApp id `wa_id`, if Meta gave one.
    pub fn contact_name(&self, wa_id: &str) -> Option<String> {
        self.contacts.iter().find(|c| c.wa_id == wa_id)?.profile.as_ref()?.name.clone()
    }
}

/// The receiving business number.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    /// As displayed, digits without `+`.
    #[serde(default)]
    pub display_phone_number: String,
    /// Meta's id of the number.
    #[serde(default)]
    pub phone_number_id: String,
}

/// A sender.
#[derive(Debug, Default, Deserialize)]
pub struct Contact {
    /// Their WhatsApp id (their number, digits only).
    #[serde(default)]
    pub wa_id: String,
    /// Their profile.
    #[serde(default)]
    pub profile: Option<Profile>,
}

/// A sender's profile.
#[derive(Debug, Default, Deserialize)]
pub struct Profile {
    /// Their name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A contact's message.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// The sender's WhatsApp id.
    pub from: String,
    /// Meta's message id (`wamid.…`).
    pub id: String,
    /// Unix seconds, as a string.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// `text`, `button`, `interactive`, `image`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// A text message.
    #[serde(default)]
    pub text: Option<Text>,
    /// A tapped template button.
    #[serde(default)]
    pub button: Option<Text>,
    /// A tapped reply button or list row.
    #[serde(default)]
    pub interactive: Option<serde_json::Value>,
}

/// A text body (`body`, or `text` for buttons).
#[derive(Debug, Deserialize)]
pub struct Text {
    /// The text.
    #[serde(default, alias = "text")]
    pub body: String,
}

impl Message {
    /// The text a session sees: the body of text messages, the label of a tapped button or
    /// list reply, and `[type]` for media, which convo does not fetch.
    pub fn text(&self) -> String {
        if let Some(t) = &self.text {
            return t.body.clone();
        }
        if let Some(b) = &self.button {
            return b.body.clone();
        }
        if let Some(i) = &self.interactive {
            for kind in ["button_reply", "list_reply"] {
                if let Some(title) =
                    i.get(kind).and_then(|r| r.get("title")).and_then(|t| t.as_str())
                {
                    return title.to_owned();
                }
            }
        }
        format!("[{}]", self.kind.as_deref().unwrap_or("unknown"))
    }

    /// The sender as E.164 (`+` and the WhatsApp id).
    pub fn sender(&self) -> String {
        if self.from.starts_with('+') { self.from.clone() } else { format!("+{}", self.from) }
    }

    /// When the contact sent it, if Meta said.
    pub fn sent_at(&self) -> Option<Timestamp> {
        epoch_secs(self.timestamp.as_deref()?)
    }
}

/// A sent message's delivery status.
#[derive(Debug, Deserialize)]
pub struct Status {
    /// Meta's id of the sent message.
    pub id: String,
    /// `sent`, `delivered`, `read`, `failed`.
    pub status: String,
    /// Unix seconds, as a string.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub errors: Vec<Error>,
}

impl Status {
    /// When Meta saw the change, if it said.
    pub fn at(&self) -> Option<Timestamp> {
        epoch_secs(self.timestamp.as_deref()?)
    }

    /// The first error's code and its title (or message).
    pub fn error(&self) -> (Option<String>, Option<String>) {
        self.errors.first().map_or((None, None), |e| {
            (e.code.map(|c| c.to_string()), e.title.clone().or_else(|| e.message.clone()))
        })
    }
}

/// A delivery error.
#[derive(Debug, Deserialize)]
pub struct Error {
    /// Meta's error code.
    #[serde(default)]
    pub code: Option<i64>,
    /// Its title.
    #[serde(default)]
    pub title: Option<String>,
    /// Its message.
    #[serde(default)]
    pub message: Option<String>,
}

/// Unix seconds as Meta writes them; `None` for anything else, or a time the clock cannot
/// hold.
fn epoch_secs(s: &str) -> Option<Timestamp> {
    let secs = s.trim().parse::<u64>().ok()?;
    secs.checked_mul(1000).map(Timestamp::from_epoch_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_a_button_and_media_read_as_a_session_sees_them() {
        let body = br#"{"entry":[{"changes":[{"value":{
            "metadata":{"display_phone_number":"12125550121","phone_number_id":"pn1"},
            "contacts":[{"wa_id":"14155550123","profile":{"name":"Ada"}}],
            "messages":[
              {"from":"14155550123","id":"wamid.1","timestamp":"1700000000","type":"text","text":{"body":"hi"}},
              {"from":"14155550123","id":"wamid.2","type":"interactive","interactive":{"button_reply":{"id":"b","title":"Yes"}}},
              {"from":"14155550123","id":"wamid.3","type":"image"}],
            "statuses":[{"id":"wamid.out","status":"failed","timestamp":"1700000001",
              "errors":[{"code":131047,"title":"Re-engagement message"}]}]}}]}]}"#;
        let values: Vec<Value> = Webhook::parse(body).expect("parses").into_values().collect();
        assert_eq!(values.len(), 1);
        let v = &values[0];
        assert_eq!(v.metadata.as_ref().map(|m| m.phone_number_id.as_str()), Some("pn1"));
        assert_eq!(v.contact_name("14155550123").as_deref(), Some("Ada"));
        let texts: Vec<String> = v.messages.iter().map(Message::text).collect();
        assert_eq!(texts, ["hi", "Yes", "[image]"]);
        assert_eq!(v.messages[0].sender(), "+14155550123");
        assert_eq!(v.messages[0].sent_at(), Some(Timestamp::from_epoch_millis(1_700_000_000_000)));
        assert_eq!(
            v.statuses[0].error(),
            (Some("131047".to_owned()), Some("Re-engagement message".to_owned()))
        );
    }

    #[test]
    fn a_timestamp_beyond_the_clock_is_no_time() {
        assert_eq!(epoch_secs("18446744073709551615"), None);
        assert_eq!(epoch_secs("soon"), None);
    }
}
