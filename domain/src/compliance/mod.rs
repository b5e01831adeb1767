//! Compliance: opt-out, opt-in and help keywords, the contact's consent, and the texts a
//! workspace answers them with.
//!
//! Matching follows Twilio's and Sent's rule: a keyword counts only when it is the *whole*
//! trimmed message, in any case, so "please stop texting me" does not trigger (the FCC's "any
//! reasonable means" still calls for a human to review such messages; that is out of scope for a
//! keyword matcher). Consent belongs to the contact within a workspace, on every channel: an
//! opt-out on SMS blocks WhatsApp too.

mod consent;
mod keywords;

use serde::{Deserialize, Serialize};

pub use consent::{Consent, Error};
pub use keywords::{HELP_KEYWORDS, Keyword, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, classify};

/// What a workspace answers compliance keywords with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceTexts {
    /// The reply to HELP / INFO: programme name, support contact, how to stop.
    pub help: String,
    /// The single confirmation allowed after an opt-out.
    pub opt_out_confirmation: String,
    /// The confirmation sent when an opted-out contact opts back in.
    pub opt_in_confirmation: String,
}

impl Default for ComplianceTexts {
    fn default() -> Self {
        Self {
            help: "Reply STOP to unsubscribe. Msg & data rates may apply.".to_owned(),
            opt_out_confirmation: "You have been unsubscribed and will receive no further \
                                   messages. Reply START to resubscribe."
                .to_owned(),
            opt_in_confirmation: "You have been resubscribed. Reply STOP to unsubscribe."
                .to_owned(),
        }
    }
}

impl ComplianceTexts {
    /// The reply to `keyword`.
    pub fn reply(&self, keyword: Keyword) -> &str {
        match keyword {
            Keyword::OptOut => &self.opt_out_confirmation,
            Keyword::OptIn => &self.opt_in_confirmation,
            Keyword::Help => &self.help,
        }
    }
}
