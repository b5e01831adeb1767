#!/usr/bin/env bash
# Runs the integration tests that ship inside the published `temporalio-sdk-core` crate
# against the convo devserver, and prints pass/fail/ignored counts per area.
#
# The crate source is taken from the cargo registry (it is a dependency of this workspace)
# and copied to target/conformance/sdk-core. Nothing from it is ever committed. The copy gets
# three build fixes, none of which touches a test's logic:
#   1. an empty [workspace] table, so cargo does not treat it as a member of ours;
#   2. the `temporalio-sdk` dev-dependency that publishing stripped from the manifest
#      (upstream's Cargo.toml has it as a path dependency), plus a [patch] so that crate uses
#      this very copy of temporalio-sdk-core, as upstream's path dependency does;
#   3. standalone_activity_tests.rs passes a `Uuid` where published temporalio-client 1.1.1
#      wants `impl Into<String>`; `.to_string()` is appended so the target compiles.
#
# Usage: devserver/conformance/sdk-core-integ.sh [FILTER...]
#   FILTER  substrings of test paths to run (default: every test in the selected areas)
# Environment:
#   AREAS         space-separated areas to run (default: the eight core areas:
#                 workflow activity signal query update timer continue-as-new visibility);
#                 "other" selects every other module (grouped as "other:<module>"), "all" both
#   JOBS          tests run in parallel, each in its own process (default 4)
#   TEST_TIMEOUT  seconds before one test is killed and counted as a timeout (default 120)
#   PORT          devserver port (default: a free one)
#   FRESH=1       re-copy the crate source (a rebuild of the test target follows)
#   DEVSERVER_BIN use this devserver binary instead of building it
#   RESULTS_DIR   where logs and results.tsv go (default target/conformance/sdk-core-results)
set -euo pipefail

SDK_CORE_VERSION=0.10.1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$ROOT/target/conformance"
SRC="$WORK/sdk-core"
OUT="${RESULTS_DIR:-$WORK/sdk-core-results}"
TEST_TARGET_DIR="$WORK/cargo-target"
JOBS="${JOBS:-4}"
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"
AREAS="${AREAS:-workflow activity signal query update timer continue-as-new visibility}"
FEATURES="temporalio-common/serde_serialize,test-utilities,ephemeral-server,otel,temporalio-common/vendored-protox"
STAMP="sdk-core-$SDK_CORE_VERSION+convo-fixes-1"

log() { printf '[sdk-core-integ] %s\n' "$*" >&2; }

# --- 1. scratch copy of the published crate --------------------------------------------
find_crate() {
    local d
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"temporalio-sdk-core-$SDK_CORE_VERSION"; do
        [[ -f "$d/Cargo.toml" ]] && { echo "$d"; return 0; }
    done
    return 1
}
if [[ "${FRESH:-0}" == 1 || "$(cat "$SRC/.convo-stamp" 2>/dev/null || true)" != "$STAMP" ]]; then
    CRATE="$(find_crate || { cargo fetch --manifest-path "$ROOT/Cargo.toml" >&2 && find_crate; })" ||
        { log "temporalio-sdk-core $SDK_CORE_VERSION is not in the cargo registry"; exit 1; }
    log "copying $CRATE -> $SRC"
    rm -rf "$SRC"
    mkdir -p "$WORK"
    cp -a "$CRATE" "$SRC"
    chmod -R u+w "$SRC"
    cat >>"$SRC/Cargo.toml" <<EOF

# --- added by devserver/conformance/sdk-core-integ.sh ---
[workspace]

[dev-dependencies.temporalio-sdk]
version = "=1.1.1"
features = ["experimental", "opentelemetry", "testing"]

[patch.crates-io]
temporalio-sdk-core = { path = "." }
EOF
    sed -i 's/^        Uuid::new_v4(),$/        Uuid::new_v4().to_string(),/' \
        "$SRC/tests/integ_tests/standalone_activity_tests.rs"
    echo "$STAMP" >"$SRC/.convo-stamp"
