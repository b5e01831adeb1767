//! Crash safety: SIGKILL the real `convo-devserver` process while clients and workers are
//! hammering it, restart it on the same file, and check that nothing any client was told
//! about was lost.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use temporalio_protos::temporal::api::{
    command::v1::{Command as WfCommand, StartTimerCommandAttributes, command::Attributes as Cmd},
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{CommandType, EventType, TaskQueueKind},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{workflow_service_client::WorkflowServiceClient, *},
};
use tonic::transport::Channel;

const NS: &str = "default";
const QUEUE: &str = "crash-q";

/// The real binary, started with `--port 0` on `db`; returns the child and its address.
fn spawn(db: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_convo-devserver"))
        .args(["--port", "0", "--log-level", "warn", "--db-filename"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn convo-devserver");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    (child, format!("http://{addr}"))
}

fn tq() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: QUEUE.into(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: String::new(),
    })
}

#[derive(Default)]
struct Acked {
    started: BTreeMap<String, ()>,
    timers: BTreeMap<String, ()>,
    signals: BTreeMap<String, usize>,
}

async fn history(c: &mut WorkflowServiceClient<Channel>, id: &str) -> Vec<EventType> {
    c.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
        namespace: NS.into(),
        execution: Some(WorkflowExecution { workflow_id: id.into(), run_id: String::new() }),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{id} lost: {e}"))
    .into_inner()
    .history
    .unwrap()
    .events
    .iter()
    .map(|e| EventType::try_from(e.event_type).unwrap())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("convo-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("dev.db");
    let (mut child, url) = spawn(&db);
    let client = WorkflowServiceClient::connect(url).await.unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));

    // Clients: start workflows and signal them.
    let mut load = Vec::new();
    for t in 0..8 {
        let (mut c, acked) = (client.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("crash-{t}-{i}");
                let req = StartWorkflowExecutionRequest {
                    namespace: NS.into(),
                    workflow_id: id.clone(),
                    workflow_type: Some(WorkflowType { name: "Crash".into() }),
                    task_queue: tq(),
                    request_id: id.clone(),
                    ..Default::default()
                };
                if c.start_workflow_execution(req).await.is_err() {
                    return;
                }
                acked.lock().unwrap().started.insert(id.clone(), ());
                let sig = SignalWorkflowExecutionRequest {
                    namespace: NS.into(),
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id: id.clone(),
                        run_id: String::new(),
                    }),
                    signal_name: "ping".into(),
                    request_id: format!("{id}-sig"),
                    ..Default::default()
                };
                if c.signal_workflow_execution(sig).await.is_err() {
                    return;
                }
                *acked.lock().unwrap().signals.entry(id).or_default() += 1;
            }
        }));
    }
    // Workers: answer each workflow task with a 2 s timer (once per workflow).
    for _ in 0..4 {
        let (mut c, acked) = (client.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            loop {
                let Ok(task) = c
                    .poll_workflow_task_queue(PollWorkflowTaskQueueRequest {
                        namespace: NS.into(),
                        task_queue: tq(),
                        identity: "crash-worker".into(),
                        ..Default::default()
                    })
                    .await
                else {
                    return;
                };
                let task = task.into_inner();
                let Some(exec) = task.workflow_execution.clone() else { continue };
                let has_timer = task.history.as_ref().is_some_and(|h| {
                    h.events.iter().any(|e| e.event_type == EventType::TimerStarted as i32)
                });
                let commands = if has_timer {
                    vec![]
                } else {
                    vec![WfCommand {
                        command_type: CommandType::StartTimer as i32,
                        attributes: Some(Cmd::StartTimerCommandAttributes(
                            StartTimerCommandAttributes {
                                timer_id: "t".into(),
                                start_to_fire_timeout: Some(prost_wkt_types::Duration {
                                    seconds: 2,
                                    nanos: 0,
                                }),
                            },
                        )),
                        ..Default::default()
                    }]
                };
                let done = c
                    .respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
                        namespace: NS.into(),
                        task_token: task.task_token,
                        commands,
                        ..Default::default()
                    })
                    .await;
                match done {
                    Ok(_) if !has_timer => {
                        acked.lock().unwrap().timers.insert(exec.workflow_id, ());
                    }
                    Ok(_) => {}
                    Err(s)
                        if s.code() == tonic::Code::Unavailable
                            || s.code() == tonic::Code::Unknown
                            || s.code() == tonic::Code::Cancelled =>
                    {
                        return;
                    }
                    Err(_) => {}
                }
            }
        }));
    }

    // Let the load build up, then pull the plug mid-flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().timers.len() < 40 {
        assert!(Instant::now() < deadline, "load never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for l in load {
        let _ = l.await;
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.started.len() >= 40);

    // Stay down past the 2 s timers, then restart on the same file.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut child, url) = spawn(&db);
    let mut c = WorkflowServiceClient::connect(url).await.unwrap();
    for id in acked.started.keys() {
        let events = history(&mut c, id).await;
        assert_eq!(events[0], EventType::WorkflowExecutionStarted, "{id}");
        let signals = events.iter().filter(|e| **e == EventType::WorkflowExecutionSignaled).count();
        assert!(
            signals >= acked.signals.get(id).copied().unwrap_or(0),
            "{id}: acknowledged signal lost"
        );
        if acked.timers.contains_key(id) {
            assert!(events.contains(&EventType::TimerStarted), "{id}: acknowledged timer lost");
        }
    }
    // Timers that fell due while the server was down fire on restart, and their workflow
    // tasks are dispatched again.
    let fired_deadline = Instant::now() + Duration::from_secs(20);
    for id in acked.timers.keys() {
        loop {
            if history(&mut c, id).await.contains(&EventType::TimerFired) {
                break;
            }
            assert!(Instant::now() < fired_deadline, "{id}: overdue timer never fired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let task = c
        .poll_workflow_task_queue(PollWorkflowTaskQueueRequest {
            namespace: NS.into(),
            task_queue: tq(),
            identity: "after".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !task.task_token.is_empty(),
        "outstanding workflow tasks are dispatched after the restart"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
