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
        ContinueAsNewWorkflowExecutionCommandAttributes, ProtocolMessageCommandAttributes,
        ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes,
        command::Attributes as Cmd,
    },
    common::v1::{ActivityType, Payload, Payloads, RetryPolicy, WorkflowExecution, WorkflowType},
    enums::v1::{
        CommandType, QueryResultType, TaskQueueKind,
        UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowIdConflictPolicy,
        WorkflowIdReusePolicy, WorkflowTaskFailedCause,
    },
    protocol::v1::Message,
    query::v1::WorkflowQuery,
    taskqueue::v1::TaskQueue,
    update::v1::{
        Acceptance, Input, Meta, Outcome, Request as UpdateRequest, Response as UpdateResponse,
        WaitPolicy, outcome,
    },
    workflowservice::v1::{workflow_service_client::WorkflowServiceClient, *},
};
use tonic::transport::Channel;

type Client = WorkflowServiceClient<Channel>;

const NS: &str = "default";
/// No RPC of a scenario may take longer (a hang is a divergence, not a stuck run).
const RPC_TIMEOUT: Duration = Duration::from_secs(20);

/// Scenarios that diverge today, with why; each is an open item of the devserver.
const KNOWN: &[(&str, &str)] = &[
    (
        "continue_as_new",
        "the real server holds a run continued within a second of its start back \
         (first_workflow_task_backoff ≈ 1 s) and carries prev_auto_reset_points into the new \
         run; the devserver does neither",
    ),
    (
        "describe_completed",
        "no BuildIds system search attribute (real: [\"unversioned\"] once an unversioned \
         worker completed a task; the server derives it from the worker's version stamp or \
         deployment)",
    ),
    (
        "describe_terminated",
        "the real server still reports the terminated run's scheduled workflow task as \
         pending_workflow_task; the devserver reports none",
    ),
];

type Scenario = for<'a> fn(&'a mut Probe) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Every scenario, by name.
fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        ("start_and_complete", |p| Box::pin(start_and_complete(p))),
        ("timer", |p| Box::pin(timer(p))),
        ("activity", |p| Box::pin(activity(p))),
        ("signal_with_start", |p| Box::pin(signal_with_start(p))),
        ("start_twice", |p| Box::pin(start_twice(p))),
        ("describe_running", |p| Box::pin(describe_running(p))),
        ("describe_completed", |p| Box::pin(describe_completed(p))),
        ("terminate", |p| Box::pin(terminate(p))),
        ("describe_terminated", |p| Box::pin(describe_terminated(p))),
        ("legacy_query", |p| Box::pin(legacy_query(p))),
        ("update_accepted_and_completed", |p| Box::pin(update_accepted_and_completed(p))),
        ("unknown_workflow", |p| Box::pin(unknown_workflow(p))),
        ("run_id_format", |p| Box::pin(run_id_format(p))),
        ("cancel", |p| Box::pin(cancel(p))),
        ("continue_as_new", |p| Box::pin(continue_as_new(p))),
        ("workflow_task_failed", |p| Box::pin(workflow_task_failed(p))),
        ("signal_during_a_task", |p| Box::pin(signal_during_a_task(p))),
        ("reset_to_first_task", |p| Box::pin(reset_to_first_task(p))),
        ("update_with_start_new", |p| Box::pin(update_with_start_new(p))),
        ("update_with_start_running", |p| Box::pin(update_with_start_running(p))),
        ("update_with_start_conflict_fail", |p| Box::pin(update_with_start_conflict_fail(p))),
        ("update_with_start_reject_duplicate", |p| Box::pin(update_with_start_reject_duplicate(p))),
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
    let mut report = String::new();
    let (mut matched, mut unexpected, mut fixed) = (0, Vec::new(), Vec::new());
    let all = scenarios();
    for (name, scenario) in &all {
        let ours = run(&devserver, name, *scenario).await?;
        let theirs = run(&temporal, name, *scenario).await?;
        let known = KNOWN.iter().find(|(n, _)| n == name).map(|(_, why)| *why);
        match (compare(&ours, &theirs), known) {
            (None, None) => matched += 1,
            (None, Some(_)) => {
                matched += 1;
                fixed.push(*name);
            }
            (Some(diff), known) => {
                let _ = writeln!(
                    report,
                    "\n--- {name}: diverges{}\n{diff}",
                    known.map(|why| format!(" (known: {why})")).unwrap_or_default()
                );
                if known.is_none() {
                    unexpected.push(*name);
                }
            }
        }
    }
    println!("{report}");
    println!("differential: {} scenarios run, {matched} match the real server", all.len());
    devserver.shutdown().await;
    temporal.shutdown().await;
    anyhow::ensure!(unexpected.is_empty(), "diverging from the real server: {unexpected:?}");
    anyhow::ensure!(fixed.is_empty(), "these match now; take them off KNOWN: {fixed:?}");
    Ok(())
}

