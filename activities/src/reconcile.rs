//! The reconciler: closes, in convo's view, the windows of session runs that ended without
//! closing them.
//!
//! A session run ends its windows itself: it settles the holds, queues `conversation.ended`
//! and completes. A run that an operator terminates (`temporal workflow terminate`), or that
//! fails or times out, does none of that: its window would read open, its hold stay reserved,
//! and no `conversation.ended` would ever be sent. The reconciler finds such windows: rows of
//! `session_windows` (written when `conversation.started` is queued, removed when
//! `conversation.ended` is) whose session chain no longer runs. For each it
//! - releases the contact's open holds placed before the run closed (nothing was delivered
//!   under a settled billing session, so nothing is charged);
//! - queues `conversation.ended` with the reason Temporal gives (`TERMINATED`, `FAILED`,
//!   `TIMED_OUT`, `CANCELED`), under the same logical event id the session would have used
//!   (`evt_{session}_c{n}_ended`), so it is sent once even if the run did emit it;
//! - removes the row.
//!
//! Every step is idempotent, so several reconcilers (one per worker) may run at once, and a
//! crash between steps is repaired by the next pass.
//!
//! The workflow id's current run decides while it belongs to the chain (a reset or a retry
//! continues the session in a new run and terminates or fails the old one); otherwise the chain
//! is followed from its first run (the session id) through continue-as-new, by the close event
//! of each run (`GetWorkflowExecutionHistory` with the close-event filter). No visibility query
//! is needed, so it works on every backend.

use std::time::Duration;

use convo_domain::{HoldId, Money, Timestamp, window::WindowFacts};
use convo_workflows::contracts::session_workflow_id;
use serde_json::{Value, json};
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::{
    common::v1::WorkflowExecution,
    enums::v1::HistoryEventFilterType,
    enums::v1::WorkflowExecutionStatus,
    history::v1::history_event::Attributes,
    workflow::v1::WorkflowExecutionInfo,
    workflowservice::v1::{DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest},
};
use tokio::{sync::watch, task::JoinHandle};
use tonic::IntoRequest;

use convo_client::abnormal_end;
use convo_store::{OpenWindow, Store, StoreError, webhooks::payload};

/// Why a pass could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Temporal failed.
    #[error("temporal: {0}")]
    Temporal(#[from] tonic::Status),
    /// A chain too long to follow.
    #[error("session chain {0} longer than 10,000 runs")]
    ChainTooLong(String),
}

/// How long one Temporal call of a pass may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// A Temporal call, bounded by [`RPC_TIMEOUT`].
async fn rpc<T>(
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, ReconcileError> {
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(ReconcileError::Temporal(tonic::Status::deadline_exceeded(
            "no answer from Temporal within 10 s",
        ))),
    }
}

/// How the reconciler runs.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Time between passes.
    pub interval: Duration,
    /// Windows recorded more recently than this are left alone (their run is surely live).
    pub grace: Duration,
    /// Windows looked at per pass.
    pub batch: u32,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(30), grace: Duration::from_secs(10), batch: 200 }
    }
}

/// How a session chain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEnd {
    /// Its latest run still runs.
    Running,
    /// It completed (normally; it ended its windows itself).
    Completed,
    /// It ended abnormally: the reason for `conversation.ended`, Temporal's words, and when.
    Abnormal {
        /// `TERMINATED`, `FAILED`, `TIMED_OUT` or `CANCELED`.
        reason: &'static str,
        /// The termination reason or failure message.
        detail: String,
        /// The run that ended.
        run_id: String,
        /// When it ended.
        at: Option<Timestamp>,
    },
    /// Temporal no longer has it (retention passed): treated as terminated.
    Unknown,
}

/// The running reconciler.
pub struct ReconcilerHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ReconcilerHandle {
    /// Stops now (a pass in progress is abandoned between its idempotent steps).
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ReconcilerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reconciles windows of session runs that ended without closing them.
#[derive(Clone)]
pub struct Reconciler {
    client: Client,
    store: Store,
    config: ReconcilerConfig,
}

impl Reconciler {
    /// A reconciler over `client`'s namespace and `store`.
    pub fn new(client: Client, store: Store, config: ReconcilerConfig) -> Self {
        Self { client, store, config }
    }

