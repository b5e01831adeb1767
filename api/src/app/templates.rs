//! The workspace's template registry: `POST/GET /v1/templates`, `GET/DELETE
//! /v1/templates/{name}`.
//!
//! A template is a name (unique in the workspace), a channel, a language, a body with
//! placeholders, and the variables the body declares. Placeholders are `{{1}}`, `{{2}}`, ...
//! (positional, numbered 1 to n as Meta requires) or `{{name}}` (named), not both in one body;
//! every placeholder must be declared and every declared variable used.

use std::collections::BTreeSet;

use convo_domain::{
    Channel,
    window::{Content, TemplateButtonParam, TemplateCardParams, TemplateParam, TemplateParams},
};
use convo_store::{
    NewTemplate, StoreError, Template, TemplateButton, TemplateButtonKind, TemplateCard,
    TemplateComponents, TemplateStatus, placeholder_names,
};
use serde_json::{Map, Value};

use super::{
    App, WorkspaceId, required_text, rfc3339, template_name,
    types::{CreateTemplateRequest, List, TemplateOut, TemplateRef},
    workspace::WorkspaceAdmin,
};
use crate::error::ApiError;

/// The longest template body.
const MAX_BODY: usize = 4_096;
/// The most variables a template may declare.
const MAX_VARIABLES: usize = 100;

fn template_out(t: Template) -> TemplateOut {
    TemplateOut {
        name: t.name,
        channel: t.channel,
        language: t.language,
        body: t.body,
        variables: t.variables,
        category: t.category,
        status: t.status,
        components: t.components,
        created_at: rfc3339(t.created_at),
    }
}

/// A language tag as the networks spell them: `en`, `en_US`, `pt-BR`, `zh_Hant`.
fn language(value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    let ok = (2..=15).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !ok {
        return Err(ApiError::validation(
            "language",
            "must be 2 to 15 letters, digits, _ and - (en, en_US, pt-BR)",
        ));
    }
    Ok(value.to_owned())
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The placeholders of `body`, in order of first use (`{{ 1 }}` reads as `1`).
pub(crate) fn placeholders(body: &str) -> Result<Vec<String>, ApiError> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ApiError::validation("body", "has a {{ without its closing }}"))?;
        let name = after[..end].trim();
        if !is_variable_name(name) {
            return Err(ApiError::validation(
                "body",
                format!("{{{{{name}}}}} is not a placeholder: use {{{{1}}}} or {{{{name}}}}"),
            ));
        }
        if !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    Ok(found)
}

/// The declared variables, checked against the body's placeholders.
fn variables(body: &str, declared: &[String]) -> Result<Vec<String>, ApiError> {
    if declared.len() > MAX_VARIABLES {
        return Err(ApiError::validation(
            "variables",
            format!("at most {MAX_VARIABLES} variables"),
        ));
    }
    let used = placeholders(body)?;
    let mut seen = BTreeSet::new();
    for (i, v) in declared.iter().enumerate() {
        let field = format!("variables[{i}]");
        if !is_variable_name(v) {
            return Err(ApiError::validation(
                field,
                "must be 1 to 64 letters, digits and _ (1, 2, ... or a name)",
            ));
        }
        if !seen.insert(v.as_str()) {
            return Err(ApiError::validation(field, format!("{v:?} is declared twice")));
        }
        if !used.contains(v) {
            return Err(ApiError::validation(field, format!("{{{{{v}}}}} is not used in body")));
        }
    }
    if let Some(undeclared) = used.iter().find(|u| !seen.contains(u.as_str())) {
        return Err(ApiError::validation(
            "body",
            format!("uses {{{{{undeclared}}}}}, which variables does not declare"),
        ));
    }
    let positional = |v: &String| v.bytes().all(|b| b.is_ascii_digit());
    let numbered = declared.iter().filter(|v| positional(v)).count();
    if numbered != 0 && numbered != declared.len() {
        return Err(ApiError::validation(
            "variables",
            "mixes positional ({{1}}) and named ({{name}}) variables",
        ));
    }
    if numbered != 0 {
        let mut numbers: Vec<u64> = declared.iter().filter_map(|v| v.parse().ok()).collect();
        numbers.sort_unstable();
        if numbers.iter().zip(1..).any(|(n, expected)| *n != expected) {
            return Err(ApiError::validation(
                "variables",
                "positional variables must be numbered 1 to n without gaps",
            ));
        }
    }
    Ok(declared.to_vec())
}

