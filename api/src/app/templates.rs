//! The workspace's template registry: `POST/GET /v1/templates`, `GET/DELETE
//! /v1/templates/{name}`.
//!
//! A template is a name (unique in the workspace), a channel, a language, a body with
//! placeholders, and the variables the body declares. Placeholders are `{{1}}`, `{{2}}`, ...
//! (positional, numbered 1 to n as Meta requires) or `{{name}}` (named), not both in one body;
//! every placeholder must be declared and every declared variable used.

use std::collections::BTreeSet;

use convo_activities::store::{NewTemplate, StoreError, Template};
use convo_domain::window::Content;

use super::{
    WorkspaceId, required_text, rfc3339, template_name,
    types::{CreateTemplateRequest, List, TemplateOut},
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
        let new = NewTemplate { name, channel: req.channel, language, body, variables };
        let (stored, _) = self.store().create_template(ws.as_str(), &new).await?;
        Ok(template_out(stored))
    }

    /// `GET /v1/templates`: the registry, by name.
    pub async fn templates(&self, ws: &WorkspaceId) -> Result<List<TemplateOut>, ApiError> {
        self.existing(ws).await?;
        let templates = self.store().templates(ws.as_str()).await?;
        Ok(List { data: templates.into_iter().map(template_out).collect() })
    }

    /// `GET /v1/templates/{name}`; another workspace's is 404.
    pub async fn template(&self, ws: &WorkspaceId, name: &str) -> Result<TemplateOut, ApiError> {
        self.existing(ws).await?;
        Ok(template_out(self.store().template(ws.as_str(), name).await?))
    }

    /// `DELETE /v1/templates/{name}`. The template the inactivity ping sends cannot be removed
    /// (409 `conflict`): change or clear the ping first.
    pub async fn delete_template(&self, ws: &WorkspaceId, name: &str) -> Result<(), ApiError> {
        let workspace = self.existing(ws).await?;
        let pinged = workspace
            .settings
            .inactivity_ping
            .as_ref()
            .is_some_and(|p| matches!(&p.content, Content::Template { name: n } if n == name));
        if pinged {
            // Only when it exists: a missing template is 404 whatever the ping says.
            match self.store().template(ws.as_str(), name).await {
                Ok(_) => {
                    return Err(ApiError::conflict(format!(
                        "template {name:?} is the inactivity ping's; change or clear the ping first"
                    )));
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.store().delete_template(ws.as_str(), name).await?)
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
