//! End-to-end tests: the embedded devserver, a real SDK worker and a real SDK client, over
//! loopback gRPC. One binary, one module per feature (STYLE.md §4 item 16).
//!
//! Run with `cargo test -p convo-tests --test e2e` (add `-- --nocapture` to see the wall time
//! of the 24 h time-skipping test).

mod activities;
mod concurrency;
mod cost;
mod fixtures;
mod interaction;
mod lifecycle;
mod ops;
mod outbound;
mod regressions;
mod replay;
mod serve;
mod session_window;
mod signals_and_timers;
mod statuses;
mod support;
mod templates;
