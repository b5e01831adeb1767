//! A template send's values: what each placeholder of the registered template is filled with,
//! per component, and the text the contact sees once they are filled in.
//!
//! The API resolves them against the workspace's template registry before the send reaches the
//! session, so the session and the providers carry values that are already checked. Every field
//! is optional on the wire (`serde(default)`): a send recorded before templates had values reads
//! as a template with none.

use serde::{Deserialize, Serialize};

/// One placeholder and its value (`{{1}}` → `1`, `{{first_name}}` → `first_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParam {
    /// The placeholder's name, without braces.
    pub name: String,
    /// What it is filled with.
    pub value: String,
}

/// The value of a button's placeholder (a URL button's dynamic suffix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateButtonParam {
    /// The button's position in its component list, from 0.
    pub index: u32,
    /// The button's kind as WhatsApp names it (`url`, `quick_reply`).
    pub sub_type: String,
    /// The placeholder's name in the button's URL.
    pub name: String,
    /// The placeholder's value.
    pub value: String,
}

/// The values of one carousel card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCardParams {
    /// The card's header placeholders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<TemplateParam>,
    /// The card's body placeholders, in declared order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<TemplateParam>,
    /// The card's button placeholders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateButtonParam>,
}

/// A template with its placeholders filled in: what the contact sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateText {
    /// The header line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The body.
    pub body: String,
    /// The footer line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The subject line (e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Each button's label, and its URL or number when it has one (`Track: https://…/42`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<String>,
    /// A carousel's cards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<TemplateText>,
}

impl TemplateText {
    /// The text as one message (header, body, footer and buttons on their own lines), for
    /// channels that only carry text.
    pub fn plain(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.header.clone());
        parts.push(self.body.clone());
        parts.extend(self.footer.clone());
        parts.extend(self.buttons.iter().map(|b| format!("[{b}]")));
        for card in &self.cards {
            parts.push(card.plain());
        }
        parts.retain(|p| !p.is_empty());
        parts.join("\n")
    }
}

/// Everything a template send carries beyond the template's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParams {
    /// The registered template's language (WhatsApp `language.code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Header placeholders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<TemplateParam>,
    /// Body placeholders, in the template's declared order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<TemplateParam>,
    /// Button placeholders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateButtonParam>,
    /// Carousel cards, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<TemplateCardParams>,
    /// The rendered text, when the template is in the workspace's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TemplateText>,
}

impl TemplateParams {
    /// Nothing beyond the name (a template sent before values existed, or one with none).
    pub fn is_empty(&self) -> bool {
        self == &TemplateParams::default()
    }

    /// Every placeholder's value by name, body first, then header and buttons (Twilio's
    /// `ContentVariables` are one flat map over the whole template).
    pub fn flat(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |name: &str, value: &str| {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_owned(), value.to_owned()));
            }
        };
        for p in self.body.iter().chain(&self.header) {
            push(&p.name, &p.value);
        }
        for b in &self.buttons {
            push(&b.name, &b.value);
        }
        out
    }
}
