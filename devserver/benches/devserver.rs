//! Devserver benchmark: `cargo bench -p convo-devserver --bench devserver`.
//!
//! Prints the figures issue 3 asks for, each for the in-memory store, the SQLite file with one
//! transaction per state change, and the SQLite file with group commit:
//! - **throughput** of a workflow that runs a 1 ms timer and then an activity, at 1, 16 and
//!   256 concurrent workflows, next to the raw single-row commit rate of the same disk;
//! - **memory**: resident memory of the real `convo-devserver` process holding 100,000
//!   workflows that each wait on a 24 h timer;
//! - **recovery**: how long that process takes to serve again after SIGKILL on a file holding
//!   those 100,000 open workflows.
//!
//! Clients speak raw gRPC over loopback and play worker the way an SDK does: separate poller
//! pools for workflow and activity tasks, commands decided from the full history each task
//! carries. The figures therefore cover the server's whole RPC path, not just its engine.
//!
//! Arguments after `--` choose sections (`throughput`, `memory`, `recovery`; default all).
//! Environment: `CONVO_BENCH_DIR` (where the SQLite files go, default under the target dir),
//! `CONVO_BENCH_SECS` (measured seconds per throughput cell, default 3) and
//! `CONVO_BENCH_IDLE` (idle workflows for memory and recovery, default 100000) and
//! `CONVO_BENCH_POOL` (cap on each client pool in the throughput cells, default 16).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command as Process, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use convo_devserver::{DevServer, DevServerConfig, store::CommitMode};
use futures::StreamExt;
use temporalio_protos::temporal::api::{
    command::v1::{
        Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
        StartTimerCommandAttributes, command::Attributes as Cmd,
    },
    common::v1::{ActivityType, WorkflowExecution, WorkflowType},
    enums::v1::{CommandType, EventType, TaskQueueKind, WorkflowExecutionStatus},
    history::v1::HistoryEvent,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{workflow_service_client::WorkflowServiceClient, *},
};
use tokio::{sync::Semaphore, task::JoinSet};
use tonic::transport::Channel;

type Client = WorkflowServiceClient<Channel>;

const NS: &str = "default";
const QUEUE: &str = "bench";
const CONCURRENCY: [usize; 3] = [1, 16, 256];
/// Default cap on each client pool (starters, workflow pollers, activity pollers). Each pool
/// member has at most one RPC open, and every RPC waits for its change to be durable, so the
/// pools must be wide enough to keep group commit fed; wider only adds waiters that every
/// queue push wakes.
const POOL_CAP: usize = 16;
/// Excluded from the measurement: connections, the SQLite file and the allocator settle, and
/// the rate seen here sizes the measured run.
const WARMUP: Duration = Duration::from_secs(1);
/// A cell that completes nothing for this long is reported as stalled instead of hanging.
const STALL: Duration = Duration::from_secs(30);
/// Each of the two raw-commit measurements that bracket a file-mode cell.
const RAW_COMMIT_SECS: Duration = Duration::from_secs(1);
const IDLE_TIMER: Duration = Duration::from_secs(24 * 3600);
/// Driving the idle population is not what is measured; this just keeps the server busy.
const IDLE_STARTS_IN_FLIGHT: usize = 64;
const IDLE_POLLERS: usize = 64;

