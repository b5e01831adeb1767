//! RUNBOOK.md, tested: every step's command is run verbatim, with bash and the real
//! `temporal` CLI, against `convo serve` on the real Temporal dev server, and convo's state is
//! checked afterwards through its API, the webhooks it delivered, the ledger and the sandbox
//! provider.
//!
//! Run with `CONVO_TEST_BACKEND=temporal cargo test -p convo-tests --test runbook` (after
//! `eval "$(scripts/temporal-servers)"`). On the other backends every scenario records a skip;
//! the check that RUNBOOK.md's marked steps are exactly the tested ones runs everywhere.

mod doc;
mod find;
mod harness;
mod sends;
mod terminate;
mod workflow_tasks;
