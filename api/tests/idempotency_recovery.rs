//! Idempotency-Key recovery over HTTP (issue #10): a client that hangs up mid-request, a retry
//! that arrives while the first request still runs, and a claim left behind by a process that
//! died. Each time the retry gets the one answer of the one run, and the provider sees one send.

mod support;

use std::time::{Duration, Instant};

use convo_api::{App, AppSettings, WorkspaceId};
use convo_store::{IdempotencyClaim, IdempotencyPolicy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Answer, Stack, WAIT};
use tokio::io::AsyncWriteExt as _;

/// How long the sandbox provider takes to answer a send in these tests: long enough that a
/// request is surely still running when the test acts on it (the adapters time out at 5 s).
const PROVIDER_LATENCY: Duration = Duration::from_millis(1_500);

fn send_body(to: &str) -> Value {
    json!({"to": to, "channel": "sms", "message_type": "MESSAGE", "content": {"template": {"name": "hello"}}})
}

/// The message id `POST /v1/messages` derives from the key.
fn derived_message_id(stack: &Stack, key: &str) -> String {
    App::derived_id("msg", &WorkspaceId(stack.a.id.clone()), Some(key), "messages")
}

fn replayed(answer: &Answer) -> Option<&str> {
    answer.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap_or_default())
}