/// Knobs, from the environment.
struct Settings {
    /// Where the SQLite files go; the raw commit rate is measured here too.
    dir: PathBuf,
    /// Target length of each throughput cell's measured run.
    measure: Duration,
    /// Workflows in the idle population (memory and recovery).
    idle: u64,
    /// Cap on each client pool in the throughput cells.
    pool: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    let settings = Settings {
        dir: std::env::var_os("CONVO_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("devserver-bench")),
        measure: Duration::from_secs_f64(env_num("CONVO_BENCH_SECS", 3.0)),
        idle: env_num("CONVO_BENCH_IDLE", 100_000.0) as u64,
        pool: env_num("CONVO_BENCH_POOL", POOL_CAP as f64) as usize,
    };
    let (dir, idle) = (&settings.dir, settings.idle);
    std::fs::create_dir_all(dir).expect("create the bench directory");

    print_machine(dir);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if wants("throughput") {
        let cells = rt.block_on(throughput(&settings));
        print_throughput(&cells, &settings);
    }
    if wants("memory") || wants("recovery") {
        let mut rows = Vec::new();
        if wants("memory") {
            rows.push(rt.block_on(idle_memory(None, idle)));
        }
        let db = dir.join("idle.db");
        if wants("recovery") {
            remove_db(&db);
            let (row, server) = rt.block_on(idle_population(Some(&db), idle));
            rows.push(row);
            print_memory(&rows, idle);
            let rec = rt.block_on(recovery(server, &db, idle));
            print_recovery(&rec, idle);
            remove_db(&db);
        } else {
            print_memory(&rows, idle);
        }
    }
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---- machine -----------------------------------------------------------------------------

fn print_machine(dir: &Path) {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = read_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into());
    let mem = read_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(|| "unknown".into(), |kib| format!("{:.1} GiB", kib as f64 / 1048576.0));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let fs = Process::new("df")
        .arg("--output=source,fstype")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.lines().nth(1).map(str::to_owned))
        .unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        "debug (unoptimised: figures are not meaningful)"
    } else {
        "release (optimised)"
    };
    println!("convo-devserver benchmark");
    println!("  build     {profile}");
    println!("  cpus      {cpus} × {model}");
    println!("  memory    {mem}");
    println!("  load avg  {load} (at start; the bench shares the machine with anything else)");
    println!(
        "  db dir    {} ({})",
        dir.display(),
        fs.split_whitespace().collect::<Vec<_>>().join(", ")
    );
    println!();
}

/// The value after `key:` on the first matching line of a /proc file.
fn read_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

/// CPU seconds this process (clients and in-process server together) has used.
fn cpu_seconds() -> f64 {
    // /proc/<pid>/stat counts in clock ticks; USER_HZ is 100 on every Linux build we run on,
    // but ask getconf once rather than assume it.
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        Process::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name start at field 3 (state); utime and stime
    // are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> =
        rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    fields.iter().sum::<f64>() / ticks
}

// ---- raw commit rate -----------------------------------------------------------------------

async fn raw_commit_rate_async(settings: &Settings) -> f64 {
    let path = settings.dir.join("raw-commits.db");
    tokio::task::spawn_blocking(move || raw_commit_rate(&path)).await.expect("raw commit rate")
}

/// Single-row transactions per second on the disk the bench files live on, with the settings
/// the devserver's store uses, so the file-mode figures can be read against the fsync rate.
fn raw_commit_rate(path: &Path) -> f64 {
    remove_db(path);
    let conn = rusqlite::Connection::open(path).expect("open raw-commit db");
    conn.pragma_update(None, "journal_mode", "WAL").expect("WAL");
    conn.pragma_update(None, "synchronous", "FULL").expect("synchronous=FULL");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").expect("table");
    let mut insert = conn.prepare("INSERT INTO t (v) VALUES (?1)").expect("prepare");
    let row = vec![7u8; 128];
    // The first commit creates the WAL file; keep it out of the rate.
    insert.execute([&row]).expect("insert");
    let start = Instant::now();
    let mut commits = 0u64;
    while start.elapsed() < RAW_COMMIT_SECS {
        // Autocommit: each statement is its own transaction, hence its own fsync.
        insert.execute([&row]).expect("insert");
        commits += 1;
    }
    let rate = commits as f64 / start.elapsed().as_secs_f64();
    drop(insert);
    drop(conn);
    remove_db(path);
    rate
}

/// Deletes a SQLite file and its WAL and shared-memory companions.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Bytes on disk of a SQLite file with its WAL.
fn db_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum()
}

// ---- requests ------------------------------------------------------------------------------

fn tq() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: QUEUE.into(),
        kind: TaskQueueKind::Normal as i32,
        normal_name: "".into(),
    })
}

fn start_request(workflow_id: String) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: NS.into(),
        request_id: workflow_id.clone(),
        workflow_id,
        workflow_type: Some(WorkflowType { name: "BenchWorkflow".into() }),
        task_queue: tq(),
        identity: "bench-client".into(),
        ..Default::default()
    }
}

fn poll_workflow_request() -> PollWorkflowTaskQueueRequest {
    PollWorkflowTaskQueueRequest {
        namespace: NS.into(),
        task_queue: tq(),
        identity: "bench-worker".into(),
        ..Default::default()
    }
}

