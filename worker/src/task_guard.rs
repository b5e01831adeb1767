//! The worker's gRPC path to Temporal, with two repairs to the workflow tasks it polls, so
//! that what a worker runs live is what a worker replaying the history later runs.
//!
//! **A query task never shows the workflow events that no workflow task has shown it.**
//! Temporal hands a query to a worker as a task of its own (a "legacy" query task:
//! `query` set, `started_event_id` 0) when no workflow task is pending, and also when a
//! workflow task failed or timed out with the query waiting on it. In that second case,
//! and on a worker that does not hold the run in its cache (a fresh worker after a crash:
//! the task then carries the full history), the history runs past the last completed
//! workflow task: an activity's result, a signal, the new task's scheduled event. sdk-core
//! 0.10 applies those events inside the query and runs the workflow forward on them; the
//! commands it writes there go nowhere but stay in its state machines, and the next real
//! workflow task sends them ahead of that task's update acceptances. The history that
//! results does not replay: the next worker to rebuild the run fails it as
//! nondeterministic ("Update machine does not handle this event: ActivityTaskScheduled").
//! The chaos bench found this on the real Temporal dev server, killing `convo worker`
//! under load with the API querying sessions. The repair: such a task's history is cut
//! after the last completed workflow task's own events, so the query is answered from the
//! state that task left, which is what a worker holding the run in its cache answers anyway
//! (Temporal sends a cached run's query task no history at all).
//!
//! **An update runs after every event of the task that delivers it.** An update request
//! comes in the task's messages, sequenced after an event: sdk-core hands the workflow the
//! update where that event falls among the task's signals and activity results, and the
//! handlers' commands go out in that order. On replay there is no request, only the
//! `WorkflowExecutionUpdateAccepted` event after the task's completion, and sdk-core always
//! hands the update over after all of the task's events. The Temporal server sequences
//! every request at the task's started event minus one, which agrees. The Java test server
//! sequences it at the task's scheduled event (and, with a signal landed between scheduled
//! and started, reports a started event id one short), so the signal ran after the update
//! live and before it on replay; the history did not replay
//! ("UpsertWorkflowSearchAttributesMachine does not handle HistoryEvent(id: 7,
//! ActivityTaskScheduled)": the update's hold went out before the signal's patch marker and
//! its `TemporalChangeVersion` upsert; found by `tests/e2e/concurrency.rs`, about three runs
//! in four with three copies at once). The repair: a request sequenced earlier is sequenced
//! just before the task's `WorkflowTaskStarted`, as the Temporal server does.
//!
//! Every other call, and every task the repairs do not apply to, passes through untouched.

use std::sync::Arc;

use convo_client::unary;
use futures::future::BoxFuture;
use http::HeaderMap;
use prost::Message as _;
use temporalio_client::callback_based::{
    CallbackBasedGrpcService, GrpcRequest, GrpcSuccessResponse,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType,
    history::v1::{HistoryEvent, history_event::Attributes},
    protocol::v1::message::SequencingId,
    workflowservice::v1::{
        GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryResponse,
        PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse,
    },
};
use tonic::{Status, transport::Channel};

const WORKFLOW_SERVICE: &str = "temporal.api.workflowservice.v1.WorkflowService";

/// A connection's calls, through `channel`, with polled tasks repaired (see the module docs).
pub(crate) fn service(channel: Channel) -> CallbackBasedGrpcService {
    CallbackBasedGrpcService {
        callback: Arc::new(move |request: GrpcRequest| {
            let channel = channel.clone();
            Box::pin(forward(channel, request)) as BoxFuture<'static, _>
        }),
    }
}

