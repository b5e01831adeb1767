//! RCS through Google RCS Business Messaging:
//! `POST {base}/v1/phones/{E.164}/agentMessages?messageId={key}&agentId={agent}` with
//! `{"contentMessage":{...}}`: text, or rich content ([`content_message`]: suggestions, a
//! standalone rich card, a carousel) in RBM's camelCase form.
//!
//! RBM de-duplicates on `messageId`: a repeat answers 409 `ALREADY_EXISTS`, which this adapter
//! reports as a duplicate success with the same resource name. RBM has no server-side templates,
//! so a template send is rendered from [`RbmConfig::templates`].

use std::time::Duration;

use convo_domain::{
    rich::{Card, Carousel, Media, Rich, Suggestion},
    window::Content,
};
use futures::{FutureExt, future::BoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Provider, ProviderError, Rejection, Secret, SendReceipt, SendRequest, TemplateTexts, http,
};

/// Configuration of an RBM agent. Unknown keys are refused, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbmConfig {
    /// `https://rcsbusinessmessaging.googleapis.com` in production, the sandbox's URL in tests.
    pub base_url: String,
    /// The agent id.
    pub agent_id: String,
    /// OAuth access token of the agent's service account.
    pub access_token: Secret,
    /// Templates rendered by convo (RBM has none of its own).
    #[serde(default, skip_serializing_if = "TemplateTexts::is_empty")]
    pub templates: TemplateTexts,
    /// Request timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The webhook's `clientToken`: it signs the agent events RBM posts to convo
    /// (`X-Goog-Signature`, checked by `POST /v1/inbound/rbm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<Secret>,
}

/// The RBM adapter.
#[derive(Debug)]
pub struct RbmRcs {
    config: RbmConfig,
    client: reqwest::Client,
}

/// The resource name RBM gives an agent message; known in advance, so a 409 can answer it.
pub fn message_name(phone: &str, message_id: &str) -> String {
    format!("phones/{phone}/agentMessages/{message_id}")
}

impl RbmRcs {
    /// An adapter for `config`.
    pub fn new(config: RbmConfig) -> Result<Self, ProviderError> {
        let client = http::client(config.timeout_ms)?;
        Ok(Self { config, client })
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<SendReceipt, ProviderError> {
        req.validate()?;
        let content_message = match &req.content {
            Content::Text { body, .. } => json!({ "text": body }),
            // RBM has no server-side templates: the registry's rendering is sent as text.
            Content::Template { name, params } => match &params.text {
                Some(text) => json!({ "text": text.plain() }),
                None => {
                    json!({ "text": req.render_local_template(name, &self.config.templates)?.0 })
                }
            },
            Content::Rich(rich) => {
                rich.validate().map_err(|e| {
                    ProviderError::permanent(
                        Rejection::InvalidContent,
                        "INVALID_ARGUMENT",
                        e.to_string(),
                    )
                })?;
                content_message(rich)
            }
        };
        let url = format!(
            "{}/v1/phones/{}/agentMessages",
            http::trim_base(&self.config.base_url),
            req.to
        );
        let response = self
            .client
            .post(url)
            .query(&[("messageId", &req.idempotency_key), ("agentId", &self.config.agent_id)])
            .bearer_auth(self.config.access_token.expose())
            .json(&agent_message(content_message, req.traffic_type))
            .send()
            .await
            .map_err(|e| http::transport_error(&e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        if http::is_success(status) {
            let parsed: AgentMessage =
                response.json().await.map_err(|e| http::malformed_success(&e))?;
            let name = parsed.name.unwrap_or_else(|| message_name(&req.to, &req.idempotency_key));
            return Ok(SendReceipt { provider_message_id: name, duplicate: false });
        }
        let text = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ErrorEnvelope>(&text).ok().map(|e| e.error);
        let (grpc_status, message) = match error {
            Some(e) => (e.status, e.message),
            None => (String::new(), text),
        };
        if status.as_u16() == 409 || grpc_status == "ALREADY_EXISTS" {
            return Ok(SendReceipt {
                provider_message_id: message_name(&req.to, &req.idempotency_key),
                duplicate: true,
            });
        }
        Err(classify(status.as_u16(), &grpc_status, message, retry_after))
    }
}

impl Provider for RbmRcs {
    fn name(&self) -> &'static str {
        "rbm"
    }

    fn send<'a>(
        &'a self,
        req: &'a SendRequest,
    ) -> BoxFuture<'a, Result<SendReceipt, ProviderError>> {
        self.send_inner(req).boxed()
    }
}

/// RBM's `AgentMessage` body: the content and, when the send has one, its
/// `messageTrafficType`.
pub fn agent_message(
    content_message: Value,
    traffic_type: Option<convo_domain::TrafficType>,
) -> Value {
    let mut message = json!({ "contentMessage": content_message });
    if let Some(t) = traffic_type {
        message["messageTrafficType"] = json!(t.as_str());
    }
    message
}