fi

# --- 2. build the integ_tests target (own target dir: no lock fights with the main one) ---
log "building integ_tests (CARGO_TARGET_DIR=$TEST_TARGET_DIR)"
build_start=$SECONDS
build_log="$WORK/sdk-core-build.log"
(cd "$SRC" && CARGO_TARGET_DIR="$TEST_TARGET_DIR" \
    cargo test --features "$FEATURES" --test integ_tests --no-run) >"$build_log" 2>&1 ||
    { tail -40 "$build_log" >&2; log "build failed (full log: $build_log)"; exit 1; }
TEST_BIN="$(sed -n 's/^ *Executable tests\/main.rs (\(.*\))$/\1/p' "$build_log" | tail -1)"
[[ -x "$TEST_BIN" ]] || { log "could not find the integ_tests executable in $build_log"; exit 1; }
log "integ_tests built in $((SECONDS - build_start))s: $TEST_BIN"

# --- 3. the devserver ------------------------------------------------------------------
if [[ -z "${DEVSERVER_BIN:-}" ]]; then
    DEVSERVER_BIN="$ROOT/target/debug/convo-devserver"
    log "building convo-devserver"
    (cd "$ROOT" && env -u CARGO_TARGET_DIR cargo build -q -p convo-devserver --bin convo-devserver) >&2
fi
[[ -x "$DEVSERVER_BIN" ]] || { log "no devserver binary at $DEVSERVER_BIN"; exit 1; }
if [[ -z "${PORT:-}" ]]; then
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 17233)"
fi
rm -rf "$OUT"
mkdir -p "$OUT/logs"
# The flags sdk-core's harness passes to `temporal server start-dev` (tests/common/mod.rs,
# integ_dev_server_config), plus the search attributes other SDK suites pre-register.
"$DEVSERVER_BIN" server start-dev --port "$PORT" --ip 127.0.0.1 --namespace default --headless \
    --log-format pretty --log-level "${DEVSERVER_LOG_LEVEL:-warn}" \
    --dynamic-config-value system.enableEagerWorkflowStart=true \
    --dynamic-config-value frontend.workerVersioningWorkflowAPIs=true \
    --dynamic-config-value frontend.workerVersioningDataAPIs=true \
    --dynamic-config-value system.enableDeploymentVersions=true \
    --dynamic-config-value frontend.WorkerHeartbeatsEnabled=true \
    --dynamic-config-value frontend.ListWorkersEnabled=true \
    --dynamic-config-value history.enableWorkflowTaskCompletionPagination=true \
    --dynamic-config-value system.transactionSizeLimit=33554432 \
    --search-attribute CustomTextField=Text --search-attribute CustomIntField=Int \
    --search-attribute CustomKeywordField=Keyword --search-attribute CustomBoolField=Bool \
    --search-attribute CustomDoubleField=Double --search-attribute CustomDatetimeField=Datetime \
    >"$OUT/devserver.log" 2>&1 &
DEVSERVER_PID=$!
stop_devserver() {
    if kill -0 "$DEVSERVER_PID" 2>/dev/null; then
        kill "$DEVSERVER_PID" 2>/dev/null || true
        wait "$DEVSERVER_PID" 2>/dev/null || true
    fi
}
trap stop_devserver EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$DEVSERVER_PID" 2>/dev/null || { cat "$OUT/devserver.log" >&2; log "devserver exited"; exit 1; }
    sleep 0.1
done
log "devserver pid $DEVSERVER_PID on 127.0.0.1:$PORT"

# --- 4. choose tests -------------------------------------------------------------------
"$TEST_BIN" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | sort >"$OUT/all.txt"
"$TEST_BIN" --list --ignored --format terse 2>/dev/null | sed -n 's/: test$//p' | sort >"$OUT/ignored.txt"
# Tests whose source marks them CloudTestExclusionReason::DoesNotUseServer (canned histories,
# mocks): they pass or fail regardless of the server, so the summary counts them apart.
python3 - "$SRC/tests" >"$OUT/no-server.txt" <<'PY'
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
for f in sorted(root.rglob("*.rs")):
    text = f.read_text()
    for m in re.finditer(r"CloudTestExclusionReason::DoesNotUseServer\)\]", text):
        fn = re.search(r"\bfn\s+(\w+)", text[m.end():])
        if fn:
            mod = f.relative_to(root).with_suffix("").as_posix().replace("/", "::")
            print(f"{mod}::{fn.group(1)}")
