//! RUNBOOK.md's commands, as the tests run them.
//!
//! A step's command is the fenced block whose info string carries `runbook:<step>`
//! (```` ```sh runbook:terminate ````; renderers show only the language). The tests run that
//! text verbatim, so the document and the tests cannot drift apart: [`STEPS`] lists the steps
//! the tests run, and `the_runbook_names_exactly_the_tested_steps` fails when the document
//! gains, loses or renames one, or uses a variable the tests do not set.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// Every step the tests run, by its block's name in RUNBOOK.md.
pub(crate) const STEPS: &[&str] = &[
    FIND_SESSION,
    FIND_CONVERSATION,
    DESCRIBE,
    STACK,
    HISTORY,
    RETRY_SEND,
    PAUSE,
    UNPAUSE,
    RESET,
    TERMINATE,
    LIST_STUCK,
];

/// Find a contact's session by address.
pub(crate) const FIND_SESSION: &str = "find-session";
/// Find a contact's conversations by address.
pub(crate) const FIND_CONVERSATION: &str = "find-conversation";
/// What a session is doing: pending activities and the pending workflow task.
pub(crate) const DESCRIBE: &str = "describe";
/// Where the workflow waits (`__stack_trace`).
pub(crate) const STACK: &str = "stack";
/// The history: why a workflow task failed.
pub(crate) const HISTORY: &str = "history";
/// Retry a failing send now.
pub(crate) const RETRY_SEND: &str = "retry-send";
/// Pause a runaway activity.
pub(crate) const PAUSE: &str = "pause";
/// Let a paused activity run again.
pub(crate) const UNPAUSE: &str = "unpause";
/// Reset a session to its last good workflow task.
pub(crate) const RESET: &str = "reset";
/// Terminate a session.
pub(crate) const TERMINATE: &str = "terminate";
/// Every stuck workflow, from visibility.
pub(crate) const LIST_STUCK: &str = "list-stuck";

/// The shell variables the commands may use; the tests set each one a step needs.
pub(crate) const VARIABLES: &[&str] = &["CONTACT", "SESSION", "ACTIVITY_ID"];

/// The marked blocks of a Markdown document, by step name.
#[derive(Debug, Clone)]
pub(crate) struct Runbook {
    blocks: BTreeMap<String, String>,
}

impl Runbook {
    /// RUNBOOK.md at the workspace root, read when the test runs (an edit needs no rebuild).
    pub(crate) fn load() -> anyhow::Result<Runbook> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../RUNBOOK.md");
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        Runbook::parse(&text)
    }

    /// The blocks of `markdown` marked `runbook:<step>`; a step named twice, or a block left
    /// open, is an error.
    pub(crate) fn parse(markdown: &str) -> anyhow::Result<Runbook> {
        let mut blocks = BTreeMap::new();
        let mut open: Option<(String, Vec<&str>)> = None;
        let mut in_other_block = false;
        for (n, line) in markdown.lines().enumerate() {
            let trimmed = line.trim_start();
            let fence = trimmed.starts_with("```");
            match (&mut open, fence) {
                (Some(_), true) => {
                    let (name, lines) = open.take().expect("matched Some");
                    let body = lines.join("\n");
                    if blocks.insert(name.clone(), body).is_some() {
                        bail!("RUNBOOK.md names the step {name:?} twice (line {})", n + 1);
                    }
                }
                (Some((_, lines)), false) => lines.push(line),
                (None, true) if in_other_block => in_other_block = false,
                (None, true) => {
                    let info = trimmed.trim_start_matches('`');
                    match info.split_whitespace().find_map(|w| w.strip_prefix("runbook:")) {
                        Some(name) => open = Some((name.to_owned(), Vec::new())),
                        None => in_other_block = true,
                    }
                }
                (None, false) => {}
            }
        }
        if let Some((name, _)) = open {
            bail!("RUNBOOK.md: the block of step {name:?} is never closed");
        }
        Ok(Runbook { blocks })
    }

    /// The command text of `step`.
    pub(crate) fn block(&self, step: &str) -> anyhow::Result<&str> {
        self.blocks
            .get(step)
            .map(String::as_str)
            .with_context(|| format!("RUNBOOK.md has no block marked runbook:{step}"))
    }

    /// Every marked step, sorted.
    pub(crate) fn steps(&self) -> impl Iterator<Item = &str> {
        self.blocks.keys().map(String::as_str)
    }
}

/// The `$NAME` / `${NAME}` variables `command` uses.
pub(crate) fn variables(command: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = rest
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// Runs without a server, on every backend: the document's marked blocks are exactly the
/// steps the tests run, each a `temporal` command using only the variables the tests set.
#[test]
fn the_runbook_names_exactly_the_tested_steps() -> anyhow::Result<()> {
    let runbook = Runbook::load()?;
    let documented: Vec<&str> = runbook.steps().collect();
    let mut tested = STEPS.to_vec();
    tested.sort_unstable();
    assert_eq!(documented, tested, "RUNBOOK.md's marked steps and the tests' steps differ");
    for step in STEPS {
        let block = runbook.block(step)?;
        let commands: Vec<&str> =
            block.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        assert!(!commands.is_empty(), "step {step} has no command");
        assert!(
            commands[0].starts_with("temporal "),
            "step {step} runs `temporal`, not {:?}",
            commands[0]
        );
        for name in variables(block) {
            assert!(
                VARIABLES.contains(&name.as_str()),
                "step {step} uses ${name}, which the tests do not set (known: {VARIABLES:?})"
            );
        }
    }
    Ok(())
}

#[test]
fn marked_blocks_are_read_and_others_ignored() -> anyhow::Result<()> {
    let markdown = "intro\n```sh\ntemporal other\n```\n```sh runbook:one\ntemporal a \"$SESSION\"\n  --flag\n```\n";
    let runbook = Runbook::parse(markdown)?;
    assert_eq!(runbook.block("one")?, "temporal a \"$SESSION\"\n  --flag");
    assert_eq!(runbook.steps().collect::<Vec<_>>(), ["one"]);
    assert_eq!(
        variables("a $SESSION ${ACTIVITY_ID} '$CONTACT' $SESSION"),
        ["SESSION", "ACTIVITY_ID", "CONTACT"]
    );
    assert!(Runbook::parse("```sh runbook:x\n```\n```sh runbook:x\n```\n").is_err());
    assert!(Runbook::parse("```sh runbook:x\ntemporal\n").is_err());
    Ok(())
}
