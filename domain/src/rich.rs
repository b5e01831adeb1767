//! RCS rich content: text with suggestions, a standalone rich card, or a carousel, as the RCS
//! conversation API takes them and Google RCS Business Messaging (RBM) carries them.
//!
//! This module holds the shapes (serialized in convo's snake_case form, the one the API takes
//! and webhooks show) and [`Rich::validate`], which holds them to RBM's published limits, so a
//! send that RBM would refuse is refused up front with the field at fault. The RBM wire form
//! (camelCase, `contentMessage.richCard.standaloneCard...`) is the provider adapter's business.

use serde::{Deserialize, Serialize};

/// RBM's limits, as its reference documents them.
pub mod limits {
    /// Characters of a text message.
    pub const TEXT: usize = 3_072;
    /// Suggestions (chips) on a message.
    pub const MESSAGE_SUGGESTIONS: usize = 11;
    /// Suggestions on one card.
    pub const CARD_SUGGESTIONS: usize = 4;
    /// Characters of a suggestion's label.
    pub const SUGGESTION_TEXT: usize = 25;
    /// Characters of a suggestion's postback data.
    pub const POSTBACK_DATA: usize = 2_048;
    /// Characters of a URL (open-URL action, card media).
    pub const URL: usize = 2_048;
    /// Characters of a card title.
    pub const CARD_TITLE: usize = 200;
    /// Characters of a card description.
    pub const CARD_DESCRIPTION: usize = 2_000;
    /// Fewest cards in a carousel.
    pub const CAROUSEL_MIN_CARDS: usize = 2;
    /// Most cards in a carousel.
    pub const CAROUSEL_MAX_CARDS: usize = 10;
}

/// A suggested reply or action, shown as a chip under a message or a button on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Suggestion {
    /// A reply: tapping it sends its text (and postback data) back.
    Reply {
        /// The label, and the text the contact sends by tapping it.
        text: String,
        /// What convo receives when it is tapped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        postback_data: Option<String>,
    },
    /// Opens a web page.
    OpenUrl {
        /// The label.
        text: String,
        /// What convo receives when it is tapped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        postback_data: Option<String>,
        /// An `http` or `https` URL.
        url: String,
    },
    /// Starts a phone call.
    Dial {
        /// The label.
        text: String,
        /// What convo receives when it is tapped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        postback_data: Option<String>,
        /// The number to call, E.164.
        phone_number: String,
    },
    /// Asks the contact to share a location.
    ShareLocation {
        /// The label.
        text: String,
        /// What convo receives when it is tapped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        postback_data: Option<String>,
    },
}

impl Suggestion {
    /// The wire key of its kind (`reply`, `open_url`, `dial`, `share_location`).
    pub const fn kind(&self) -> &'static str {
        match self {
            Suggestion::Reply { .. } => "reply",
            Suggestion::OpenUrl { .. } => "open_url",
            Suggestion::Dial { .. } => "dial",
            Suggestion::ShareLocation { .. } => "share_location",
        }
    }

    /// Its label.
    pub fn text(&self) -> &str {
        match self {
            Suggestion::Reply { text, .. }
            | Suggestion::OpenUrl { text, .. }
            | Suggestion::Dial { text, .. }
            | Suggestion::ShareLocation { text, .. } => text,
        }
    }

    /// Its postback data, if it has any.
    pub fn postback_data(&self) -> Option<&str> {
        match self {
            Suggestion::Reply { postback_data, .. }
            | Suggestion::OpenUrl { postback_data, .. }
            | Suggestion::Dial { postback_data, .. }
            | Suggestion::ShareLocation { postback_data, .. } => postback_data.as_deref(),
        }
    }
}

/// How tall a card's media is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaHeight {
    /// 112 DP.
    Short,
    /// 168 DP.
    #[default]
    Medium,
    /// 264 DP; not in a carousel of `SMALL` cards.
    Tall,
}

/// An image or video on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// A publicly reachable `http(s)` URL of the file.
    pub file_url: String,
    /// A publicly reachable `http(s)` URL of its thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// How tall it is shown (`MEDIUM` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<MediaHeight>,
}

/// A card's layout (standalone cards only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardOrientation {
    /// Media above the text.
    #[default]
    Vertical,
    /// Media beside the text.
    Horizontal,
}

/// Which side a horizontal card's media is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThumbnailAlignment {
    /// Media on the left.
    Left,
    /// Media on the right.
    Right,
}

