//! The gRPC API over real gRPC on loopback, against the same in-process stack as the HTTP
//! tests: auth and cross-workspace isolation, Idempotency-Key semantics (replay, mismatch, in
//! flight, HTTP keys), the windows flow (compose, inbound, free-form reply, close, refusal),
//! validation errors naming their field, reflection and health.

mod support;

use convo_api::App;
use convo_domain::Channel;
use convo_proto::v1::{
    self as pb, conversation_service_client::ConversationServiceClient,
    inbound_service_client::InboundServiceClient, message_service_client::MessageServiceClient,
    window_service_client::WindowServiceClient,
};
use prost::Message as _;
use serde_json::json;
use support::{Stack, WAIT, req};
use tonic::{Code, Status, transport::Channel as Conn};
use tonic_types::StatusExt as _;

const PHONE: &str = "+14155550140";

/// The status code, the ErrorInfo reason (checking its domain) and its `field`.
fn reason(status: &Status) -> (Code, String, Option<String>) {
    let details = status.get_error_details();
    let Some(info) = details.error_info() else {
        panic!("no ErrorInfo in {status:?}");
    };
    assert_eq!(info.domain, "convo");
    (status.code(), info.reason.clone(), info.metadata.get("field").cloned())
}

fn expect_err<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>) -> Status {
    match result {
        Ok(r) => panic!("expected an error, got {:?}", r.get_ref()),
        Err(status) => status,
    }
}

struct Clients {
    conversations: ConversationServiceClient<Conn>,
    messages: MessageServiceClient<Conn>,
    windows: WindowServiceClient<Conn>,
    inbound: InboundServiceClient<Conn>,
}

async fn clients(stack: &Stack) -> anyhow::Result<Clients> {
    let channel = tonic::transport::Endpoint::from_shared(stack.grpc.clone())?.connect().await?;
    Ok(Clients {
        conversations: ConversationServiceClient::new(channel.clone()),
        messages: MessageServiceClient::new(channel.clone()),
        windows: WindowServiceClient::new(channel.clone()),
        inbound: InboundServiceClient::new(channel),
    })
}

