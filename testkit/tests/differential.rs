//! The differential harness: the same scenario, a raw gRPC client playing both client and
//! worker, run against convo's devserver and against the real Temporal dev server
//! (`$TEMPORAL_CLI`), and what the client saw compared step by step: each RPC's answer or
//! status code, and each history event by event, with only what must differ normalised
//! (run ids, request ids, task tokens and times, identity and version strings). Run ids are
//! numbered in the order they appear, so a scenario still sees which run an answer names.
//!
//! Runs when `CONVO_TEST_BACKEND=temporal` (`scripts/test` does, in CI); on other backends it
//! records a skip. It prints how many scenarios ran and how many matched, and for each
//! divergence both sides next to each other. A scenario in [`KNOWN`] is a divergence not fixed
//! yet: it may diverge; it fails the run once it matches, so the list only shrinks.

use std::{collections::HashMap, fmt::Write as _, future::Future, pin::Pin, time::Duration};

use convo_devserver::DevServerConfig;
use convo_testkit::{Backend, BackendKind};
use prost::Message as _;
use serde::Serialize;
use serde_json::Value;
use temporalio_protos::temporal::api::{
    command::v1::{
        CancelWorkflowExecutionCommandAttributes, Command,
        CompleteWorkflowExecutionCommandAttributes,
        ContinueAsNewWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
        ProtocolMessageCommandAttributes, RequestCancelActivityTaskCommandAttributes,
        ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes,
        UpsertWorkflowSearchAttributesCommandAttributes, command::Attributes as Cmd,
    },
    common::v1::{
        ActivityType, Payload, Payloads, RetryPolicy, SearchAttributes, WorkflowExecution,
        WorkflowType,
    },
    enums::v1::{
        CommandType, HistoryEventFilterType, QueryResultType, TaskQueueKind,
        UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowIdConflictPolicy,
        WorkflowIdReusePolicy, WorkflowTaskFailedCause,
    },
    failure::v1::{ApplicationFailureInfo, Failure, failure},
    history::v1::history_event::Attributes,
    protocol::v1::Message,
    query::v1::WorkflowQuery,
    taskqueue::v1::TaskQueue,
    update::v1::{
        Acceptance, Input, Meta, Outcome, Request as UpdateRequest, Response as UpdateResponse,
        UpdateRef, WaitPolicy, outcome,
    },
    workflowservice::v1::{workflow_service_client::WorkflowServiceClient, *},
};
use tonic::transport::Channel;

type Client = WorkflowServiceClient<Channel>;

const NS: &str = "default";
/// No RPC of a scenario may take longer (a hang is a divergence, not a stuck run).
const RPC_TIMEOUT: Duration = Duration::from_secs(20);

/// Scenarios that diverge today, with why; each is an open item of the devserver.
const KNOWN: &[(&str, &str)] = &[];

/// Fields that differ on purpose, by scenario: (scenario, path prefix, why). Each is a row of
/// the table of deliberate differences in `devserver/README.md`.
const DELIBERATE: &[(&str, &str, &str)] = &[
    ("system_info", ".capabilities.nexus", "Nexus is not implemented"),
    ("system_info", ".capabilities.supports_schedules", "schedules are not implemented"),
    (
        "system_info",
        ".capabilities.server_scaled_deployments",
        "worker deployments are not implemented",
    ),
    ("namespaces", ".namespace_info.supports_schedules", "schedules are not implemented"),
    (
        "namespaces",
        ".namespace_info.capabilities.standalone_activit",
        "standalone activities are not implemented",
    ),
    ("namespaces", ".namespace_info.capabilities.worker_heartbeats", "no worker heartbeats"),
    ("namespaces", ".namespace_info.capabilities.poller_autoscaling", "no poller autoscaling"),
    (
        "namespaces",
        ".namespace_info.capabilities.reported_problems_search_attribute",
        "no TemporalReportedProblems search attribute",
    ),
    ("namespaces", ".namespace_info.limits", "no payload size limits are enforced"),
    ("cluster_info", ".cluster_id", "a cluster id is the server's own"),
    ("cluster_info", ".persistence_store", "each server names its store"),
    ("cluster_info", ".visibility_store", "each server names its store"),
    ("cluster_info", ".history_shard_count", "the devserver has one shard"),
    ("cluster_info", ".supported_clients", "the devserver sets no client version bounds"),
    ("cluster_info", ".version_info", "the devserver checks for no new versions"),
];

type Scenario = for<'a> fn(&'a mut Probe) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Scenarios by their function's name.
macro_rules! scenarios {
    ($($scenario:ident),* $(,)?) => {
        vec![$((stringify!($scenario), (|p| Box::pin($scenario(p))) as Scenario)),*]
    };
}

/// Every scenario, by name.
fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        start_and_complete,
        timer,
        activity,
        signal_with_start,
        start_twice,
        describe_running,
        describe_completed,
        terminate,
        describe_terminated,
        legacy_query,
        update_accepted_and_completed,
        unknown_workflow,
        run_id_format,
        cancel,
        continue_as_new,
        workflow_task_failed,
        signal_during_a_task,
        reset_to_first_task,
        update_with_start_new,
        update_with_start_running,
        update_with_start_conflict_fail,
        update_with_start_reject_duplicate,
        update_with_start_allow_duplicate,
        update_with_start_attaches_to_a_completed_update,
        update_with_start_after_its_run_closed,
        unaccepted_update_at_completion,
        accepted_update_at_completion,
        accepted_update_at_failure,
        unaccepted_update_at_failure,
        accepted_update_at_cancellation,
        accepted_update_at_continue_as_new,
        unaccepted_update_at_continue_as_new,
        update_of_a_closed_workflow,
        update_first_execution_run_id,
        activity_cancellation,
        activity_reset,
        activity_pause,
        activity_heartbeat_timeout,
        search_attributes_from_the_workflow,
        many_timers_and_a_zero_timer,
        history_reverse_and_close_wait,
        update_retried_after_the_run_closed,
        system_info,
        cluster_info,
        list_namespaces,
        legacy_lists,
        namespaces,
        activity_failed_and_retried,
        activity_by_id,
        activity_failed_and_cancelled_by_id,
        worker_shutdown_and_sticky_reset,
        operator_search_attributes,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devserver_answers_as_the_real_server_does() -> anyhow::Result<()> {
    if BackendKind::from_env()? != BackendKind::Temporal {
        skip(
            "the differential harness runs with CONVO_TEST_BACKEND=temporal (the real dev server)",
        );
        return Ok(());
    }
    let devserver = Backend::start(BackendKind::Devserver, DevServerConfig::ephemeral()).await?;
    let temporal = Backend::start(BackendKind::Temporal, DevServerConfig::ephemeral()).await?;
    let real = compare_all(&devserver, &temporal, scenarios()).await?;
    temporal.shutdown().await;
    devserver.shutdown().await;
    // Time skipping has no real-server counterpart: the Java test server is its reference.
    // Both start fresh, with nothing in flight that would hold time back.
    let devserver = Backend::start(BackendKind::Devserver, DevServerConfig::ephemeral()).await?;
    let test_server = Backend::start(BackendKind::TestServer, DevServerConfig::ephemeral()).await?;
    let timed = compare_all(&devserver, &test_server, time_scenarios()).await?;
    test_server.shutdown().await;
    devserver.shutdown().await;
    println!("{}{}", real.report, timed.report);
    use std::io::Write as _;
    // Written past the test harness's capture, so CI's log shows the counts on success too.
    let _ = writeln!(
        std::io::stderr(),
        "differential: {} scenarios run, {} match the real server; {} time-skipping \
         scenarios run, {} match the Java test server",
        real.run,
        real.matched,
        timed.run,
        timed.matched
    );
    let unexpected = [real.unexpected, timed.unexpected].concat();
    let fixed = [real.fixed, timed.fixed].concat();
    anyhow::ensure!(unexpected.is_empty(), "diverging from the reference: {unexpected:?}");
    anyhow::ensure!(fixed.is_empty(), "these match now; take them off KNOWN: {fixed:?}");
    Ok(())
}

/// What a comparison of scenarios found.
struct Tally {
    run: usize,
    matched: usize,
    unexpected: Vec<&'static str>,
    fixed: Vec<&'static str>,
    report: String,
}