async fn forward(channel: Channel, request: GrpcRequest) -> Result<GrpcSuccessResponse, Status> {
    let path = format!("/{}/{}", request.service, request.rpc);
    let polls = request.service == WORKFLOW_SERVICE && request.rpc == "PollWorkflowTaskQueue";
    let (headers, body) =
        unary(&channel, &path, request.headers.clone(), request.proto.clone()).await?;
    if !polls {
        return Ok(GrpcSuccessResponse { headers, proto: body.to_vec() });
    }
    let mut task = PollWorkflowTaskQueueResponse::decode(body.clone())
        .map_err(|e| Status::internal(format!("undecodable workflow task: {e}")))?;
    let resequenced = sequence_updates(&mut task);
    if resequenced {
        tracing::debug!(
            workflow_id = task.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()),
            started_event_id = task.started_event_id,
            "update requests sequenced after the task's events"
        );
    }
    let settled = match settle(&mut task) {
        Settled::Untouched => false,
        Settled::Cut => true,
        Settled::NeedsMore => {
            let namespace = PollWorkflowTaskQueueRequest::decode(request.proto.clone())
                .map(|r| r.namespace)
                .map_err(|e| Status::internal(format!("undecodable poll: {e}")))?;
            whole_history(&channel, &request.headers, &namespace, &mut task).await?;
            settle(&mut task) == Settled::Cut
        }
    };
    if settled {
        tracing::debug!(
            workflow_id = task.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()),
            previous_started_event_id = task.previous_started_event_id,
            "query task cut back to the last completed workflow task"
        );
    }
    if settled || resequenced {
        return Ok(GrpcSuccessResponse { headers, proto: task.encode_to_vec() });
    }
    Ok(GrpcSuccessResponse { headers, proto: body.to_vec() })
}

/// Sequences every update request of a workflow task after all of the task's events (just
/// before its `WorkflowTaskStarted`, where the Temporal server puts them); whether any moved.
///
/// The started event is read from the history where the task's page ends with it: the Java
/// test server, when a signal lands between a task's scheduled and started events, reports
/// the started event id the task would have had without the signal.
pub(crate) fn sequence_updates(task: &mut PollWorkflowTaskQueueResponse) -> bool {
    let shown = task
        .history
        .as_ref()
        .and_then(|h| h.events.last())
        .filter(|e| e.event_type() == EventType::WorkflowTaskStarted)
        .map_or(0, |e| e.event_id);
    let last = task.started_event_id.max(shown) - 1;
    if task.started_event_id == 0 || last < 1 {
        return false;
    }
    let mut moved = false;
    for message in &mut task.messages {
        if let Some(SequencingId::EventId(after)) = &mut message.sequencing_id
            && *after < last
        {
            *after = last;
            moved = true;
        }
    }
    moved
}

/// What [`settle`] did to a polled task.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Not a query task, or nothing in its history is new.
    Untouched,
    /// Its history now ends with the last completed workflow task's own events.
    Cut,
    /// The cut falls past this page of history: fetch the rest, then settle again.
    NeedsMore,
}

/// Cuts a legacy query task's history after the last completed workflow task's events.
pub(crate) fn settle(task: &mut PollWorkflowTaskQueueResponse) -> Settled {
    if task.query.is_none() || task.started_event_id != 0 || task.previous_started_event_id == 0 {
        return Settled::Untouched;
    }
    let Some(history) = task.history.as_mut() else { return Settled::Untouched };
    let more = !task.next_page_token.is_empty();
    match keep(&history.events, task.previous_started_event_id) {
        Some(n) if n < history.events.len() => {
            history.events.truncate(n);
            task.next_page_token.clear();
            Settled::Cut
        }
        // Up to the end of this page: either nothing is new, or the cut is on a later page.
        Some(_) | None if more => Settled::NeedsMore,
        Some(_) | None => Settled::Untouched,
    }
}

/// How many events to keep: through the `WorkflowTaskCompleted` of the task that started at
/// `previous_started` and the command events after it. `None` when that completion is not
/// among `events`, or the commands may go on past them.
fn keep(events: &[HistoryEvent], previous_started: i64) -> Option<usize> {
    let completed = events.iter().position(|e| {
        matches!(&e.attributes,
            Some(Attributes::WorkflowTaskCompletedEventAttributes(a))
                if a.started_event_id == previous_started)
    })?;
    let end =
        completed + 1 + events[completed + 1..].iter().take_while(|e| e.is_command_event()).count();
    // A closed run's history is final; nothing in it runs the workflow again.
    let closed = events.last().is_some_and(|e| {
        matches!(
            e.event_type(),
            EventType::WorkflowExecutionTerminated | EventType::WorkflowExecutionTimedOut
        ) || e.is_final_wf_execution_event()
    });
    if closed {
        return Some(events.len());
    }
    (end < events.len()).then_some(end)
}