fn duration(d: Duration) -> Option<prost_wkt_types::Duration> {
    Some(prost_wkt_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 })
}

fn timer(after: Duration) -> Command {
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
            timer_id: "t".into(),
            start_to_fire_timeout: duration(after),
        })),
        ..Default::default()
    }
}

fn activity() -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: "a".into(),
                activity_type: Some(ActivityType { name: "BenchActivity".into() }),
                task_queue: tq(),
                start_to_close_timeout: duration(Duration::from_secs(30)),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn complete() -> Command {
    Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(Cmd::CompleteWorkflowExecutionCommandAttributes(
            CompleteWorkflowExecutionCommandAttributes { result: None },
        )),
        ..Default::default()
    }
}

/// The benchmark workflow's code: timer, then activity, then done. Like a replaying SDK, it
/// derives its next command from the whole history the task carries.
fn decide(events: &[HistoryEvent]) -> Option<Command> {
    let has = |t: EventType| events.iter().any(|e| e.event_type == t as i32);
    if has(EventType::ActivityTaskCompleted) {
        Some(complete())
    } else if has(EventType::TimerFired) && !has(EventType::ActivityTaskScheduled) {
        Some(activity())
    } else if !has(EventType::TimerStarted) {
        Some(timer(Duration::from_millis(1)))
    } else {
        None
    }
}

async fn connect(url: &str) -> Client {
    WorkflowServiceClient::connect(url.to_owned()).await.expect("connect to the devserver")
}

// ---- throughput ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Memory,
    PerBatch,
    Group,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Memory, Mode::PerBatch, Mode::Group];

    fn label(self) -> &'static str {
        match self {
            Mode::Memory => "in memory",
            Mode::PerBatch => "file, per-batch commit",
            Mode::Group => "file, group commit",
        }
    }

    fn commit_mode(self) -> Option<CommitMode> {
        match self {
            Mode::Memory => None,
            Mode::PerBatch => Some(CommitMode::PerBatch),
            Mode::Group => Some(CommitMode::Group),
        }
    }
}

/// What the client pools share during one throughput cell.
struct Load {
    /// One permit per workflow that may be open. Starters take one; the worker that completes
    /// the workflow gives it back, so exactly `concurrency` workflows stay in flight.
    open: Semaphore,
    next_id: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Load {
    /// Waits until `done(completed)` holds; false if no workflow completes for `STALL`.
    async fn wait(&self, mut done: impl FnMut(u64) -> bool) -> bool {
        let mut last = (u64::MAX, Instant::now());
        loop {
            let completed = self.completed.load(Ordering::Relaxed);
            if done(completed) {
                return true;
            }
            if completed != last.0 {
                last = (completed, Instant::now());
            } else if last.1.elapsed() > STALL {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn error(&self, rpc: &str, status: &tonic::Status) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| format!("{rpc}: {:?} {}", status.code(), status.message()));
    }
}

/// A backoff after a failed RPC, so a broken server shows up as errors, not a busy loop.
async fn back_off() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

async fn starter(mut client: Client, load: Arc<Load>) {
    loop {
        load.open.acquire().await.expect("the semaphore is never closed").forget();
        let id = load.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(s) = client.start_workflow_execution(start_request(format!("wf-{id}"))).await {
            load.error("StartWorkflowExecution", &s);
            load.open.add_permits(1);
            back_off().await;
        }
    }
}

async fn workflow_poller(mut client: Client, load: Arc<Load>) {
    // Tasks are answered beside the poll loop, as SDK workers run tasks in slots apart from
    // their pollers; dropping the set (when this poller is aborted) aborts them too.
    let mut answering = JoinSet::new();
    loop {
        while answering.try_join_next().is_some() {}
        let task = match client.poll_workflow_task_queue(poll_workflow_request()).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                load.error("PollWorkflowTaskQueue", &s);
                back_off().await;
                continue;
            }
        };
        if task.task_token.is_empty() {
            continue; // the long poll expired
        }
        let (mut client, load) = (client.clone(), load.clone());
        answering.spawn(async move {
            let command = decide(&task.history.map(|h| h.events).unwrap_or_default());
            let completes = command
                .as_ref()
                .is_some_and(|c| c.command_type == CommandType::CompleteWorkflowExecution as i32);
            let done = client
                .respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
                    namespace: NS.into(),
                    task_token: task.task_token,
                    commands: command.into_iter().collect(),
                    identity: "bench-worker".into(),
                    ..Default::default()
                })
                .await;
            match done {
                Ok(_) if completes => {
                    load.completed.fetch_add(1, Ordering::Relaxed);
                    load.open.add_permits(1);
                }
                Ok(_) => {}
                Err(s) => load.error("RespondWorkflowTaskCompleted", &s),
            }
        });
    }
}