/// Runs each scenario on the devserver and on `reference`, and compares what the client saw.
async fn compare_all(
    devserver: &Backend,
    reference: &Backend,
    all: Vec<(&'static str, Scenario)>,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        run: all.len(),
        matched: 0,
        unexpected: Vec::new(),
        fixed: Vec::new(),
        report: String::new(),
    };
    for (name, scenario) in all {
        let ours = run(devserver, name, scenario).await?;
        let theirs = run(reference, name, scenario).await?;
        let known = KNOWN.iter().find(|(n, _)| *n == name).map(|(_, why)| *why);
        match (compare(name, &ours, &theirs), known) {
            (None, None) => tally.matched += 1,
            (None, Some(_)) => {
                tally.matched += 1;
                tally.fixed.push(name);
            }
            (Some(diff), known) => {
                let _ = writeln!(
                    tally.report,
                    "\n--- {name}: diverges{}\n{diff}",
                    known.map(|why| format!(" (known: {why})")).unwrap_or_default()
                );
                if known.is_none() {
                    tally.unexpected.push(name);
                }
            }
        }
    }
    Ok(tally)
}

/// One scenario on one server: what its client saw, normalised.
async fn run(backend: &Backend, name: &str, scenario: Scenario) -> anyhow::Result<Vec<Step>> {
    let channel = Channel::from_shared(backend.url().to_string())?.connect().await?;
    let mut probe = Probe {
        c: WorkflowServiceClient::new(channel.clone()),
        channel,
        recording: true,
        prefix: format!("{name}-{}", unique()),
        queue: format!("q-{name}-{}", unique()),
        steps: Vec::new(),
        ids: Ids::default(),
    };
    scenario(&mut probe).await;
    Ok(probe.steps)
}

/// One thing the client saw: a label and the normalised answer.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    label: String,
    seen: Value,
}

/// How many differing steps a divergence shows.
const SHOWN: usize = 6;

/// For each step that differs, every field that differs: its path, the devserver's value and
/// the real server's; `None` when the client saw the same on both, apart from the fields
/// [`DELIBERATE`] lists for `scenario`.
fn compare(scenario: &str, ours: &[Step], theirs: &[Step]) -> Option<String> {
    if ours == theirs {
        return None;
    }
    let deliberate = |path: &str| {
        DELIBERATE.iter().any(|(s, prefix, _)| *s == scenario && path.starts_with(prefix))
    };
    let mut out = String::new();
    let mut shown = 0;
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate().filter(|(_, (a, b))| a != b) {
        let (left, right) = (fields(&a.seen), fields(&b.seen));
        let mut paths: Vec<&String> = left.iter().map(|(p, _)| p).collect();
        for (p, _) in &right {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        let value = |side: &[(String, String)], path: &str| {
            side.iter().find(|(p, _)| p == path).map_or("(absent)".to_owned(), |(_, v)| v.clone())
        };
        let differing: Vec<(&String, String, String)> = paths
            .into_iter()
            .filter(|path| !deliberate(path))
            .map(|path| (path, value(&left, path), value(&right, path)))
            .filter(|(_, l, r)| l != r)
            .collect();
        if differing.is_empty() {
            continue;
        }
        shown += 1;
        if shown > SHOWN {
            continue;
        }
        let _ = writeln!(out, "step {i}: {}", a.label);
        for (path, l, r) in differing {
            let _ = writeln!(out, "  {path}\n    devserver:   {l}\n    real server: {r}");
        }
    }
    if ours.len() != theirs.len() {
        let labels = |steps: &[Step]| steps.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
        let _ = writeln!(
            out,
            "steps: {:?} (devserver) / {:?} (real server)",
            labels(ours),
            labels(theirs)
        );
    }
    (!out.is_empty()).then_some(out)
}

/// A value as `path = leaf` pairs, in order (a history's events are `[n]` by position).
fn fields(v: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, path: String, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    walk(v, format!("{path}.{k}"), out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (n, v) in items.iter().enumerate() {
                    walk(v, format!("{path}[{n}]"), out);
                }
            }
            leaf => out.push((path, leaf.to_string())),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// Run ids in the order they were first seen.
#[derive(Default)]
struct Ids(HashMap<String, usize>);

impl Ids {
    fn name(&mut self, id: &str) -> String {
        let n = self.0.len() + 1;
        format!("<run {}>", self.0.entry(id.to_owned()).or_insert(n))
    }
}

/// Keys whose values differ between any two servers by nature.
const VOLATILE: &[&str] = &[
    "identity",
    "request_id",
    "task_token",
    "binary_checksum",
    "namespace_id",
    "history_size_bytes",
    "worker_version",
    "sdk_metadata",
    "version",
    "build_id",
    "server_version",
    "next_page_token",
    // Timings and the server's internal bookkeeping.
    "execution_duration",
    "state_transition_count",
];
/// Advice a server may or may not give (its poller autoscaling), and task ids (internal
/// sequence numbers; a transient task's events carry none on the Temporal server), replaced
/// even when absent or zero.
const ADVISORY: &[&str] = &["poller_scaling_decision", "task_id"];
/// Durations that a server derives from its clock (the continue-as-new throttle's remainder
/// of a second, a retry's interval from the last attempt's end), compared to the whole second.
const ROUNDED: &[&str] = &["first_workflow_task_backoff", "current_retry_interval"];

/// `"0.970034501s"` (a protobuf duration's JSON) as seconds.
fn seconds(s: &str) -> Option<f64> {
    s.strip_suffix('s')?.parse().ok()
}

const RUN_IDS: &[&str] = &[
    "run_id",
    "first_execution_run_id",
    "original_execution_run_id",
    "new_execution_run_id",
    "continued_execution_run_id",
    "first_run_id",
    "base_run_id",
    "new_run_id",
];

/// `camelCase` (the JSON of the types pbjson serialises) as `snake_case`.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces what differs between servers by nature; `names` are the scenario's own ids
/// (workflow id prefix, task queue), unique per run, which become placeholders wherever they
/// appear.
fn normalize(v: &mut Value, ids: &mut Ids, names: &[(&str, &str)]) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let key = snake(key);
                let set = !value.is_null() && value != "" && value != 0 && value != "0";
                if let (true, Some(seconds)) =
                    (ROUNDED.contains(&key.as_str()), value.as_str().and_then(seconds))
                {
                    // A wait measured from a moment each server sees a little differently.
                    *value = Value::String(format!("~{}s", seconds.round()));
                } else if ADVISORY.contains(&key.as_str()) {
                    *value = Value::String(format!("<{key}>"));
                } else if set && (key.ends_with("_time") || key == "time") {
                    *value = Value::String("<time>".into());
                } else if set && VOLATILE.contains(&key.as_str()) {
                    *value = Value::String(format!("<{key}>"));
                } else if key == "request_id_infos"
                    && let Some(infos) = value.as_object_mut()
                {
                    let renamed = std::mem::take(infos).into_iter().enumerate();
                    *infos =
                        renamed.map(|(n, (_, v))| (format!("<request {}>", n + 1), v)).collect();
                    normalize(value, ids, names);
                } else if let (true, Some(id)) = (RUN_IDS.contains(&key.as_str()), value.as_str()) {
                    if !id.is_empty() {
                        *value = Value::String(ids.name(id));
                    }
                } else {
                    normalize(value, ids, names);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| normalize(i, ids, names)),
        Value::String(s) if uuid::Uuid::parse_str(s).is_ok() => {
            // An id a server made up (a namespace's, say) where no key says it is a run's.
            *s = "<uuid>".into();
        }
        Value::String(s) => {
            for (name, placeholder) in names {
                if s.contains(name) {
                    *s = s.replace(name, placeholder);
                }
            }
        }
        _ => {}
    }
}

/// A scenario's client: RPCs whose answers it records, and helpers for the worker's side.
struct Probe {
    c: Client,
    channel: Channel,
    /// Whether RPC answers are recorded (a scenario may leave out what its reference is
    /// not the reference for).
    recording: bool,
    prefix: String,
    queue: String,
    steps: Vec<Step>,
    ids: Ids,
}

impl Probe {
    fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn normalize(&mut self, v: &mut Value) {
        let (prefix, queue) = (self.prefix.clone(), self.queue.clone());
        // The queue first: it contains no prefix, but a prefix may be part of a queue name.
        normalize(v, &mut self.ids, &[(&queue, "<queue>"), (&prefix, "<wf>")]);
    }

    fn note(&mut self, label: &str, seen: Value) {
        self.steps.push(Step { label: label.to_owned(), seen });
    }

    fn record(&mut self, label: &str, seen: Value) {
        if self.recording {
            self.note(label, seen);
        }
    }

