//! The workspace's balance and its top-ups: credits of the ledger that record who made them
//! (an API key, or an operator at the CLI) and why.

use convo_store::{Actor, NewTopUp, TopUp};

use super::{
    App, WorkspaceId, required_text, rfc3339,
    types::{ActorOut, BalanceOut, List, TopUpOut, TopUpRequest, TopUpsQuery},
    workspace::{WorkspaceAdmin, amount},
};
use crate::error::ApiError;

/// The longest top-up reason.
const MAX_REASON: usize = 500;

fn actor_out(a: &Actor) -> ActorOut {
    ActorOut { kind: a.kind().to_owned(), id: a.id().to_owned() }
}

fn top_up_out(t: TopUp) -> TopUpOut {
    TopUpOut {
        id: t.id,
        amount: t.amount.minor(),
        reason: t.reason,
        by: t.by.as_ref().map(actor_out),
        created_at: rfc3339(t.created_at),
        balance_after: t.balance_after.map(BalanceOut::from),
    }
}

impl WorkspaceAdmin {
    /// `GET /v1/workspace/balance`.
    pub async fn balance(&self, ws: &WorkspaceId) -> Result<BalanceOut, ApiError> {
        Ok(self.store().balance(ws.as_str()).await?.into())
    }

    /// `POST /v1/workspace/balance/top-ups`: credits the balance, recording `by` and the
    /// request's reason in the ledger. The top-up's id derives from the Idempotency-Key when
    /// there is one, and the ledger applies an id once, so a retry (even one that outlives the
    /// stored key) credits nothing more and answers the same top-up; without a key every
    /// request is a new top-up.
    pub async fn top_up(
        &self,
        ws: &WorkspaceId,
        by: Actor,
        req: TopUpRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TopUpOut, ApiError> {
        if req.amount == 0 {
            return Err(ApiError::validation("amount", "must be positive"));
        }
        let amount = amount("amount".to_owned(), req.amount)?;
        let reason = required_text("reason", &req.reason, MAX_REASON)?;
        let id = App::derived_id("tu", ws, idempotency_key, "top-up");
        let top_up = NewTopUp { id, amount, by, reason };
        Ok(top_up_out(self.store().top_up(ws.as_str(), &top_up).await?))
    }

    /// `GET /v1/workspace/balance/top-ups`: the ledger's credits, newest first.
    pub async fn top_ups(
        &self,
        ws: &WorkspaceId,
        query: TopUpsQuery,
    ) -> Result<List<TopUpOut>, ApiError> {
        let limit = query.limit.unwrap_or(100);
        if !(1..=1_000).contains(&limit) {
            return Err(ApiError::validation("limit", "must be 1 to 1000"));
        }
        self.existing(ws).await?;
        let top_ups = self.store().top_ups(ws.as_str(), limit).await?;
        Ok(List { data: top_ups.into_iter().map(top_up_out).collect() })
    }
}