async fn activity_poller(mut client: Client, load: Arc<Load>) {
    let mut answering = JoinSet::new();
    loop {
        while answering.try_join_next().is_some() {}
        let request = PollActivityTaskQueueRequest {
            namespace: NS.into(),
            task_queue: tq(),
            identity: "bench-worker".into(),
            ..Default::default()
        };
        let task = match client.poll_activity_task_queue(request).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                load.error("PollActivityTaskQueue", &s);
                back_off().await;
                continue;
            }
        };
        if task.task_token.is_empty() {
            continue;
        }
        let (mut client, load) = (client.clone(), load.clone());
        answering.spawn(async move {
            let done = client
                .respond_activity_task_completed(RespondActivityTaskCompletedRequest {
                    namespace: NS.into(),
                    task_token: task.task_token,
                    identity: "bench-worker".into(),
                    ..Default::default()
                })
                .await;
            if let Err(s) = done {
                load.error("RespondActivityTaskCompleted", &s);
            }
        });
    }
}

struct Cell {
    mode: Mode,
    concurrency: usize,
    /// Workflows completed inside the measured window.
    workflows: u64,
    secs: f64,
    /// Process CPU (clients and server) over the window, in cores.
    cores: f64,
    errors: u64,
    first_error: Option<String>,
    stalled: bool,
    /// Raw single-row commits/s on the same disk just before and just after the cell (file
    /// modes).
    raw: Option<(f64, f64)>,
}

impl Cell {
    fn rate(&self) -> f64 {
        self.workflows as f64 / self.secs
    }

    /// The raw commit rate the cell is compared with: the mean of its two brackets.
    fn raw_rate(&self) -> Option<f64> {
        self.raw.map(|(before, after)| (before + after) / 2.0)
    }
}

async fn throughput(settings: &Settings) -> Vec<Cell> {
    let mut cells = Vec::new();
    for mode in Mode::ALL {
        for concurrency in CONCURRENCY {
            // The disk is shared with whatever else runs on the machine and its fsync rate
            // drifts, so each file cell is bracketed by its own raw-rate measurements.
            let file = mode != Mode::Memory;
            let before = if file { Some(raw_commit_rate_async(settings).await) } else { None };
            let mut cell = throughput_cell(settings, mode, concurrency).await;
            if let Some(before) = before {
                cell.raw = Some((before, raw_commit_rate_async(settings).await));
            }
            eprintln!(
                "  {:<24} ×{concurrency:<4} {:>8.1} wf/s{}{}",
                mode.label(),
                cell.rate(),
                cell.raw.map_or_else(String::new, |(b, a)| format!(
                    "  (raw {b:.0} / {a:.0} commits/s before / after)"
                )),
                if cell.errors > 0 { "  (errors)" } else { "" }
            );
            cells.push(cell);
        }
    }
    cells
}