/// Appends the rest of the task's history, page by page.
async fn whole_history(
    channel: &Channel,
    headers: &HeaderMap,
    namespace: &str,
    task: &mut PollWorkflowTaskQueueResponse,
) -> Result<(), Status> {
    let path = format!("/{WORKFLOW_SERVICE}/GetWorkflowExecutionHistory");
    while !task.next_page_token.is_empty() {
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: namespace.to_owned(),
            execution: task.workflow_execution.clone(),
            next_page_token: std::mem::take(&mut task.next_page_token),
            ..Default::default()
        };
        let mut headers = headers.clone();
        headers.remove("grpc-timeout");
        let (_, body) = unary(channel, &path, headers, request.encode_to_vec().into()).await?;
        let page = GetWorkflowExecutionHistoryResponse::decode(body)
            .map_err(|e| Status::internal(format!("undecodable history page: {e}")))?;
        let events = page.history.map(|h| h.events).unwrap_or_default();
        task.history.get_or_insert_with(Default::default).events.extend(events);
        task.next_page_token = page.next_page_token;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::{
        history::v1::{
            ActivityTaskCompletedEventAttributes, ActivityTaskScheduledEventAttributes, History,
            WorkflowTaskCompletedEventAttributes, WorkflowTaskScheduledEventAttributes,
            WorkflowTaskStartedEventAttributes,
        },
        protocol::v1::Message,
        query::v1::WorkflowQuery,
    };

    use super::*;

    fn event(id: i64, attributes: Attributes) -> HistoryEvent {
        let event_type = match &attributes {
            Attributes::WorkflowTaskScheduledEventAttributes(_) => EventType::WorkflowTaskScheduled,
            Attributes::WorkflowTaskStartedEventAttributes(_) => EventType::WorkflowTaskStarted,
            Attributes::WorkflowTaskCompletedEventAttributes(_) => EventType::WorkflowTaskCompleted,
            Attributes::ActivityTaskScheduledEventAttributes(_) => EventType::ActivityTaskScheduled,
            Attributes::ActivityTaskCompletedEventAttributes(_) => EventType::ActivityTaskCompleted,
            _ => EventType::Unspecified,
        };
        HistoryEvent {
            event_id: id,
            event_type: event_type as i32,
            attributes: Some(attributes),
            ..Default::default()
        }
    }

    /// 1–3 a first task, 4 its completion, 5 the activity it scheduled, then 6 the activity's
    /// result and 7 the task that result scheduled: new to the workflow.
    fn history() -> Vec<HistoryEvent> {
        type A = Attributes;
        vec![
            event(1, A::WorkflowTaskScheduledEventAttributes(Default::default())),
            event(2, A::WorkflowTaskScheduledEventAttributes(Default::default())),
            event(
                3,
                A::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes::default()),
            ),
            event(
                4,
                A::WorkflowTaskCompletedEventAttributes(WorkflowTaskCompletedEventAttributes {
                    scheduled_event_id: 2,
                    started_event_id: 3,
                    ..Default::default()
                }),
            ),
            event(
                5,
                A::ActivityTaskScheduledEventAttributes(
                    ActivityTaskScheduledEventAttributes::default(),
                ),
            ),
            event(
                6,
                A::ActivityTaskCompletedEventAttributes(ActivityTaskCompletedEventAttributes {
                    scheduled_event_id: 5,
                    ..Default::default()
                }),
            ),
            event(
                7,
                A::WorkflowTaskScheduledEventAttributes(
                    WorkflowTaskScheduledEventAttributes::default(),
                ),
            ),
        ]
    }

    fn query_task(events: Vec<HistoryEvent>) -> PollWorkflowTaskQueueResponse {
        PollWorkflowTaskQueueResponse {
            previous_started_event_id: 3,
            started_event_id: 0,
            query: Some(WorkflowQuery { query_type: "state".into(), ..Default::default() }),
            history: Some(History { events }),
            ..Default::default()
        }
    }

    fn ids(task: &PollWorkflowTaskQueueResponse) -> Vec<i64> {
        task.history.as_ref().unwrap().events.iter().map(|e| e.event_id).collect()
    }

    #[test]
    fn a_query_task_loses_the_events_no_workflow_task_has_shown() {
        let mut task = query_task(history());
        assert_eq!(settle(&mut task), Settled::Cut);
        assert_eq!(ids(&task), [1, 2, 3, 4, 5], "kept through the completed task's commands");
    }

    #[test]
    fn a_query_task_with_nothing_new_is_untouched() {
        let mut events = history();
        events.truncate(5);
        let mut task = query_task(events);
        assert_eq!(settle(&mut task), Settled::Untouched);
        assert_eq!(ids(&task), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn workflow_tasks_and_history_less_query_tasks_are_untouched() {
        let mut task = query_task(history());
        task.query = None;
        task.started_event_id = 8;
        assert_eq!(settle(&mut task), Settled::Untouched);
        assert_eq!(ids(&task).len(), 7);

        let mut sticky = query_task(Vec::new());
        assert_eq!(settle(&mut sticky), Settled::Untouched);
    }

    #[test]
    fn a_cut_past_the_first_page_asks_for_the_rest() {
        let mut events = history();
        events.truncate(3);
        let mut task = query_task(events);
        task.next_page_token = b"page-2".to_vec();
        assert_eq!(settle(&mut task), Settled::NeedsMore);

        let mut whole = query_task(history());
        whole.next_page_token = b"page-2".to_vec();
        assert_eq!(settle(&mut whole), Settled::Cut);
        assert!(whole.next_page_token.is_empty(), "the cut history is complete");
    }

    #[test]
    fn a_closed_runs_history_is_final() {
        let mut events = history();
        events.push(HistoryEvent {
            event_id: 8,
            event_type: EventType::WorkflowExecutionTerminated as i32,
            ..Default::default()
        });
        let mut task = query_task(events);
        assert_eq!(settle(&mut task), Settled::Untouched);
        assert_eq!(ids(&task).len(), 8);
    }

    fn update_request(id: &str, after: Option<i64>) -> Message {
        Message {
            id: format!("{id}/request"),
            protocol_instance_id: id.into(),
            sequencing_id: after.map(SequencingId::EventId),
            ..Default::default()
        }
    }

    fn sequencing(task: &PollWorkflowTaskQueueResponse) -> Vec<Option<i64>> {
        task.messages
            .iter()
            .map(|m| match m.sequencing_id {
                Some(SequencingId::EventId(id)) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The Java test server's shape: scheduled at 2, a signal at 3 that arrived before the
    /// worker polled, started at 4, the update sequenced at the scheduled event.
    #[test]
    fn an_update_sequenced_before_the_tasks_events_runs_after_them() {
        let mut task = PollWorkflowTaskQueueResponse {
            started_event_id: 4,
            messages: vec![update_request("u1", Some(2)), update_request("u2", Some(1))],
            ..Default::default()
        };
        assert!(sequence_updates(&mut task));
        assert_eq!(sequencing(&task), [Some(3), Some(3)]);
    }

    /// As the Java test server sends it: the task says it started at 3, but the signal that
    /// arrived after it was scheduled pushed its started event to 4.
    #[test]
    fn the_started_event_is_read_from_the_history() {
        let started = event(4, Attributes::WorkflowTaskStartedEventAttributes(Default::default()));
        let mut task = PollWorkflowTaskQueueResponse {
            started_event_id: 3,
            history: Some(History { events: vec![started] }),
            messages: vec![update_request("u1", Some(2))],
            ..Default::default()
        };
        assert!(sequence_updates(&mut task));
        assert_eq!(sequencing(&task), [Some(3)]);
    }

    #[test]
    fn updates_the_temporal_server_sequenced_are_untouched() {
        let mut task = PollWorkflowTaskQueueResponse {
            started_event_id: 4,
            messages: vec![update_request("u1", Some(3)), update_request("u2", None)],
            ..Default::default()
        };
        assert!(!sequence_updates(&mut task));
        assert_eq!(sequencing(&task), [Some(3), None]);

        let mut query = PollWorkflowTaskQueueResponse {
            started_event_id: 0,
            messages: vec![update_request("u1", Some(2))],
            ..Default::default()
        };
        assert!(!sequence_updates(&mut query), "a query task starts no event to sequence by");
    }
}
