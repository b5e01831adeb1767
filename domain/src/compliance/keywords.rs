//! The keyword sets and the whole-message matcher.

use serde::{Deserialize, Serialize};

/// Opt-out keywords: the FCC's per-se revocation words plus Twilio's defaults.
pub const OPT_OUT_KEYWORDS: [&str; 9] =
    ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"];
/// Opt-in keywords (Twilio's defaults).
pub const OPT_IN_KEYWORDS: [&str; 3] = ["START", "UNSTOP", "YES"];
/// Help keywords.
pub const HELP_KEYWORDS: [&str; 2] = ["HELP", "INFO"];

/// A compliance keyword class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// The contact withdraws consent.
    OptOut,
    /// The contact gives (or gives back) consent.
    OptIn,
    /// The contact asks for help.
    Help,
}

/// The keyword `text` is, if the whole trimmed message is one, in any case.
pub fn classify(text: &str) -> Option<Keyword> {
    let text = text.trim();
    let is = |words: &[&str]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if is(&OPT_OUT_KEYWORDS) {
        Some(Keyword::OptOut)
    } else if is(&OPT_IN_KEYWORDS) {
        Some(Keyword::OptIn)
    } else if is(&HELP_KEYWORDS) {
        Some(Keyword::Help)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn whole_trimmed_message_in_any_case() {
        let table = [
            ("STOP", Some(Keyword::OptOut)),
            ("  stop\n", Some(Keyword::OptOut)),
            ("StopAll", Some(Keyword::OptOut)),
            ("opt out", Some(Keyword::OptOut)),
            ("OptOut", Some(Keyword::OptOut)),
            ("\tRevoke ", Some(Keyword::OptOut)),
            ("unsubscribe", Some(Keyword::OptOut)),
            ("cancel", Some(Keyword::OptOut)),
            ("End", Some(Keyword::OptOut)),
            ("quit", Some(Keyword::OptOut)),
            ("start", Some(Keyword::OptIn)),
            ("UNSTOP", Some(Keyword::OptIn)),
            (" yes ", Some(Keyword::OptIn)),
            ("help", Some(Keyword::Help)),
            ("Info", Some(Keyword::Help)),
            ("please stop", None),
            ("stop!", None),
            ("opt  out", None),
            ("opt-out", None),
            ("yes please", None),
            ("", None),
            ("   ", None),
        ];
        for (text, expected) in table {
            assert_eq!(classify(text), expected, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn every_keyword_matches_with_any_case_and_padding(
            idx in 0usize..14,
            mask in any::<u16>(),
            pad_left in "[ \t\n]{0,3}",
            pad_right in "[ \t\n]{0,3}",
        ) {
            let all: Vec<(&str, Keyword)> = OPT_OUT_KEYWORDS.iter().map(|w| (*w, Keyword::OptOut))
                .chain(OPT_IN_KEYWORDS.iter().map(|w| (*w, Keyword::OptIn)))
                .chain(HELP_KEYWORDS.iter().map(|w| (*w, Keyword::Help)))
                .collect();
            let (word, kind) = all[idx % all.len()];
            let cased: String = word.chars().enumerate()
                .map(|(i, c)| if mask >> (i % 16) & 1 == 1 { c.to_ascii_lowercase() } else { c })
                .collect();
            let text = format!("{pad_left}{cased}{pad_right}");
            prop_assert_eq!(classify(&text), Some(kind));
            let embedded = format!("please {cased} now");
            prop_assert_eq!(classify(&embedded), None);
        }
    }
}