/// A rich card: at least one of a title, a description and media. A standalone card
/// (`rich_card`) may also set its layout; a carousel's cards may not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Its layout (`VERTICAL` when absent); standalone cards only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<CardOrientation>,
    /// Which side the media is on: required for a `HORIZONTAL` card with media, and only there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_alignment: Option<ThumbnailAlignment>,
    /// Its title (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its description (at most 2000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its image or video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    /// Its buttons (at most 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
}

/// How wide a carousel's cards are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardWidth {
    /// 180 DP.
    Small,
    /// 296 DP.
    #[default]
    Medium,
}

/// A carousel: 2 to 10 cards the contact scrolls through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Carousel {
    /// Its cards' width (`MEDIUM` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_width: Option<CardWidth>,
    /// The cards, in order.
    pub cards: Vec<Card>,
}

/// An RCS message with rich content: exactly one of `text`, `rich_card` and `carousel`, with
/// optional message-level suggestions (chips).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rich {
    /// Text (at most 3072 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A standalone rich card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich_card: Option<Card>,
    /// A carousel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel: Option<Carousel>,
    /// Suggested replies and actions under the message (at most 11).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
}

/// Why rich content breaks a limit: the field at fault, as a path inside the content
/// (`suggestions[2].reply.text`, `carousel.cards[0].title`), and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RichError {
    /// The path of the field at fault, relative to the content.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn fail<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, RichError> {
    Err(RichError { field: field.into(), message: message.into() })
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A non-blank string of at most `max` characters.
fn bounded(field: &str, value: &str, max: usize) -> Result<(), RichError> {
    if value.trim().is_empty() {
        return fail(field, "must not be empty");
    }
    let n = chars(value);
    if n > max {
        return fail(field, format!("is {n} characters; RBM allows at most {max}"));
    }
    Ok(())
}

/// An absolute `http`/`https` URL with a host, of at most [`limits::URL`] characters.
fn url(field: &str, value: &str) -> Result<(), RichError> {
    bounded(field, value, limits::URL)?;
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match rest {
        Some(host) if !host.is_empty() && !value.chars().any(char::is_whitespace) => Ok(()),
        _ => fail(field, "must be an absolute http or https URL"),
    }
}

/// `+` and 7 to 15 digits.
fn e164(field: &str, value: &str) -> Result<(), RichError> {
    let digits = value.strip_prefix('+').unwrap_or_default();
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        fail(field, "must be an E.164 phone number (+ and 7 to 15 digits)")
    }
}

fn suggestions(field: &str, list: &[Suggestion], max: usize) -> Result<(), RichError> {
    if list.len() > max {
        return fail(field, format!("has {} suggestions; RBM allows at most {max}", list.len()));
    }
    for (i, s) in list.iter().enumerate() {
        let at = format!("{field}[{i}].{}", s.kind());
        bounded(&format!("{at}.text"), s.text(), limits::SUGGESTION_TEXT)?;
        if let Some(data) = s.postback_data() {
            bounded(&format!("{at}.postback_data"), data, limits::POSTBACK_DATA)?;
        }
        match s {
            Suggestion::OpenUrl { url: u, .. } => url(&format!("{at}.url"), u)?,
            Suggestion::Dial { phone_number, .. } => {
                e164(&format!("{at}.phone_number"), phone_number)?;
            }
            Suggestion::Reply { .. } | Suggestion::ShareLocation { .. } => {}
        }
    }
    Ok(())
}

fn card(field: &str, c: &Card) -> Result<(), RichError> {
    if c.title.is_none() && c.description.is_none() && c.media.is_none() {
        return fail(field, "a card needs a title, a description or media");
    }
    if let Some(title) = &c.title {
        bounded(&format!("{field}.title"), title, limits::CARD_TITLE)?;
    }
    if let Some(description) = &c.description {
        bounded(&format!("{field}.description"), description, limits::CARD_DESCRIPTION)?;
    }
    if let Some(media) = &c.media {
        url(&format!("{field}.media.file_url"), &media.file_url)?;
        if let Some(thumbnail) = &media.thumbnail_url {
            url(&format!("{field}.media.thumbnail_url"), thumbnail)?;
        }
    }
    suggestions(&format!("{field}.suggestions"), &c.suggestions, limits::CARD_SUGGESTIONS)
}

