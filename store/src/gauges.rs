//! What the metrics endpoint reads from the store on each scrape (`convo_metrics`): open
//! windows, the webhook backlog per endpoint, and the holds still reserved.
//!
//! Every query is indexed or reads a small table, because a scrape runs them every few seconds
//! against the production database: `session_windows` holds only open windows; pending
//! deliveries are found through `webhook_deliveries_endpoint`; open holds through `holds_open`,
//! only for the workspaces whose balance has something reserved.

use convo_domain::{Channel, Money, Timestamp};
use sqlx::Row;

use super::{Result, Store, money, timestamp, workspaces::parse_channel};

/// One webhook endpoint's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointBacklog {
    /// The endpoint (`ep_...`).
    pub endpoint_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Deliveries waiting for an attempt (the first one or a retry).
    pub pending: u64,
    /// When the oldest of them was enqueued; `None` when nothing is pending.
    pub oldest_pending_at: Option<Timestamp>,
}

/// A snapshot of the gauges the store backs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Windows reported open and not yet ended, per channel (channels with none are absent).
    pub open_windows: Vec<(Channel, u64)>,
    /// Every enabled endpoint (backlog or not), and any disabled one that still has pending
    /// deliveries.
    pub webhook_backlog: Vec<EndpointBacklog>,
    /// Holds placed and neither charged nor released.
    pub open_holds: u64,
    /// What they reserve, summed over workspaces (minor units).
    pub reserved: Money,
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Open windows per channel.
    pub async fn open_windows_by_channel(&self) -> Result<Vec<(Channel, u64)>> {
        let rows = sqlx::query(
            "SELECT channel, COUNT(*) AS n FROM session_windows GROUP BY channel ORDER BY channel",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let channel = parse_channel(&row.try_get::<String, _>("channel")?)?;
                Ok((channel, count(row.try_get("n")?)))
            })
            .collect()
    }

    /// The pending deliveries of each endpoint, and when the oldest was enqueued.
    pub async fn webhook_backlog(&self) -> Result<Vec<EndpointBacklog>> {
        let rows = sqlx::query(
            "SELECT p.id, p.workspace_id, COUNT(d.id) AS pending, MIN(d.created_at) AS oldest
             FROM webhook_endpoints p
             LEFT JOIN webhook_deliveries d ON d.endpoint_id = p.id AND d.status = 'pending'
             WHERE p.enabled = 1 OR d.id IS NOT NULL
             GROUP BY p.id, p.workspace_id
             ORDER BY p.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EndpointBacklog {
                    endpoint_id: row.try_get("id")?,
                    workspace_id: row.try_get("workspace_id")?,
                    pending: count(row.try_get("pending")?),
                    oldest_pending_at: row.try_get::<Option<i64>, _>("oldest")?.map(timestamp),
                })
            })
            .collect()
    }

    /// The number of open holds and the total they reserve.
    pub async fn reserved_holds(&self) -> Result<(u64, Money)> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM holds h JOIN balances b ON b.workspace_id = h.workspace_id
             WHERE b.reserved > 0 AND h.status = 'open'",
        )
        .fetch_one(self.pool())
        .await?;
        // Postgres sums BIGINTs as NUMERIC, which the `Any` driver cannot read: cast back.
        let (reserved,): (i64,) =
            sqlx::query_as("SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM balances")
                .fetch_one(self.pool())
                .await?;
        Ok((count(n), money(reserved)?))
    }

    /// Everything above, for one scrape.
    pub async fn gauges(&self) -> Result<StoreGauges> {
        let open_windows = self.open_windows_by_channel().await?;
        let webhook_backlog = self.webhook_backlog().await?;
        let (open_holds, reserved) = self.reserved_holds().await?;
        Ok(StoreGauges { open_windows, webhook_backlog, open_holds, reserved })
    }
}
