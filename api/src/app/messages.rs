//! `POST /v1/messages`: one message to a contact, through the contact's session window.
//!
//! # How `message_type` maps onto the session
//! | `message_type` | content | session send | billed |
//! |---|---|---|---|
//! | `CONVERSATION` | `text` | free-form, after checking a window is open (422 `no_active_session` otherwise; the session's gate decides again) | the billing session's conversation unit (hold on its first send) |
//! | `MESSAGE` | `template` | template, `MESSAGE` | per message |
//! | `MESSAGE` | `text` only | free-form: sent in an open window (billed as `CONVERSATION`), or on an ungated channel outside one (per message); a gated channel with no window is 422 `no_active_session`, never a silent downgrade | as it went |
//! | `NEWSLETTER` | `template` (required) | template, `NEWSLETTER` | per message, at the newsletter price |
//!
//! The answer's `billing.message_type` says how the send was actually billed.
//!
//! # Delivery statuses
//! `GET /v1/messages/{id}` shows a message with its status history. Provider callbacks
//! (`inbound.rs`) and the sandbox's simulated ones (`POST /v1/inbound/sandbox/statuses`) all go
//! through [`App::apply_delivery_report`]: the store moves the status only forward (the
//! domain's [`convo_domain::delivery::transition`]), each move is announced by a
//! `message.status_updated` webhook, and a failure releases the billing session's hold when no
//! message of that session reached the contact.
//!
//! ## Late failures and the session's own charge
//! A session charges its hold when its window closes (`resolve_hold`). A failure reported
//! before that releases the hold now, with the reason on the hold and its ledger entry; the
//! session's charge then finds the hold released and leaves it so (a no-op, not an error), so
//! the money is neither charged nor released twice. A failure reported after the charge leaves
//! the hold charged: the ledger has no refunds, and an operator who wants one tops up. A
//! repeated failure callback re-runs the check, which is idempotent (release of a released
//! hold changes nothing), so a callback retried after a crash between the status and the
//! release still releases. Two messages of one session whose failure and delivery are
//! reported at the same instant may release a hold the delivery would have kept; the ledger's
//! reason names the failed message so that case can be told apart.

use convo_domain::{
    Channel, DeliveryStatus, Direction, MessageId, MessageType, Sender, TrafficType, rich::Rich,
};
use convo_store::{Contact, MessageRecord, StatusApplied, StatusEvent, StatusReport};
use convo_workflows::contracts::{
    SendError, SendKind, SendReceipt, SendRequest, SessionSendOutcome,
};

use super::{
    App, WorkspaceId, optional_text, rfc3339,
    types::{
        Amount, BillingBalanceOut, BillingOut, MessageAccepted, MessageContent, MessageOut,
        RequestedType, SandboxStatus, SendMessageRequest, StatusError, StatusOut, TierOut,
    },
};
use crate::error::{ApiError, ErrorCode};

/// The receipt of a send the session accepted, or its refusal as an [`ApiError`].
pub(crate) fn sent(outcome: SessionSendOutcome) -> Result<SendReceipt, ApiError> {
    match outcome {
        SessionSendOutcome::Sent(receipt) => Ok(receipt),
        SessionSendOutcome::Refused(e) => Err(e.into()),
    }
}

/// What an accepted send's answer is made of, before the ledger and the rate card fill in
/// its billing block.
pub(crate) struct Accepted {
    pub receipt: SendReceipt,
    pub channel: Channel,
    pub message_type: MessageType,
    pub contact_id: String,
    pub created_at: String,
    pub traffic_type: Option<String>,
}

/// The RCS rich content of a send, when it has any (suggestions, a rich card or a carousel),
/// held to RBM's limits: refused on any channel but RCS, and a breach names its field under
/// `prefix` (`content.`).
pub(crate) fn rich_content(
    channel: Channel,
    content: &MessageContent,
    prefix: &str,
) -> Result<Option<Rich>, ApiError> {
    let rich = Rich {
        text: content.text.clone(),
        suggestions: content.suggestions.clone(),
        rich_card: content.rich_card.clone(),
        carousel: content.carousel.clone(),
    };
    let given = [
        ("suggestions", !rich.suggestions.is_empty()),
        ("rich_card", rich.rich_card.is_some()),
        ("carousel", rich.carousel.is_some()),
    ];
    let Some((field, _)) = given.iter().find(|(_, g)| *g) else {
        // Plain RCS text is held to RBM's text limit too.
        if channel == Channel::Rcs
            && let Some(text) = &content.text
            && text.chars().count() > convo_domain::rich::limits::TEXT
        {
            let max = convo_domain::rich::limits::TEXT;
            return Err(ApiError::validation(
                format!("{prefix}text"),
                format!("is {} characters; RBM allows at most {max}", text.chars().count()),
            ));
        }
        return Ok(None);
    };
    if channel != Channel::Rcs {
        return Err(ApiError::validation(
            format!("{prefix}{field}"),
            format!(
                "suggestions, rich cards and carousels are RCS content; {channel} takes text or \
                 a template"
            ),
        ));
    }
    if content.subject.is_some() {
        return Err(ApiError::validation(
            format!("{prefix}subject"),
            "RCS messages have no subject",
        ));
    }
    rich.validate().map_err(|e| ApiError::validation(format!("{prefix}{}", e.field), e.message))?;
    Ok(Some(rich))
}