/// The longest header, footer, subject, button label or URL.
const MAX_LINE: usize = 2_000;
/// The most buttons a template or card may have.
const MAX_BUTTONS: usize = 10;
/// The most cards a carousel may have.
const MAX_CARDS: usize = 10;
/// The longest value of a placeholder.
const MAX_VALUE: usize = 1_024;

fn line(field: &str, value: &Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => Ok(Some(required_text(field, v, MAX_LINE)?)),
    }
}

/// At most one well-formed placeholder in `text`.
fn one_placeholder(field: &str, text: &str) -> Result<(), ApiError> {
    if placeholders(text).map_err(|e| super::rename_field(e, field))?.len() > 1 {
        return Err(ApiError::validation(field, "may have at most one placeholder"));
    }
    Ok(())
}

fn buttons(field: &str, list: &[TemplateButton]) -> Result<(), ApiError> {
    if list.len() > MAX_BUTTONS {
        return Err(ApiError::validation(field, format!("at most {MAX_BUTTONS} buttons")));
    }
    for (i, b) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        required_text(&format!("{f}.text"), &b.text, 25)?;
        match b.kind {
            TemplateButtonKind::Url => {
                let url = b.url.as_deref().ok_or_else(|| {
                    ApiError::validation(format!("{f}.url"), "a url button needs a url")
                })?;
                required_text(&format!("{f}.url"), url, MAX_LINE)?;
                one_placeholder(&format!("{f}.url"), url)?;
            }
            TemplateButtonKind::PhoneNumber => {
                let number = b.phone_number.as_deref().unwrap_or_default();
                if !super::is_address(number) {
                    return Err(ApiError::validation(
                        format!("{f}.phone_number"),
                        "a phone_number button needs an E.164 number",
                    ));
                }
            }
            TemplateButtonKind::QuickReply => {}
        }
    }
    Ok(())
}

/// The components besides the body, checked: a header and button URLs with at most one
/// placeholder, a footer with none, a subject whose placeholders are the body's.
fn components(
    req: &CreateTemplateRequest,
    variables: &[String],
) -> Result<TemplateComponents, ApiError> {
    let header = line("header", &req.header)?;
    if let Some(h) = &header {
        one_placeholder("header", h)?;
    }
    let footer = line("footer", &req.footer)?;
    if footer.as_deref().is_some_and(|f| !placeholder_names(f).is_empty()) {
        return Err(ApiError::validation("footer", "cannot have placeholders"));
    }
    let subject = line("subject", &req.subject)?;
    if let Some(s) = &subject {
        for p in placeholders(s).map_err(|e| super::rename_field(e, "subject"))? {
            if !variables.contains(&p) {
                return Err(ApiError::validation(
                    "subject",
                    format!("uses {{{{{p}}}}}, which variables does not declare"),
                ));
            }
        }
    }
    buttons("buttons", &req.buttons)?;
    if req.cards.len() > MAX_CARDS {
        return Err(ApiError::validation("cards", format!("at most {MAX_CARDS} cards")));
    }
    for (i, card) in req.cards.iter().enumerate() {
        let f = format!("cards[{i}]");
        required_text(&format!("{f}.body"), &card.body, MAX_BODY)?;
        placeholders(&card.body).map_err(|e| super::rename_field(e, &format!("{f}.body")))?;
        if let Some(h) = &card.header {
            one_placeholder(&format!("{f}.header"), h)?;
        }
        buttons(&format!("{f}.buttons"), &card.buttons)?;
    }
    Ok(TemplateComponents {
        header,
        footer,
        subject,
        buttons: req.buttons.clone(),
        cards: req.cards.clone(),
    })
}