/// RBM's `contentMessage` for rich content: `text` or `richCard` (`standaloneCard` or
/// `carouselCard`), and `suggestions`, each a `reply` or an `action` (`openUrlAction`,
/// `dialAction`, `shareLocationAction`). A suggestion without postback data posts back its label.
pub fn content_message(rich: &Rich) -> Value {
    let mut message = serde_json::Map::new();
    if let Some(text) = &rich.text {
        message.insert("text".into(), json!(text));
    }
    if let Some(rc) = &rich.rich_card {
        let mut card = serde_json::Map::new();
        let orientation = rc.orientation.unwrap_or_default();
        card.insert("cardOrientation".into(), json!(enum_name(&orientation)));
        if let Some(alignment) = &rc.thumbnail_alignment {
            card.insert("thumbnailImageAlignment".into(), json!(enum_name(alignment)));
        }
        card.insert("cardContent".into(), card_content(rc));
        message.insert("richCard".into(), json!({ "standaloneCard": card }));
    }
    if let Some(carousel) = &rich.carousel {
        let width = carousel.card_width.unwrap_or_default();
        let cards: Vec<Value> = carousel.cards.iter().map(card_content).collect();
        message.insert(
            "richCard".into(),
            json!({ "carouselCard": { "cardWidth": enum_name(&width), "cardContents": cards } }),
        );
    }
    if !rich.suggestions.is_empty() {
        message.insert("suggestions".into(), suggestions(&rich.suggestions));
    }
    Value::Object(message)
}

/// The wire name of one of the domain's upper-case enums (`VERTICAL`, `MEDIUM`, ...).
fn enum_name<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn card_content(card: &Card) -> Value {
    let mut content = serde_json::Map::new();
    if let Some(title) = &card.title {
        content.insert("title".into(), json!(title));
    }
    if let Some(description) = &card.description {
        content.insert("description".into(), json!(description));
    }
    if let Some(media) = &card.media {
        let mut info = serde_json::Map::new();
        info.insert("fileUrl".into(), json!(media.file_url));
        if let Some(thumbnail) = &media.thumbnail_url {
            info.insert("thumbnailUrl".into(), json!(thumbnail));
        }
        info.insert("forceRefresh".into(), json!(false));
        let height = media.height.unwrap_or_default();
        content
            .insert("media".into(), json!({ "height": enum_name(&height), "contentInfo": info }));
    }
    if !card.suggestions.is_empty() {
        content.insert("suggestions".into(), suggestions(&card.suggestions));
    }
    Value::Object(content)
}

fn suggestions(list: &[Suggestion]) -> Value {
    let one = |s: &Suggestion| {
        let postback = s.postback_data().unwrap_or(s.text());
        let base = json!({ "text": s.text(), "postbackData": postback });
        let with = |key: &str, action: Value| {
            let mut action_obj = base.clone();
            action_obj[key] = action;
            json!({ "action": action_obj })
        };
        match s {
            Suggestion::Reply { .. } => json!({ "reply": base }),
            Suggestion::OpenUrl { url, .. } => with("openUrlAction", json!({ "url": url })),
            Suggestion::Dial { phone_number, .. } => {
                with("dialAction", json!({ "phoneNumber": phone_number }))
            }
            Suggestion::ShareLocation { .. } => with("shareLocationAction", json!({})),
        }
    };
    Value::Array(list.iter().map(one).collect())
}

