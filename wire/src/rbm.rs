//! RBM's webhooks: a Pub/Sub-style envelope whose `message.data` is the base64 agent event
//! (the signature covers the decoded event), or the webhook's verification request
//! (`clientToken` and `secret`).

use base64::{Engine, engine::general_purpose::STANDARD};
use convo_domain::Timestamp;
use serde::Deserialize;

/// A webhook body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Verification: the client token the webhook was registered with.
    #[serde(default)]
    pub client_token: Option<String>,
    /// Verification: the secret to echo.
    #[serde(default)]
    pub secret: Option<String>,
    /// An event.
    #[serde(default)]
    pub message: Option<PubsubMessage>,
}

/// The Pub/Sub message carrying an event.
#[derive(Debug, Deserialize)]
pub struct PubsubMessage {
    /// The base64 event.
    pub data: String,
}

impl Envelope {
    /// Decodes a body.
    pub fn parse(body: &[u8]) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The verification request's client token and secret, if this is one.
    pub fn verification(&self) -> Option<(&str, &str)> {
        Some((self.client_token.as_deref()?, self.secret.as_deref()?))
    }

    /// The event's exact bytes (what the signature covers) and the event, or why not.
    pub fn event(&self) -> Result<(Vec<u8>, Event), String> {
        let data = self.message.as_ref().ok_or("the envelope carries no message")?;
        let bytes = STANDARD.decode(data.data.trim()).map_err(|e| format!("message.data: {e}"))?;
        let event = serde_json::from_slice(&bytes).map_err(|e| format!("the event: {e}"))?;
        Ok((bytes, event))
    }
}

/// An agent event: a contact's message, or a status (`DELIVERED`, `READ`, …) of a sent one.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The agent (it names the channel).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// A status event's type; absent on a contact's message.
    #[serde(default)]
    pub event_type: Option<String>,
    /// The message (convo's id for statuses of sent messages).
    #[serde(default)]
    pub message_id: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub send_time: Option<String>,
    /// A contact's message: who sent it.
    #[serde(default)]
    pub sender_phone_number: Option<String>,
    /// A contact's text message.
    #[serde(default)]
    pub text: Option<String>,
    /// A contact's tap on a suggested reply or action.
    #[serde(default)]
    pub suggestion_response: Option<SuggestionResponse>,
    /// A shared location.
    #[serde(default)]
    pub location: Option<serde_json::Value>,
    /// A sent file.
    #[serde(default)]
    pub user_file: Option<serde_json::Value>,
}

/// A tapped suggestion.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionResponse {
    /// The suggestion's postback data.
    #[serde(default)]
    pub postback_data: Option<String>,
    /// Its label.
    #[serde(default)]
    pub text: Option<String>,
}

impl Event {
    /// The text a session sees of a contact's message: its text, the label of the tapped
    /// suggestion, or `[location]` / `[file]` for what convo does not fetch.
    pub fn user_text(&self) -> String {
        if let Some(text) = &self.text {
            return text.clone();
        }
        if let Some(text) = self.suggestion_response.as_ref().and_then(|s| s.text.clone()) {
            return text;
        }
        if self.location.is_some() {
            return "[location]".to_owned();
        }
        if self.user_file.is_some() {
            return "[file]".to_owned();
        }
        "[unknown]".to_owned()
    }

    /// The contact who sent it, when this is a contact's message (not a status).
    pub fn contact_message_from(&self) -> Option<&str> {
        self.sender_phone_number.as_deref().filter(|_| self.event_type.is_none())
    }

    /// `sendTime`, if it is an RFC 3339 time after 1970.
    pub fn sent_at(&self) -> Option<Timestamp> {
        let t = chrono::DateTime::parse_from_rfc3339(self.send_time.as_deref()?.trim()).ok()?;
        u64::try_from(t.timestamp_millis()).ok().map(Timestamp::from_epoch_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_unwrapped_from_its_envelope() {
        let event = br#"{"agentId":"a1","senderPhoneNumber":"+14155550123","messageId":"m1",
            "sendTime":"2026-12-01T10:00:00Z","suggestionResponse":{"postbackData":"yes","text":"Yes"}}"#;
        let body = format!(r#"{{"message":{{"data":"{}"}}}}"#, STANDARD.encode(event));
        let envelope = Envelope::parse(body.as_bytes()).expect("parses");
        assert_eq!(envelope.verification(), None);
        let (bytes, e) = envelope.event().expect("decodes");
        assert_eq!(bytes, event);
        assert_eq!(e.contact_message_from(), Some("+14155550123"));
        assert_eq!(e.user_text(), "Yes");
        assert_eq!(e.sent_at(), Some(Timestamp::from_epoch_millis(1_796_119_200_000)));
        let bad = Envelope::parse(br#"{"message":{"data":"!!"}}"#).expect("parses");
        assert!(bad.event().is_err());
    }
}