fn compose_request(channel_id: String, phone: &str, content: &str) -> pb::ComposeRequest {
    pb::ComposeRequest {
        channel_id,
        contact_phone: Some(phone.to_owned()),
        content: content.to_owned(),
        template: Some(pb::Template {
            name: "hello".to_owned(),
            variables: [("1".to_owned(), "Ada".to_owned())].into_iter().collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Polls `GetConversation` until `check` holds.
async fn conversation_until(
    c: &mut Clients,
    key: &str,
    id: &str,
    what: &str,
    check: impl Fn(&pb::Conversation) -> bool,
) -> anyhow::Result<pb::Conversation> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let get = pb::GetConversationRequest { conversation_id: id.to_owned() };
        let conversation = c.conversations.get_conversation(req(Some(key), get, &[])).await?;
        let conversation = conversation.into_inner();
        if check(&conversation) {
            return Ok(conversation);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what}: still {conversation:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_auth_isolation_validation_reflection_and_health() -> anyhow::Result<()> {
    let stack = Stack::start("grpc-auth").await?;
    let (a, b) = (&stack.a, &stack.b);
    let mut c = clients(&stack).await?;

    // No key, a bad key, a bad scheme: UNAUTHENTICATED with reason `unauthorized`.
    for extra in [
        vec![],
        vec![("authorization", "Bearer nope-nope-nope-nope")],
        vec![("authorization", "Basic abc")],
    ] {
        let status = expect_err(
            c.conversations.list_channels(req(None, pb::ListChannelsRequest {}, &extra)).await,
        );
        assert_eq!(
            reason(&status),
            (Code::Unauthenticated, "unauthorized".into(), None),
            "{extra:?}"
        );
    }
    // Bearer and x-api-key both work, and list only the caller's channels.
    let listed =
        c.conversations.list_channels(req(Some(&a.key), pb::ListChannelsRequest {}, &[])).await?;
    let ids: Vec<_> = listed.get_ref().channels.iter().map(|ch| ch.id.clone()).collect();
    assert_eq!(ids.len(), Channel::ALL.len());
    assert!(
        ids.contains(&a.channel_id(Channel::Sms)) && !ids.contains(&b.channel_id(Channel::Sms))
    );
    let by_header = req(None, pb::ListChannelsRequest {}, &[("x-api-key", &a.key)]);
    assert_eq!(c.conversations.list_channels(by_header).await?.get_ref().channels.len(), ids.len());

    // A's conversation and contact are invisible to B: NOT_FOUND.
    let compose = compose_request(a.channel_id(Channel::Sms), PHONE, "hi");
    let composed = c.conversations.compose(req(Some(&a.key), compose, &[])).await?.into_inner();
    assert_eq!(composed.status, "pending");
    let id = composed.conversation_id;
    let conversation =
        conversation_until(&mut c, &a.key, &id, "contact", |cv| cv.contact_id.is_some()).await?;
    let contact = conversation.contact_id.clone().expect("contact");
    assert_eq!(conversation.channel, "sms");
    assert_eq!(conversation.assignee.as_ref().map(|x| x.kind.as_str()), Some("bot"));
    let not_found = (Code::NotFound, "not_found".to_owned(), None);
    let get = pb::GetConversationRequest { conversation_id: id.clone() };
    let status = expect_err(c.conversations.get_conversation(req(Some(&b.key), get, &[])).await);
    assert_eq!(reason(&status), not_found);
    for contact in [contact.clone(), PHONE.to_owned()] {
        let get = pb::GetWindowRequest { contact: contact.clone() };
        let status = expect_err(c.windows.get_window(req(Some(&b.key), get, &[])).await);
        assert_eq!(reason(&status), not_found, "{contact}");
        let close = pb::CloseWindowRequest { contact };
        let status = expect_err(c.windows.close_window(req(Some(&b.key), close, &[])).await);
        assert_eq!(reason(&status), not_found);
    }
    let take = pb::TakeOverRequest { conversation_id: id.clone(), agent_id: "mallory".into() };
    let status = expect_err(c.conversations.take_over(req(Some(&b.key), take, &[])).await);
    assert_eq!(reason(&status), not_found);
    let send = pb::SendConversationMessageRequest {
        conversation_id: id.clone(),
        body: Some(pb::send_conversation_message_request::Body::Text("x".into())),
    };
    let status =
        expect_err(c.conversations.send_conversation_message(req(Some(&b.key), send, &[])).await);
    assert_eq!(reason(&status), not_found);
    let resolve = pb::ResolveRequest { conversation_id: id.clone(), close_window: None };
    let status = expect_err(c.conversations.resolve(req(Some(&b.key), resolve, &[])).await);
    assert_eq!(reason(&status), not_found);

    // A resolves its own conversation once its first message is out.
    conversation_until(&mut c, &a.key, &id, "sent", |cv| cv.status == "awaiting_reply").await?;
    let resolve = pb::ResolveRequest { conversation_id: id.clone(), close_window: None };
    assert!(c.conversations.resolve(req(Some(&a.key), resolve, &[])).await?.get_ref().ok);
    conversation_until(&mut c, &a.key, &id, "resolved", |cv| cv.status == "resolved").await?;

    // Validation errors name their field, in ErrorInfo and in BadRequest.
    let foreign = compose_request(b.channel_id(Channel::Sms), PHONE, "hi");
    let status = expect_err(c.conversations.compose(req(Some(&a.key), foreign, &[])).await);
    assert_eq!(
        reason(&status),
        (Code::InvalidArgument, "validation_failed".into(), Some("channel_id".into()))
    );
    let violations = status.get_error_details().bad_request().cloned().expect("BadRequest");
    assert_eq!(violations.field_violations[0].field, "channel_id");
    let no_subject = pb::ComposeRequest {
        contact_email: Some("ada@example.com".into()),
        contact_phone: None,
        ..compose_request(a.channel_id(Channel::Email), PHONE, "hi")
    };
    let status = expect_err(c.conversations.compose(req(Some(&a.key), no_subject, &[])).await);
    assert_eq!(
        reason(&status),
        (Code::InvalidArgument, "validation_failed".into(), Some("subject".into()))
    );
    let untyped = pb::SendMessageRequest {
        to: PHONE.into(),
        channel: "sms".into(),
        content: Some(pb::MessageContent { text: Some("x".into()), ..Default::default() }),
        ..Default::default()
    };
    let status = expect_err(c.messages.send_message(req(Some(&a.key), untyped.clone(), &[])).await);
    assert_eq!(
        reason(&status),
        (Code::InvalidArgument, "validation_failed".into(), Some("message_type".into()))
    );
    let rich = pb::SendMessageRequest {
        message_type: pb::MessageType::Message.into(),
        content: Some(pb::MessageContent {
            text: Some("x".into()),
            rich_card: Some(prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("card".into())),
            }),
            ..Default::default()
        }),
        ..untyped
    };
    let status = expect_err(c.messages.send_message(req(Some(&a.key), rich, &[])).await);
    assert_eq!(reason(&status).2.as_deref(), Some("content.rich_card"));
    let bad_recipient = pb::ProactiveRequest {
        channel_id: a.channel_id(Channel::Sms),
        template: Some(pb::Template { name: "promo".into(), ..Default::default() }),
        recipients: vec![
            pb::Recipient { recipient: Some(pb::recipient::Recipient::Address(PHONE.into())) },
            pb::Recipient { recipient: None },
        ],
        ..Default::default()
    };
    let status = expect_err(c.conversations.proactive(req(Some(&a.key), bad_recipient, &[])).await);
    assert_eq!(reason(&status).2.as_deref(), Some("recipients[1]"));

    // Reflection (v1 and v1alpha) lists the four services, and health reports them serving.
    let endpoint = tonic::transport::Endpoint::from_shared(stack.grpc.clone())?;
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            endpoint.connect().await?,
        );
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let asks = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("convo.v1.MessageService".into()),
    ]
    .map(|m| ServerReflectionRequest { host: String::new(), message_request: Some(m) });
    let mut answers =
        reflection.server_reflection_info(tokio_stream::iter(asks)).await?.into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await?.and_then(|r| r.message_response)
    else {
        panic!("no service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in convo_api::grpc::SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(names.contains(&service), "{service} missing from {names:?}");
    }
    assert!(names.iter().all(|n| !n.is_empty()));
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await?.and_then(|r| r.message_response)
    else {
        panic!("no descriptor for convo.v1.MessageService");
    };
    let files: Vec<_> = files
        .file_descriptor_proto
        .iter()
        .map(|f| {
            prost_types::FileDescriptorProto::decode(f.as_slice()).map(|f| f.name().to_owned())
        })
        .collect::<Result<_, _>>()?;
    assert!(files.iter().any(|f| f == "convo/v1/message.proto"), "{files:?}");
    let mut alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            endpoint.connect().await?,
        );
    let ask = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = alpha.server_reflection_info(tokio_stream::iter([ask])).await?.into_inner();
    assert!(answers.message().await?.is_some());
    let mut health = tonic_health::pb::health_client::HealthClient::new(endpoint.connect().await?);
    for service in convo_api::grpc::SERVICES.into_iter().chain([""]) {
        let check = tonic_health::pb::HealthCheckRequest { service: service.to_owned() };
        let answer = health.check(check).await?.into_inner();
        assert_eq!(
            answer.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service}"
        );
    }

    // A revoked key stops working at once.
    let keys = stack.store.api_keys(&b.id).await?;
    stack.store.revoke_api_key(&b.id, &keys[0].id).await?;
    let status = expect_err(
        c.conversations.list_channels(req(Some(&b.key), pb::ListChannelsRequest {}, &[])).await,
    );
    assert_eq!(status.code(), Code::Unauthenticated);
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_idempotency_replays_refuses_reuse_and_in_flight() -> anyhow::Result<()> {
    // The claim "held by another request" below is never renewed, so its lease (5 s) would
    // run out and be taken over within the default wait (30 s): wait less than the lease.
    let idempotency = convo_store::IdempotencyPolicy {
        wait: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let settings = convo_api::AppSettings { idempotency, ..Default::default() };
    let stack = Stack::start_with("grpc-idem", settings).await?;
    let key = stack.a.key.clone();
    let mut c = clients(&stack).await?;
    let compose = compose_request(stack.a.channel_id(Channel::Whatsapp), "+14155550141", "hi");
    let idem = [("idempotency-key", "g-compose")];

    let first = c.conversations.compose(req(Some(&key), compose.clone(), &idem)).await?;
    assert!(first.metadata().get("idempotent-replayed").is_none());
    let second = c.conversations.compose(req(Some(&key), compose.clone(), &idem)).await?;
    assert_eq!(second.get_ref(), first.get_ref());
    assert_eq!(
        second.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // A different request under the same key.
    let changed = pb::ComposeRequest { content: "hello there".into(), ..compose.clone() };
    let status = expect_err(c.conversations.compose(req(Some(&key), changed, &idem)).await);
    assert_eq!(
        reason(&status),
        (Code::FailedPrecondition, "idempotency_key_reused".into(), Some("Idempotency-Key".into()))
    );
    // The same key in another workspace is another request.
    let other = compose_request(stack.b.channel_id(Channel::Whatsapp), "+14155550141", "hi");
    let theirs = c.conversations.compose(req(Some(&stack.b.key), other, &idem)).await?;
    assert_ne!(theirs.get_ref().conversation_id, first.get_ref().conversation_id);
    // Exactly one first message per workspace, though a's compose came twice.
    stack.sandbox.wait_for_sends(2, WAIT).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.sandbox.sends().len(), 2, "{:?}", stack.sandbox.sends());
    // Past the stored key, the derived id still finds the running conversation.
    stack.store.prune_idempotency_keys(std::time::Duration::ZERO).await?;
    let late = c.conversations.compose(req(Some(&key), compose, &idem)).await?;
    assert_eq!(late.get_ref().conversation_id, first.get_ref().conversation_id);
    assert!(late.metadata().get("idempotent-replayed").is_none());

    // The same key over HTTP and gRPC is the same request: the fingerprint is the
    // application's request, not the transport's, so gRPC replays HTTP's answer (and sends
    // nothing more), and another request under the key is refused on either.
    let body = json!({"channel_id": stack.a.channel_id(Channel::Sms), "contact_phone": "+14155550142", "content": "hi", "template": {"name": "hello", "variables": {"1": "Ada"}}});
    let http = stack.post_idem(&key, "/v1/conversations/compose", body, "shared-key").await?;
    assert!(http.status.is_success(), "{http:?}");
    stack.sandbox.wait_for_sends(3, WAIT).await?;
    let shared = [("idempotency-key", "shared-key")];
    let over_grpc = compose_request(stack.a.channel_id(Channel::Sms), "+14155550142", "hi");
    let replayed = c.conversations.compose(req(Some(&key), over_grpc.clone(), &shared)).await?;
    assert_eq!(
        replayed.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(
        json!(replayed.get_ref().conversation_id),
        http.body["conversation_id"],
        "gRPC answers with the conversation HTTP started"
    );
    let other = pb::ComposeRequest { content: "another".into(), ..over_grpc };
    let status = expect_err(c.conversations.compose(req(Some(&key), other, &shared)).await);
    assert_eq!(reason(&status).1, "idempotency_key_reused");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.sandbox.sends().len(), 3, "{:?}", stack.sandbox.sends());

    // In flight: a claim held by another request with the same fingerprint.
    let send = pb::SendMessageRequest {
        to: "+14155550143".into(),
        channel: "sms".into(),
        message_type: pb::MessageType::Message.into(),
        content: Some(pb::MessageContent {
            template: Some(pb::Template { name: "hello".into(), ..Default::default() }),
            ..Default::default()
        }),
        traffic_type: None,
    };
    // The application request the gRPC send above becomes.
    let app_send: convo_api::app::types::SendMessageRequest = serde_json::from_value(json!({
        "to": "+14155550143", "channel": "sms", "message_type": "MESSAGE",
        "content": {"template": {"name": "hello"}},
    }))?;
    let fingerprint = App::request_fingerprint(
        convo_api::app::idempotency::operation::SEND_MESSAGE,
        "",
        &app_send,
    )?;
    stack
        .store
        .claim_idempotency_key(
            &stack.a.id,
            "g-busy",
            &fingerprint,
            "another-request",
            convo_store::IdempotencyPolicy::default(),
        )
        .await?;
    let busy = [("idempotency-key", "g-busy")];
    let status = expect_err(c.messages.send_message(req(Some(&key), send.clone(), &busy)).await);
    assert_eq!(
        reason(&status),
        (Code::Aborted, "idempotency_key_in_use".into(), Some("Idempotency-Key".into()))
    );
    let retry = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
    assert_eq!(retry, Some(std::time::Duration::from_secs(1)), "RetryInfo, as HTTP's Retry-After");
    // Once the first request finishes, its answer is replayed (this one stored as answers were
    // before amounts were named in a currency: minor units).
    let stored = json!({
        "message_id": "msg_x", "status": "queued", "created_at": "2025-01-01T00:00:00.000Z",
        "conversation_expires_at": null, "contact_id": "ct_x",
        "billing": {"channel": "sms", "message_type": "MESSAGE", "in_session": false,
            "hold_amount": 0, "message_price": 5, "balance": {"free": 1, "reserved": 0, "total": 1}},
    });
    let stored = convo_store::StoredResponse { status: 200, body: stored.to_string() };
    stack.store.complete_idempotency_key(&stack.a.id, "g-busy", "another-request", &stored).await?;
    let done = c.messages.send_message(req(Some(&key), send.clone(), &busy)).await?;
    assert_eq!(done.get_ref().message_id, "msg_x");
    assert_eq!(
        done.get_ref().billing.as_ref().map(|b| b.message_type()),
        Some(pb::MessageType::Message)
    );

    // A retried send never sends twice, and its answer is the same.
    let before = stack.sandbox.sends().len();
    let once = [("idempotency-key", "g-send")];
    let sent = c.messages.send_message(req(Some(&key), send.clone(), &once)).await?.into_inner();
    let again = c.messages.send_message(req(Some(&key), send.clone(), &once)).await?.into_inner();
    assert_eq!(sent, again);
    assert_eq!(sent.billing.as_ref().map(|b| b.message_price), Some(5));
    assert_eq!(sent.billing.as_ref().map(|b| b.currency.as_str()), Some("EUR"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.sandbox.sends().len(), before + 1);
    // A validation failure does not spend the key; a malformed key is refused.
    let bad = pb::SendMessageRequest { message_type: 0, ..send.clone() };
    let status = expect_err(
        c.messages.send_message(req(Some(&key), bad, &[("idempotency-key", "g-v")])).await,
    );
    assert_eq!(reason(&status).1, "validation_failed");
    let long = "x".repeat(300);
    let status = expect_err(
        c.messages.send_message(req(Some(&key), send, &[("idempotency-key", &long)])).await,
    );
    assert_eq!(
        reason(&status),
        (Code::InvalidArgument, "validation_failed".into(), Some("Idempotency-Key".into()))
    );
    stack.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_compose_inbound_reply_close_and_refuse() -> anyhow::Result<()> {
    let stack = Stack::start("grpc-flow").await?;
    let key = stack.a.key.clone();
    let mut c = clients(&stack).await?;
    let phone = "+14155550144";

    // Compose: no window yet, so the template goes out.
    let compose =
        compose_request(stack.a.channel_id(Channel::Whatsapp), phone, "Your order shipped");
    let composed = c
        .conversations
        .compose(req(Some(&key), compose, &[("idempotency-key", "flow-compose")]))
        .await?
        .into_inner();
    let id = composed.conversation_id;
    conversation_until(&mut c, &key, &id, "awaiting reply", |cv| cv.status == "awaiting_reply")
        .await?;
    let sends = stack.sandbox.wait_for_sends(1, WAIT).await?;
    assert_eq!(sends[0].to, phone);

    // The contact replies through InboundService.
    let inbound = pb::InboundMessage {
        from: phone.into(),
        to: Some(stack.a.number.clone()),
        channel: "whatsapp".into(),
        text: "where is it?".into(),
        provider_message_id: Some("wamid.grpc1".into()),
        timestamp: None,
        postback_data: None,
    };
    let received = c.inbound.receive(req(Some(&key), inbound, &[])).await?.into_inner();
    assert_eq!((received.received, received.duplicates), (1, 0));
    let contact = received.contact_ids[0].clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    let window = loop {
        let get = pb::GetWindowRequest { contact: phone.into() };
        let window = c.windows.get_window(req(Some(&key), get, &[])).await?.into_inner();
        if window.open {
            break window;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "window still {window:?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!((window.status.as_str(), window.channel.as_deref()), ("open", Some("whatsapp")));
    assert_eq!(window.contact_id, contact);
    assert!(window.expires_at.is_some());
    let active =
        conversation_until(&mut c, &key, &id, "active", |cv| cv.status == "active").await?;
    assert!(active.window.as_ref().is_some_and(|w| w.open));
    assert!(active.messages.iter().any(|m| m.direction == "inbound"));

    // An agent takes over, and replies free-form in the conversation.
    let take = pb::TakeOverRequest { conversation_id: id.clone(), agent_id: "agent-7".into() };
    let taken =
        c.conversations.take_over(req(Some(&key), take, &[("idempotency-key", "flow-take")]));
    assert!(taken.await?.get_ref().ok);
    let human = conversation_until(&mut c, &key, &id, "human", |cv| {
        cv.assignee.as_ref().is_some_and(|x| x.kind == "human")
    })
    .await?;
    assert_eq!(human.assignee.map(|x| x.id), Some("agent-7".to_owned()));
    let reply = pb::SendConversationMessageRequest {
        conversation_id: id.clone(),
        body: Some(pb::send_conversation_message_request::Body::Text(
            "It arrives tomorrow.".into(),
        )),
    };
    let idem = [("idempotency-key", "flow-reply")];
    let sent =
        c.conversations.send_conversation_message(req(Some(&key), reply.clone(), &idem)).await?;
    let sent = sent.into_inner();
    assert_eq!(sent.status, "queued");
    assert!(sent.conversation_expires_at.is_some());
    let billing = sent.billing.clone().expect("billing");
    assert_eq!(
        (billing.channel.as_str(), billing.message_type()),
        ("whatsapp", pb::MessageType::Conversation)
    );
    assert!(billing.balance.is_some_and(|b| b.total > 0));
    let replayed = c.conversations.send_conversation_message(req(Some(&key), reply, &idem)).await?;
    assert_eq!(replayed.get_ref(), &sent);
    let empty = pb::SendConversationMessageRequest {
        conversation_id: id.clone(),
        body: Some(pb::send_conversation_message_request::Body::Text("  ".into())),
    };
    let status =
        expect_err(c.conversations.send_conversation_message(req(Some(&key), empty, &[])).await);
    assert_eq!(
        reason(&status),
        (Code::InvalidArgument, "validation_failed".into(), Some("text".into()))
    );

    // Close (idempotent), then a CONVERSATION send is refused: no_active_session.
    let close = pb::CloseWindowRequest { contact: phone.into() };
    let closed = c
        .windows
        .close_window(req(Some(&key), close.clone(), &[("idempotency-key", "flow-close")]))
        .await?
        .into_inner();
    assert!(!closed.open);
    assert_eq!(
        (closed.status.as_str(), closed.close_reason.as_deref()),
        ("closed", Some("EXPLICIT"))
    );
    let again = c.windows.close_window(req(Some(&key), close, &[])).await?.into_inner();
    assert_eq!(again.status, "closed");
    let conversation_send = pb::SendMessageRequest {
        to: phone.into(),
        channel: "whatsapp".into(),
        message_type: pb::MessageType::Conversation.into(),
        content: Some(pb::MessageContent { text: Some("hi back".into()), ..Default::default() }),
        traffic_type: Some("transactional".into()),
    };
    let status = expect_err(
        c.messages
            .send_message(req(Some(&key), conversation_send, &[("idempotency-key", "flow-conv")]))
            .await,
    );
    assert_eq!(reason(&status), (Code::FailedPrecondition, "no_active_session".into(), None));

    // A template (MESSAGE) still goes out with no window, billed per message.
    let template = pb::SendMessageRequest {
        to: phone.into(),
        channel: stack.a.channel_id(Channel::Whatsapp),
        message_type: pb::MessageType::Message.into(),
        content: Some(pb::MessageContent {
            template: Some(pb::Template { name: "reengage".into(), ..Default::default() }),
            ..Default::default()
        }),
        traffic_type: Some("marketing".into()),
    };
    let sent = c.messages.send_message(req(Some(&key), template, &[])).await?.into_inner();
    assert_eq!(sent.traffic_type.as_deref(), Some("PROMOTION"));
    assert_eq!(sent.contact_id, contact);
    assert_eq!(sent.billing.map(|b| b.message_type()), Some(pb::MessageType::Message));

    // The message log and the contact read back over gRPC as over HTTP.
    let get = pb::GetMessageRequest { message_id: sent.message_id.clone() };
    let logged = c.messages.get_message(req(Some(&key), get, &[])).await?.into_inner();
    assert_eq!((logged.direction.as_str(), logged.channel.as_str()), ("outbound", "whatsapp"));
    let history: Vec<&str> = logged.statuses.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(history, ["queued", "sent"], "{logged:?}");
    assert_eq!(logged.statuses[1].source, "convo");
    let missing = pb::GetMessageRequest { message_id: "msg_nope".into() };
    let status = expect_err(c.messages.get_message(req(Some(&key), missing, &[])).await);
    assert_eq!(status.code(), Code::NotFound);
    let get = pb::GetContactRequest { contact: phone.into() };
    let card = c.conversations.get_contact(req(Some(&key), get, &[])).await?.into_inner();
    assert_eq!((card.contact_id.as_str(), card.phone.as_deref()), (contact.as_str(), Some(phone)));
    let get = pb::GetConversationRequest { conversation_id: id.clone() };
    let view = c.conversations.get_conversation(req(Some(&key), get, &[])).await?.into_inner();
    assert_eq!(view.contact.map(|k| k.contact_id), Some(contact.clone()));
    let first = view.messages.iter().find(|m| m.direction == "outbound").expect("the template");
    assert_eq!((first.channel.as_str(), first.status.as_deref()), ("whatsapp", Some("sent")));

    // A recipient listed twice is messaged once.
    let twice = pb::ProactiveRequest {
        channel_id: stack.a.channel_id(Channel::Whatsapp),
        template: Some(pb::Template { name: "reengage".into(), ..Default::default() }),
        recipients: [phone, phone]
            .into_iter()
            .map(|p| pb::Recipient { recipient: Some(pb::recipient::Recipient::Address(p.into())) })
            .collect(),
        ..Default::default()
    };
    let answer = c.conversations.proactive(req(Some(&key), twice, &[])).await?.into_inner();
    assert_eq!((answer.accepted, answer.duplicates), (1, 1), "{answer:?}");
    assert_eq!(answer.conversations[1].duplicate_of, Some(0), "{answer:?}");

    stack.shutdown().await
}
