//! Task tokens: opaque to workers, self-describing to the server.
//!
//! A token names the execution and the exact task attempt it was issued for, so a late reply
//! for a task that has since timed out or been retried is recognised as stale (NOT_FOUND), and
//! bytes that are not a token are recognised as malformed (INVALID_ARGUMENT).

use prost::Message;

/// Leading byte so random bytes are rejected instead of half-decoding.
const MAGIC: u8 = 0xC7;

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TaskToken {
    #[prost(string, tag = "1")]
    pub(crate) namespace: String,
    #[prost(string, tag = "2")]
    pub(crate) workflow_id: String,
    #[prost(string, tag = "3")]
    pub(crate) run_id: String,
    /// Workflow task: its scheduled event id. Activity: the activity's scheduled event id.
    #[prost(int64, tag = "4")]
    pub(crate) scheduled_event_id: i64,
    #[prost(int32, tag = "5")]
    pub(crate) attempt: i32,
    #[prost(enumeration = "TokenKind", tag = "6")]
    pub(crate) kind: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum TokenKind {
    Workflow = 0,
    Activity = 1,
    /// A legacy query task; `scheduled_event_id` carries the query id.
    Query = 2,
}

impl TaskToken {
    pub(crate) fn encode_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len() + 1);
        out.push(MAGIC);
        self.encode(&mut out).expect("Vec grows");
        out
    }

    /// `None` when the bytes are not a token this server issued.
    pub(crate) fn decode_bytes(bytes: &[u8], kind: TokenKind) -> Option<Self> {
        let (first, rest) = bytes.split_first()?;
        if *first != MAGIC {
            return None;
        }
        let token = Self::decode(rest).ok()?;
        (token.kind == kind as i32 && !token.run_id.is_empty()).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let t = TaskToken {
            namespace: "default".into(),
            workflow_id: "wf".into(),
            run_id: "r1".into(),
            scheduled_event_id: 5,
            attempt: 2,
            kind: TokenKind::Activity as i32,
        };
        let bytes = t.encode_bytes();
        assert_eq!(TaskToken::decode_bytes(&bytes, TokenKind::Activity), Some(t));
        assert_eq!(TaskToken::decode_bytes(&bytes, TokenKind::Workflow), None);
        assert_eq!(TaskToken::decode_bytes(b"not a token", TokenKind::Activity), None);
        assert_eq!(TaskToken::decode_bytes(&[], TokenKind::Activity), None);
    }
}