/// A placeholder value: a string of at most [`MAX_VALUE`] characters.
fn value(field: &str, v: Option<&Value>) -> Result<String, ApiError> {
    match v {
        None => Err(ApiError::validation(field, "is missing")),
        Some(Value::String(s)) if s.chars().count() <= MAX_VALUE => Ok(s.clone()),
        Some(Value::String(_)) => {
            Err(ApiError::validation(field, format!("must be at most {MAX_VALUE} characters")))
        }
        Some(other) => {
            Err(ApiError::validation(field, format!("must be a string, not {}", json_kind(other))))
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The placeholders of one list of buttons: `(index, name)` of each URL button that has one.
fn button_slots(list: &[TemplateButton]) -> Vec<(u32, String)> {
    list.iter()
        .enumerate()
        .filter(|(_, b)| b.kind == TemplateButtonKind::Url)
        .filter_map(|(i, b)| {
            let name = placeholder_names(b.url.as_deref()?).into_iter().next()?;
            Some((u32::try_from(i).unwrap_or(u32::MAX), name))
        })
        .collect()
}

fn header_slot(header: Option<&str>) -> Option<String> {
    header.and_then(|h| placeholder_names(h).into_iter().next())
}

/// An array of values for `names`, one per placeholder in order.
fn list(
    field: &str,
    given: Option<&Value>,
    names: &[String],
) -> Result<Vec<TemplateParam>, ApiError> {
    let items: &[Value] = match given {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ApiError::validation(
                field,
                format!("must be an array of strings, not {}", json_kind(other)),
            ));
        }
    };
    if items.len() > names.len() {
        return Err(ApiError::validation(
            format!("{field}[{}]", names.len()),
            format!("is extra: this part of the template has {} placeholders", names.len()),
        ));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Ok(TemplateParam {
                name: name.clone(),
                value: value(&format!("{field}[{i}]"), items.get(i))?,
            })
        })
        .collect()
}

fn single(
    field: &str,
    given: Option<&Value>,
    slot: Option<&String>,
) -> Result<Vec<TemplateParam>, ApiError> {
    match (slot, given) {
        (Some(name), v) => Ok(vec![TemplateParam { name: name.clone(), value: value(field, v)? }]),
        (None, None | Some(Value::Null)) => Ok(Vec::new()),
        (None, Some(_)) => {
            Err(ApiError::validation(field, "is extra: this header has no placeholder"))
        }
    }
}

fn structured_buttons(
    field: &str,
    given: Option<&Value>,
    list_of: &[TemplateButton],
) -> Result<Vec<TemplateButtonParam>, ApiError> {
    let slots = button_slots(list_of);
    let names: Vec<String> = slots.iter().map(|(_, n)| n.clone()).collect();
    let values = list(field, given, &names)?;
    Ok(slots
        .into_iter()
        .zip(values)
        .map(|((index, name), p)| TemplateButtonParam {
            index,
            sub_type: "url".to_owned(),
            name,
            value: p.value,
        })
        .collect())
}

fn card_params(
    field: &str,
    given: Option<&Value>,
    card: &TemplateCard,
) -> Result<TemplateCardParams, ApiError> {
    let empty = Map::new();
    let obj = match given {
        Some(Value::Object(o)) => o,
        None => &empty,
        Some(other) => {
            return Err(ApiError::validation(
                field,
                format!("must be an object {{body, header, buttons}}, not {}", json_kind(other)),
            ));
        }
    };
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "body" | "header" | "buttons")) {
        return Err(ApiError::validation(format!("{field}.{k}"), "is not a part of a card"));
    }
    Ok(TemplateCardParams {
        header: single(
            &format!("{field}.header"),
            obj.get("header"),
            header_slot(card.header.as_deref()).as_ref(),
        )?,
        body: list(&format!("{field}.body"), obj.get("body"), &placeholder_names(&card.body))?,
        buttons: structured_buttons(
            &format!("{field}.buttons"),
            obj.get("buttons"),
            &card.buttons,
        )?,
    })
}

const STRUCTURED_KEYS: [&str; 4] = ["body", "header", "buttons", "cards"];