impl Rich {
    /// Holds the content to RBM's limits ([`limits`]): exactly one of text, card and carousel;
    /// label, postback, title, description and URL lengths; suggestion and card counts; URLs
    /// and phone numbers well formed; a horizontal card's media alignment; no tall media in a
    /// carousel of small cards. The first breach is returned, naming its field.
    pub fn validate(&self) -> Result<(), RichError> {
        let given = [self.text.is_some(), self.rich_card.is_some(), self.carousel.is_some()];
        match given.iter().filter(|g| **g).count() {
            0 => return fail("text", "give text, a rich_card or a carousel"),
            1 => {}
            _ => return fail("rich_card", "give only one of text, rich_card and carousel"),
        }
        if let Some(text) = &self.text {
            bounded("text", text, limits::TEXT)?;
        }
        if let Some(rc) = &self.rich_card {
            card("rich_card", rc)?;
            let horizontal = rc.orientation == Some(CardOrientation::Horizontal);
            match (horizontal, rc.media.is_some(), rc.thumbnail_alignment) {
                (true, true, None) => {
                    return fail(
                        "rich_card.thumbnail_alignment",
                        "a HORIZONTAL card with media needs LEFT or RIGHT",
                    );
                }
                (false, _, Some(_)) => {
                    return fail(
                        "rich_card.thumbnail_alignment",
                        "applies only to a HORIZONTAL card",
                    );
                }
                _ => {}
            }
        }
        if let Some(carousel) = &self.carousel {
            let n = carousel.cards.len();
            if !(limits::CAROUSEL_MIN_CARDS..=limits::CAROUSEL_MAX_CARDS).contains(&n) {
                return fail(
                    "carousel.cards",
                    format!(
                        "has {n} cards; a carousel has {} to {}",
                        limits::CAROUSEL_MIN_CARDS,
                        limits::CAROUSEL_MAX_CARDS
                    ),
                );
            }
            let small = carousel.card_width == Some(CardWidth::Small);
            for (i, c) in carousel.cards.iter().enumerate() {
                let at = format!("carousel.cards[{i}]");
                card(&at, c)?;
                if c.orientation.is_some() || c.thumbnail_alignment.is_some() {
                    return fail(
                        format!("{at}.orientation"),
                        "a carousel's cards have no layout of their own; only a rich_card has",
                    );
                }
                if small && c.media.as_ref().and_then(|m| m.height) == Some(MediaHeight::Tall) {
                    return fail(
                        format!("{at}.media.height"),
                        "TALL media is not allowed in a carousel of SMALL cards",
                    );
                }
            }
        }
        suggestions("suggestions", &self.suggestions, limits::MESSAGE_SUGGESTIONS)
    }

    /// The message as plain text, for the message log, webhooks' `text` and readers that show
    /// no cards: the text, or each card's title and description, then the suggestions' labels
    /// in brackets.
    pub fn plain(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut card_lines = |c: &Card| {
            lines.extend(c.title.iter().chain(c.description.iter()).cloned());
            if !c.suggestions.is_empty() {
                lines.push(labels(&c.suggestions));
            }
        };
        if let Some(rc) = &self.rich_card {
            card_lines(rc);
        }
        if let Some(carousel) = &self.carousel {
            carousel.cards.iter().for_each(&mut card_lines);
        }
        if let Some(text) = &self.text {
            lines.insert(0, text.clone());
        }
        if !self.suggestions.is_empty() {
            lines.push(labels(&self.suggestions));
        }
        lines.join("\n")
    }
}

