//! The devserver's visibility queries (what SDKs, the `temporal` CLI and the Web UI send to
//! ListWorkflowExecutions and CountWorkflowExecutions): any string parses or is refused with
//! an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = convo_devserver::fuzzing::visibility_query(query);
    }
});
