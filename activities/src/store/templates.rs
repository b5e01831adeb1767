//! The workspace's registry of message templates: one per name, with its channel, language,
//! body and the variables the body declares.
//!
//! The store keeps what it is given; the rules of a well-formed template (placeholder syntax,
//! declared variables matching the body) belong to the API's application layer, which every
//! writer goes through.

use convo_domain::{Channel, Timestamp};
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
    /// When it was registered.
    pub created_at: Timestamp,
}

impl Template {
    fn same_as(&self, new: &NewTemplate) -> bool {
        self.channel == new.channel
            && self.language == new.language
            && self.body == new.body
            && self.variables == new.variables
    }
}

const COLUMNS: &str = "workspace_id, name, channel, language, body, variables, created_at";

fn template_from_row(row: &AnyRow) -> Result<Template> {
    Ok(Template {
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        channel: parse_channel(&row.try_get::<String, _>("channel")?)?,
        language: row.try_get("language")?,
        body: row.try_get("body")?,
        variables: from_json(&row.try_get::<String, _>("variables")?, "template variables")?,
        created_at: timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Registers a template. Registering the same template again returns the stored one
    /// (`false`: not created); another template under a name already taken is a
    /// [`StoreError::Conflict`].
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
                (workspace_id, name, channel, language, body, variables, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, name) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(&template.name)
        .bind(template.channel.as_str())
        .bind(&template.language)
        .bind(&template.body)
        .bind(json_param(&template.variables, "variables")?)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(missing_parent("workspace", workspace_id))?
        .rows_affected();
        let stored = self.template(workspace_id, &template.name).await?;
        if inserted == 0 && !stored.same_as(template) {
            return Err(StoreError::conflict(format!(
                "a different template named {:?} already exists",
                template.name
            )));
        }
        Ok((stored, inserted == 1))
    }

    /// The workspace's template `name`.
    pub async fn template(&self, workspace_id: &str, name: &str) -> Result<Template> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 AND name = $2"
        ))
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("template", name))?;
        template_from_row(&row)
    }

    /// The workspace's templates, by name.
    pub async fn templates(&self, workspace_id: &str) -> Result<Vec<Template>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// Removes the workspace's template `name`; [`StoreError::NotFound`] if there is none.
    pub async fn delete_template(&self, workspace_id: &str, name: &str) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM templates WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
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