fn labels(list: &[Suggestion]) -> String {
    list.iter().map(|s| format!("[{}]", s.text())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reply(text: &str) -> Suggestion {
        Suggestion::Reply { text: text.to_owned(), postback_data: Some("cGI=".to_owned()) }
    }

    fn titled(title: &str) -> Card {
        Card { title: Some(title.to_owned()), ..Card::default() }
    }

    fn field_of(rich: &Rich) -> String {
        rich.validate().expect_err("must be refused").field
    }

    #[test]
    fn the_seed_example_is_valid_and_reads_as_text_with_labels() {
        let rich = Rich {
            text: Some("Your order arrives tomorrow.".to_owned()),
            suggestions: vec![reply("All good"), reply("Change address")],
            ..Rich::default()
        };
        assert_eq!(rich.validate(), Ok(()));
        assert_eq!(rich.plain(), "Your order arrives tomorrow.\n[All good] [Change address]");
    }

    #[test]
    fn the_api_shape_round_trips_in_snake_case() {
        let json = r#"{"text":"Hi","suggestions":[
            {"reply":{"text":"Yes","postback_data":"eWVz"}},
            {"open_url":{"text":"Track","url":"https://example.com/t/1"}},
            {"dial":{"text":"Call us","phone_number":"+4917612345678"}},
            {"share_location":{"text":"Where are you?"}}]}"#;
        let rich: Rich = serde_json::from_str(json).unwrap();
        assert_eq!(rich.suggestions.len(), 4);
        assert_eq!(rich.suggestions[1].kind(), "open_url");
        assert_eq!(rich.validate(), Ok(()));
        let back: Rich = serde_json::from_str(&serde_json::to_string(&rich).unwrap()).unwrap();
        assert_eq!(back, rich);
        let unknown = r#"{"reply":{"text":"Yes","extra":1}}"#;
        assert!(serde_json::from_str::<Suggestion>(unknown).is_err());
    }

    #[test]
    fn each_limit_names_its_field() {
        let long = |n: usize| "x".repeat(n);
        let text_only = |s: Vec<Suggestion>| Rich {
            text: Some("t".to_owned()),
            suggestions: s,
            ..Rich::default()
        };
        assert_eq!(field_of(&Rich::default()), "text");
        assert_eq!(field_of(&text_only(vec![reply(&long(26))])), "suggestions[0].reply.text");
        assert_eq!(field_of(&text_only(vec![reply("ok"); 12])), "suggestions");
        let bad_url = Suggestion::OpenUrl {
            text: "Go".to_owned(),
            postback_data: None,
            url: "ftp://x".to_owned(),
        };
        assert_eq!(field_of(&text_only(vec![reply("a"), bad_url])), "suggestions[1].open_url.url");
        let bad_dial = Suggestion::Dial {
            text: "Call".to_owned(),
            postback_data: None,
            phone_number: "0176".to_owned(),
        };
        assert_eq!(field_of(&text_only(vec![bad_dial])), "suggestions[0].dial.phone_number");
        let postback =
            Suggestion::ShareLocation { text: "Here".to_owned(), postback_data: Some(long(2049)) };
        assert_eq!(
            field_of(&text_only(vec![postback])),
            "suggestions[0].share_location.postback_data"
        );
        let card = |c: Card| Rich { rich_card: Some(c), ..Rich::default() };
        assert_eq!(field_of(&card(Card::default())), "rich_card");
        assert_eq!(field_of(&card(titled(&long(201)))), "rich_card.title");
        let described = Card { description: Some(long(2001)), ..Card::default() };
        assert_eq!(field_of(&card(described)), "rich_card.description");
        let buttons = Card { suggestions: vec![reply("a"); 5], ..titled("T") };
        assert_eq!(field_of(&card(buttons)), "rich_card.suggestions");
        let carousel = |cards: Vec<Card>, width| Rich {
            carousel: Some(Carousel { card_width: width, cards }),
            ..Rich::default()
        };
        assert_eq!(field_of(&carousel(vec![titled("one")], None)), "carousel.cards");
        assert_eq!(field_of(&carousel(vec![titled("c"); 11], None)), "carousel.cards");
        let blank = vec![titled("a"), titled(" ")];
        assert_eq!(field_of(&carousel(blank, None)), "carousel.cards[1].title");
        let tall = Card {
            media: Some(Media {
                file_url: "https://example.com/a.png".to_owned(),
                thumbnail_url: None,
                height: Some(MediaHeight::Tall),
            }),
            ..Card::default()
        };
        let cards = vec![titled("a"), tall.clone()];
        assert_eq!(carousel(cards.clone(), None).validate(), Ok(()));
        assert_eq!(
            field_of(&carousel(cards, Some(CardWidth::Small))),
            "carousel.cards[1].media.height"
        );
        let horizontal = Rich {
            rich_card: Some(Card { orientation: Some(CardOrientation::Horizontal), ..tall }),
            ..Rich::default()
        };
        assert_eq!(field_of(&horizontal), "rich_card.thumbnail_alignment");
        let both = Rich { text: Some("t".to_owned()), ..carousel(vec![], None) };
        assert_eq!(field_of(&both), "rich_card");
    }

    fn label() -> impl Strategy<Value = String> {
        "[A-Za-z0-9 äöü]{1,25}".prop_filter("not blank", |s| !s.trim().is_empty())
    }

    fn suggestion() -> impl Strategy<Value = Suggestion> + Clone {
        let data = proptest::option::of("[A-Za-z0-9=]{1,64}");
        prop_oneof![
            (label(), data.clone())
                .prop_map(|(text, postback_data)| Suggestion::Reply { text, postback_data }),
            (label(), data.clone(), "[a-z]{1,20}").prop_map(|(text, postback_data, path)| {
                Suggestion::OpenUrl { text, postback_data, url: format!("https://ex.com/{path}") }
            }),
            (label(), data.clone(), "[1-9][0-9]{6,14}").prop_map(
                |(text, postback_data, digits)| Suggestion::Dial {
                    text,
                    postback_data,
                    phone_number: format!("+{digits}"),
                }
            ),
            (label(), data).prop_map(|(text, postback_data)| Suggestion::ShareLocation {
                text,
                postback_data
            }),
        ]
    }

    fn any_card() -> impl Strategy<Value = Card> {
        (
            proptest::option::of("[A-Za-z ]{0,199}[A-Za-z]"),
            proptest::option::of("[A-Za-z ]{0,300}[a-z]"),
            proptest::collection::vec(suggestion(), 0..=4),
        )
            .prop_map(|(title, description, suggestions)| Card {
                title: title.or_else(|| Some("T".to_owned())).filter(|_| description.is_none()),
                description,
                media: None,
                suggestions,
                ..Card::default()
            })
    }

    fn valid() -> impl Strategy<Value = Rich> {
        let chips = proptest::collection::vec(suggestion(), 0..=11);
        prop_oneof![
            ("[A-Za-z ]{0,100}[a-z]", chips.clone()).prop_map(|(text, suggestions)| Rich {
                text: Some(text),
                suggestions,
                ..Rich::default()
            }),
            (any_card(), chips.clone()).prop_map(|(card, suggestions)| Rich {
                rich_card: Some(card),
                suggestions,
                ..Rich::default()
            }),
            (proptest::collection::vec(any_card(), 2..=10), chips).prop_map(
                |(cards, suggestions)| Rich {
                    carousel: Some(Carousel { card_width: None, cards }),
                    suggestions,
                    ..Rich::default()
                }
            ),
        ]
    }

    proptest! {
        /// Content within every limit passes, survives a serde round trip unchanged, and its
        /// plain form shows every label.
        #[test]
        fn valid_content_passes_and_round_trips(rich in valid()) {
            prop_assert_eq!(rich.validate(), Ok(()));
            let back: Rich = serde_json::from_str(&serde_json::to_string(&rich).unwrap()).unwrap();
            prop_assert_eq!(&back, &rich);
            let plain = rich.plain();
            for s in &rich.suggestions {
                let shown = format!("[{}]", s.text());
                prop_assert!(plain.contains(&shown));
            }
        }

        /// One suggestion too many, or one label a character too long, is refused naming the
        /// suggestion list or that label, whatever else the content holds.
        #[test]
        fn a_breach_names_its_field(rich in valid(), which in 0usize..11, extra in 1usize..20) {
            let mut over = rich.clone();
            over.suggestions = vec![Suggestion::Reply { text: "a".into(), postback_data: None }; 11 + extra];
            prop_assert_eq!(field_of(&over), "suggestions");
            let mut long = rich;
            if !long.suggestions.is_empty() {
                let i = which % long.suggestions.len();
                let kind = long.suggestions[i].kind();
                long.suggestions[i] = match long.suggestions[i].clone() {
                    Suggestion::Reply { postback_data, .. } => Suggestion::Reply { text: "x".repeat(26), postback_data },
                    Suggestion::OpenUrl { postback_data, url, .. } => Suggestion::OpenUrl { text: "x".repeat(26), postback_data, url },
                    Suggestion::Dial { postback_data, phone_number, .. } => Suggestion::Dial { text: "x".repeat(26), postback_data, phone_number },
                    Suggestion::ShareLocation { postback_data, .. } => Suggestion::ShareLocation { text: "x".repeat(26), postback_data },
                };
                let expected = format!("suggestions[{i}].{kind}.text");
                prop_assert_eq!(field_of(&long), expected);
            }
        }
    }
}