PY
python3 - "$OUT" "$SRC" "$AREAS" "$@" >"$OUT/plan.tsv" <<'PY'
import os, sys
out, src, areas, filters = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
wf_modules = {f[:-3] for f in os.listdir(f"{src}/tests/integ_tests/workflow_tests") if f.endswith(".rs")}
ignored = set(open(f"{out}/ignored.txt").read().split())
def area(t):
    p = t.split("::")
    mod = p[1] if len(p) > 2 else ""
    # p[2] is a submodule only if workflow_tests/<p[2]>.rs exists (else it is an rstest fn)
    sub = p[2] if mod == "workflow_tests" and len(p) > 3 and p[2] in wf_modules else ""
    name = p[-1]
    if mod == "workflow_tests":
        if sub == "activities": return "activity"
        if sub == "signals": return "signal"
        if sub == "queries": return "query"
        if sub == "timers": return "timer"
        if sub == "continue_as_new": return "continue-as-new"
        if sub == "upsert_search_attrs": return "visibility"
        if sub == "client_interactions":
            if name in ("test_typed_signal", "test_async_signal"): return "signal"
            if name in ("test_typed_query", "test_fallible_query"): return "query"
            if name in ("test_typed_update", "test_update_validation"): return "update"
            return "workflow"
        if sub in ("", "cancel_wf", "cancel_external", "determinism", "eager", "event_groups",
                   "modify_wf_properties", "patches", "stickyness", "priority"):
            return "workflow"
        return f"other:workflow_tests::{sub}"
    if mod in ("heartbeat_tests", "async_activity_client_tests"): return "activity"
    if mod == "queries_tests": return "query"
    if mod == "update_tests": return "update"
    if mod == "visibility_tests": return "visibility"
    if mod == "workflow_client_tests":
        return "visibility" if "list_workflows" in t else "workflow"
    if mod == "pagination_tests": return "workflow"
    return f"other:{mod or 'integ_tests'}"
def excluded(t):
    # Environment: these download Temporal CLI / Java test server binaries, or need Docker,
    # Prometheus or an OTel collector.
    if "::ephemeral_server_tests::" in t: return "downloads server binaries"
    if "docker_" in t: return "needs Docker/Prometheus/OTel collector"
    return None
for t in open(f"{out}/all.txt").read().split():
    a = area(t)
    if "all" not in areas and a not in areas and not ("other" in areas and a.startswith("other:")):
        continue
    if filters and not any(f in t for f in filters): continue
    why = excluded(t)
    status = f"excluded\t{why}" if why else ("ignored\t#[ignore]" if t in ignored else "run\t")
    print(f"{a}\t{t}\t{status}")
PY
n_run=$(awk -F'\t' '$3=="run"' "$OUT/plan.tsv" | wc -l)
log "running $n_run tests, $JOBS at a time, ${TEST_TIMEOUT}s each (logs: $OUT/logs)"

