//! The persistence seam.
//!
//! The engine keeps every execution's mutable state in memory (as Temporal's history service
//! keeps its mutable-state cache) and, after each state transition, submits what changed: the
//! new history events of each touched run and a fresh snapshot of its mutable state. A store
//! numbers submissions and reports, through a watch channel, the highest number that is
//! durable. The server answers an RPC only once everything submitted before the answer is
//! durable, so no state change a client has been told about can be lost.
//!
//! [`SqliteStore`] writes on a dedicated thread. With group commit it drains every queued
//! submission into one transaction, so many concurrent RPCs share one fsync; without it, each
//! submission is its own transaction (kept for the benchmark's comparison).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread,
};

use tokio::sync::watch;

use crate::clock::Nanos;

/// What one run contributes to a submission.
#[derive(Debug)]
pub struct RunWrite {
    /// Namespace of the run.
    pub namespace: String,
    /// Workflow id.
    pub workflow_id: String,
    /// Run id.
    pub run_id: String,
    /// Whether the run is still open.
    pub running: bool,
    /// Whether this run is now the workflow id's current run.
    pub current: bool,
    /// Encoded mutable state.
    pub snapshot: Vec<u8>,
    /// Id of the first event in `new_events`.
    pub first_new_event_id: i64,
    /// Encoded `HistoryEvent`s appended since the last submission.
    pub new_events: Vec<Vec<u8>>,
}

/// One state transition's changes.
#[derive(Debug)]
pub struct Batch {
    /// Changed runs.
    pub runs: Vec<RunWrite>,
    /// The virtual clock at the transition, so time never runs backwards after a restart.
    pub clock: Nanos,
    /// The whole search-attribute registry, (namespace, name, IndexedValueType), when it changed.
    pub search_attributes: Option<Vec<(String, String, i32)>>,
    /// Namespaces registered at run time, when one was added.
    pub namespaces: Option<Vec<NamespaceRecord>>,
}

/// A run as loaded on start. Its events stay in the store; the engine reads back the
/// histories it needs (see [`Store::history`]).
#[derive(Debug)]
pub struct LoadedRun {
    /// Encoded mutable state.
    pub snapshot: Vec<u8>,
    /// How many history events the run has.
    pub event_count: usize,
    /// Their total encoded size.
    pub event_bytes: usize,
    /// The last event, encoded.
    pub last_event: Option<Vec<u8>>,
}

/// Everything a store holds, as loaded on start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every run.
    pub runs: Vec<LoadedRun>,
    /// (namespace, workflow id, run id) of each workflow id's current run.
    pub current: Vec<(String, String, String)>,
    /// The last persisted virtual time.
    pub clock: Option<Nanos>,
    /// Registered custom search attributes: (namespace, name, IndexedValueType).
    pub search_attributes: Vec<(String, String, i32)>,
    /// Namespaces registered at run time.
    pub namespaces: Vec<NamespaceRecord>,
}

/// A namespace registered at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRecord {
    /// Its name.
    pub name: String,
    /// What the registration said of it.
    pub description: String,
    /// How long it keeps closed runs, in seconds, as registered (reported, not enforced).
    pub retention_secs: i64,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("sqlite store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread stopped after a failed write; nothing further can be made durable.
    #[error("the store's writer failed; the server can no longer make changes durable")]
    WriterFailed,
}

/// Where committed state goes.
pub trait Store: Send + Sync + 'static {
    /// Queues a batch and returns its sequence number. Called with the engine lock held, in
    /// commit order, so it must not block on I/O.
    fn submit(&self, batch: Batch) -> u64;

    /// The highest durable sequence number.
    fn durable(&self) -> watch::Receiver<u64>;

    /// Whether writes have failed for good.
    fn failed(&self) -> bool;

    /// Whether submissions are kept at all (the engine skips encoding for a memory store).
    fn persistent(&self) -> bool;

    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Flushes what is queued and releases the storage. Later submissions fail.
    fn close(&self) {}

    /// A run's committed history events, in order, for a store that can read them back;
    /// the engine then keeps an idle run's history out of memory once it is durable.
    /// `Ok(None)` for a store that keeps no histories ([`Store::reads_history`] is false);
    /// an error if reading failed.
    fn history(&self, _run_id: &str) -> Result<Option<Vec<Vec<u8>>>, String> {
        Ok(None)
    }

    /// Whether [`Store::history`] reads histories back.
    fn reads_history(&self) -> bool {
        false
    }
}

/// Keeps nothing: state lives and dies with the process, as `temporal server start-dev`
/// without `--db-filename`.
#[derive(Debug)]
pub struct MemoryStore {
    durable: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { durable: watch::channel(u64::MAX).0 }
    }
}

impl Store for MemoryStore {
    fn submit(&self, _batch: Batch) -> u64 {
        0
    }

