//! [`ErrorCode`]: the one vocabulary of stable error codes, from the domain's refusals to the
//! API's answers.
//!
//! Clients match on these strings (an API error's `code`, a conversation's `error.code`, a
//! gRPC `ErrorInfo.reason`), and activities fail with them as their application failure
//! type, so a code never changes meaning. Each layer picks its code from this enum; the HTTP
//! status and the gRPC code are chosen from it once, at the transport edge (`convo-api`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! codes {
    (
        api { $($(#[$doc:meta])* $variant:ident = $wire:literal,)* }
        other { $($(#[$odoc:meta])* $ovariant:ident = $owire:literal,)* }
    ) => {
        /// A stable, machine-readable error code (serialised `snake_case`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            $($(#[$odoc])* $ovariant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] =
                &[$(ErrorCode::$variant,)* $(ErrorCode::$ovariant,)*];

            /// The codes an API error answer carries: the `code` enum of the OpenAPI
            /// document's `Error` schema. The rest are conversation outcomes and activity
            /// failure types, which the API shows as one of these.
            pub const API: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                    $(ErrorCode::$ovariant => $owire,)*
                }
            }

            /// The code spelled `s`, if there is one.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s {
                    $($wire => Some(ErrorCode::$variant),)*
                    $($owire => Some(ErrorCode::$ovariant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    api {
    /// Free-form send with no open window (never silently downgraded to a template).
    NoActiveSession = "no_active_session",
    /// The contact opted out; nothing business-initiated may be sent.
    ContactOptedOut = "contact_opted_out",
    /// The workspace's free balance cannot cover the hold.
    InsufficientBalance = "insufficient_balance",
    /// The request is malformed; `field` names the culprit when one can be named.
    ValidationFailed = "validation_failed",
    /// No such resource in the caller's workspace (another workspace's resources included).
    NotFound = "not_found",
    /// No valid API key, or a bad provider signature.
    Unauthorized = "unauthorized",
    /// The API key is valid, but its scope does not cover the operation (or a provider's
    /// verification request names a token no channel has).
    Forbidden = "forbidden",
    /// The Idempotency-Key was used before for a different request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// The first request with this Idempotency-Key is still running.
    IdempotencyKeyInUse = "idempotency_key_in_use",
    /// Too many requests.
    RateLimited = "rate_limited",
    /// The contact's window runs on another channel.
    ChannelMismatch = "channel_mismatch",
    /// The channel provider refused the message for good.
    ProviderRejected = "provider_rejected",
    /// The request contradicts the resource's state.
    Conflict = "conflict",
    /// The conversation no longer takes messages or agent actions.
    ConversationClosed = "conversation_closed",
    /// A dependency (Temporal, the database) is unreachable; retrying later may succeed.
    Unavailable = "unavailable",
    /// The request body exceeds the size limit.
    PayloadTooLarge = "payload_too_large",
    /// The request body is not JSON (or not the form the endpoint takes).
    UnsupportedMediaType = "unsupported_media_type",
    /// The route exists but not with this method.
    MethodNotAllowed = "method_not_allowed",
    /// The workspace has no usable configuration for the channel.
    ChannelNotConfigured = "channel_not_configured",
    /// A bug or corrupt data on our side.
    Internal = "internal",
    }
    other {
    /// The session's window is being torn down and takes no free-form send (the API answers
    /// `no_active_session`).
    SessionClosing = "session_closing",
    /// A composed conversation got no reply within its reply timeout (a conversation's
    /// `error.code`).
    ReplyTimeout = "reply_timeout",
    /// A composed conversation's window expired before the contact replied (a conversation's
    /// `error.code`).
    WindowExpired = "window_expired",
    /// A session answered a send with a failure that named no code.
    SendFailed = "send_failed",
    /// The store holds a row it cannot read (an activity's failure type; the API answers
    /// `internal`).
    Corrupt = "corrupt",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    /// A code this build does not know (written by a newer one, or by an older one since
    /// renamed) reads as [`ErrorCode::Internal`], so a recorded payload always reads back.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ErrorCode::parse(&s).unwrap_or(ErrorCode::Internal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_spelling() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        assert!(ErrorCode::API.iter().all(|c| ErrorCode::ALL.contains(c)));
    }

    #[test]
    fn spellings_are_snake_case_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{s}");
            assert!(seen.insert(s), "{s} twice");
        }
    }

    #[test]
    fn an_unknown_code_reads_back_as_internal() {
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(),
            ErrorCode::Internal
        );
        assert_eq!(ErrorCode::parse("nope"), None);
    }
}