async fn throughput_cell(settings: &Settings, mode: Mode, concurrency: usize) -> Cell {
    let measure = settings.measure;
    let db = mode.commit_mode().map(|_| settings.dir.join(format!("throughput-{concurrency}.db")));
    if let Some(db) = &db {
        remove_db(db);
    }
    let server = DevServer::start(DevServerConfig {
        // Locked: the clock follows the wall, so the 1 ms timer is a real 1 ms wait.
        time_skipping_locked: true,
        long_poll_timeout: Duration::from_secs(5),
        db_filename: db.clone(),
        commit_mode: mode.commit_mode().unwrap_or(CommitMode::Group),
        ..DevServerConfig::ephemeral()
    })
    .await
    .expect("start the devserver");
    let url = server.url();
    let load = Arc::new(Load {
        open: Semaphore::new(concurrency),
        next_id: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    // One connection per role, as a client process and a worker process would have.
    let (starters, workflows, activities) =
        (connect(&url).await, connect(&url).await, connect(&url).await);
    let pool = concurrency.min(settings.pool);
    let mut tasks = JoinSet::new();
    for _ in 0..pool {
        tasks.spawn(starter(starters.clone(), load.clone()));
        tasks.spawn(workflow_poller(workflows.clone(), load.clone()));
        tasks.spawn(activity_poller(activities.clone(), load.clone()));
    }

    let completed = || load.completed.load(Ordering::Relaxed);
    // Ramp: every one of the first `concurrency` workflows has finished, so the pipeline is
    // full. Probe: the steady rate over one more warm-up period sizes the measured run.
    let begun = Instant::now();
    let mut steady = load.wait(|n| begun.elapsed() >= WARMUP && n >= concurrency as u64).await;
    let (probe_first, probe_start) = (completed(), Instant::now());
    steady = steady && load.wait(|_| probe_start.elapsed() >= WARMUP).await;
    let probe_rate = (completed() - probe_first) as f64 / probe_start.elapsed().as_secs_f64();
    // Measure a fixed number of workflows, sized to take about `measure` and to span at least
    // two generations of the open set, since at high concurrency completions come in waves.
    let target =
        ((probe_rate * measure.as_secs_f64()).ceil() as u64).max(2 * concurrency as u64).max(10);
    let (first, start, cpu) = (completed(), Instant::now(), cpu_seconds());
    let stalled = !(steady && load.wait(|n| n >= first + target).await);
    let secs = start.elapsed().as_secs_f64();
    let cores = (cpu_seconds() - cpu) / secs;
    let workflows = completed() - first;

    tasks.shutdown().await;
    server.shutdown().await;
    if let Some(db) = &db {
        remove_db(db);
    }
    Cell {
        mode,
        concurrency,
        workflows,
        secs,
        cores,
        errors: load.errors.load(Ordering::Relaxed),
        first_error: load.first_error.lock().unwrap_or_else(|e| e.into_inner()).take(),
        stalled,
        raw: None,
    }
}

fn print_throughput(cells: &[Cell], settings: &Settings) {
    println!(
        "Throughput: start → StartTimer(1 ms) → TimerFired → ScheduleActivityTask → activity \
         completed → CompleteWorkflowExecution"
    );
    println!(
        "  in-process server, raw gRPC clients over loopback, 10 RPCs per workflow; client \
         pools of min(conc, {}) starters, workflow pollers and activity pollers",
        settings.pool
    );
    println!("  ≈latency: conc ÷ wf/s (Little's law); CPU: whole process, clients included");
    println!(
        "  raw commit/s: single-row INSERT per transaction, WAL, synchronous=FULL, same \
         directory; mean of {} s just before and {} s just after the cell (before/after)",
        RAW_COMMIT_SECS.as_secs_f64(),
        RAW_COMMIT_SECS.as_secs_f64()
    );
    println!();
    println!(
        "{:<24} {:>5} {:>9} {:>6} {:>9} {:>11} {:>5} {:>19} {:>15}",
        "mode",
        "conc",
        "measured",
        "secs",
        "wf/s",
        "≈latency",
        "CPU",
        "raw commit/s",
        "wf/s ÷ commit/s"
    );
    for c in cells {
        let (raw, ratio) = match (c.raw, c.raw_rate()) {
            (Some((before, after)), Some(mean)) => {
                (format!("{mean:.0} ({before:.0}/{after:.0})"), significant(c.rate() / mean))
            }
            _ => ("—".to_owned(), "—".to_owned()),
        };
        let latency = c.concurrency as f64 / c.rate() * 1000.0;
        println!(
            "{:<24} {:>5} {:>9} {:>6.2} {:>9.1} {:>8.1} ms {:>4.0}% {:>19} {:>15}",
            c.mode.label(),
            c.concurrency,
            c.workflows,
            c.secs,
            c.rate(),
            latency,
            c.cores * 100.0,
            raw,
            ratio
        );
    }
    for c in cells.iter().filter(|c| c.errors > 0 || c.stalled) {
        println!(
            "  ! {} ×{}: {} RPC errors{}; first: {}",
            c.mode.label(),
            c.concurrency,
            c.errors,
            if c.stalled { ", stalled" } else { "" },
            c.first_error.as_deref().unwrap_or("none")
        );
    }
    println!();
}

// ---- idle population: memory and recovery --------------------------------------------------

/// A `convo-devserver` child process; killed when dropped, so a failing bench leaves none
/// behind.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    /// Starts the real binary and waits for its "listening" line.
    fn spawn(db: Option<&Path>) -> Self {
        let mut cmd = Process::new(env!("CARGO_BIN_EXE_convo-devserver"));
        cmd.args(["--port", "0", "--log-level", "warn"]);
        if let Some(db) = db {
            cmd.arg("--db-filename").arg(db);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn convo-devserver");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let addr = line.trim().rsplit(' ').next().expect("an address").to_owned();
        assert!(line.contains("listening"), "unexpected first line from the devserver: {line:?}");
        Self { child, url: format!("http://{addr}") }
    }

    /// (VmRSS, VmHWM) in bytes.
    fn rss(&self) -> (u64, u64) {
        let path = format!("/proc/{}/status", self.child.id());
        let kib = |key: &str| {
            read_field(&path, key)
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        (kib("VmRSS"), kib("VmHWM"))
    }

    /// SIGKILL: no shutdown path runs, as in a crash.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct MemoryRow {
    label: &'static str,
    drive_secs: f64,
    before: u64,
    after: u64,
    peak: u64,
    running: i64,
    db_bytes: Option<u64>,
}

async fn idle_memory(db: Option<&Path>, count: u64) -> MemoryRow {
    let (row, server) = idle_population(db, count).await;
    server.kill();
    row
}

/// Starts the binary, brings `count` workflows to a pending 24 h timer, and reports its memory.
/// The process is handed back so recovery can kill it.
async fn idle_population(db: Option<&Path>, count: u64) -> (MemoryRow, ServerProcess) {
    let label = if db.is_some() { "file, group commit" } else { "in memory" };
    eprintln!("  idle population, {label}: driving {count} workflows to a 24 h timer");
    let server = ServerProcess::spawn(db);
    let mut client = connect(&server.url).await;
    client.get_system_info(GetSystemInfoRequest::default()).await.expect("GetSystemInfo");
    let (before, _) = server.rss();

    let begun = Instant::now();
    let timers = Arc::new(AtomicU64::new(0));
    let mut pollers = JoinSet::new();
    let worker = connect(&server.url).await;
    for _ in 0..IDLE_POLLERS {
        let (mut worker, timers) = (worker.clone(), timers.clone());
        pollers.spawn(async move {
            loop {
                let Ok(task) = worker.poll_workflow_task_queue(poll_workflow_request()).await
                else {
                    back_off().await;
                    continue;
                };
                let task = task.into_inner();
                if task.task_token.is_empty() {
                    continue;
                }
                let done = worker
                    .respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
                        namespace: NS.into(),
                        task_token: task.task_token,
                        commands: vec![timer(IDLE_TIMER)],
                        identity: "bench-worker".into(),
                        ..Default::default()
                    })
                    .await;
                if done.is_ok() {
                    timers.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let failed_starts = futures::stream::iter(0..count)
        .map(|i| {
            let mut client = client.clone();
            async move { client.start_workflow_execution(start_request(format!("idle-{i}"))).await }
        })
        .buffer_unordered(IDLE_STARTS_IN_FLIGHT)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    assert_eq!(failed_starts, 0, "some starts failed");
    let mut last = (0, Instant::now());
    while timers.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = timers.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(last.1.elapsed() < STALL, "stalled at {now} of {count} timers");
    }
    let drive_secs = begun.elapsed().as_secs_f64();
    pollers.shutdown().await;
    drop(worker);
    // Let the server retire the connection and the long polls the pollers left open.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after, peak) = server.rss();
    let running = count_running(&mut client).await;
    let row =
        MemoryRow { label, drive_secs, before, after, peak, running, db_bytes: db.map(db_bytes) };
    (row, server)
}

async fn count_running(client: &mut Client) -> i64 {
    client
        .count_workflow_executions(CountWorkflowExecutionsRequest {
            namespace: NS.into(),
            query: "ExecutionStatus=\"Running\"".into(),
        })
        .await
        .expect("CountWorkflowExecutions")
        .into_inner()
        .count
}

/// Three significant digits, however small: the ratios span several orders of magnitude.
fn significant(x: f64) -> String {
    if x <= 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print_memory(rows: &[MemoryRow], count: u64) {
    println!(
        "Memory: {count} workflows each waiting on a 24 h timer (convo-devserver child process, \
         VmRSS from /proc; goal < 1 KiB per idle workflow)"
    );
    println!();
    println!(
        "{:<20} {:>9} {:>11} {:>11} {:>11} {:>9} {:>13} {:>6} {:>11}",
        "mode",
        "running",
        "RSS before",
        "RSS after",
        "peak RSS",
        "drive",
        "per workflow",
        "goal",
        "on disk"
    );
    for r in rows {
        let per = r.after.saturating_sub(r.before) as f64 / count as f64;
        println!(
            "{:<20} {:>9} {:>11} {:>11} {:>11} {:>8.1}s {:>8.0} bytes {:>6} {:>11}",
            r.label,
            r.running,
            mib(r.before),
            mib(r.after),
            mib(r.peak),
            r.drive_secs,
            per,
            if per < 1024.0 { "met" } else { "missed" },
            r.db_bytes.map_or_else(|| "—".into(), mib)
        );
    }
    println!();
}

struct Recovery {
    db_bytes: u64,
    listening: Duration,
    system_info: Duration,
    namespace: Duration,
    count: Duration,
    running: i64,
    describe: Duration,
    rss: u64,
}

/// SIGKILLs the server holding the idle population, restarts it on the same file and times
/// each step until it serves reads of the recovered state.
async fn recovery(server: ServerProcess, db: &Path, count: u64) -> Recovery {
    eprintln!("  recovery: SIGKILL and restart on {}", db.display());
    server.kill();
    let db_bytes = db_bytes(db);
    let begun = Instant::now();
    let server = ServerProcess::spawn(Some(db));
    let listening = begun.elapsed();
    let mut client = connect(&server.url).await;
    client.get_system_info(GetSystemInfoRequest::default()).await.expect("GetSystemInfo");
    let system_info = begun.elapsed();
    client
        .describe_namespace(DescribeNamespaceRequest { namespace: NS.into(), ..Default::default() })
        .await
        .expect("DescribeNamespace");
    let namespace = begun.elapsed();
    let running = count_running(&mut client).await;
    let count_done = begun.elapsed();
    let sample = client
        .describe_workflow_execution(DescribeWorkflowExecutionRequest {
            namespace: NS.into(),
            execution: Some(WorkflowExecution {
                workflow_id: format!("idle-{}", count / 2),
                run_id: String::new(),
            }),
        })
        .await
        .expect("DescribeWorkflowExecution")
        .into_inner();
    let describe = begun.elapsed();
    let status = sample.workflow_execution_info.map_or(0, |i| i.status);
    assert_eq!(status, WorkflowExecutionStatus::Running as i32, "sample workflow not running");
    let (rss, _) = server.rss();
    server.kill();
    Recovery {
        db_bytes,
        listening,
        system_info,
        namespace,
        count: count_done,
        running,
        describe,
        rss,
    }
}

fn print_recovery(r: &Recovery, count: u64) {
    println!(
        "Recovery: SIGKILL, then restart on a {} file holding {count} open workflows \
         (times from spawn)",
        mib(r.db_bytes)
    );
    println!();
    let ms = |d: Duration| format!("{:>9.0} ms", d.as_secs_f64() * 1000.0);
    println!("  \"listening\" line on stdout          {}", ms(r.listening));
    println!("  GetSystemInfo answered               {}", ms(r.system_info));
    println!("  DescribeNamespace answered           {}", ms(r.namespace));
    println!("  CountWorkflowExecutions (Running)    {}   → {} of {count}", ms(r.count), r.running);
    println!("  DescribeWorkflowExecution (sample)   {}   → Running", ms(r.describe));
    println!("  RSS after recovery                   {:>12}", mib(r.rss));
    println!();
}