    fn durable(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    fn failed(&self) -> bool {
        false
    }

    fn persistent(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

/// How the SQLite writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// Everything queued goes into one transaction: one fsync for many RPCs.
    Group,
    /// One transaction per submission.
    PerBatch,
}

/// A SQLite file (WAL, `synchronous=FULL`) written by a dedicated thread.
pub struct SqliteStore {
    tx: std::sync::Mutex<Option<mpsc::Sender<(u64, Batch)>>>,
    /// A second connection for reading histories back. In WAL mode it sees every committed
    /// transaction and never waits for the writer.
    reader: std::sync::Mutex<Option<rusqlite::Connection>>,
    writer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
    seq: AtomicU64,
    durable: watch::Receiver<u64>,
    failed: Arc<AtomicBool>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS executions (
        run_id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        running INTEGER NOT NULL,
        snapshot BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (run_id, event_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS current_runs (
        namespace TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (namespace, workflow_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS namespaces (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        retention_secs INTEGER NOT NULL DEFAULT 86400
    );
    CREATE TABLE IF NOT EXISTS search_attributes (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        type INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
    ) WITHOUT ROWID;
";

impl SqliteStore {
    /// Opens (or creates) the file and loads what it holds.
    pub fn open(path: &Path, mode: CommitMode) -> Result<(Self, Loaded), StoreError> {
        let err = |source| StoreError::Sqlite { path: path.to_owned(), source };
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        migrate(&conn).map_err(err)?;
        let loaded = load(&conn).map_err(err)?;
        let reader = rusqlite::Connection::open(path).map_err(err)?;
        reader.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        let (tx, rx) = mpsc::channel::<(u64, Batch)>();
        let (durable_tx, durable) = watch::channel(0u64);
        let failed = Arc::new(AtomicBool::new(false));
        let writer_failed = failed.clone();
        let file = path.to_owned();
        let handle = thread::Builder::new()
            .name("devserver-sqlite".into())
            .spawn(move || writer(conn, rx, durable_tx, writer_failed, mode, file))
            .expect("spawn sqlite writer");
        let store = Self {
            tx: std::sync::Mutex::new(Some(tx)),
            reader: std::sync::Mutex::new(Some(reader)),
            writer: std::sync::Mutex::new(Some(handle)),
            seq: AtomicU64::new(0),
            durable,
            failed,
        };
        Ok((store, loaded))
    }
}

impl Store for SqliteStore {
    fn submit(&self, batch: Batch) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|tx| tx.send((seq, batch)).is_ok());
        if !sent {
            self.failed.store(true, Ordering::SeqCst);
        }
        seq
    }

    fn durable(&self) -> watch::Receiver<u64> {
        self.durable.clone()
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn persistent(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn close(&self) {
        // Dropping the sender ends the writer's loop once the queue is drained; the
        // connection closes with the thread, which checkpoints and removes the WAL.
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(handle) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
        drop(self.reader.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    fn reads_history(&self) -> bool {
        true
    }

    fn history(&self, run_id: &str) -> Result<Option<Vec<Vec<u8>>>, String> {
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let read = |conn: &rusqlite::Connection| -> rusqlite::Result<Vec<Vec<u8>>> {
            let mut stmt =
                conn.prepare_cached("SELECT data FROM events WHERE run_id = ?1 ORDER BY event_id")?;
            stmt.query_map([run_id], |r| r.get(0))?.collect()
        };
        let conn = reader.as_ref().ok_or("the store's reader is closed")?;
        read(conn).map(Some).map_err(|e| e.to_string())
    }
}

fn load(conn: &rusqlite::Connection) -> rusqlite::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut runs = std::collections::HashMap::<String, LoadedRun>::new();
    let mut stmt = conn.prepare("SELECT run_id, snapshot FROM executions")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))? {
        let (run_id, snapshot) = row?;
        runs.insert(
            run_id,
            LoadedRun { snapshot, event_count: 0, event_bytes: 0, last_event: None },
        );
    }
    // One pass over the events, borrowing each blob: only a run's last event is copied out.
    let mut stmt = conn.prepare("SELECT run_id, data FROM events ORDER BY run_id, event_id")?;
    let mut rows = stmt.query([])?;
    let mut reading: Option<String> = None;
    let mut last = Vec::new();
    let finish = |runs: &mut std::collections::HashMap<String, LoadedRun>,
                  run_id: Option<String>,
                  last: &[u8]| {
        if let Some(run) = run_id.and_then(|id| runs.get_mut(&id)) {
            run.last_event = Some(last.to_vec());
        }
    };
    let conversion =
        |i: usize, ty, e| rusqlite::Error::FromSqlConversionFailure(i, ty, Box::new(e));
    while let Some(row) = rows.next()? {
        let run_id =
            row.get_ref(0)?.as_str().map_err(|e| conversion(0, rusqlite::types::Type::Text, e))?;
        let data =
            row.get_ref(1)?.as_blob().map_err(|e| conversion(1, rusqlite::types::Type::Blob, e))?;
        if reading.as_deref() != Some(run_id) {
            finish(&mut runs, reading.take(), &last);
            reading = Some(run_id.to_owned());
        }
        if let Some(run) = runs.get_mut(run_id) {
            run.event_count += 1;
            run.event_bytes += data.len();
        }
        last.clear();
        last.extend_from_slice(data);
    }
    finish(&mut runs, reading, &last);
    loaded.runs = runs.into_values().collect();
    let mut stmt = conn.prepare("SELECT namespace, workflow_id, run_id FROM current_runs")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        loaded.current.push(row?);
    }
    let mut stmt = conn.prepare("SELECT name, description, retention_secs FROM namespaces")?;
    let record = |r: &rusqlite::Row<'_>| {
        Ok(NamespaceRecord { name: r.get(0)?, description: r.get(1)?, retention_secs: r.get(2)? })
    };
    for row in stmt.query_map([], record)? {
        loaded.namespaces.push(row?);
    }
    let mut stmt = conn.prepare("SELECT namespace, name, type FROM search_attributes")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        loaded.search_attributes.push(row?);
    }
    loaded.clock = conn
        .query_row("SELECT value FROM meta WHERE key = 'clock'", [], |r| r.get(0))
        .map(Some)
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
    Ok(loaded)
}

/// Brings a file written by an earlier devserver up to the current schema.
fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut columns = conn.prepare("SELECT name FROM pragma_table_info('namespaces')")?;
    let names: Vec<String> =
        columns.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    if !names.iter().any(|n| n == "retention_secs") {
        // Namespaces registered before retention was recorded keep the default, one day.
        conn.execute_batch(
            "ALTER TABLE namespaces ADD COLUMN retention_secs INTEGER NOT NULL DEFAULT 86400",
        )?;
    }
    Ok(())
}

fn write(tx: &rusqlite::Transaction<'_>, batch: &Batch) -> rusqlite::Result<()> {
    let mut exec = tx.prepare_cached(
        "INSERT INTO executions (run_id, namespace, workflow_id, running, snapshot) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (run_id) DO UPDATE SET running = excluded.running, snapshot = excluded.snapshot",
    )?;
    let mut event = tx.prepare_cached(
        "INSERT OR REPLACE INTO events (run_id, event_id, data) VALUES (?1, ?2, ?3)",
    )?;
    let mut current = tx.prepare_cached(
        "INSERT OR REPLACE INTO current_runs (namespace, workflow_id, run_id) VALUES (?1, ?2, ?3)",
    )?;
    for run in &batch.runs {
        exec.execute(rusqlite::params![
            run.run_id,
            run.namespace,
            run.workflow_id,
            run.running,
            run.snapshot
        ])?;
        for (i, data) in run.new_events.iter().enumerate() {
            event.execute(rusqlite::params![
                run.run_id,
                run.first_new_event_id + i as i64,
                data
            ])?;
        }
        if run.current {
            current.execute(rusqlite::params![run.namespace, run.workflow_id, run.run_id])?;
        }
    }
    tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('clock', ?1)")?
        .execute([batch.clock])?;
    if let Some(namespaces) = &batch.namespaces {
        let mut ins = tx.prepare_cached(
            "INSERT OR REPLACE INTO namespaces (name, description, retention_secs) VALUES (?1, ?2, ?3)",
        )?;
        for ns in namespaces {
            ins.execute(rusqlite::params![ns.name, ns.description, ns.retention_secs])?;
        }
    }
    if let Some(attrs) = &batch.search_attributes {
        tx.execute("DELETE FROM search_attributes", [])?;
        let mut ins = tx.prepare_cached(
            "INSERT INTO search_attributes (namespace, name, type) VALUES (?1, ?2, ?3)",
        )?;
        for (ns, name, ty) in attrs {
            ins.execute(rusqlite::params![ns, name, ty])?;
        }
    }
    Ok(())
}

fn writer(
    mut conn: rusqlite::Connection,
    rx: mpsc::Receiver<(u64, Batch)>,
    durable: watch::Sender<u64>,
    failed: Arc<AtomicBool>,
    mode: CommitMode,
    path: PathBuf,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        if mode == CommitMode::Group {
            while batches.len() < 4096 {
                match rx.try_recv() {
                    Ok(b) => batches.push(b),
                    Err(_) => break,
                }
            }
        }
        let result = conn.transaction().and_then(|tx| {
            for (_, b) in &batches {
                write(&tx, b)?;
            }
            tx.commit()
        });
        match result {
            Ok(()) => {
                let last = batches.last().map_or(0, |(s, _)| *s);
                durable.send_replace(last);
            }
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "devserver store write failed; refusing further changes");
                failed.store(true, Ordering::SeqCst);
                durable.send_modify(|_| {}); // wake waiters so they see the failure
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data file from before namespaces had a recorded retention opens, keeps its
    /// namespaces, and gives them the default retention.
    #[test]
    fn a_file_without_namespace_retention_is_migrated() {
        let dir =
            std::env::temp_dir().join(format!("convo-devserver-migrate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE namespaces (name TEXT PRIMARY KEY, description TEXT NOT NULL);
                 INSERT INTO namespaces VALUES ('tenant-a', 'old');",
            )
            .unwrap();
        }
        let (_store, loaded) = SqliteStore::open(&path, CommitMode::PerBatch).unwrap();
        assert_eq!(
            loaded.namespaces,
            [NamespaceRecord {
                name: "tenant-a".into(),
                description: "old".into(),
                retention_secs: 86_400
            }]
        );
        drop(_store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
