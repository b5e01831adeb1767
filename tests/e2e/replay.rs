//! Replay: recorded histories (`tests/histories/*.json`, written by the e2e tests with
//! `CONVO_RECORD_HISTORIES=1`) run through the SDK's `WorkflowReplayer` against today's workflow
//! code. A change that would break running sessions or conversations fails here, in CI, before
//! it reaches a worker.
//!
//! Re-recording overwrites `<name>.json`; the histories earlier code wrote are kept beside them
//! under the date they were retired (`2026-12-01_<name>.json`: before the `ops-visibility`
//! patch), so workflows started by every released version keep replaying.

use std::path::{Path, PathBuf};

use anyhow::Context;
use convo_workflows::{OutboundConversationWorkflow, SessionWindowWorkflow};
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

/// A replayer with both of convo's workflows registered.
pub(crate) fn replayer() -> anyhow::Result<WorkflowReplayer> {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<SessionWindowWorkflow>()?
        .register_workflow::<OutboundConversationWorkflow>()?
        .build();
    Ok(WorkflowReplayer::new(options)?)
}

fn recorded() -> anyhow::Result<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[tokio::test]
async fn recorded_histories_replay_against_current_workflows() -> anyhow::Result<()> {
    let files = recorded()?;
    anyhow::ensure!(files.len() >= 6, "expected the recorded histories, found {files:?}");
    let replayer = replayer()?;
    for file in files {
        let bytes = std::fs::read(&file)?;
        let history =
            WorkflowHistory::from_json(&bytes).with_context(|| file.display().to_string())?;
        replayer
            .replay_workflow(history)
            .await
            .with_context(|| format!("{} no longer replays", file.display()))?;
    }
    Ok(())
}

/// The replayer really checks: the same history with one activity renamed, as a careless
/// change to the workflow would produce, is refused as nondeterministic.
#[tokio::test]
async fn a_changed_command_sequence_is_caught() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories/session_expired.json");
    let text = std::fs::read_to_string(&path)?;
    let tampered = text.replacen("\"emit_webhook\"", "\"send_message\"", 1);
    anyhow::ensure!(tampered != text, "the fixture has no emit_webhook activity");
    let history = WorkflowHistory::from_json(tampered.as_bytes())?;
    let outcome = replayer()?.replay_workflow(history).await;
    anyhow::ensure!(outcome.is_err(), "a renamed activity replayed cleanly");
    Ok(())
}