/// The values of `variables` for the registered template `t`, checked: every placeholder has
/// a string value and nothing else is given. `field` is the template reference's field.
pub(crate) fn resolve(
    field: &str,
    t: &Template,
    variables: &Value,
) -> Result<TemplateParams, ApiError> {
    let vfield = format!("{field}.variables");
    let empty = Map::new();
    let given = match variables {
        Value::Null => &empty,
        Value::Object(o) => o,
        other => {
            return Err(ApiError::validation(
                vfield,
                format!("must be an object, not {}", json_kind(other)),
            ));
        }
    };
    let c = &t.components;
    let header = header_slot(c.header.as_deref());
    let buttons = button_slots(&c.buttons);
    let mut flat_names: Vec<String> = t.variables.clone();
    for name in header.iter().chain(buttons.iter().map(|(_, n)| n)) {
        if !flat_names.contains(name) {
            flat_names.push(name.clone());
        }
    }
    let structured = !given.is_empty()
        && given.keys().all(|k| STRUCTURED_KEYS.contains(&k.as_str()))
        && !flat_names.iter().any(|n| STRUCTURED_KEYS.contains(&n.as_str()));
    let mut params = if structured {
        if !c.cards.is_empty() || given.contains_key("cards") {
            let cards = match given.get("cards") {
                None => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(other) => {
                    return Err(ApiError::validation(
                        format!("{vfield}.cards"),
                        format!("must be an array, not {}", json_kind(other)),
                    ));
                }
            };
            if cards.len() != c.cards.len() {
                let at = cards.len().min(c.cards.len());
                let what = if cards.len() > c.cards.len() { "is extra" } else { "is missing" };
                return Err(ApiError::validation(
                    format!("{vfield}.cards[{at}]"),
                    format!("{what}: the template has {} cards", c.cards.len()),
                ));
            }
        }
        let cards = c
            .cards
            .iter()
            .enumerate()
            .map(|(i, card)| {
                let f = format!("{vfield}.cards[{i}]");
                card_params(&f, given.get("cards").and_then(|v| v.get(i)), card)
            })
            .collect::<Result<Vec<_>, _>>()?;
        TemplateParams {
            header: single(&format!("{vfield}.header"), given.get("header"), header.as_ref())?,
            body: list(&format!("{vfield}.body"), given.get("body"), &t.variables)?,
            buttons: structured_buttons(
                &format!("{vfield}.buttons"),
                given.get("buttons"),
                &c.buttons,
            )?,
            cards,
            ..TemplateParams::default()
        }
    } else {
        if !c.cards.is_empty() {
            return Err(ApiError::validation(
                vfield,
                "a carousel template takes the structured shape {\"body\": [...], \"cards\": [...]}",
            ));
        }
        if let Some(extra) = given.keys().find(|k| !flat_names.contains(k)) {
            let known =
                if flat_names.is_empty() { "none".to_owned() } else { flat_names.join(", ") };
            return Err(ApiError::validation(
                format!("{vfield}.{extra}"),
                format!("is not a placeholder of template {:?} (it has {known})", t.name),
            ));
        }
        let mut values = Vec::new();
        for name in &flat_names {
            values.push(TemplateParam {
                name: name.clone(),
                value: value(&format!("{vfield}.{name}"), given.get(name))?,
            });
        }
        let pick = |name: &String| values.iter().find(|p| &p.name == name).cloned();
        TemplateParams {
            header: header.iter().filter_map(pick).collect(),
            body: t.variables.iter().filter_map(pick).collect(),
            buttons: buttons
                .iter()
                .filter_map(|(index, name)| {
                    Some(TemplateButtonParam {
                        index: *index,
                        sub_type: "url".to_owned(),
                        name: name.clone(),
                        value: pick(name)?.value,
                    })
                })
                .collect(),
            ..TemplateParams::default()
        }
    };
    params.language = Some(t.language.clone());
    params.text = Some(t.render(&params));
    Ok(params)
}

/// The values of a template the registry does not know, sent by name as given: a flat map
/// in key order (numbers numerically), or the structured shape's body.
fn unregistered(field: &str, variables: &Value) -> Result<TemplateParams, ApiError> {
    let vfield = format!("{field}.variables");
    let mut body = Vec::new();
    match variables {
        Value::Null => {}
        Value::Object(o)
            if o.keys().all(|k| STRUCTURED_KEYS.contains(&k.as_str())) && !o.is_empty() =>
        {
            // Without the registry's components there is nothing to put header, button or
            // card values in: refused, never dropped unsaid.
            for part in ["header", "buttons", "cards"] {
                match o.get(part) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(a)) if a.is_empty() => {}
                    Some(_) => {
                        return Err(ApiError::validation(
                            format!("{vfield}.{part}"),
                            "a template the registry does not know takes body values only: register it to send header, button or card values",
                        ));
                    }
                }
            }
            let n = o.get("body").and_then(Value::as_array).map_or(0, Vec::len);
            let names: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            body = list(&format!("{vfield}.body"), o.get("body"), &names)?;
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(u64::MAX), (*k).clone()));
            for k in keys {
                if k.trim().is_empty() || k.len() > 100 {
                    return Err(ApiError::validation(
                        vfield,
                        "variable names must be 1 to 100 characters",
                    ));
                }
                body.push(TemplateParam {
                    name: k.clone(),
                    value: value(&format!("{vfield}.{k}"), o.get(k))?,
                });
            }
        }
        other => {
            return Err(ApiError::validation(
                vfield,
                format!("must be an object, not {}", json_kind(other)),
            ));
        }
    }
    Ok(TemplateParams { body, ..TemplateParams::default() })
}