impl App {
    /// The channel of `to`'s open window (the channel they wrote on last), for a send that
    /// names none; a 422 naming `channel` when no window is open to follow.
    async fn current_channel(
        &self,
        ws: &WorkspaceId,
        to: &str,
    ) -> Result<convo_store::ChannelConfig, ApiError> {
        let required = || {
            ApiError::validation(
                "channel",
                "is required: the contact has no open window whose channel the send could follow",
            )
        };
        let contact = self.find_contact(ws, to, "to").await?.ok_or_else(required)?;
        let view = self.session_view(ws, &contact.id).await?;
        let kind = view.filter(|v| v.window.open).map(|v| v.window.channel).ok_or_else(required)?;
        self.resolve_channel(ws, kind.as_str(), "channel").await
    }

    /// A send through the contact's session ([`convo_client::Gateway::send`], which also
    /// retries a send whose run completed under it), bounded by the send timeout.
    pub(crate) async fn session_send(
        &self,
        ws: &WorkspaceId,
        contact_id: &str,
        channel: Channel,
        request: SendRequest,
    ) -> Result<SessionSendOutcome, ApiError> {
        let send = self.gateway().send(ws.as_str(), contact_id, channel, request);
        Ok(self.with_send_timeout(send).await??)
    }

    /// `POST /v1/messages`; see the module docs for how `message_type` is carried out. The
    /// message id derives from the Idempotency-Key, so a retried send never sends twice.
    pub async fn send_message(
        &self,
        ws: &WorkspaceId,
        req: SendMessageRequest,
        idempotency_key: Option<&str>,
    ) -> Result<MessageAccepted, ApiError> {
        let channel = match req.channel.as_deref() {
            Some(reference) => self.resolve_channel(ws, reference, "channel").await?,
            None => self.current_channel(ws, &req.to).await?,
        };
        let content = &req.content;
        let rich = rich_content(channel.channel, content, "content.")?;
        let text =
            optional_text("content.text", content.text.as_deref(), super::compose::MAX_TEXT)?;
        let subject = optional_text("content.subject", content.subject.as_deref(), 998)?;
        let template = match &content.template {
            Some(t) => {
                Some(self.resolve_template(ws, channel.channel, "content.template", t).await?)
            }
            None => None,
        };
        let traffic_type = match optional_text("traffic_type", req.traffic_type.as_deref(), 50)? {
            Some(value) => Some(self.traffic_type(ws, channel.channel, &value).await?),
            None => None,
        };
        let (kind, billed_as) = match (req.message_type, text, template) {
            (_, _, Some(_)) if rich.is_some() => {
                return Err(ApiError::validation(
                    "content.template",
                    "a template carries no suggestions, rich card or carousel of its own; send \
                     one or the other",
                ));
            }
            (RequestedType::Conversation | RequestedType::Message, _, None)
                if let Some(rich) = rich =>
            {
                (SendKind::Rich { rich: Box::new(rich), sender: Sender::Automated }, None)
            }
            (RequestedType::Conversation, Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "content.template",
                    "CONVERSATION sends free-form text; templates are MESSAGE or NEWSLETTER",
                ));
            }
            (RequestedType::Conversation, Some(text), None) => {
                (SendKind::Freeform { text, subject, sender: Sender::Automated }, None)
            }
            (RequestedType::Conversation, None, _) => {
                return Err(ApiError::validation("content.text", "CONVERSATION needs text"));
            }
            (RequestedType::Message, _, Some((template, params))) => (
                SendKind::Template {
                    template,
                    message_type: MessageType::Message,
                    params: Box::new(params),
                },
                Some(MessageType::Message),
            ),
            (RequestedType::Message, Some(text), None) => {
                (SendKind::Freeform { text, subject, sender: Sender::Automated }, None)
            }
            (RequestedType::Message, None, None) => {
                return Err(ApiError::validation("content.text", "give text or a template"));
            }
            (RequestedType::Newsletter, _, Some((template, params))) => (
                SendKind::Template {
                    template,
                    message_type: MessageType::Newsletter,
                    params: Box::new(params),
                },
                Some(MessageType::Newsletter),
            ),
            (RequestedType::Newsletter, _, None) => {
                return Err(ApiError::validation(
                    "content.template",
                    "NEWSLETTER is sent as an approved template",
                ));
            }
        };
        let contact: Contact = if req.message_type == RequestedType::Conversation {
            // A contact who never wrote has no window: no contact is created for it.
            let contact = self.find_contact(ws, &req.to, "to").await?.ok_or_else(no_window)?;
            let view = self.session_view(ws, &contact.id).await?;
            if !view.as_ref().is_some_and(|v| v.window.open) {
                // An opted-out contact has no window either, but the opt-out is what the caller
                // must act on: it blocks templates too. A running session knows it before the
                // store does (its consent record is an activity that may still be running).
                let consent = match view.map(|v| v.window.consent) {
                    Some(c @ convo_domain::Consent::OptedOut { .. }) => c,
                    _ => self.store().consent(ws.as_str(), &contact.id).await?,
                };
                if let convo_domain::Consent::OptedOut { at } = consent {
                    return Err(ApiError::from(SendError {
                        code: ErrorCode::ContactOptedOut.to_owned(),
                        message: format!("the contact opted out at {at}"),
                    }));
                }
                return Err(no_window());
            }
            contact
        } else {
            self.find_or_create_contact(ws, &req.to, None, "to").await?
        };
        let message_id = Self::derived_id("msg", ws, idempotency_key, "messages");
        let created_at = rfc3339(super::now());
        let request = SendRequest {
            message_id,
            channel: channel.channel,
            kind,
            conversation_id: None,
            agent_id: None,
            traffic_type,
        };
        let receipt = sent(self.session_send(ws, &contact.id, channel.channel, request).await?)?;
        let billed_as = billed_as.unwrap_or_else(|| freeform_billing(receipt.billing.in_session));
        Ok(self
            .accepted(
                ws,
                Accepted {
                    receipt,
                    channel: channel.channel,
                    message_type: billed_as,
                    contact_id: contact.id,
                    created_at,
                    traffic_type: traffic_type.map(|t| t.as_str().to_owned()),
                },
            )
            .await)
    }
}