/// Reads RBM's `contentMessage` back into rich content: the inverse of [`content_message`] (a
/// postback equal to the label reads as none). `None` for a plain text message; an error names
/// the first field RBM's reference does not allow.
pub fn parse_content_message(message: &Value) -> Result<Option<Rich>, String> {
    let suggestions_of = |v: &Value, at: &str| -> Result<Vec<Suggestion>, String> {
        v.as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, s)| parse_suggestion(s, &format!("{at}[{i}]")))
            .collect()
    };
    let suggestions = suggestions_of(&message["suggestions"], "contentMessage.suggestions")?;
    let rich_card = &message["richCard"];
    if rich_card.is_null() && suggestions.is_empty() {
        return Ok(None);
    }
    let mut rich =
        Rich { text: message["text"].as_str().map(str::to_owned), suggestions, ..Rich::default() };
    let card_of = |v: &Value, at: &str| -> Result<Card, String> {
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let media = match &v["media"] {
            Value::Null => None,
            m => {
                let info = &m["contentInfo"];
                let file_url = info["fileUrl"]
                    .as_str()
                    .ok_or_else(|| format!("{at}.media.contentInfo.fileUrl is required"))?
                    .to_owned();
                let height = serde_json::from_value(m["height"].clone())
                    .map_err(|_| format!("{at}.media.height is not SHORT, MEDIUM or TALL"))?;
                Some(Media {
                    file_url,
                    thumbnail_url: info["thumbnailUrl"].as_str().map(str::to_owned),
                    height: Some(height),
                })
            }
        };
        Ok(Card {
            title: text("title"),
            description: text("description"),
            media,
            suggestions: suggestions_of(&v["suggestions"], &format!("{at}.suggestions"))?,
            ..Card::default()
        })
    };
    if let Some(standalone) = rich_card.get("standaloneCard") {
        let orientation =
            serde_json::from_value(standalone["cardOrientation"].clone()).map_err(|_| {
                "standaloneCard.cardOrientation is not VERTICAL or HORIZONTAL".to_owned()
            })?;
        let thumbnail_alignment = match &standalone["thumbnailImageAlignment"] {
            Value::Null => None,
            v => Some(serde_json::from_value(v.clone()).map_err(|_| {
                "standaloneCard.thumbnailImageAlignment is not LEFT or RIGHT".to_owned()
            })?),
        };
        let card = card_of(&standalone["cardContent"], "standaloneCard.cardContent")?;
        rich.rich_card = Some(Card { orientation: Some(orientation), thumbnail_alignment, ..card });
    } else if let Some(carousel) = rich_card.get("carouselCard") {
        let card_width = serde_json::from_value(carousel["cardWidth"].clone())
            .map_err(|_| "carouselCard.cardWidth is not SMALL or MEDIUM".to_owned())?;
        let cards = carousel["cardContents"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| card_of(c, &format!("carouselCard.cardContents[{i}]")))
            .collect::<Result<_, _>>()?;
        rich.carousel = Some(Carousel { card_width: Some(card_width), cards });
    } else if !rich_card.is_null() {
        return Err("richCard needs a standaloneCard or a carouselCard".to_owned());
    }
    Ok(Some(rich))
}

fn parse_suggestion(s: &Value, at: &str) -> Result<Suggestion, String> {
    let (body, is_reply) = match (s.get("reply"), s.get("action")) {
        (Some(r), None) => (r, true),
        (None, Some(a)) => (a, false),
        _ => return Err(format!("{at} needs exactly one of reply and action")),
    };
    let text = body["text"].as_str().ok_or_else(|| format!("{at}.text is required"))?.to_owned();
    let postback_data = body["postbackData"].as_str().filter(|p| *p != text).map(str::to_owned);
    if is_reply {
        return Ok(Suggestion::Reply { text, postback_data });
    }
    if let Some(url) = body["openUrlAction"]["url"].as_str() {
        return Ok(Suggestion::OpenUrl { text, postback_data, url: url.to_owned() });
    }
    if let Some(phone_number) = body["dialAction"]["phoneNumber"].as_str() {
        return Ok(Suggestion::Dial { text, postback_data, phone_number: phone_number.to_owned() });
    }
    if body.get("shareLocationAction").is_some() {
        return Ok(Suggestion::ShareLocation { text, postback_data });
    }
    Err(format!("{at}.action needs openUrlAction, dialAction or shareLocationAction"))
}

#[derive(Deserialize)]
struct AgentMessage {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// Classifies a Google API error by its canonical status name, falling back to the HTTP status.
/// (409 `ALREADY_EXISTS` never gets here: it is a duplicate success.)
pub fn classify(
    status: u16,
    grpc_status: &str,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let code = if grpc_status.is_empty() { status.to_string() } else { grpc_status.to_owned() };
    let permanent = |kind| ProviderError::permanent(kind, code.clone(), message.clone());
    match grpc_status {
        "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" | "ABORTED" => {
            ProviderError::Transient { code, message, retry_after }
        }
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => permanent(Rejection::Auth),
        // The phone is not RCS-capable (or not reachable by this agent).
        "NOT_FOUND" => permanent(Rejection::NotCapable),
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => permanent(Rejection::InvalidContent),
        _ if status == 404 => permanent(Rejection::NotCapable),
        _ => http::by_status(status, code, message, retry_after),
    }
}

#[cfg(test)]
mod tests {
    use convo_domain::rich::{CardOrientation, CardWidth, MediaHeight, ThumbnailAlignment};

    use super::*;

    #[test]
    fn the_agent_message_carries_the_traffic_type_rbm_names() {
        let content = json!({"text": "Your code is 1234"});
        let with = agent_message(content.clone(), Some(convo_domain::TrafficType::Authentication));
        assert_eq!(
            with,
            json!({"contentMessage": content, "messageTrafficType": "AUTHENTICATION"})
        );
        let without = agent_message(content.clone(), None);
        assert_eq!(without, json!({"contentMessage": content}));
    }

