//! The workspace's registry of message templates: one per channel and name, with its language,
//! category, approval status, body and the variables the body declares, and its other
//! components (header, footer, subject, buttons, carousel cards) with their placeholders.
//!
//! The store keeps what it is given; the rules of a well-formed template (placeholder syntax,
//! declared variables matching the body) belong to the API's application layer, which every
//! writer goes through.

use convo_domain::{
    Channel, Timestamp,
    window::{TemplateButtonParam, TemplateParam, TemplateParams, TemplateText},
};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Result, Store, StoreError,
    error::missing_parent,
    from_json, json_param, now_ms, timestamp,
    workspaces::{parse_channel, validate_id},
};

/// A template to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTemplate {
    /// Its name, unique in the workspace.
    pub name: String,
    /// The channel it is for.
    pub channel: Channel,
    /// Its language (`en_US`, `pt-BR`).
    pub language: String,
    /// The text, with `{{1}}` or `{{name}}` placeholders.
    pub body: String,
    /// The variables the body declares, in order.
    pub variables: Vec<String>,
    /// What the provider files it under.
    #[serde(default)]
    pub category: TemplateCategory,
    /// Whether the provider approved it; only approved templates are sent.
    #[serde(default)]
    pub status: TemplateStatus,
    /// The components besides the body.
    #[serde(default)]
    pub components: TemplateComponents,
}

/// A template's category, as WhatsApp files templates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateCategory {
    /// Promotions and offers.
    Marketing,
    /// Updates about something the contact did (an order, an appointment).
    #[default]
    Utility,
    /// One-time codes.
    Authentication,
}

/// A template's approval status at the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    /// Approved: it can be sent.
    #[default]
    Approved,
    /// Waiting for review.
    Pending,
    /// Refused by the provider.
    Rejected,
}

impl TemplateCategory {
    /// The stored name (`UTILITY`).
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateCategory::Marketing => "MARKETING",
            TemplateCategory::Utility => "UTILITY",
            TemplateCategory::Authentication => "AUTHENTICATION",
        }
    }
}

impl TemplateStatus {
    /// The stored name (`APPROVED`).
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::Rejected => "REJECTED",
        }
    }
}

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateButtonKind {
    /// A fixed reply the contact taps.
    QuickReply,
    /// Opens a URL; its URL may end in one placeholder (`https://shop.example/track/{{1}}`).
    Url,
    /// Dials a number.
    PhoneNumber,
}

/// One button of a template or a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateButton {
    /// What it does.
    pub kind: TemplateButtonKind,
    /// Its label.
    pub text: String,
    /// The URL of a `url` button, with at most one placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The number of a `phone_number` button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// One card of a carousel template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateCard {
    /// The card's header: its image, whose URL may be a placeholder (`{{1}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The card's text, with placeholders.
    pub body: String,
    /// The card's buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateButton>,
}

/// A template's components besides the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateComponents {
    /// A header line, with at most one placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A footer line (no placeholders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The subject line of an e-mail template; its placeholders are the body's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateButton>,
    /// Carousel cards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<TemplateCard>,
}

/// The placeholder names of `text`, in order of first use (`{{ 1 }}` reads as `1`); text that
/// is not a well-formed placeholder is left alone.
pub fn placeholder_names(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty() && !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    found
}

/// `text` filled with one component's `values`: by name when every placeholder has a value of
/// its name, else by position (a wire format that numbers each component's parameters from 1,
/// as WhatsApp's does, for a header whose placeholder is `{{2}}`).
fn fill_component(text: &str, values: &[TemplateParam]) -> String {
    let names = placeholder_names(text);
    if names.iter().all(|n| values.iter().any(|v| &v.name == n)) {
        return fill(text, values);
    }
    let by_position: Vec<TemplateParam> = names
        .into_iter()
        .zip(values)
        .map(|(name, v)| TemplateParam { name, value: v.value.clone() })
        .collect();
    fill(text, &by_position)
}