/// Waits until the request to `to` is in flight: its handler has created the contact, and
/// the send is then with the (slow) provider.
async fn until_in_flight(stack: &Stack, to: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while stack.store.contact_by_address(&stack.a.id, to).await?.is_none() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the request to {to} never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Exactly one send reached the provider for `to`, under the message id as its key.
async fn one_send(stack: &Stack, to: &str, message_id: &str) -> anyhow::Result<()> {
    stack.sandbox.wait_for_sends(1, WAIT).await?;
    // Give a second send (there must be none) the time to arrive.
    tokio::time::sleep(PROVIDER_LATENCY + Duration::from_millis(300)).await;
    let sends: Vec<_> = stack.sandbox.sends().into_iter().filter(|s| s.to == to).collect();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].idempotency_key.as_deref(), Some(message_id), "{sends:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_hung_up_completes_and_its_retry_gets_the_answer()
-> anyhow::Result<()> {
    let stack = Stack::start("idem-hangup").await?;
    stack.sandbox.set_latency(PROVIDER_LATENCY);
    let to = "+14155550301";
    let body = send_body(to);

    // A raw HTTP/1.1 request, and the connection closed while the send is with the provider.
    let addr = stack.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await?;
    let bytes = serde_json::to_vec(&body)?;
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: k-hangup\r\n\
         Content-Length: {}\r\n\r\n",
        stack.a.key,
        bytes.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(&bytes).await?;
    conn.flush().await?;
    until_in_flight(&stack, to).await?;
    drop(conn);

    // The retry gets the first request's answer, within a few seconds, not 409.
    let started = Instant::now();
    let retry = stack.post_idem(&stack.a.key, "/v1/messages", body.clone(), "k-hangup").await?;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{retry:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(replayed(&retry), Some("true"), "the answer is the first request's");
    let message_id = derived_message_id(&stack, "k-hangup");
    assert_eq!(retry.body["message_id"], json!(message_id));
    // And again, the same answer.
    let again = stack.post_idem(&stack.a.key, "/v1/messages", body, "k-hangup").await?;
    assert_eq!((again.status, &again.body), (retry.status, &retry.body));

    one_send(&stack, to, &message_id).await?;
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_retry_waits_for_the_first_answer() -> anyhow::Result<()> {
    let stack = Stack::start("idem-concurrent").await?;
    stack.sandbox.set_latency(PROVIDER_LATENCY);
    let to = "+14155550302";
    let body = send_body(to);

    let first = {
        let request = stack
            .http
            .post(stack.url("/v1/messages"))
            .bearer_auth(&stack.a.key)
            .header("Idempotency-Key", "k-concurrent")
            .json(&body);
        tokio::spawn(async move {
            let res = request.send().await?;
            let status = res.status();
            let replayed = res.headers().get("idempotent-replayed").cloned();
            anyhow::Ok((status, replayed, res.json::<Value>().await?))
        })
    };
    until_in_flight(&stack, to).await?;
    let second = stack.post_idem(&stack.a.key, "/v1/messages", body, "k-concurrent").await?;
    let (status, first_replayed, first_body) = first.await??;

    assert_eq!(status, StatusCode::ACCEPTED, "{first_body}");
    assert!(first_replayed.is_none());
    assert_eq!(second.status, StatusCode::ACCEPTED, "{second:?}");
    assert_eq!(replayed(&second), Some("true"));
    assert_eq!(second.body, first_body);
    let message_id = derived_message_id(&stack, "k-concurrent");
    assert_eq!(first_body["message_id"], json!(message_id));

    one_send(&stack, to, &message_id).await?;
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_claim_is_taken_over_and_a_live_one_answers_409_after_the_wait() -> anyhow::Result<()>
{
    let wait = Duration::from_secs(3);
    let idempotency = IdempotencyPolicy { wait, ..Default::default() };
    let owned =
        Stack::start_with("idem-takeover", AppSettings { idempotency, ..Default::default() })
            .await?;
    // The fingerprint of the application request a `POST /v1/messages` body is.
    let fingerprint = |bytes: &[u8]| {
        let request: convo_api::app::types::SendMessageRequest =
            serde_json::from_slice(bytes).expect("a send body");
        let send = convo_api::app::idempotency::operation::SEND_MESSAGE;
        App::request_fingerprint(send, "", &request).expect("fingerprinted")
    };
    let stack = &owned;
    let post = |bytes: Vec<u8>, key: &'static str| async move {
        let headers = [("Idempotency-Key", key)];
        stack
            .raw(
                reqwest::Method::POST,
                "/v1/messages",
                Some(&stack.a.key),
                Some("application/json"),
                bytes,
                &headers,
            )
            .await
    };

    // A process claimed the key and died at once (`kill -9`): its lease, never renewed, runs
    // out a second later. The retry waits that out, takes the claim over and runs the request.
    let to = "+14155550303";
    let bytes = serde_json::to_vec(&send_body(to))?;
    let crashed = IdempotencyPolicy { lease: Duration::from_secs(1), ..Default::default() };
    let claim = stack
        .store
        .claim_idempotency_key(&stack.a.id, "k-crashed", &fingerprint(&bytes), "dead", crashed)
        .await?;
    assert_eq!(claim, IdempotencyClaim::Claimed);
    let retry = post(bytes.clone(), "k-crashed").await?;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{retry:?}");
    assert_eq!(replayed(&retry), None, "the retry ran the request itself");
    let message_id = derived_message_id(stack, "k-crashed");
    assert_eq!(retry.body["message_id"], json!(message_id));
    // The dead owner cannot overwrite the answer, which is replayed from now on.
    let stale = convo_store::StoredResponse { status: 500, body: "{}".to_owned() };
    assert!(!stack.store.complete_idempotency_key(&stack.a.id, "k-crashed", "dead", &stale).await?);
    let again = post(bytes, "k-crashed").await?;
    assert_eq!((again.status, &again.body), (retry.status, &retry.body));
    assert_eq!(replayed(&again), Some("true"));
    one_send(stack, to, &message_id).await?;

    // A live request (its lease a minute out) is waited for up to the bound, then 409 with
    // Retry-After; nothing is sent meanwhile.
    let busy = "+14155550304";
    let bytes = serde_json::to_vec(&send_body(busy))?;
    let live = IdempotencyPolicy { lease: Duration::from_secs(60), ..Default::default() };
    stack
        .store
        .claim_idempotency_key(&stack.a.id, "k-live", &fingerprint(&bytes), "alive", live)
        .await?;
    let started = Instant::now();
    let refused = post(bytes, "k-live").await?;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "idempotency_key_in_use"),
        "{refused:?}"
    );
    assert!(started.elapsed() >= wait - Duration::from_millis(100), "{:?}", started.elapsed());
    assert_eq!(refused.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(stack.sandbox.sends().iter().all(|s| s.to != busy));
    owned.shutdown().await
}