    fn card(title: &str, with_media: bool) -> Card {
        Card {
            title: Some(title.to_owned()),
            description: Some(format!("About {title}")),
            media: with_media.then(|| Media {
                file_url: format!("https://cdn.example.com/{title}.png"),
                thumbnail_url: None,
                height: Some(MediaHeight::Short),
            }),
            suggestions: vec![Suggestion::OpenUrl {
                text: "Open".to_owned(),
                postback_data: Some(format!("open_{title}")),
                url: format!("https://example.com/{title}"),
            }],
            ..Card::default()
        }
    }

    /// The RCS conversation API's example (text with two replies) in RBM's form: camelCase,
    /// `reply` with `postbackData`.
    #[test]
    fn text_with_replies_is_rbm_suggestions() {
        let rich = Rich {
            text: Some("Anything else?".to_owned()),
            suggestions: vec![
                Suggestion::Reply {
                    text: "All good".to_owned(),
                    postback_data: Some("YWNr".to_owned()),
                },
                Suggestion::Dial {
                    text: "Call us".to_owned(),
                    postback_data: None,
                    phone_number: "+4930123456".to_owned(),
                },
                Suggestion::ShareLocation {
                    text: "Share location".to_owned(),
                    postback_data: None,
                },
            ],
            ..Rich::default()
        };
        assert_eq!(
            content_message(&rich),
            json!({
                "text": "Anything else?",
                "suggestions": [
                    { "reply": { "text": "All good", "postbackData": "YWNr" } },
                    { "action": { "text": "Call us", "postbackData": "Call us",
                                  "dialAction": { "phoneNumber": "+4930123456" } } },
                    { "action": { "text": "Share location", "postbackData": "Share location",
                                  "shareLocationAction": {} } },
                ],
            })
        );
        assert_eq!(parse_content_message(&content_message(&rich)), Ok(Some(rich)));
    }

    /// A horizontal standalone card and a carousel of small cards, in RBM's `richCard` form, and
    /// read back unchanged.
    #[test]
    fn cards_and_carousels_are_rbm_rich_cards() {
        let standalone = Rich {
            rich_card: Some(Card {
                orientation: Some(CardOrientation::Horizontal),
                thumbnail_alignment: Some(ThumbnailAlignment::Right),
                ..card("boots", true)
            }),
            ..Rich::default()
        };
        let wire = content_message(&standalone);
        let sc = &wire["richCard"]["standaloneCard"];
        assert_eq!(sc["cardOrientation"], "HORIZONTAL");
        assert_eq!(sc["thumbnailImageAlignment"], "RIGHT");
        assert_eq!(sc["cardContent"]["media"]["height"], "SHORT");
        assert_eq!(
            sc["cardContent"]["media"]["contentInfo"]["fileUrl"],
            "https://cdn.example.com/boots.png"
        );
        assert_eq!(
            sc["cardContent"]["suggestions"][0]["action"]["openUrlAction"]["url"],
            "https://example.com/boots"
        );
        assert_eq!(parse_content_message(&wire), Ok(Some(standalone)));
        let carousel = Rich {
            carousel: Some(Carousel {
                card_width: Some(CardWidth::Small),
                cards: vec![card("a", true), card("b", false)],
            }),
            suggestions: vec![Suggestion::Reply { text: "More".to_owned(), postback_data: None }],
            ..Rich::default()
        };
        let wire = content_message(&carousel);
        assert_eq!(wire["richCard"]["carouselCard"]["cardWidth"], "SMALL");
        assert_eq!(
            wire["richCard"]["carouselCard"]["cardContents"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(parse_content_message(&wire), Ok(Some(carousel)));
        assert_eq!(parse_content_message(&json!({ "text": "plain" })), Ok(None));
        assert!(
            parse_content_message(&json!({ "suggestions": [{ "action": { "text": "x" } }] }))
                .unwrap_err()
                .contains("contentMessage.suggestions[0]")
        );
    }

    #[test]
    fn classification_table() {
        let table = [
            (404, "NOT_FOUND", "RecipientNotCapable"),
            (404, "", "RecipientNotCapable"),
            (429, "RESOURCE_EXHAUSTED", "ProviderTransient"),
            (503, "UNAVAILABLE", "ProviderTransient"),
            (500, "INTERNAL", "ProviderTransient"),
            (401, "UNAUTHENTICATED", "ProviderAuth"),
            (403, "PERMISSION_DENIED", "ProviderAuth"),
            (400, "INVALID_ARGUMENT", "InvalidContent"),
            (400, "", "ProviderRejected"),
            (502, "", "ProviderTransient"),
        ];
        for (status, grpc, expected) in table {
            let err = classify(status, grpc, "m".into(), None);
            assert_eq!(err.error_type(), expected, "{status} {grpc}");
        }
    }
}