    /// Runs passes every [`ReconcilerConfig::interval`] until shut down.
    pub fn spawn(self) -> ReconcilerHandle {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                // A pass is idempotent step by step, so stopping in the middle of one loses
                // nothing: the next reconciler redoes what is left.
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    passed = self.pass() => if let Err(e) = passed {
                        tracing::warn!(error = %e, "reconciler pass failed");
                    },
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(self.config.interval) => {}
                }
            }
        });
        ReconcilerHandle { stop, task: Some(task) }
    }

    /// One pass: every open window older than the grace period whose session chain ended
    /// abnormally is closed. Returns how many were.
    pub async fn pass(&self) -> Result<usize, ReconcileError> {
        let before = Timestamp::from_system_time(std::time::SystemTime::now() - self.config.grace);
        let mut closed = 0;
        for window in self.store.open_windows(before, self.config.batch).await? {
            match self.chain_end(&window).await {
                Ok(ChainEnd::Running) => {}
                Ok(ChainEnd::Completed) => {
                    // It ended its windows itself; this row was left by a crash in between.
                    self.store.window_ended(&window.session_id, window.conversation).await?;
                }
                Ok(end) => {
                    self.close(&window, &end).await?;
                    closed += 1;
                }
                Err(e) => tracing::warn!(
                    session = %window.session_id, error = %e, "cannot read the session chain"
                ),
            }
        }
        Ok(closed)
    }

    /// How the session chain stands. The workflow id's current run decides when it belongs to
    /// the chain (its first run is the session): a reset or a retry starts a new run of the
    /// same chain and terminates or fails the old one, which is then no end at all. Otherwise
    /// (a later session took the id) the chain is followed from its first run through
    /// continue-as-new. A run's status comes from `DescribeWorkflowExecution`; only a closed
    /// run's close event is read (the real server long-polls a close-event history read of a
    /// running run, whatever `wait_new_event` says).
    pub async fn chain_end(&self, window: &OpenWindow) -> Result<ChainEnd, ReconcileError> {
        let workflow_id = session_workflow_id(&window.workspace_id, &window.contact_id);
        let mut run_id = window.session_id.clone();
        if let Some(current) = self.describe(&workflow_id, "").await?
            && current.first_run_id == window.session_id
        {
            match current.status() {
                WorkflowExecutionStatus::Running | WorkflowExecutionStatus::Paused => {
                    return Ok(ChainEnd::Running);
                }
                WorkflowExecutionStatus::Completed => return Ok(ChainEnd::Completed),
                _ => {
                    if let Some(e) = current.execution {
                        run_id = e.run_id;
                    }
                }
            }
        }
        for _ in 0..10_000 {
            let execution =
                WorkflowExecution { workflow_id: workflow_id.clone(), run_id: run_id.clone() };
            let Some(info) = self.describe(&workflow_id, &run_id).await? else {
                return Ok(ChainEnd::Unknown);
            };
            let status = info.status();
            match status {
                WorkflowExecutionStatus::Running | WorkflowExecutionStatus::Paused => {
                    return Ok(ChainEnd::Running);
                }
                WorkflowExecutionStatus::Completed => return Ok(ChainEnd::Completed),
                WorkflowExecutionStatus::ContinuedAsNew => {}
                other if abnormal_end(other).is_none() => return Ok(ChainEnd::Unknown),
                _ => {}
            }
            let request = GetWorkflowExecutionHistoryRequest {
                namespace: self.client.namespace(),
                execution: Some(execution),
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                wait_new_event: false,
                ..Default::default()
            };
            let history = rpc(self
                .client
                .connection()
                .workflow_service()
                .get_workflow_execution_history(request.into_request()))
            .await?
            .into_inner()
            .history
            .unwrap_or_default();
            let Some(close) = history.events.last() else { return Ok(ChainEnd::Unknown) };
            let detail = match &close.attributes {
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                    run_id.clone_from(&a.new_execution_run_id);
                    continue;
                }
                Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => a.reason.clone(),
                Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                    a.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default()
                }
                Some(Attributes::WorkflowExecutionTimedOutEventAttributes(_)) => {
                    "the run exceeded its timeout".to_owned()
                }
                Some(Attributes::WorkflowExecutionCanceledEventAttributes(_)) => {
                    "the run was cancelled".to_owned()
                }
                _ => String::new(),
            };
            let Some(reason) = abnormal_end(status) else { return Ok(ChainEnd::Unknown) };
            let at = close.event_time.map(|t| {
                let ms = t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000);
                Timestamp::from_epoch_millis(u64::try_from(ms).unwrap_or(0))
            });
            return Ok(ChainEnd::Abnormal { reason, detail, run_id, at });
        }
        Err(ReconcileError::ChainTooLong(workflow_id))
    }

    /// The run's execution info (the workflow id's current run when `run_id` is empty);
    /// `None` when Temporal does not have it.
    async fn describe(
        &self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Option<WorkflowExecutionInfo>, ReconcileError> {
        let describe = DescribeWorkflowExecutionRequest {
            namespace: self.client.namespace(),
            execution: Some(WorkflowExecution {
                workflow_id: workflow_id.to_owned(),
                run_id: run_id.to_owned(),
            }),
        };
        let answer = rpc(self
            .client
            .connection()
            .workflow_service()
            .describe_workflow_execution(describe.into_request()))
        .await;
        match answer {
            Ok(a) => Ok(a.into_inner().workflow_execution_info),
            Err(ReconcileError::Temporal(status)) if status.code() == tonic::Code::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `conversation.ended` in the shape the session gives it (the contact, the window as its
    /// `conversation.started` reported it, the linked conversation, the billing outcome), plus
    /// what Temporal said about the run.
    #[allow(clippy::too_many_arguments)]
    async fn ended_data(
        &self,
        window: &OpenWindow,
        reason: &str,
        at: Timestamp,
        holds: &[(HoldId, Money)],
        released: Money,
        run_id: String,
        detail: String,
    ) -> Result<Value, ReconcileError> {
        let contact = match self.store.contact(&window.workspace_id, &window.contact_id).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let started_id = format!("evt_{}_c{}_started", window.session_id, window.conversation);
        let started = self.store.webhook_event_data(&window.workspace_id, &started_id).await?;
        let facts = started.as_ref().and_then(payload::facts_from_started).or(Some(WindowFacts {
            opened_at: window.opened_at,
            expires_at: at,
            billing_session_ends_at: None,
        }));
        let linked = started
            .as_ref()
            .and_then(|d| d.pointer("/linked_conversation/id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subject = payload::Subject {
            workspace_id: &window.workspace_id,
            session_id: &window.session_id,
            contact_id: &window.contact_id,
            contact: contact.as_ref(),
            channel: window.channel,
            conversation: window.conversation,
            window: facts,
            linked_conversation: linked.as_deref(),
        };
        let mut data = subject.data();
        let seq = started.as_ref().and_then(|d| d.get("seq")).cloned().unwrap_or(Value::Null);
        data.insert("seq".into(), seq);
        data.insert("reason".into(), reason.into());
        data.insert("at".into(), at.to_rfc3339().into());
        // What the message log says went either way in the window (the run's own counters
        // died with it); outbound counts only what a provider accepted.
        // The window starts at its opening message as the log has it (logged by the API just
        // before the session saw it, on the API's clock).
        let log = self.store.messages(&window.workspace_id, &window.contact_id).await?;
        let opening =
            started.as_ref().and_then(|d| d.pointer("/message/id")).and_then(Value::as_str);
        let since = log
            .iter()
            .find(|m| Some(m.id.as_str()) == opening)
            .map_or(window.opened_at, |m| m.created_at.min(window.opened_at));
        let in_window =
            |m: &&convo_store::MessageRecord| m.created_at >= since && m.created_at <= at;
        let inbound = log
            .iter()
            .filter(in_window)
            .filter(|m| m.direction == convo_domain::Direction::Inbound)
            .count();
        let outbound = log
            .iter()
            .filter(in_window)
            .filter(|m| {
                m.direction == convo_domain::Direction::Outbound && m.provider_message_id.is_some()
            })
            .count();
        data.insert("inbound_messages".into(), inbound.into());
        data.insert("outbound_messages".into(), outbound.into());
        let sessions = u32::try_from(holds.len()).unwrap_or(u32::MAX);
        let currency = self.store.workspace(&window.workspace_id).await?.settings;
        let mut billing = payload::billing(sessions, Money::ZERO, released, currency.currency());
        billing["holds"] = json!(holds.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>());
        data.insert("billing".into(), billing);
        data.insert("temporal".into(), json!({ "run_id": run_id, "detail": detail }));
        Ok(Value::Object(data))
    }

    async fn close(&self, window: &OpenWindow, end: &ChainEnd) -> Result<(), ReconcileError> {
        let (reason, detail, run_id, at) = match end {
            ChainEnd::Abnormal { reason, detail, run_id, at } => {
                (*reason, detail.clone(), run_id.clone(), *at)
            }
            _ => {
                ("TERMINATED", "Temporal no longer has the session".to_owned(), String::new(), None)
            }
        };
        let at = at.unwrap_or_else(|| Timestamp::from_system_time(std::time::SystemTime::now()));
        let holds =
            self.store.open_holds_of_contact(&window.workspace_id, &window.contact_id, at).await?;
        let mut released = Money::ZERO;
        for (hold, amount) in &holds {
            self.store.release_hold(&window.workspace_id, hold).await?;
            released = released.saturating_add(*amount);
        }
        let data = self.ended_data(window, reason, at, &holds, released, run_id, detail).await?;
        let id = format!("evt_{}_c{}_ended", window.session_id, window.conversation);
        self.store
            .enqueue_webhook_at(&window.workspace_id, &id, "conversation.ended", data, Some(at))
            .await?;
        self.store.window_ended(&window.session_id, window.conversation).await?;
        tracing::info!(
            session = %window.session_id, reason, released = %released,
            "closed the window of a session run that ended without closing it"
        );
        Ok(())
    }
}