    /// Records `call`'s answer (normalised) or its status code; returns the answer.
    async fn rpc<T: Serialize>(
        &mut self,
        label: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<T> {
        let outcome = match tokio::time::timeout(RPC_TIMEOUT, call).await {
            Err(_) => Err(Value::String("no answer within 20 s".into())),
            Ok(Err(status)) => {
                // Messages are worded differently by each server; only the code is compared.
                eprintln!("{}: {label}: {:?} {}", self.prefix, status.code(), status.message());
                Err(serde_json::json!({ "code": format!("{:?}", status.code()) }))
            }
            Ok(Ok(r)) => Ok(r.into_inner()),
        };
        match outcome {
            Ok(answer) => {
                let mut seen = serde_json::to_value(&answer).unwrap_or(Value::Null);
                self.normalize(&mut seen);
                self.record(label, seen);
                Some(answer)
            }
            Err(seen) => {
                self.record(label, serde_json::json!({ "error": seen }));
                None
            }
        }
    }

    /// Records the workflow's history, one normalised event per line.
    async fn history(&mut self, workflow: &str) {
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: NS.into(),
            execution: Some(execution(workflow)),
            ..Default::default()
        };
        let mut c = self.c.clone();
        let label = format!("history of {}", workflow.replace(&self.prefix, "<wf>"));
        if let Some(h) = self.rpc(&label, c.get_workflow_execution_history(request)).await {
            if self.recording {
                self.steps.pop();
            }
            let mut events =
                serde_json::to_value(h.history.unwrap_or_default().events).unwrap_or(Value::Null);
            self.normalize(&mut events);
            self.record(&label, events);
        }
    }

    async fn start(&mut self, workflow: &str) -> Option<StartWorkflowExecutionResponse> {
        let request = self.start_request(workflow);
        let mut c = self.c.clone();
        self.rpc("start", c.start_workflow_execution(request)).await
    }

    fn start_request(&self, workflow: &str) -> StartWorkflowExecutionRequest {
        StartWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_id: self.id(workflow),
            workflow_type: Some(WorkflowType { name: "Probe".into() }),
            task_queue: queue(&self.queue),
            request_id: unique(),
            identity: "probe".into(),
            ..Default::default()
        }
    }

    /// Polls a workflow task and records what it carries.
    async fn poll(&mut self, label: &str) -> Option<PollWorkflowTaskQueueResponse> {
        let request = PollWorkflowTaskQueueRequest {
            namespace: NS.into(),
            task_queue: queue(&self.queue),
            identity: "probe".into(),
            ..Default::default()
        };
        let mut c = self.c.clone();
        self.rpc(label, c.poll_workflow_task_queue(long_poll(request))).await
    }

    async fn complete(
        &mut self,
        label: &str,
        task: &PollWorkflowTaskQueueResponse,
        commands: Vec<Command>,
        messages: Vec<Message>,
    ) {
        let request = RespondWorkflowTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token.clone(),
            commands,
            messages,
            identity: "probe".into(),
            ..Default::default()
        };
        let mut c = self.c.clone();
        self.rpc(label, c.respond_workflow_task_completed(request)).await;
    }

    /// Answers the task's update request: accepted, then completed with "sent".
    async fn accept_and_complete(&mut self, task: &PollWorkflowTaskQueueResponse, update_id: &str) {
        self.answer_update("accept and complete", task, update_id, Answer::Complete, vec![]).await;
    }

    /// Answers the task's update request as `answer` says, with `then` after the update's
    /// commands (a workflow's close, say).
    async fn answer_update(
        &mut self,
        label: &str,
        task: &PollWorkflowTaskQueueResponse,
        update_id: &str,
        answer: Answer,
        then: Vec<Command>,
    ) {
        let Some(request) = task.messages.first().cloned() else {
            self.note("the update's request", Value::String("missing".into()));
            return;
        };
        let accept = Acceptance {
            accepted_request_message_id: request.id.clone(),
            accepted_request_sequencing_event_id: task.started_event_id - 1,
            accepted_request: None,
        };
        let respond = UpdateResponse {
            meta: Some(Meta { update_id: update_id.into(), identity: String::new() }),
            outcome: Some(Outcome {
                value: Some(outcome::Value::Success(payloads("sent").unwrap())),
            }),
        };
        let any = |name: &str, bytes: Vec<u8>| {
            Some(prost_wkt_types::Any {
                type_url: format!("type.googleapis.com/temporal.api.update.v1.{name}"),
                value: bytes,
            })
        };
        let message = |id: String, body| Message {
            id,
            protocol_instance_id: update_id.into(),
            body,
            sequencing_id: None,
        };
        let protocol = |id: &str| {
            command(
                CommandType::ProtocolMessage,
                Cmd::ProtocolMessageCommandAttributes(ProtocolMessageCommandAttributes {
                    message_id: id.into(),
                }),
            )
        };
        let (accepted, completed) =
            (format!("{update_id}/accept"), format!("{update_id}/complete"));
        let (mut messages, mut commands) = (Vec::new(), Vec::new());
        if answer != Answer::Ignore {
            messages.push(message(accepted.clone(), any("Acceptance", accept.encode_to_vec())));
            commands.push(protocol(&accepted));
        }
        if answer == Answer::Complete {
            messages.push(message(completed.clone(), any("Response", respond.encode_to_vec())));
            commands.push(protocol(&completed));
        }
        commands.extend(then);
        self.complete(label, task, commands, messages).await;
    }

    /// An update-with-start: `start` with its conflict and reuse policies, and update `u1`
    /// waited on to `stage`.
    fn update_with_start(
        &self,
        start: StartWorkflowExecutionRequest,
        stage: Stage,
    ) -> ExecuteMultiOperationRequest {
        use execute_multi_operation_request::{Operation, operation::Operation as Op};
        let update = update_request(&start.workflow_id, "u1", stage);
        ExecuteMultiOperationRequest {
            namespace: NS.into(),
            operations: vec![
                Operation { operation: Some(Op::StartWorkflow(start)) },
                Operation { operation: Some(Op::UpdateWorkflow(update)) },
            ],
            ..Default::default()
        }
    }

    async fn describe(&mut self, workflow: &str) {
        let request = DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(execution(&self.id(workflow))),
        };
        let mut c = self.c.clone();
        self.rpc("describe", c.describe_workflow_execution(request)).await;
    }
}

/// What a worker does with an update request it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Neither accepts nor rejects it.
    Ignore,
    /// Accepts it and leaves it in flight.
    Accept,
    /// Accepts and completes it.
    Complete,
}

/// A long poll carries a deadline, as every SDK's does (the real server refuses one without:
/// "Context timeout is not set"; the devserver does not ask).
fn long_poll<T>(request: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(Duration::from_secs(15));
    request
}

fn execution(workflow_id: &str) -> WorkflowExecution {
    WorkflowExecution { workflow_id: workflow_id.into(), run_id: String::new() }
}

fn queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.into(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    })
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn payloads(s: &str) -> Option<Payloads> {
    Some(Payloads { payloads: vec![Payload { data: s.as_bytes().to_vec(), ..Default::default() }] })
}

fn command(kind: CommandType, attributes: Cmd) -> Command {
    Command { command_type: kind as i32, attributes: Some(attributes), ..Default::default() }
}

fn complete_workflow() -> Command {
    command(
        CommandType::CompleteWorkflowExecution,
        Cmd::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result: payloads("done") },
        ),
    )
}

fn skip(why: &str) {
    if let Some(path) = std::env::var_os("CONVO_SKIP_LOG") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "the_devserver_answers_as_the_real_server_does: {why}");
        }
    }
    eprintln!("skipped: {why}");
}

// ---- scenarios ----