/// The domain bills in-window free-form by the conversation unit (the send rides on the
/// session the window opened: `in_session`) and free-form outside a window (ungated channels)
/// per message.
fn freeform_billing(in_session: bool) -> MessageType {
    if in_session { MessageType::Conversation } else { MessageType::Message }
}

impl App {
    /// A send's `traffic_type`, read in RBM's vocabulary (or the use-case words) and held to
    /// the use case the channel's sender was approved for; a 422 names the values it takes.
    pub(crate) async fn traffic_type(
        &self,
        ws: &WorkspaceId,
        channel: Channel,
        value: &str,
    ) -> Result<TrafficType, ApiError> {
        let settings = self.store().workspace(ws.as_str()).await?.settings;
        let use_case = settings.use_cases.get(&channel).copied();
        convo_domain::traffic::check(value, use_case)
            .map_err(|refused| ApiError::validation("traffic_type", refused.to_string()))
    }

    /// The API's answer for an accepted send. Its billing block is in the workspace's
    /// currency, with the ledger's balance now (the session reports the balance it last saw, at
    /// its latest hold, which later sends and other sessions have since moved) and the
    /// channel's volume tier this month. The send went out, so a store that cannot answer does
    /// not fail it: the balance falls back to the session's and the tier is left out.
    pub(crate) async fn accepted(&self, ws: &WorkspaceId, a: Accepted) -> MessageAccepted {
        let billing = a.receipt.billing;
        let store = self.store();
        let settings = match store.workspace(ws.as_str()).await {
            Ok(w) => w.settings,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the settings for a send's answer");
                Default::default()
            }
        };
        let currency = settings.currency().to_owned();
        let balance = match store.balance(ws.as_str()).await {
            Ok(balance) => Some(balance),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the balance for a send's answer");
                billing.balance
            }
        };
        let tier = match settings.volume_tiers.get(&a.channel) {
            Some(tiers) => {
                let since = super::now().month_start();
                match store.outbound_volume(ws.as_str(), a.channel, since).await {
                    Ok(used) => TierOut::new(a.channel, tiers, used),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot count the month's volume");
                        None
                    }
                }
            }
            None => None,
        };
        MessageAccepted {
            message_id: a.receipt.message_id,
            status: "queued".to_owned(),
            // The session's clock, like `conversation_expires_at` (the API's for older answers).
            created_at: a.receipt.accepted_at.map_or(a.created_at, rfc3339),
            conversation_expires_at: a.receipt.conversation_expires_at.map(rfc3339),
            contact_id: a.contact_id,
            traffic_type: a.traffic_type,
            billing: BillingOut {
                channel: a.channel,
                message_type: a.message_type,
                in_session: billing.in_session,
                hold_amount: Amount::new(billing.hold_amount, &currency),
                message_price: Amount::new(billing.message_price, &currency),
                balance: BillingBalanceOut::new(balance.unwrap_or_default(), &currency),
                tier,
                currency,
            },
        }
    }
}