/// One scenario on one server: what its client saw, normalised.
async fn run(backend: &Backend, name: &str, scenario: Scenario) -> anyhow::Result<Vec<Step>> {
    let client = WorkflowServiceClient::connect(backend.url().to_string()).await?;
    let mut probe = Probe {
        c: client,
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
/// the real server's; `None` when the client saw the same on both.
fn compare(ours: &[Step], theirs: &[Step]) -> Option<String> {
    if ours == theirs {
        return None;
    }
    let mut out = String::new();
    let differing = ours.iter().zip(theirs).enumerate().filter(|(_, (a, b))| a != b);
    for (i, (a, b)) in differing.take(SHOWN) {
        let _ = writeln!(out, "step {i}: {}", a.label);
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
        for path in paths {
            let (l, r) = (value(&left, path), value(&right, path));
            if l != r {
                let _ = writeln!(out, "  {path}\n    devserver:   {l}\n    real server: {r}");
            }
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
    Some(out)
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
    // Timings and the server's internal bookkeeping.
    "execution_duration",
    "state_transition_count",
];
/// Advice a server may or may not give (its poller autoscaling), and task ids (internal
/// sequence numbers; a transient task's events carry none on the Temporal server), replaced
/// even when absent or zero.
const ADVISORY: &[&str] = &["poller_scaling_decision", "task_id"];
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
                if ADVISORY.contains(&key.as_str()) {
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
                self.note(label, seen);
                Some(answer)
            }
            Err(seen) => {
                self.note(label, serde_json::json!({ "error": seen }));
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
            self.steps.pop();
            let mut events =
                serde_json::to_value(h.history.unwrap_or_default().events).unwrap_or(Value::Null);
            self.normalize(&mut events);
            self.note(&label, events);
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
        let protocol = |id: String| {
            command(
                CommandType::ProtocolMessage,
                Cmd::ProtocolMessageCommandAttributes(ProtocolMessageCommandAttributes {
                    message_id: id,
                }),
            )
        };
        let (accepted, completed) =
            (format!("{update_id}/accept"), format!("{update_id}/complete"));
        let messages = vec![
            message(accepted.clone(), any("Acceptance", accept.encode_to_vec())),
            message(completed.clone(), any("Response", respond.encode_to_vec())),
        ];
        let commands = vec![protocol(accepted), protocol(completed)];
        self.complete("accept and complete", task, commands, messages).await;
    }

    /// An update-with-start: `start` with its conflict and reuse policies, and update `u1`
    /// waited on to `stage`.
    fn update_with_start(
        &self,
        start: StartWorkflowExecutionRequest,
        stage: Stage,
    ) -> ExecuteMultiOperationRequest {
        use execute_multi_operation_request::{Operation, operation::Operation as Op};
        let update = UpdateWorkflowExecutionRequest {
            namespace: NS.into(),
            workflow_execution: Some(execution(&start.workflow_id)),
            wait_policy: Some(WaitPolicy { lifecycle_stage: stage as i32 }),
            request: Some(UpdateRequest {
                meta: Some(Meta { update_id: "u1".into(), identity: "probe".into() }),
                input: Some(Input { name: "send".into(), args: payloads("hi"), header: None }),
                ..Default::default()
            }),
            ..Default::default()
        };
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
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    let schedule = command(
        CommandType::ScheduleActivityTask,
        Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
            activity_id: "a1".into(),
            activity_type: Some(ActivityType { name: "Act".into() }),
            task_queue: queue(&p.queue),
            start_to_close_timeout: Some(prost_wkt_types::Duration { seconds: 30, nanos: 0 }),
            input: payloads("in"),
            retry_policy: Some(RetryPolicy { maximum_attempts: 1, ..Default::default() }),
            ..Default::default()
        }),
    );
    p.complete("schedule an activity", &task, vec![schedule], vec![]).await;
    let request = PollActivityTaskQueueRequest {
        namespace: NS.into(),
        task_queue: queue(&p.queue),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    let Some(activity) =
        p.rpc("activity task", c.poll_activity_task_queue(long_poll(request))).await
    else {
        return;
    };
    let done = RespondActivityTaskCompletedRequest {
        namespace: NS.into(),
        task_token: activity.task_token,
        result: payloads("out"),
        identity: "probe".into(),
        ..Default::default()
    };
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
    p.start("wf").await;
    let Some(task) = p.poll("first task").await else { return };
    p.complete("no commands", &task, vec![], vec![]).await;
    let request = UpdateWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(&p.id("wf"))),
        wait_policy: Some(WaitPolicy { lifecycle_stage: Stage::Completed as i32 }),
        request: Some(UpdateRequest {
            meta: Some(Meta { update_id: "u1".into(), identity: "probe".into() }),
            input: Some(Input { name: "send".into(), args: payloads("hi"), header: None }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut uc = p.c.clone();
    let update = tokio::spawn(async move { uc.update_workflow_execution(request).await });
    let Some(task) = p.poll("the update's task").await else { return };
    p.accept_and_complete(&task, "u1").await;
    let outcome = async { update.await.map_err(|e| tonic::Status::internal(e.to_string()))? };
    p.rpc("update outcome", outcome).await;
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
    let request = RequestCancelWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(&p.id("wf"))),
        identity: "probe".into(),
        request_id: unique(),
        reason: "ops".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("request cancel", c.request_cancel_workflow_execution(request)).await;
    let Some(task) = p.poll("the cancel's task").await else { return };
    let cancelled = command(
        CommandType::CancelWorkflowExecution,
        Cmd::CancelWorkflowExecutionCommandAttributes(CancelWorkflowExecutionCommandAttributes {
            details: payloads("bye"),
        }),
    );
    p.complete("cancelled", &task, vec![cancelled], vec![]).await;
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
    let signal = SignalWorkflowExecutionRequest {
        namespace: NS.into(),
        workflow_execution: Some(execution(&p.id("wf"))),
        signal_name: "hello".into(),
        input: payloads("hi"),
        request_id: unique(),
        identity: "probe".into(),
        ..Default::default()
    };
    let mut c = p.c.clone();
    p.rpc("signal while the task runs", c.signal_workflow_execution(signal)).await;
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

/// Waits for `multi` (run in the background, as it waits on the worker) and records it.
async fn multi_outcome(
    p: &mut Probe,
    label: &str,
    multi: tokio::task::JoinHandle<
        Result<tonic::Response<ExecuteMultiOperationResponse>, tonic::Status>,
    >,
) {
    let answered = async { multi.await.map_err(|e| tonic::Status::internal(e.to_string()))? };
    p.rpc(label, answered).await;
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
    multi_outcome(p, "update with start", multi).await;
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
    multi_outcome(p, "update with start on the running run", multi).await;
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