async fn start_and_complete(p: &mut Probe) {
    p.start("wf").await;
    if let Some(task) = p.poll("first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn describe_completed(p: &mut Probe) {
    p.start("wf").await;
    if let Some(task) = p.poll("first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    p.describe("wf").await;
}

async fn timer(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let timer = command(
        CommandType::StartTimer,
        Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: "t1".into(),
            start_to_fire_timeout: Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 }),
        }),
    );
    p.complete("start a timer", &task, vec![timer], vec![]).await;
    if let Some(task) = p.poll("the timer fired").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn activity(p: &mut Probe) {
    let Some(activity) = p.start_with_activity("wf", None).await else { return };
    let done = RespondActivityTaskCompletedRequest {
        namespace: NS.into(),
        task_token: activity.task_token,
        result: payloads("out"),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("activity completed", c.respond_activity_task_completed(done)).await;
    if let Some(task) = p.poll("the activity's result").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn signal_with_start(p: &mut Probe) {
    let start = p.start_request("wf");
    let request = SignalWithStartWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_id: start.workflow_id,
        workflow_type: start.workflow_type,
        task_queue: start.task_queue,
        identity: "probe".into(),
        request_id: unique(),
        signal_name: "hello".into(),
        signal_input: payloads("hi"),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("signal with start", c.signal_with_start_workflow_execution(request)).await;
    if let Some(task) = p.poll("first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn start_twice(p: &mut Probe) {
    let first = p.start_request("wf");
    let mut c = p.c.clone();
    p.rpc("start", c.start_workflow_execution(first.clone())).await;
    p.rpc("the same request again", c.start_workflow_execution(first.clone())).await;
    let other = StartWorkflowExecutionRequest { request_id: unique(), ..first };
    p.rpc("another start of a running id", c.start_workflow_execution(other)).await;
}

async fn describe_running(p: &mut Probe) {
    p.start("wf").await;
    p.describe("wf").await;
}

async fn terminate(p: &mut Probe) {
    p.start("wf").await;
    let request = TerminateWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(&p.id("wf"))),
        reason: "ops".into(),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("terminate", c.terminate_workflow_execution(request.clone())).await;
    p.rpc("terminate again", c.terminate_workflow_execution(request)).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn describe_terminated(p: &mut Probe) {
    p.start("wf").await;
    let request = TerminateWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(&p.id("wf"))),
        reason: "ops".into(),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("terminate", c.terminate_workflow_execution(request)).await;
    p.describe("wf").await;
}

async fn legacy_query(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    p.complete("no commands", &task, vec![], vec![]).await;
    let request = QueryWorkflowRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
        query: Some(WorkflowQuery { query_type: "state".into(), ..Default::default() }),
        ..Default::default()
    };
    let mut qc = p.c.clone();
    let query = tokio::spawn(async move { qc.query_workflow(request).await });
    let Some(task) = p.poll("query task").await else { return };
    let answer = RespondQueryTaskCompletedRequest {
        namespace: NS.into(),
        task_token: task.task_token,
        completed_type: QueryResultType::Answered as i32,
        query_result: payloads("idle"),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("answer the query", c.respond_query_task_completed(answer)).await;
    let answered = async { query.await.map_err(|e| tonic::Status::internal(e.to_string()))? };
    p.rpc("query answer", answered).await;
}

async fn update_accepted_and_completed(p: &mut Probe) {
    p.start_idle("wf").await;
    let update = p.update("wf", "u1", Stage::Completed);
    let Some(task) = p.poll("the update's task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update outcome", update).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn unknown_workflow(p: &mut Probe) {
    let request = SignalWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(&p.id("nobody"))),
        signal_name: "hello".into(),
        request_id: unique(),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("signal", c.signal_workflow_execution(request)).await;
    p.describe("nobody").await;
}

/// Run ids are UUIDs of the version the real server generates (SDKs check it).
async fn run_id_format(p: &mut Probe) {
    let Some(started) = p.start("wf").await else { return };
    let version = uuid::Uuid::parse_str(&started.run_id).map(|u| u.get_version_num());
    p.steps.clear();
    p.note("run id's UUID version", serde_json::json!(version.map_err(|e| e.to_string())));
}

async fn cancel(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    p.complete("no commands", &task, vec![], vec![]).await;
    p.cancel_and_accept("wf").await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn continue_as_new(p: &mut Probe) {
    let Some(first) = p.start("wf").await else { return };
    let Some(task) = p.poll("first task").await else { return };
    let next = command(
        CommandType::ContinueAsNewWorkflowExecution,
        Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(
            ContinueAsNewWorkflowExecutionCommandAttributes {
                workflow_type: Some(WorkflowType { name: "Probe".into() }),
                task_queue: queue(&p.queue),
                input: payloads("next"),
                ..Default::default()
            },
        ),
    );
    p.complete("continue as new", &task, vec![next], vec![]).await;
    if let Some(task) = p.poll("the new run's first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let request = GetWorkflowExecutionHistoryRequest {
        namespace: NS.into(),
        execution: Some(WorkflowExecution { workflow_id: p.id("wf"), run_id: first.run_id }),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("the first run's history", c.get_workflow_execution_history(request)).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn workflow_task_failed(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let failed = RespondWorkflowTaskFailedRequest {
        namespace: NS.into(),
        task_token: task.task_token,
        cause: WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure as i32,
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("fail the task", c.respond_workflow_task_failed(failed)).await;
    if let Some(task) = p.poll("the retried task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn signal_during_a_task(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    p.signal("wf", "signal while the task runs").await;
    p.complete("no commands", &task, vec![], vec![]).await;
    if let Some(task) = p.poll("the signal's task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn reset_to_first_task(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    p.complete("no commands", &task, vec![], vec![]).await;
    let mut c = p.c.clone();
    for finish in [3, 4] {
        let request = ResetWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(execution(&p.id("wf"))),
            reason: "ops".into(),
            workflow_task_finish_event_id: finish,
            request_id: unique(),
            ..Default::default()
        };
        let label = format!("reset to event {finish}");
        p.rpc(&label, c.reset_workflow_execution(request)).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

async fn update_with_start_new(p: &mut Probe) {
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start, Stage::Completed);
    let mut mc = p.c.clone();
    let multi = tokio::spawn(async move { mc.execute_multi_operation(request).await });
    let Some(task) = p.poll("first task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update with start", multi).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn update_with_start_running(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    p.complete("no commands", &task, vec![], vec![]).await;
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start, Stage::Completed);
    let mut mc = p.c.clone();
    let multi = tokio::spawn(async move { mc.execute_multi_operation(request).await });
    let Some(task) = p.poll("the update's task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update with start on the running run", multi).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn update_with_start_conflict_fail(p: &mut Probe) {
    p.start("wf").await;
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::Fail as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start, Stage::Accepted);
    let mut c = p.c.clone();
    p.rpc("update with start, conflict policy FAIL", c.execute_multi_operation(request)).await;
}

async fn update_with_start_reject_duplicate(p: &mut Probe) {
    p.start("wf").await;
    if let Some(task) = p.poll("first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        workflow_id_reuse_policy: WorkflowIdReusePolicy::RejectDuplicate as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start, Stage::Accepted);
    let mut c = p.c.clone();
    p.rpc(
        "update with start after completion, REJECT_DUPLICATE",
        c.execute_multi_operation(request),
    )
    .await;
}

fn update_request(
    workflow_id: &str,
    update_id: &str,
    stage: Stage,
) -> UpdateWorkflowExecutionRequest {
    UpdateWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(workflow_id)),
        wait_policy: Some(WaitPolicy { lifecycle_stage: stage as i32 }),
        request: Some(UpdateRequest {
            meta: Some(Meta { update_id: update_id.into(), identity: "probe".into() }),
            input: Some(Input { name: "send".into(), args: payloads("hi"), header: None }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

type Pending<T> = tokio::task::JoinHandle<Result<tonic::Response<T>, tonic::Status>>;

/// Waits for a call run in the background (it waits on the worker) and records it.
async fn await_answer<T: Serialize>(p: &mut Probe, label: &str, call: Pending<T>) {
    let answered = async { call.await.map_err(|e| tonic::Status::internal(e.to_string()))? };
    p.rpc(label, answered).await;
}

impl Probe {
    /// Sends an update waiting for `stage`, in the background.
    fn update(
        &self,
        workflow: &str,
        update_id: &str,
        stage: Stage,
    ) -> Pending<UpdateWorkflowExecutionResponse> {
        let request = update_request(&self.id(workflow), update_id, stage);
        let mut c = self.c.clone();
        tokio::spawn(async move { c.update_workflow_execution(request).await })
    }

    /// Requests `workflow`'s cancellation, and has its next task accept it (the workflow
    /// ends cancelled).
    async fn cancel_and_accept(&mut self, workflow: &str) {
        let request = RequestCancelWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(execution(&self.id(workflow))),
            identity: "probe".into(),
            request_id: unique(),
            reason: "ops".into(),
            ..Default::default()
        };
        let mut c = self.c.clone();
        self.rpc("request cancel", c.request_cancel_workflow_execution(request)).await;
        let Some(task) = self.poll("the cancel's task").await else { return };
        let cancelled = command(
            CommandType::CancelWorkflowExecution,
            Cmd::CancelWorkflowExecutionCommandAttributes(
                CancelWorkflowExecutionCommandAttributes { details: payloads("bye") },
            ),
        );
        self.complete("cancelled", &task, vec![cancelled], vec![]).await;
    }

    /// Polls `workflow`'s update `update_id` until it completes, and records the answer.
    async fn poll_update(&mut self, label: &str, workflow: &str, update_id: &str) {
        let poll = PollWorkflowExecutionUpdateRequest {
            namespace: NS.into(),
            update_ref: Some(UpdateRef {
                workflow_execution: Some(execution(&self.id(workflow))),
                update_id: update_id.into(),
            }),
            identity: "probe".into(),
            wait_policy: Some(WaitPolicy { lifecycle_stage: Stage::Completed as i32 }),
        };
        let mut c = self.c.clone();
        self.rpc(label, c.poll_workflow_execution_update(poll)).await;
    }

    /// Starts `workflow` and completes its first task with no commands, so it waits.
    async fn start_idle(&mut self, workflow: &str) -> Option<StartWorkflowExecutionResponse> {
        let started = self.start(workflow).await?;
        let task = self.poll("first task").await?;
        self.complete("no commands", &task, vec![], vec![]).await;
        Some(started)
    }

    async fn signal(&mut self, workflow: &str, label: &str) {
        let signal = SignalWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(execution(&self.id(workflow))),
            signal_name: "hello".into(),
            input: payloads("hi"),
            request_id: unique(),
            identity: "probe".into(),
            ..Default::default()
        };
        let mut c = self.c.clone();
        self.rpc(label, c.signal_workflow_execution(signal)).await;
    }

    async fn poll_activity(&mut self, label: &str) -> Option<PollActivityTaskQueueResponse> {
        let request = PollActivityTaskQueueRequest {
            namespace: NS.into(),
            task_queue: queue(&self.queue),
            identity: "probe".into(),
            ..Default::default()
        };
        let mut c = self.c.clone();
        self.rpc(label, c.poll_activity_task_queue(long_poll(request))).await
    }

    async fn heartbeat(&mut self, label: &str, task: &PollActivityTaskQueueResponse) {
        let request = RecordActivityTaskHeartbeatRequest {
            namespace: NS.into(),
            task_token: task.task_token.clone(),
            details: payloads("halfway"),
            identity: "probe".into(),
            ..Default::default()
        };
        let mut c = self.c.clone();
        self.rpc(label, c.record_activity_task_heartbeat(request)).await;
    }

    /// Starts `workflow` whose first task schedules activity `a1`, and polls that activity.
    async fn start_with_activity(
        &mut self,
        workflow: &str,
        heartbeat: Option<u64>,
    ) -> Option<PollActivityTaskQueueResponse> {
        self.start(workflow).await?;
        let task = self.poll("first task").await?;
        let schedule = command(
            CommandType::ScheduleActivityTask,
            Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                activity_id: "a1".into(),
                activity_type: Some(ActivityType { name: "Act".into() }),
                task_queue: queue(&self.queue),
                start_to_close_timeout: Some(prost_wkt_types::Duration { seconds: 30, nanos: 0 }),
                heartbeat_timeout: heartbeat
                    .map(|seconds| prost_wkt_types::Duration { seconds: seconds as i64, nanos: 0 }),
                input: payloads("in"),
                retry_policy: Some(RetryPolicy { maximum_attempts: 1, ..Default::default() }),
                ..Default::default()
            }),
        );
        self.complete("schedule an activity", &task, vec![schedule], vec![]).await;
        self.poll_activity("activity task").await
    }
}

fn fail_workflow() -> Command {
    command(
        CommandType::FailWorkflowExecution,
        Cmd::FailWorkflowExecutionCommandAttributes(FailWorkflowExecutionCommandAttributes {
            failure: Some(Failure { message: "broken".into(), ..Default::default() }),
        }),
    )
}

fn continue_as_new_command(queue_name: &str) -> Command {
    command(
        CommandType::ContinueAsNewWorkflowExecution,
        Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(
            ContinueAsNewWorkflowExecutionCommandAttributes {
                workflow_type: Some(WorkflowType { name: "Probe".into() }),
                task_queue: queue(queue_name),
                input: payloads("next"),
                ..Default::default()
            },
        ),
    )
}

async fn update_with_start_allow_duplicate(p: &mut Probe) {
    p.start("wf").await;
    if let Some(task) = p.poll("first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        workflow_id_reuse_policy: WorkflowIdReusePolicy::AllowDuplicate as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start, Stage::Completed);
    let mut mc = p.c.clone();
    let multi = tokio::spawn(async move { mc.execute_multi_operation(request).await });
    let Some(task) = p.poll("the new run's first task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update with start after completion, ALLOW_DUPLICATE", multi).await;
    let id = p.id("wf");
    p.history(&id).await;
}

/// The same update-with-start twice: the second attaches to the first's completed update.
async fn update_with_start_attaches_to_a_completed_update(p: &mut Probe) {
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start.clone(), Stage::Completed);
    let mut mc = p.c.clone();
    let multi = tokio::spawn(async move { mc.execute_multi_operation(request).await });
    let Some(task) = p.poll("first task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update with start", multi).await;
    let again = p.update_with_start(
        StartWorkflowExecutionRequest { request_id: unique(), ..start.clone() },
        Stage::Completed,
    );
    let mut c = p.c.clone();
    p.rpc("the same update with start again", c.execute_multi_operation(again)).await;
    let id = p.id("wf");
    p.history(&id).await;
}

/// An update-with-start whose update completed in a run that then closed: the update's id
/// still names that run's outcome.
async fn update_with_start_after_its_run_closed(p: &mut Probe) {
    let start = StartWorkflowExecutionRequest {
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        workflow_id_reuse_policy: WorkflowIdReusePolicy::AllowDuplicate as i32,
        ..p.start_request("wf")
    };
    let request = p.update_with_start(start.clone(), Stage::Completed);
    let mut mc = p.c.clone();
    let multi = tokio::spawn(async move { mc.execute_multi_operation(request).await });
    let Some(task) = p.poll("first task").await else { return };
    p.answer_update(
        "complete the update and the run",
        &task,
        "u1",
        Answer::Complete,
        vec![complete_workflow()],
    )
    .await;
    await_answer(p, "update with start", multi).await;
    let again = p.update_with_start(
        StartWorkflowExecutionRequest { request_id: unique(), ..start },
        Stage::Completed,
    );
    let mut c = p.c.clone();
    p.rpc("the same update with start after the run closed", c.execute_multi_operation(again))
        .await;
}

/// A workflow that closes (`close`) while its update waits: `answer` is what the worker did
/// with the update in the closing task.
async fn update_at_close(p: &mut Probe, answer: Answer, close: Command) {
    p.start_idle("wf").await;
    let update = p.update("wf", "u1", Stage::Completed);
    let Some(task) = p.poll("the update's task").await else { return };
    p.answer_update("close the workflow", &task, "u1", answer, vec![close]).await;
    await_answer(p, "update outcome", update).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn unaccepted_update_at_completion(p: &mut Probe) {
    update_at_close(p, Answer::Ignore, complete_workflow()).await;
}

async fn accepted_update_at_completion(p: &mut Probe) {
    update_at_close(p, Answer::Accept, complete_workflow()).await;
}

async fn accepted_update_at_failure(p: &mut Probe) {
    update_at_close(p, Answer::Accept, fail_workflow()).await;
}

async fn unaccepted_update_at_failure(p: &mut Probe) {
    update_at_close(p, Answer::Ignore, fail_workflow()).await;
}

async fn accepted_update_at_cancellation(p: &mut Probe) {
    p.start_idle("wf").await;
    let update = p.update("wf", "u1", Stage::Completed);
    let Some(task) = p.poll("the update's task").await else { return };
    p.answer_update("accept", &task, "u1", Answer::Accept, vec![]).await;
    p.cancel_and_accept("wf").await;
    await_answer(p, "update outcome", update).await;
    let id = p.id("wf");
    p.history(&id).await;
}

async fn accepted_update_at_continue_as_new(p: &mut Probe) {
    let queue = p.queue.clone();
    update_at_close(p, Answer::Accept, continue_as_new_command(&queue)).await;
}

/// An update the closing run never accepted: the run continues as new, and the update's
/// caller is told to retry (RESOURCE_EXHAUSTED, which SDK clients retry on the new run).
async fn unaccepted_update_at_continue_as_new(p: &mut Probe) {
    let queue = p.queue.clone();
    update_at_close(p, Answer::Ignore, continue_as_new_command(&queue)).await;
}

/// An update sent to a closed workflow, and a poll for an update that was never sent.
async fn update_of_a_closed_workflow(p: &mut Probe) {
    p.start("wf").await;
    if let Some(task) = p.poll("first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let update = p.update("wf", "u1", Stage::Accepted);
    await_answer(p, "update of the closed run", update).await;
    p.poll_update("poll an update never sent", "wf", "never").await;
}

/// `first_execution_run_id` on an update: another chain's id is not found.
async fn update_first_execution_run_id(p: &mut Probe) {
    let Some(started) = p.start_idle("wf").await else { return };
    let mut request = update_request(&p.id("wf"), "u1", Stage::Accepted);
    request.first_execution_run_id = uuid::Uuid::now_v7().to_string();
    let mut c = p.c.clone();
    p.rpc("update naming another first run", c.update_workflow_execution(request.clone())).await;
    request.first_execution_run_id = started.run_id;
    let mut uc = p.c.clone();
    let update = tokio::spawn(async move { uc.update_workflow_execution(request).await });
    let Some(task) = p.poll("the update's task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update naming its first run", update).await;
}

/// The workflow asks to cancel its running activity; the activity learns of it on its
/// heartbeat and reports itself cancelled.
async fn activity_cancellation(p: &mut Probe) {
    let Some(activity) = p.start_with_activity("wf", None).await else { return };
    p.signal("wf", "signal").await;
    let Some(task) = p.poll("the signal's task").await else { return };
    let cancel = command(
        CommandType::RequestCancelActivityTask,
        Cmd::RequestCancelActivityTaskCommandAttributes(
            RequestCancelActivityTaskCommandAttributes { scheduled_event_id: 5 },
        ),
    );
    p.complete("cancel the activity", &task, vec![cancel], vec![]).await;
    p.heartbeat("heartbeat after the cancel", &activity).await;
    let cancelled = RespondActivityTaskCanceledRequest {
        namespace: NS.into(),
        task_token: activity.task_token.clone(),
        details: payloads("stopped"),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("activity cancelled", c.respond_activity_task_canceled(cancelled)).await;
    if let Some(task) = p.poll("the cancellation's task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

/// `ResetActivity` while the activity runs: its heartbeat hears of it, and it runs again.
async fn activity_reset(p: &mut Probe) {
    let Some(activity) = p.start_with_activity("wf", None).await else { return };
    p.heartbeat("heartbeat", &activity).await;
    let reset = ResetActivityRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
        identity: "probe".into(),
        activity: Some(reset_activity_request::Activity::Id("a1".into())),
        reset_heartbeat: true,
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("reset the activity", c.reset_activity(reset)).await;
    p.heartbeat("heartbeat after the reset", &activity).await;
    p.describe("wf").await;
}

/// `PauseActivity` while the activity runs: its heartbeat hears of it; unpaused, it goes on.
async fn activity_pause(p: &mut Probe) {
    let Some(activity) = p.start_with_activity("wf", None).await else { return };
    let pause = PauseActivityRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
        identity: "probe".into(),
        activity: Some(pause_activity_request::Activity::Id("a1".into())),
        reason: "ops".into(),
        request_id: unique(),
    };
    let mut c = p.c.clone();
    p.rpc("pause the activity", c.pause_activity(pause)).await;
    p.heartbeat("heartbeat while paused", &activity).await;
    p.describe("wf").await;
    let unpause = UnpauseActivityRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
        identity: "probe".into(),
        activity: Some(unpause_activity_request::Activity::Id("a1".into())),
        ..Default::default()
    };
    p.rpc("unpause the activity", c.unpause_activity(unpause)).await;
    p.heartbeat("heartbeat after the unpause", &activity).await;
}

/// An activity that stops heartbeating times out on its heartbeat timeout.
async fn activity_heartbeat_timeout(p: &mut Probe) {
    let Some(activity) = p.start_with_activity("wf", Some(1)).await else { return };
    p.heartbeat("heartbeat", &activity).await;
    if let Some(task) = p.poll("the timeout's task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    p.heartbeat("heartbeat after the timeout", &activity).await;
    let id = p.id("wf");
    p.history(&id).await;
}

/// A search attribute the workflow upserts, seen by describe, list and count.
async fn search_attributes_from_the_workflow(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    // Each server runs each scenario once, so a fixed value names this scenario's run.
    let version = "probe-1";
    let data = serde_json::to_vec(&[version]).unwrap_or_default();
    let value = Payload {
        metadata: [
            ("encoding".to_owned(), b"json/plain".to_vec()),
            ("type".to_owned(), b"KeywordList".to_vec()),
        ]
        .into(),
        data,
        ..Default::default()
    };
    let upsert = command(
        CommandType::UpsertWorkflowSearchAttributes,
        Cmd::UpsertWorkflowSearchAttributesCommandAttributes(
            UpsertWorkflowSearchAttributesCommandAttributes {
                search_attributes: Some(SearchAttributes {
                    indexed_fields: [("TemporalChangeVersion".to_owned(), value)].into(),
                }),
            },
        ),
    );
    p.complete("upsert", &task, vec![upsert], vec![]).await;
    p.describe("wf").await;
    let query = format!("TemporalChangeVersion = '{version}'");
    p.list("list the running run by the upserted attribute", &query, 1).await;
    let mut c = p.c.clone();
    let count = CountWorkflowExecutionsRequest { namespace: NS.into(), query: query.clone() };
    p.rpc("count by the upserted attribute", c.count_workflow_executions(count)).await;
    p.signal("wf", "signal").await;
    if let Some(task) = p.poll("the signal's task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let closed = format!("{query} AND ExecutionStatus = 'Completed'");
    p.list("list the closed run", &closed, 1).await;
}

impl Probe {
    /// Lists by `query` until `expected` runs show (visibility may lag its writes a moment),
    /// and records the answer.
    async fn list(&mut self, label: &str, query: &str, expected: usize) {
        let mut c = self.c.clone();
        let mut listed = None;
        for _ in 0..50 {
            let request = ListWorkflowExecutionsRequest {
                namespace: NS.into(),
                page_size: 10,
                query: query.to_owned(),
                ..Default::default()
            };
            match c.list_workflow_executions(request).await {
                Ok(r) if r.get_ref().executions.len() >= expected => {
                    listed = Some(r.into_inner());
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let answered = async {
            listed.map(tonic::Response::new).ok_or_else(|| tonic::Status::not_found("not listed"))
        };
        self.rpc(label, answered).await;
    }
}

/// A dozen 100 ms timers and a zero-length one in one task: every one fires, and the run
/// completes. Records which timers fired, not how servers batch them into tasks.
async fn many_timers_and_a_zero_timer(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let timer = |id: String, millis: i32| {
        command(
            CommandType::StartTimer,
            Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: id,
                start_to_fire_timeout: Some(prost_wkt_types::Duration {
                    seconds: 0,
                    nanos: millis * 1_000_000,
                }),
            }),
        )
    };
    let mut timers: Vec<Command> = (1..=12).map(|n| timer(format!("t{n}"), 100)).collect();
    timers.push(timer("zero".into(), 0));
    p.complete("start 13 timers", &task, timers, vec![]).await;
    let mut fired = Vec::new();
    let mut tasks = 0;
    while fired.len() < 13 && tasks < 20 {
        tasks += 1;
        let request = PollWorkflowTaskQueueRequest {
            namespace: NS.into(),
            task_queue: queue(&p.queue),
            identity: "probe".into(),
            ..Default::default()
        };
        let mut c = p.c.clone();
        let Ok(Ok(task)) =
            tokio::time::timeout(RPC_TIMEOUT, c.poll_workflow_task_queue(long_poll(request))).await
        else {
            break;
        };
        let task = task.into_inner();
        if task.task_token.is_empty() {
            break;
        }
        let events = task.history.iter().flat_map(|h| &h.events);
        let new = events.filter(|e| e.event_id > task.previous_started_event_id);
        for event in new {
            if let Some(Attributes::TimerFiredEventAttributes(a)) = &event.attributes {
                fired.push(a.timer_id.clone());
            }
        }
        let commands = if fired.len() >= 13 { vec![complete_workflow()] } else { vec![] };
        let done = RespondWorkflowTaskCompletedRequest {
            namespace: NS.into(),
            task_token: task.task_token,
            commands,
            identity: "probe".into(),
            ..Default::default()
        };
        if c.respond_workflow_task_completed(done).await.is_err() {
            break;
        }
    }
    fired.sort();
    p.note("timers fired", serde_json::json!(fired));
    let request = DescribeWorkflowExecutionRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
    };
    let mut c = p.c.clone();
    let status = c
        .describe_workflow_execution(request)
        .await
        .ok()
        .and_then(|d| d.into_inner().workflow_execution_info)
        .map(|i| i.status);
    p.note("status", serde_json::json!(status));
}

/// The history read backwards, and a history long poll that waits for the close event.
async fn history_reverse_and_close_wait(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let close_wait = GetWorkflowExecutionHistoryRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
        wait_new_event: true,
        history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
        ..Default::default()
    };
    let mut wc = p.c.clone();
    let waiting =
        tokio::spawn(async move { wc.get_workflow_execution_history(long_poll(close_wait)).await });
    p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    await_answer(p, "the close event, waited for", waiting).await;
    let reverse = GetWorkflowExecutionHistoryReverseRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
        // The Temporal server pages backwards by write batches, which the devserver does not
        // keep; a single page is compared.
        maximum_page_size: 0,
        next_page_token: vec![],
    };
    let mut c = p.c.clone();
    p.rpc("the history backwards, first page", c.get_workflow_execution_history_reverse(reverse))
        .await;
}

/// A client interrupted before its update's answer asks again once the run has closed: the
/// closed run still answers with the update's outcome, by update id, to a retried update and
/// to a poll.
async fn update_retried_after_the_run_closed(p: &mut Probe) {
    p.start_idle("wf").await;
    let update = p.update("wf", "u1", Stage::Completed);
    let Some(task) = p.poll("the update's task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    await_answer(p, "update outcome", update).await;
    p.signal("wf", "signal").await;
    if let Some(task) = p.poll("the signal's task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let again = p.update("wf", "u1", Stage::Completed);
    await_answer(p, "the same update after the run closed", again).await;
    p.poll_update("poll the update after the run closed", "wf", "u1").await;
}

/// The server's self-description a client reads on connecting.
async fn system_info(p: &mut Probe) {
    let mut c = p.c.clone();
    p.rpc("system info", c.get_system_info(GetSystemInfoRequest {})).await;
}

/// The cluster's description (the Web UI reads it).
async fn cluster_info(p: &mut Probe) {
    let mut c = p.c.clone();
    p.rpc("cluster info", c.get_cluster_info(GetClusterInfoRequest {})).await;
}

/// A namespace registered, described, listed, and registered again.
async fn namespaces(p: &mut Probe) {
    let name = format!("ns-{}", p.prefix);
    let register = RegisterNamespaceRequest {
        namespace: name.clone(),
        workflow_execution_retention_period: Some(prost_wkt_types::Duration {
            seconds: 3 * 86_400,
            nanos: 0,
        }),
        description: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("register", c.register_namespace(register.clone())).await;
    p.rpc("register again", c.register_namespace(register)).await;
    let describe = DescribeNamespaceRequest { namespace: name.clone(), ..Default::default() };
    p.rpc("describe", c.describe_namespace(describe)).await;
    let unknown =
        DescribeNamespaceRequest { namespace: format!("{name}-none"), ..Default::default() };
    p.rpc("describe an unknown namespace", c.describe_namespace(unknown)).await;
}

/// An activity that fails, is retried after its backoff, and completes.
async fn activity_failed_and_retried(p: &mut Probe) {
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let schedule = command(
        CommandType::ScheduleActivityTask,
        Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
            activity_id: "a1".into(),
            activity_type: Some(ActivityType { name: "Act".into() }),
            task_queue: queue(&p.queue),
            start_to_close_timeout: Some(prost_wkt_types::Duration { seconds: 30, nanos: 0 }),
            retry_policy: Some(RetryPolicy {
                maximum_attempts: 2,
                initial_interval: Some(prost_wkt_types::Duration { seconds: 1, nanos: 0 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    p.complete("schedule an activity", &task, vec![schedule], vec![]).await;
    let Some(first) = p.poll_activity("first attempt").await else { return };
    let failed = RespondActivityTaskFailedRequest {
        namespace: NS.into(),
        task_token: first.task_token,
        failure: Some(Failure { message: "flaky".into(), ..Default::default() }),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc(
        "a failure that is no application failure",
        c.respond_activity_task_failed(failed.clone()),
    )
    .await;
    let failed = RespondActivityTaskFailedRequest {
        failure: Some(Failure {
            message: "flaky".into(),
            failure_info: Some(failure::FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo { r#type: "Flaky".into(), ..Default::default() },
            )),
            ..Default::default()
        }),
        ..failed
    };
    p.rpc("the first attempt fails", c.respond_activity_task_failed(failed)).await;
    p.describe("wf").await;
    let Some(second) = p.poll_activity("second attempt").await else { return };
    let done = RespondActivityTaskCompletedRequest {
        namespace: NS.into(),
        task_token: second.task_token,
        result: payloads("out"),
        identity: "probe".into(),
        ..Default::default()
    };
    p.rpc("the second attempt completes", c.respond_activity_task_completed(done)).await;
    if let Some(task) = p.poll("the activity's result").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

/// The activity RPCs that name the activity by workflow and activity id, not by token.
async fn activity_by_id(p: &mut Probe) {
    let Some(_activity) = p.start_with_activity("wf", None).await else { return };
    let mut c = p.c.clone();
    let heartbeat = RecordActivityTaskHeartbeatByIdRequest {
        namespace: NS.into(),
        workflow_id: p.id("wf"),
        activity_id: "a1".into(),
        details: payloads("halfway"),
        identity: "probe".into(),
        ..Default::default()
    };
    p.rpc("heartbeat by id", c.record_activity_task_heartbeat_by_id(heartbeat)).await;
    let unknown = RespondActivityTaskCompletedByIdRequest {
        namespace: NS.into(),
        workflow_id: p.id("wf"),
        activity_id: "a2".into(),
        result: payloads("out"),
        identity: "probe".into(),
        ..Default::default()
    };
    p.rpc("complete an unknown activity by id", c.respond_activity_task_completed_by_id(unknown))
        .await;
    let done = RespondActivityTaskCompletedByIdRequest {
        namespace: NS.into(),
        workflow_id: p.id("wf"),
        activity_id: "a1".into(),
        result: payloads("out"),
        identity: "probe".into(),
        ..Default::default()
    };
    p.rpc("complete by id", c.respond_activity_task_completed_by_id(done)).await;
    if let Some(task) = p.poll("the activity's result").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let id = p.id("wf");
    p.history(&id).await;
}

/// An activity failed, and another cancelled, by id.
async fn activity_failed_and_cancelled_by_id(p: &mut Probe) {
    let Some(_activity) = p.start_with_activity("wf", None).await else { return };
    let mut c = p.c.clone();
    let failed = RespondActivityTaskFailedByIdRequest {
        namespace: NS.into(),
        workflow_id: p.id("wf"),
        activity_id: "a1".into(),
        failure: Some(Failure { message: "broken".into(), ..Default::default() }),
        identity: "probe".into(),
        ..Default::default()
    };
    p.rpc("fail by id", c.respond_activity_task_failed_by_id(failed)).await;
    let cancelled = RespondActivityTaskCanceledByIdRequest {
        namespace: NS.into(),
        workflow_id: p.id("wf"),
        activity_id: "a1".into(),
        identity: "probe".into(),
        ..Default::default()
    };
    p.rpc("cancel the failed activity by id", c.respond_activity_task_canceled_by_id(cancelled))
        .await;
    let id = p.id("wf");
    p.history(&id).await;
}

/// The worker's goodbye, and a sticky queue reset of a running and an unknown workflow.
async fn worker_shutdown_and_sticky_reset(p: &mut Probe) {
    p.start_idle("wf").await;
    let mut c = p.c.clone();
    let reset = ResetStickyTaskQueueRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("wf"))),
    };
    p.rpc("reset the sticky queue", c.reset_sticky_task_queue(reset)).await;
    let unknown = ResetStickyTaskQueueRequest {
        namespace: NS.into(),
        execution: Some(execution(&p.id("none"))),
    };
    p.rpc("reset the sticky queue of an unknown workflow", c.reset_sticky_task_queue(unknown))
        .await;
    let shutdown = ShutdownWorkerRequest {
        namespace: NS.into(),
        sticky_task_queue: format!("{}-sticky", p.queue),
        identity: "probe".into(),
        reason: "done".into(),
        ..Default::default()
    };
    p.rpc("shutdown worker", c.shutdown_worker(shutdown)).await;
}

/// Search attributes added, listed and removed through the operator service.
async fn operator_search_attributes(p: &mut Probe) {
    use temporalio_protos::temporal::api::{
        enums::v1::IndexedValueType,
        operatorservice::v1::{
            AddSearchAttributesRequest, ListSearchAttributesRequest, RemoveSearchAttributesRequest,
            operator_service_client::OperatorServiceClient,
        },
    };
    let mut op = OperatorServiceClient::new(p.channel.clone());
    let add = AddSearchAttributesRequest {
        namespace: NS.into(),
        search_attributes: [("ProbeKeyword".to_owned(), IndexedValueType::Keyword as i32)].into(),
    };
    p.rpc("add", op.add_search_attributes(add.clone())).await;
    p.rpc("add again", op.add_search_attributes(add)).await;
    let list = ListSearchAttributesRequest { namespace: NS.into() };
    if let Some(listed) = p.rpc("list", op.list_search_attributes(list.clone())).await {
        // Only the custom attributes: each server has its own system ones.
        p.steps.pop(); // (this scenario always records)
        let custom: std::collections::BTreeMap<_, _> =
            listed.custom_attributes.into_iter().collect();
        p.note("list (custom attributes)", serde_json::json!(custom));
    }
    let remove = RemoveSearchAttributesRequest {
        namespace: NS.into(),
        search_attributes: vec!["ProbeKeyword".into()],
    };
    p.rpc("remove", op.remove_search_attributes(remove.clone())).await;
    p.rpc("remove again", op.remove_search_attributes(remove)).await;
}

// ---- time-skipping scenarios, against the Java test server ----

fn test_service(
    p: &Probe,
) -> temporalio_protos::temporal::api::testservice::v1::test_service_client::TestServiceClient<
    Channel,
> {
    temporalio_protos::temporal::api::testservice::v1::test_service_client::TestServiceClient::new(
        p.channel.clone(),
    )
}

/// The time-skipping locks: the server starts locked, locks and unlocks nest, and the clock
/// reads back.
async fn time_skipping_locks(p: &mut Probe) {
    use temporalio_protos::temporal::api::testservice::v1::{
        LockTimeSkippingRequest, UnlockTimeSkippingRequest,
    };
    let mut t = test_service(p);
    p.rpc("current time", t.get_current_time(())).await;
    // (An unlock with no lock held is a deliberate difference: the Java test server counts
    // its own internal locks too, so there it usually succeeds and releases one of those.)
    p.rpc("unlock the starting lock", t.unlock_time_skipping(UnlockTimeSkippingRequest {})).await;
    p.rpc("lock", t.lock_time_skipping(LockTimeSkippingRequest {})).await;
    p.rpc("lock twice", t.lock_time_skipping(LockTimeSkippingRequest {})).await;
    p.rpc("unlock one", t.unlock_time_skipping(UnlockTimeSkippingRequest {})).await;
    p.rpc("unlock the other", t.unlock_time_skipping(UnlockTimeSkippingRequest {})).await;
    p.rpc("lock again", t.lock_time_skipping(LockTimeSkippingRequest {})).await;
}

/// A day-long timer, and a sleep of two days with the lock let go: the timer fires within
/// the sleep, in no real time, and the clock has moved two days on.
async fn sleeping_past_a_long_timer(p: &mut Probe) {
    use temporalio_protos::temporal::api::testservice::v1::SleepRequest;
    // The Java test server is the reference for time, not for the workflow RPCs' answers.
    p.recording = false;
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let timer = command(
        CommandType::StartTimer,
        Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: "day".into(),
            start_to_fire_timeout: Some(prost_wkt_types::Duration { seconds: 86_400, nanos: 0 }),
        }),
    );
    p.complete("start a day-long timer", &task, vec![timer], vec![]).await;
    let mut t = test_service(p);
    let before = t.get_current_time(()).await.ok();
    let sleep = SleepRequest {
        duration: Some(prost_wkt_types::Duration { seconds: 2 * 86_400, nanos: 0 }),
    };
    let started = std::time::Instant::now();
    p.recording = true;
    p.rpc("unlock and sleep two days", t.unlock_time_skipping_with_sleep(sleep)).await;
    p.recording = false;
    let after = t.get_current_time(()).await.ok();
    let moved = match (before, after) {
        (Some(b), Some(a)) => {
            let (b, a) =
                (b.into_inner().time.unwrap_or_default(), a.into_inner().time.unwrap_or_default());
            Some((a.seconds - b.seconds) / 3600)
        }
        _ => None,
    };
    p.note("hours the clock moved", serde_json::json!(moved));
    p.note(
        "within a minute of real time",
        serde_json::json!(started.elapsed() < Duration::from_secs(60)),
    );
    let Some(task) = p.poll("the timer's task").await else { return };
    let fired: Vec<String> = task
        .history
        .iter()
        .flat_map(|h| &h.events)
        .filter_map(|e| match &e.attributes {
            Some(Attributes::TimerFiredEventAttributes(a)) => Some(a.timer_id.clone()),
            _ => None,
        })
        .collect();
    p.note("timers fired", serde_json::json!(fired));
    p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
}

/// The scenarios compared against the Java test server (time skipping).
fn time_scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![time_skipping_locks, sleeping_past_a_long_timer, sleep_and_sleep_until]
}

/// Every namespace, as a client lists them.
async fn list_namespaces(p: &mut Probe) {
    let mut c = p.c.clone();
    let request = ListNamespacesRequest { page_size: 100, ..Default::default() };
    if let Some(listed) = p.rpc("list namespaces", c.list_namespaces(request)).await {
        p.steps.pop();
        let mut names: Vec<String> = listed
            .namespaces
            .iter()
            .filter_map(|n| n.namespace_info.as_ref())
            .map(|i| i.name.clone())
            .collect();
        // The real server's own namespace for its system workflows, which the devserver does
        // not run (a deliberate difference, in devserver/README.md).
        names.retain(|n| n != "temporal-system");
        names.sort();
        p.note("namespace names", serde_json::json!(names));
    }
}

/// The deprecated open and closed lists, by workflow id.
async fn legacy_lists(p: &mut Probe) {
    use temporalio_protos::temporal::api::filter::v1::WorkflowExecutionFilter;
    p.start_idle("open").await;
    p.start("closed").await;
    if let Some(task) = p.poll("the closed one's first task").await {
        p.complete("complete", &task, vec![complete_workflow()], vec![]).await;
    }
    let mut c = p.c.clone();
    let filter = |id: String| WorkflowExecutionFilter { workflow_id: id, run_id: String::new() };
    let open = ListOpenWorkflowExecutionsRequest {
        namespace: NS.into(),
        maximum_page_size: 10,
        filters: Some(list_open_workflow_executions_request::Filters::ExecutionFilter(filter(
            p.id("open"),
        ))),
        ..Default::default()
    };
    p.rpc("list open", c.list_open_workflow_executions(open)).await;
    let closed = ListClosedWorkflowExecutionsRequest {
        namespace: NS.into(),
        maximum_page_size: 10,
        filters: Some(list_closed_workflow_executions_request::Filters::ExecutionFilter(filter(
            p.id("closed"),
        ))),
        ..Default::default()
    };
    p.rpc("list closed", c.list_closed_workflow_executions(closed)).await;
}

/// `Sleep` and `SleepUntil` with time skipping let go: each returns once virtual time has
/// reached its target, in no real time, and the clock reads it back.
async fn sleep_and_sleep_until(p: &mut Probe) {
    use temporalio_protos::temporal::api::testservice::v1::{
        LockTimeSkippingRequest, SleepRequest, SleepUntilRequest, UnlockTimeSkippingRequest,
    };
    let mut t = test_service(p);
    let hours = |t0: &prost_wkt_types::Timestamp, t1: &prost_wkt_types::Timestamp| {
        (t1.seconds - t0.seconds) / 3600
    };
    let now = |r: Option<
        tonic::Response<temporalio_protos::temporal::api::testservice::v1::GetCurrentTimeResponse>,
    >| { r.and_then(|r| r.into_inner().time).unwrap_or_default() };
    p.rpc("unlock", t.unlock_time_skipping(UnlockTimeSkippingRequest {})).await;
    let start = now(t.get_current_time(()).await.ok());
    let started = std::time::Instant::now();
    let sleep =
        SleepRequest { duration: Some(prost_wkt_types::Duration { seconds: 5 * 3600, nanos: 0 }) };
    p.rpc("sleep five hours", t.sleep(sleep)).await;
    let after_sleep = now(t.get_current_time(()).await.ok());
    p.note("hours after the sleep", serde_json::json!(hours(&start, &after_sleep)));
    let until = SleepUntilRequest {
        timestamp: Some(prost_wkt_types::Timestamp {
            seconds: start.seconds + 10 * 3600,
            nanos: 0,
        }),
    };
    p.rpc("sleep until ten hours after the start", t.sleep_until(until)).await;
    let after_until = now(t.get_current_time(()).await.ok());
    p.note("hours after sleeping until", serde_json::json!(hours(&start, &after_until)));
    p.note(
        "within a minute of real time",
        serde_json::json!(started.elapsed() < Duration::from_secs(60)),
    );
    p.rpc("lock again", t.lock_time_skipping(LockTimeSkippingRequest {})).await;
}