fn no_window() -> ApiError {
    ApiError::from(SendError {
        code: ErrorCode::NoActiveSession.to_owned(),
        message: "the contact has no open window; send a template (MESSAGE) to re-engage"
            .to_owned(),
    })
}

pub(crate) use convo_store::webhooks::payload::{self, STATUS_UPDATED};

/// One history entry as the API shows it.
pub(crate) fn status_out(e: StatusEvent) -> StatusOut {
    let error = (e.status == DeliveryStatus::Failed
        && (e.error_code.is_some() || e.error_message.is_some()))
    .then_some(StatusError { code: e.error_code, message: e.error_message });
    StatusOut {
        status: e.status,
        at: rfc3339(e.recorded_at),
        provider_at: e.provider_at.map(rfc3339),
        source: e.source,
        error,
    }
}

fn status_name(m: &MessageRecord) -> String {
    match (m.direction, m.delivery_status) {
        (Direction::Inbound, _) => "received".to_owned(),
        (Direction::Outbound, Some(s)) => s.as_str().to_owned(),
        (Direction::Outbound, None) => DeliveryStatus::Queued.as_str().to_owned(),
    }
}

impl App {
    /// `GET /v1/messages/{id}`: the message and its status history. Another workspace's
    /// message is 404.
    pub async fn message(&self, ws: &WorkspaceId, id: &str) -> Result<MessageOut, ApiError> {
        let not_found = || ApiError::not_found(format!("message {id} not found"));
        let message = match self.store().message(&MessageId::new(id)).await {
            Ok(m) if m.workspace_id == ws.as_str() => m,
            Ok(_) | Err(convo_store::StoreError::NotFound { .. }) => {
                return Err(not_found());
            }
            Err(e) => return Err(e.into()),
        };
        let statuses = self.store().status_history(&message.id).await?;
        let shown =
            convo_store::webhooks::payload::shown(message.direction, Some(&message.content));
        Ok(MessageOut {
            text: shown.text.as_str().map(str::to_owned),
            content: Some(shown.content).filter(|c| !c.is_null()),
            message_id: message.id.as_str().to_owned(),
            contact_id: message.contact_id.clone(),
            channel: message.channel,
            direction: match message.direction {
                Direction::Inbound => "inbound".to_owned(),
                Direction::Outbound => "outbound".to_owned(),
            },
            status: status_name(&message),
            provider_message_id: message.provider_message_id.clone(),
            error: message.error.clone(),
            statuses: statuses.into_iter().map(status_out).collect(),
            created_at: rfc3339(message.created_at),
            updated_at: rfc3339(message.updated_at),
        })
    }