impl App {
    /// The template `t` names, checked for a send on `channel`: a template in the registry
    /// must be for that channel and approved, and its values must fill its placeholders
    /// exactly (422s name the value); any other template goes out by name with the values as
    /// given. `field` is where the reference sits in the request (`content.template`).
    pub(crate) async fn resolve_template(
        &self,
        ws: &WorkspaceId,
        channel: Channel,
        field: &str,
        t: &TemplateRef,
    ) -> Result<(String, TemplateParams), ApiError> {
        let nfield = format!("{field}.name");
        let name = template_name(&nfield, &t.name)?;
        let registered = match self.store().template(ws.as_str(), channel, &name).await {
            Ok(registered) => registered,
            Err(StoreError::NotFound { .. }) => {
                let elsewhere = self.store().templates_named(ws.as_str(), &name).await?;
                if elsewhere.is_empty() {
                    return Ok((name, unregistered(field, &t.variables)?));
                }
                let on: Vec<&str> = elsewhere.iter().map(|t| t.channel.as_str()).collect();
                return Err(ApiError::validation(
                    nfield,
                    format!(
                        "template {name:?} is registered for {}, not {channel}",
                        on.join(" and ")
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if registered.status != TemplateStatus::Approved {
            return Err(ApiError::validation(
                nfield,
                format!(
                    "template {name:?} is {}: only APPROVED templates are sent",
                    registered.status.as_str()
                ),
            ));
        }
        Ok((name, resolve(field, &registered, &t.variables)?))
    }
}

impl WorkspaceAdmin {
    /// `POST /v1/templates`: registers a template. The same template again answers the stored
    /// one; another template under a name already taken is 409 `conflict`.
    pub async fn create_template(
        &self,
        ws: &WorkspaceId,
        req: CreateTemplateRequest,
    ) -> Result<TemplateOut, ApiError> {
        let name = template_name("name", &req.name)?;
        let language = language(&req.language)?;
        let body = required_text("body", &req.body, MAX_BODY)?;
        let variables = variables(&body, &req.variables)?;
        let components = components(&req, &variables)?;
        let new = NewTemplate {
            name,
            channel: req.channel,
            language,
            body,
            variables,
            category: req.category.unwrap_or_default(),
            status: req.status.unwrap_or_default(),
            components,
        };
        let (stored, _) = self.store().create_template(ws.as_str(), &new).await?;
        Ok(template_out(stored))
    }

    /// `GET /v1/templates`: the registry, by name.
    pub async fn templates(&self, ws: &WorkspaceId) -> Result<List<TemplateOut>, ApiError> {
        self.existing(ws).await?;
        let templates = self.store().templates(ws.as_str()).await?;
        Ok(List { data: templates.into_iter().map(template_out).collect() })
    }

    /// The template `name` on `channel`, or, with no channel, the one channel that has it: a
    /// name registered on several channels needs the channel (a 422 naming `channel` and
    /// them); none is 404.
    async fn named(
        &self,
        ws: &WorkspaceId,
        name: &str,
        channel: Option<&str>,
    ) -> Result<convo_store::Template, ApiError> {
        if let Some(channel) = channel {
            let channel = super::parse_channel("channel", channel)?;
            return Ok(self.store().template(ws.as_str(), channel, name).await?);
        }
        let mut found = self.store().templates_named(ws.as_str(), name).await?;
        match found.len() {
            0 => Err(ApiError::not_found(format!("template {name} not found"))),
            1 => Ok(found.remove(0)),
            _ => {
                let on: Vec<&str> = found.iter().map(|t| t.channel.as_str()).collect();
                Err(ApiError::validation(
                    "channel",
                    format!(
                        "template {name:?} is registered for {}: name the channel",
                        on.join(" and ")
                    ),
                ))
            }
        }
    }

    /// `GET /v1/templates/{name}[?channel=]`; another workspace's is 404.
    pub async fn template(
        &self,
        ws: &WorkspaceId,
        name: &str,
        channel: Option<&str>,
    ) -> Result<TemplateOut, ApiError> {
        self.existing(ws).await?;
        Ok(template_out(self.named(ws, name, channel).await?))
    }

    /// `DELETE /v1/templates/{name}[?channel=]`. The template the inactivity ping sends cannot
    /// be removed while it is the name's last (409 `conflict`): change or clear the ping first.
    pub async fn delete_template(
        &self,
        ws: &WorkspaceId,
        name: &str,
        channel: Option<&str>,
    ) -> Result<(), ApiError> {
        let workspace = self.existing(ws).await?;
        let template = self.named(ws, name, channel).await?;
        let pinged =
            workspace.settings.inactivity_ping.as_ref().is_some_and(
                |p| matches!(&p.content, Content::Template { name: n, .. } if n == name),
            );
        if pinged && self.store().templates_named(ws.as_str(), name).await?.len() == 1 {
            return Err(ApiError::conflict(format!(
                "template {name:?} is the inactivity ping's; change or clear the ping first"
            )));
        }
        Ok(self.store().delete_template(ws.as_str(), template.channel, name).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(vars: &[&str]) -> Vec<String> {
        vars.iter().map(|v| (*v).to_owned()).collect()
    }

    fn field(body: &str, vars: &[&str]) -> Option<String> {
        variables(body, &declared(vars)).err().and_then(|e| e.field)
    }

    #[test]
    fn an_unregistered_template_takes_body_values_only() {
        let sent = unregistered("t", &serde_json::json!({"body": ["Ada"], "buttons": []})).unwrap();
        assert_eq!(sent.body.len(), 1);
        for part in ["header", "buttons", "cards"] {
            let e = unregistered("t", &serde_json::json!({"body": ["Ada"], part: {}})).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(format!("t.variables.{part}").as_str()));
        }
    }

    #[test]
    fn placeholders_are_read_in_order_of_use() {
        assert_eq!(placeholders("Hi {{1}}, {{ 2 }} and {{1}}").unwrap(), ["1", "2"]);
        assert_eq!(placeholders("Dear {{first_name}}").unwrap(), ["first_name"]);
        assert!(placeholders("no placeholders").unwrap().is_empty());
    }

    #[test]
    fn variables_must_match_the_body() {
        assert_eq!(variables("Hi {{1}}, order {{2}}", &declared(&["1", "2"])).unwrap().len(), 2);
        assert!(variables("Dear {{name}}", &declared(&["name"])).is_ok());
        assert_eq!(field("Hi {{1}}", &[]).as_deref(), Some("body"));
        assert_eq!(field("Hi {{1}", &["1"]).as_deref(), Some("body"));
        assert_eq!(field("Hi {{a b}}", &["a"]).as_deref(), Some("body"));
        assert_eq!(field("Hi {{1}}", &["1", "2"]).as_deref(), Some("variables[1]"));
        assert_eq!(field("Hi {{1}}", &["1", "1"]).as_deref(), Some("variables[1]"));
        assert_eq!(field("Hi {{x-y}}", &["x-y"]).as_deref(), Some("body"));
        assert_eq!(field("Hi {{1}} {{name}}", &["1", "name"]).as_deref(), Some("variables"));
        assert_eq!(field("Hi {{1}} {{3}}", &["1", "3"]).as_deref(), Some("variables"));
        assert_eq!(field("Hi {{0}}", &["0"]).as_deref(), Some("variables"));
    }

    #[test]
    fn languages_look_like_tags() {
        for ok in ["en", "en_US", "pt-BR", "zh_Hant"] {
            assert!(language(ok).is_ok(), "{ok}");
        }
        for bad in ["e", "english language", "1en", "en/US", ""] {
            assert_eq!(language(bad).unwrap_err().field.as_deref(), Some("language"), "{bad}");
        }
    }
}
