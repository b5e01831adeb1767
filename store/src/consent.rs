//! A contact's consent within a workspace, with the history of every change.

use convo_domain::{Consent, Timestamp};

use super::{Result, Store, StoreError, now_ms, timestamp, timestamp_param};

fn split(consent: Consent) -> (&'static str, Option<Timestamp>) {
    match consent {
        Consent::Unknown => ("unknown", None),
        Consent::OptedIn { at } => ("opted_in", Some(at)),
        Consent::OptedOut { at } => ("opted_out", Some(at)),
    }
}

fn join(status: &str, at: Option<i64>) -> Result<Consent> {
    let at = || at.map(timestamp).ok_or_else(|| StoreError::corrupt("consent without a time"));
    match status {
        "unknown" => Ok(Consent::Unknown),
        "opted_in" => Ok(Consent::OptedIn { at: at()? }),
        "opted_out" => Ok(Consent::OptedOut { at: at()? }),
        other => Err(StoreError::corrupt(format!("unknown consent status {other:?}"))),
    }
}

impl Store {
    /// The contact's consent in the workspace ([`Consent::Unknown`] if nothing was recorded).
    pub async fn consent(&self, workspace_id: &str, contact_id: &str) -> Result<Consent> {
        let row: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT status, at FROM consents WHERE workspace_id = $1 AND contact_id = $2",
        )
        .bind(workspace_id)
        .bind(contact_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some((status, at)) => join(&status, at),
            None => {
                self.contact(workspace_id, contact_id).await?;
                Ok(Consent::Unknown)
            }
        }
    }

    /// Records the contact's consent, with `source` saying where it came from (`"keyword:STOP"`,
    /// `"api"`, ...). Recording the state the contact is already in is a no-op that keeps the
    /// original time, so a retried activity or a second STOP changes nothing. Returns whether
    /// the consent changed; every change also appends a history row.
    pub async fn record_consent(
        &self,
        workspace_id: &str,
        contact_id: &str,
        consent: Consent,
        source: &str,
    ) -> Result<bool> {
        if source.trim().is_empty() {
            return Err(StoreError::validation("source", "must not be empty"));
        }
        self.contact(workspace_id, contact_id).await?;
        let (status, at) = split(consent);
        let at = at.map(|t| timestamp_param(t, "consent.at")).transpose()?;
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        // The conditional update comes first: it is the write that serialises concurrent
        // recorders, and it only matches when the state actually changes.
        let updated = sqlx::query(
            "UPDATE consents SET status = $3, at = $4, source = $5, updated_at = $6
             WHERE workspace_id = $1 AND contact_id = $2 AND status <> $3",
        )
        .bind(workspace_id)
        .bind(contact_id)
        .bind(status)
        .bind(at)
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let changed = if updated > 0 {
            true
        } else {
            let inserted = sqlx::query(
                "INSERT INTO consents (workspace_id, contact_id, status, at, source, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workspace_id, contact_id) DO NOTHING",
            )
            .bind(workspace_id)
            .bind(contact_id)
            .bind(status)
            .bind(at)
            .bind(source)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // A first record of `unknown` stores the row but is not a change of state.
            inserted > 0 && consent != Consent::Unknown
        };
        if changed {
            sqlx::query(
                "INSERT INTO consent_history
                    (workspace_id, contact_id, seq, status, at, source, recorded_at)
                 SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6
                 FROM consent_history WHERE workspace_id = $1 AND contact_id = $2",
            )
            .bind(workspace_id)
            .bind(contact_id)
            .bind(status)
            .bind(at)
            .bind(source)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Every consent change of the contact, oldest first, with its source.
    pub async fn consent_history(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Vec<(Consent, String)>> {
        let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(
            "SELECT status, at, source FROM consent_history
             WHERE workspace_id = $1 AND contact_id = $2 ORDER BY seq",
        )
        .bind(workspace_id)
        .bind(contact_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(|(status, at, source)| Ok((join(&status, at)?, source))).collect()
    }
}