    /// `POST /v1/inbound/sandbox/statuses`: a delivery status as a provider would report it,
    /// applied exactly like a provider's callback. Answers the message as
    /// `GET /v1/messages/{id}` shows it afterwards.
    pub async fn sandbox_status(
        &self,
        ws: &WorkspaceId,
        req: SandboxStatus,
    ) -> Result<MessageOut, ApiError> {
        let status = match DeliveryStatus::parse(req.status.trim()) {
            Some(s @ (DeliveryStatus::Sent | DeliveryStatus::Delivered | DeliveryStatus::Read)) => {
                s
            }
            Some(DeliveryStatus::Failed) => DeliveryStatus::Failed,
            _ => {
                return Err(ApiError::validation(
                    "status",
                    "must be one of sent, delivered, read, failed",
                ));
            }
        };
        let error_code = optional_text("error_code", req.error_code.as_deref(), 50)?;
        let error_message = optional_text("error_message", req.error_message.as_deref(), 500)?;
        if status != DeliveryStatus::Failed {
            for (field, given) in
                [("error_code", error_code.is_some()), ("error_message", error_message.is_some())]
            {
                if given {
                    return Err(ApiError::validation(field, "only a failed status has an error"));
                }
            }
        }
        let provider_at = req
            .timestamp
            .as_deref()
            .map(|t| super::inbound::parse_time("timestamp", t))
            .transpose()?;
        let message_id = optional_text("message_id", req.message_id.as_deref(), 200)?;
        let provider_id =
            optional_text("provider_message_id", req.provider_message_id.as_deref(), 200)?;
        let message = match (message_id, provider_id) {
            (Some(id), _) => match self.store().message(&MessageId::new(&id)).await {
                Ok(m) if m.workspace_id == ws.as_str() => Some(m),
                Ok(_) | Err(convo_store::StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            (None, Some(pid)) => self.store().message_by_provider_id(ws.as_str(), &pid).await?,
            (None, None) => {
                return Err(ApiError::validation(
                    "message_id",
                    "give message_id or provider_message_id",
                ));
            }
        };
        let message = message
            .filter(|m| m.direction == Direction::Outbound)
            .ok_or_else(|| ApiError::validation("message_id", "no outbound message has that id"))?;
        let channel = self.store().channel(ws.as_str(), message.channel).await?;
        self.sandbox_channel(&channel, "message_id")?;
        let report = StatusReport {
            status,
            error_code,
            error_message,
            source: "sandbox".into(),
            provider_at,
        };
        let id = message.id.as_str().to_owned();
        self.apply_delivery_report(ws, &message, &report).await?;
        self.message(ws, &id).await
    }

    /// Applies a provider's (or the sandbox's) status report to `message` of `ws`: the store's
    /// forward-only move, a `message.status_updated` webhook per move, and the late-failure
    /// release (see the module docs). Idempotent: a repeated report enqueues the same event id
    /// (nothing new) and re-runs the release check.
    pub(crate) async fn apply_delivery_report(
        &self,
        ws: &WorkspaceId,
        message: &MessageRecord,
        report: &StatusReport,
    ) -> Result<StatusApplied, ApiError> {
        use convo_domain::delivery::Transition;
        let applied = self.store().apply_delivery_status(&message.id, report).await?;
        let reached = applied.message.delivery_status == Some(report.status);
        if !reached || applied.transition == Transition::Stale {
            return Ok(applied);
        }
        let m = &applied.message;
        // A repeat (a provider's `sent` after the send's own acceptance, or a callback retried
        // after a crash between the status and its webhook) announces the change it repeats,
        // under the same event id: the status it moved from is the one before it in the history.
        let previous = if applied.transition == Transition::Duplicate {
            let history = self.store().status_history(&m.id).await?;
            history
                .iter()
                .take_while(|e| e.status != report.status)
                .last()
                .map_or(DeliveryStatus::Queued, |e| e.status)
        } else {
            applied.previous
        };
        let event_id = payload::status_event_id(&m.id, report.status);
        let data = payload::status_updated(ws.as_str(), m, previous, report);
        self.store().enqueue_webhook(ws.as_str(), &event_id, STATUS_UPDATED, data).await?;
        if report.status == DeliveryStatus::Failed {
            self.release_after_late_failure(ws, m, report).await?;
        }
        Ok(applied)
    }

    /// A late failure releases the billing session's hold when no message of that session
    /// reached the contact; the hold and its ledger entry record why.
    async fn release_after_late_failure(
        &self,
        ws: &WorkspaceId,
        message: &MessageRecord,
        report: &StatusReport,
    ) -> Result<(), ApiError> {
        let Some(session) = self.store().billing_session_of(&message.id).await? else {
            return Ok(());
        };
        if session.any_delivered {
            return Ok(());
        }
        let error = match (&report.error_code, &report.error_message) {
            (Some(c), Some(m)) => format!("{c} {m}"),
            (Some(c), None) => c.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "no error code".to_owned(),
        };
        let reason = format!(
            "delivery_failed: message {} failed on {} ({error}) and no message of its billing session was delivered",
            message.id.as_str(),
            report.source,
        );
        let hold = self.store().release_hold_because(ws.as_str(), &session.hold_id, &reason).await;
        match hold {
            Ok(hold) => {
                tracing::info!(
                    message_id = %message.id.as_str(), hold_id = %session.hold_id.as_str(),
                    status = ?hold.status, "late delivery failure settled the session's hold"
                );
                Ok(())
            }
            Err(convo_store::StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