/// `text` with each `{{name}}` replaced by its value; a placeholder without one stays as is.
pub fn fill(text: &str, values: &[TemplateParam]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|p| p.name == name) {
            Some(p) => out.push_str(&p.value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn button_text(button: &TemplateButton, values: &[TemplateButtonParam], index: usize) -> String {
    let target = match button.kind {
        TemplateButtonKind::Url => button.url.as_deref().map(|url| {
            let named = placeholder_names(url);
            let value = values
                .iter()
                .find(|b| b.index as usize == index)
                .or_else(|| values.iter().find(|b| named.contains(&b.name)));
            let filled: Vec<TemplateParam> = match (value, named.first()) {
                (Some(b), Some(name)) => {
                    vec![TemplateParam { name: name.clone(), value: b.value.clone() }]
                }
                _ => Vec::new(),
            };
            fill(url, &filled)
        }),
        TemplateButtonKind::PhoneNumber => button.phone_number.clone(),
        TemplateButtonKind::QuickReply => None,
    };
    match target {
        Some(t) => format!("{}: {t}", button.text),
        None => button.text.clone(),
    }
}

impl Template {
    /// What the contact sees when the template is sent with `params`.
    pub fn render(&self, params: &TemplateParams) -> TemplateText {
        let c = &self.components;
        let buttons = |list: &[TemplateButton], values: &[TemplateButtonParam]| {
            list.iter().enumerate().map(|(i, b)| button_text(b, values, i)).collect()
        };
        let cards = c
            .cards
            .iter()
            .enumerate()
            .map(|(i, card)| {
                let values = params.cards.get(i).cloned().unwrap_or_default();
                TemplateText {
                    header: card.header.as_deref().map(|h| fill_component(h, &values.header)),
                    body: fill_component(&card.body, &values.body),
                    buttons: buttons(&card.buttons, &values.buttons),
                    ..TemplateText::default()
                }
            })
            .collect();
        TemplateText {
            header: c.header.as_deref().map(|h| fill_component(h, &params.header)),
            body: fill_component(&self.body, &params.body),
            footer: c.footer.clone(),
            subject: c.subject.as_deref().map(|s| fill(s, &params.body)),
            buttons: buttons(&c.buttons, &params.buttons),
            cards,
        }
    }
}

/// A registered template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// The workspace.
    pub workspace_id: String,
    /// Its name.
    pub name: String,
    /// The channel it is for.
    pub channel: Channel,
    /// Its language.
    pub language: String,
    /// The text.
    pub body: String,
    /// The declared variables, in order.
    pub variables: Vec<String>,
    /// What the provider files it under.
    pub category: TemplateCategory,
    /// Whether the provider approved it.
    pub status: TemplateStatus,
    /// The components besides the body.
    pub components: TemplateComponents,
    /// When it was registered.
    pub created_at: Timestamp,
}

impl Template {
    fn same_as(&self, new: &NewTemplate) -> bool {
        self.channel == new.channel
            && self.language == new.language
            && self.body == new.body
            && self.variables == new.variables
            && self.category == new.category
            && self.status == new.status
            && self.components == new.components
    }
}

const COLUMNS: &str = "workspace_id, name, channel, language, body, variables, category, status, \
                       components, created_at";

fn parse_category(s: &str) -> Result<TemplateCategory> {
    from_json(&format!("{s:?}"), "template category")
}

fn parse_status(s: &str) -> Result<TemplateStatus> {
    from_json(&format!("{s:?}"), "template status")
}

fn template_from_row(row: &AnyRow) -> Result<Template> {
    Ok(Template {
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        channel: parse_channel(&row.try_get::<String, _>("channel")?)?,
        language: row.try_get("language")?,
        body: row.try_get("body")?,
        variables: from_json(&row.try_get::<String, _>("variables")?, "template variables")?,
        category: parse_category(&row.try_get::<String, _>("category")?)?,
        status: parse_status(&row.try_get::<String, _>("status")?)?,
        components: from_json(&row.try_get::<String, _>("components")?, "template components")?,
        created_at: timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Registers a template. Registering the same template again returns the stored one
    /// (`false`: not created); another template under a name its channel already has is a
    /// [`StoreError::Conflict`] (the same name on another channel is another template).
    pub async fn create_template(
        &self,
        workspace_id: &str,
        template: &NewTemplate,
    ) -> Result<(Template, bool)> {
        validate_id("workspace_id", workspace_id)?;
        if template.name.trim().is_empty() || template.name.len() > 512 {
            return Err(StoreError::validation("name", "must be 1 to 512 bytes"));
        }
        let inserted = sqlx::query(
            "INSERT INTO templates
                (workspace_id, name, channel, language, body, variables, category, status,
                 components, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (workspace_id, channel, name) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(&template.name)
        .bind(template.channel.as_str())
        .bind(&template.language)
        .bind(&template.body)
        .bind(json_param(&template.variables, "variables")?)
        .bind(template.category.as_str())
        .bind(template.status.as_str())
        .bind(json_param(&template.components, "components")?)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(missing_parent("workspace", workspace_id))?
        .rows_affected();
        let stored = self.template(workspace_id, template.channel, &template.name).await?;
        if inserted == 0 && !stored.same_as(template) {
            return Err(StoreError::conflict(format!(
                "a different {} template named {:?} already exists",
                template.channel, template.name
            )));
        }
        Ok((stored, inserted == 1))
    }

    /// The workspace's template `name` on `channel`.
    pub async fn template(
        &self,
        workspace_id: &str,
        channel: Channel,
        name: &str,
    ) -> Result<Template> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 AND channel = $2 AND name = $3"
        ))
        .bind(workspace_id)
        .bind(channel.as_str())
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("template", name))?;
        template_from_row(&row)
    }

    /// The workspace's templates named `name`, one per channel that has it, by channel.
    pub async fn templates_named(&self, workspace_id: &str, name: &str) -> Result<Vec<Template>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 AND name = $2 ORDER BY channel"
        ))
        .bind(workspace_id)
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// The workspace's templates, by name, then channel.
    pub async fn templates(&self, workspace_id: &str) -> Result<Vec<Template>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 ORDER BY name, channel"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// Removes the workspace's template `name` on `channel`; [`StoreError::NotFound`] if there
    /// is none.
    pub async fn delete_template(
        &self,
        workspace_id: &str,
        channel: Channel,
        name: &str,
    ) -> Result<()> {
        let deleted = sqlx::query(
            "DELETE FROM templates WHERE workspace_id = $1 AND channel = $2 AND name = $3",
        )
        .bind(workspace_id)
        .bind(channel.as_str())
        .bind(name)
        .execute(self.pool())
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(StoreError::not_found("template", name));
        }
        Ok(())
    }
}