# --- 5. run, one process per test so a hang is bounded ---------------------------------
export TEMPORAL_SERVICE_ADDRESS="http://127.0.0.1:$PORT"
export TEMPORAL_NAMESPACE=default
export INTEG_TEMPORAL_DEV_SERVER_ON=true # what sdk-core's runner sets for a CLI dev server
unset TEMPORAL_TEST_ENV_CONFIG_SERVER TEMPORAL_CLOUD_ADDRESS TEMPORAL_USE_TLS TEMPORAL_API_KEY_PATH
run_one() {
    local t="$1" log status start rc
    log="$OUT/logs/${t//::/.}.log"
    start=$SECONDS
    rc=0
    (cd "$SRC" && timeout -k 10 "$TEST_TIMEOUT" "$TEST_BIN" --exact "$t" --test-threads 1) >"$log" 2>&1 || rc=$?
    if [[ $rc == 0 ]] && grep -q '^test result: ok. 1 passed' "$log"; then status=passed
    elif [[ $rc == 124 || $rc == 137 ]]; then status=timeout
    else status=failed; fi
    printf '%s\t%s\t%s\n' "$t" "$status" "$((SECONDS - start))" >>"$OUT/results.tsv"
}
export -f run_one
export OUT SRC TEST_BIN TEST_TIMEOUT
: >"$OUT/results.tsv"
run_start=$SECONDS
awk -F'\t' '$3=="run"{print $2}' "$OUT/plan.tsv" | xargs -r -P "$JOBS" -I{} bash -c 'run_one "$1"' _ {}
run_secs=$((SECONDS - run_start))
if ! kill -0 "$DEVSERVER_PID" 2>/dev/null; then
    log "WARNING: the devserver died during the run (see $OUT/devserver.log)"
fi
stop_devserver
trap - EXIT

# --- 6. summary ------------------------------------------------------------------------
python3 - "$OUT" "$run_secs" <<'PY'
import re, sys
out, secs = sys.argv[1], sys.argv[2]
res = {}
for line in open(f"{out}/results.tsv"):
    t, st, s = line.rstrip("\n").split("\t")
    res[t] = st
no_server = [l.strip() for l in open(f"{out}/no-server.txt") if l.strip()]
def uses_server(t):  # rstest cases add `::case_…` segments under the function's path
    return not any(t == n or t.startswith(n + "::") for n in no_server)
order = ["workflow", "activity", "signal", "query", "update", "timer", "continue-as-new", "visibility"]
rows = {}
for line in open(f"{out}/plan.tsv"):
    a, t, kind, why = line.rstrip("\n").split("\t")
    st = res.get(t, "not-run") if kind == "run" else kind
    r = rows.setdefault(a, {"passed": 0, "failed": 0, "timeout": 0, "ignored": 0, "excluded": 0,
                            "not-run": 0, "srv_pass": 0, "srv_total": 0})
    r[st] += 1
    if kind == "run" and uses_server(t):
        r["srv_total"] += 1
        r["srv_pass"] += st == "passed"
areas = [a for a in order if a in rows] + sorted(a for a in rows if a not in order)
hdr = f"{'area':<44}{'passed':>7}{'failed':>7}{'timeout':>8}{'ignored':>8}{'excluded':>9}   server-backed passed"
print("\n" + hdr + "\n" + "-" * len(hdr))
tot = {}
for a in areas:
    r = rows[a]
    for k, v in r.items(): tot[k] = tot.get(k, 0) + v
    print(f"{a:<44}{r['passed']:>7}{r['failed']:>7}{r['timeout']:>8}{r['ignored']:>8}{r['excluded']:>9}   {r['srv_pass']}/{r['srv_total']}")
print("-" * len(hdr))
print(f"{'total':<44}{tot['passed']:>7}{tot['failed']:>7}{tot['timeout']:>8}{tot['ignored']:>8}{tot['excluded']:>9}   {tot['srv_pass']}/{tot['srv_total']}")
print(f"\n(run took {secs}s; 'server-backed' leaves out tests the crate marks DoesNotUseServer)")
bad = sorted(t for t, st in res.items() if st != "passed")
if bad:
    print("\nfailures and timeouts (first panic line; full logs in " + out + "/logs):")
    for t in bad:
        log = open(f"{out}/logs/{t.replace('::', '.')}.log", errors="replace").read()
        m = re.search(r"panicked at [^\n]*\n([^\n]*)", log)
        why = m.group(1).strip()[:200] if m else ("timeout" if res[t] == "timeout" else "(no panic message)")
        print(f"  {res[t]:<8}{t}\n          {why}")
PY
