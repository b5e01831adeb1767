//! Composed conversations: `compose` (one contact) and `proactive` (a template campaign).

use convo_client::GatewayError;
use convo_domain::{Channel, ErrorCode};
use convo_store::ChannelConfig;
use convo_workflows::contracts::{Assignee, ComposeInput, ContactTarget, FirstMessage, SendError};

use super::{
    App, WorkspaceId, optional_text, required_text,
    types::{
        ComposeAccepted, ComposeRequest, ProactiveAccepted, ProactiveRequest, ProactiveResult,
        Recipient, RecipientDetail,
    },
};
use crate::error::ApiError;

/// The most recipients one proactive request may name.
const MAX_RECIPIENTS: usize = 1_000;
/// The longest message text accepted.
pub(crate) const MAX_TEXT: usize = 4_096;

/// How a conversation opens: to whom, with what, whose it is, and its traffic type.
struct Opening {
    to: ContactTarget,
    first: FirstMessage,
    assignee: Assignee,
    traffic_type: Option<convo_domain::TrafficType>,
}

impl App {
    /// `POST /v1/conversations/compose`: starts an `OutboundConversationWorkflow`.
    ///
    /// Exactly one contact is targeted: `contact_id`, or `contact_phone` and/or
    /// `contact_email`. A contact id together with an address, or a phone and an e-mail that
    /// belong to two different existing contacts, is a conflict (422 naming the second field).
    /// The channel must be the workspace's and enabled; e-mail needs a `subject` and an
    /// e-mail address, phone channels a phone number.
    ///
    /// The conversation id derives from the Idempotency-Key when there is one, so a retry
    /// finds the running conversation instead of starting a second (202 with its status).
    pub async fn compose(
        &self,
        ws: &WorkspaceId,
        req: ComposeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ComposeAccepted, ApiError> {
        let channel = self.resolve_channel(ws, &req.channel_id, "channel_id").await?;
        let content = required_text("content", &req.content, MAX_TEXT)?;
        let subject = optional_text("subject", req.subject.as_deref(), 998)?;
        if channel.channel == Channel::Email && subject.is_none() {
            return Err(ApiError::validation("subject", "is required on the email channel"));
        }
        let (template, template_params) = match &req.template {
            Some(t) => {
                let (name, params) =
                    self.resolve_template(ws, channel.channel, "template", t).await?;
                (Some(name), params)
            }
            None => (None, Default::default()),
        };
        let traffic_type = self.checked_traffic(ws, &channel, req.traffic_type.as_deref()).await?;
        let name = optional_text("contact_name", req.contact_name.as_deref(), 200)?;
        let target = self
            .compose_target(
                ws,
                &channel,
                req.contact_id.as_deref(),
                req.contact_phone.as_deref(),
                req.contact_email.as_deref(),
                name,
            )
            .await?;
        if template.is_none() {
            self.check_freeform_compose(ws, &channel, &target).await?;
        }
        let conversation_id = Self::derived_id("cv", ws, idempotency_key, "compose");
        let first = FirstMessage { text: Some(content), subject, template, template_params };
        let status = self
            .start_conversation(
                ws,
                &channel,
                &conversation_id,
                Opening { to: target, first, assignee: bot("api"), traffic_type },
            )
            .await?;
        Ok(ComposeAccepted { conversation_id, status })
    }

    /// `POST /v1/conversations/proactive`: one conversation per recipient, each opening with
    /// the template. A recipient that cannot be used (malformed number, unknown contact, an
    /// address the channel cannot reach) gets its own error and the others still start; an
    /// outage fails the whole request, so a retry with the same Idempotency-Key completes it
    /// (conversation ids derive from the key and the recipient's position).
    pub async fn proactive(
        &self,
        ws: &WorkspaceId,
        req: ProactiveRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ProactiveAccepted, ApiError> {
        let channel = self.resolve_channel(ws, &req.channel_id, "channel_id").await?;
        let (template, template_params) =
            self.resolve_template(ws, channel.channel, "template", &req.template).await?;
        if req.recipients.is_empty() || req.recipients.len() > MAX_RECIPIENTS {
            return Err(ApiError::validation(
                "recipients",
                format!("must list 1 to {MAX_RECIPIENTS} recipients"),
            ));
        }
        let traffic_type = self.checked_traffic(ws, &channel, req.traffic_type.as_deref()).await?;
        let user_id = optional_text("user_id", req.user_id.as_deref(), 200)?;
        let bot_id = optional_text("bot_id", req.bot_id.as_deref(), 200)?;
        let assignee = match (req.live_agent, user_id, bot_id) {
            (true, _, Some(_)) => {
                return Err(ApiError::validation(
                    "bot_id",
                    "a live_agent conversation is a person's, not a bot's: give user_id",
                ));
            }
            (true, Some(agent), None) => Assignee::Human { id: agent },
            (true, None, None) => {
                return Err(ApiError::validation(
                    "user_id",
                    "is required with live_agent: the human agent who owns the conversations",
                ));
            }
            (false, Some(_), _) => {
                return Err(ApiError::validation(
                    "user_id",
                    "names the human agent of a live_agent request; set live_agent: true",
                ));
            }
            (false, None, Some(bot_id)) => bot(&bot_id),
            (false, None, None) => bot("api"),
        };
        let queue = optional_text("queue", req.queue.as_deref(), 200)?;
        let mut results: Vec<ProactiveResult> = Vec::with_capacity(req.recipients.len());
        // Each recipient once: a later listing of the same contact, phone or e-mail shares the
        // first one's conversation.
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (index, recipient) in req.recipients.iter().enumerate() {
            let field = format!("recipients[{index}]");
            let (label, detail) = match recipient {
                Recipient::Address(a) => (a.clone(), address_detail(a)),
                Recipient::Detailed(d) => (describe(d), d.clone()),
            };
            if let Some(key) = recipient_key(&detail) {
                if let Some(&first) = seen.get(&key) {
                    results.push(ProactiveResult {
                        recipient: label,
                        conversation_id: results[first].conversation_id.clone(),
                        status: Some("duplicate".to_owned()),
                        duplicate_of: Some(first),
                        error: results[first].error.clone(),
                    });
                    continue;
                }
                seen.insert(key, index);
            }
            let started = async {
                let target = self
                    .compose_target(
                        ws,
                        &channel,
                        detail.contact_id.as_deref(),
                        detail.phone.as_deref(),
                        detail.email.as_deref(),
                        optional_text(&field, detail.name.as_deref(), 200)?,
                    )
                    .await
                    .map_err(|e| super::rename_field(e, &field))?;
                let id = Self::derived_id("cv", ws, idempotency_key, &format!("proactive/{index}"));
                let first = FirstMessage {
                    text: None,
                    subject: None,
                    template: Some(template.clone()),
                    template_params: template_params.clone(),
                };
                let status = self
                    .start_conversation(
                        ws,
                        &channel,
                        &id,
                        Opening { to: target, first, assignee: assignee.clone(), traffic_type },
                    )
                    .await?;
                Ok::<_, ApiError>((id, status))
            };
            match started.await {
                Ok((id, status)) => results.push(ProactiveResult {
                    recipient: label,
                    conversation_id: Some(id),
                    status: Some(status),
                    duplicate_of: None,
                    error: None,
                }),
                // An outage is not the recipient's fault: fail the request so it is retried.
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => results.push(ProactiveResult {
                    recipient: label,
                    conversation_id: None,
                    status: None,
                    duplicate_of: None,
                    error: Some(e.body()["error"].clone()),
                }),
            }
        }
        let duplicates = results.iter().filter(|r| r.duplicate_of.is_some()).count();
        let firsts = || results.iter().filter(|r| r.duplicate_of.is_none());
        let accepted = firsts().filter(|r| r.conversation_id.is_some()).count();
        let failed = firsts().filter(|r| r.conversation_id.is_none()).count();
        Ok(ProactiveAccepted { conversations: results, accepted, failed, duplicates, queue })
    }

    /// A compose with no template opens with free-form text, which a gated channel allows only
    /// in an open window: without one the compose is refused at once (422
    /// `no_active_session`, or `contact_opted_out`), rather than accepted and then failed.
    /// The conversation's send decides again, so a window that closes in between still fails
    /// the conversation, never downgrades it.
    async fn check_freeform_compose(
        &self,
        ws: &WorkspaceId,
        channel: &ChannelConfig,
        target: &ContactTarget,
    ) -> Result<(), ApiError> {
        let contact = match target {
            ContactTarget::Id { contact_id } => Some(contact_id.clone()),
            ContactTarget::Phone { phone: address, .. }
            | ContactTarget::Email { email: address, .. } => {
                self.store().contact_by_address(ws.as_str(), address).await?.map(|c| c.id)
            }
        };
        let consent = match &contact {
            Some(id) => self.store().consent(ws.as_str(), id).await?,
            None => convo_domain::Consent::Unknown,
        };
        if let convo_domain::Consent::OptedOut { at } = consent {
            return Err(ApiError::from(SendError {
                code: ErrorCode::ContactOptedOut.to_owned(),
                message: format!("the contact opted out at {at}"),
            }));
        }
        let workspace = self.store().workspace(ws.as_str()).await?;
        let gated = workspace
            .settings
            .config_for(channel.channel)
            .is_ok_and(|config| config.policy.gate.applies(consent.is_opted_in()));
        if !gated {
            return Ok(());
        }
        if let Some(id) = &contact
            && self.session_view(ws, id).await?.is_some_and(|v| v.window.open)
        {
            return Ok(());
        }
        Err(ApiError::from(SendError {
            code: ErrorCode::NoActiveSession.to_owned(),
            message: format!(
                "no {} window is open with the contact and the compose has no template: give \
                 `template` to start the conversation",
                channel.channel
            ),
        }))
    }

    /// Validates who a compose goes to and turns it into the workflow's [`ContactTarget`].
    async fn compose_target(
        &self,
        ws: &WorkspaceId,
        channel: &ChannelConfig,
        contact_id: Option<&str>,
        phone: Option<&str>,
        email: Option<&str>,
        name: Option<String>,
    ) -> Result<ContactTarget, ApiError> {
        let id = optional_text("contact_id", contact_id, 200)?;
        let phone = optional_text("contact_phone", phone, 64)?;
        let email = optional_text("contact_email", email, 254)?;
        let phone = phone
            .map(|p| convo_store::normalize_phone(&p))
            .transpose()
            .map_err(|e| super::rename_field(e.into(), "contact_phone"))?;
        let email = email
            .map(|m| convo_store::normalize_email(&m))
            .transpose()
            .map_err(|e| super::rename_field(e.into(), "contact_email"))?;
        if let Some(id) = id {
            if phone.is_some() || email.is_some() {
                let other = if phone.is_some() { "contact_phone" } else { "contact_email" };
                return Err(ApiError::validation(
                    other,
                    "give contact_id or an address (contact_phone, contact_email), not both",
                ));
            }
            let contact = self
                .find_contact(ws, &id, "contact_id")
                .await?
                .ok_or_else(|| ApiError::validation("contact_id", format!("no contact {id:?}")))?;
            reachable(
                channel.channel,
                contact.phone.is_some(),
                contact.email.is_some(),
                "contact_id",
            )?;
            return Ok(ContactTarget::Id { contact_id: contact.id });
        }
        if let (Some(p), Some(m)) = (&phone, &email) {
            let by_phone = self.store().contact_by_address(ws.as_str(), p).await?;
            let by_email = self.store().contact_by_address(ws.as_str(), m).await?;
            if let (Some(a), Some(b)) = (by_phone, by_email)
                && a.id != b.id
            {
                return Err(ApiError::validation(
                    "contact_email",
                    "contact_phone and contact_email belong to two different contacts",
                ));
            }
        }
        reachable(channel.channel, phone.is_some(), email.is_some(), "contact_id")?;
        Ok(match (channel.channel, phone, email) {
            (Channel::Email, _, Some(email)) => ContactTarget::Email { email, name },
            (_, Some(phone), _) => ContactTarget::Phone { phone, name },
            (_, None, Some(email)) => ContactTarget::Email { email, name },
            (_, None, None) => {
                return Err(ApiError::validation(
                    "contact_id",
                    "give one of contact_id, contact_phone or contact_email",
                ));
            }
        })
    }

    /// A compose's or campaign's `traffic_type`, held to the channel's approved use case.
    async fn checked_traffic(
        &self,
        ws: &WorkspaceId,
        channel: &ChannelConfig,
        value: Option<&str>,
    ) -> Result<Option<convo_domain::TrafficType>, ApiError> {
        match optional_text("traffic_type", value, 50)? {
            Some(v) => Ok(Some(self.traffic_type(ws, channel.channel, &v).await?)),
            None => Ok(None),
        }
    }

    /// Registers the conversation (for ownership checks) and starts its workflow. A
    /// conversation already running under this id (a retried request) is not an error: its
    /// current status is returned.
    async fn start_conversation(
        &self,
        ws: &WorkspaceId,
        channel: &ChannelConfig,
        conversation_id: &str,
        opening: Opening,
    ) -> Result<String, ApiError> {
        let Opening { to, first: first_message, assignee, traffic_type } = opening;
        self.store()
            .record_conversation(conversation_id, ws.as_str(), channel.channel, &channel.id)
            .await?;
        let input = ComposeInput {
            conversation_id: conversation_id.to_owned(),
            workspace_id: ws.as_str().to_owned(),
            channel: channel.channel,
            to,
            first_message,
            reply_timeout_secs: self.settings().reply_timeout.as_secs().max(1),
            assignee,
            traffic_type,
        };
        match self.gateway().compose(input).await {
            Ok(_) => Ok("pending".to_owned()),
            Err(GatewayError::ConversationExists(_)) => Ok(self
                .conversation_view(conversation_id)
                .await
                .map(|v| super::conversations::status_name(v.status))
                .unwrap_or_else(|_| "pending".to_owned())),
            Err(e) => Err(e.into()),
        }
    }
}

fn bot(id: &str) -> Assignee {
    Assignee::Bot { id: id.to_owned() }
}

/// Whether the channel can reach a contact with these addresses: e-mail needs an e-mail
/// address, WhatsApp, SMS and RCS a phone number; Messenger and Instagram take either (the
/// platform's user id is stored as the contact's address).
fn reachable(channel: Channel, phone: bool, email: bool, field: &str) -> Result<(), ApiError> {
    let ok = match channel {
        Channel::Email => email,
        Channel::Whatsapp | Channel::Sms | Channel::Rcs => phone,
        Channel::Messenger | Channel::Instagram => phone || email,
    };
    if ok {
        return Ok(());
    }
    if !phone && !email {
        return Err(ApiError::validation(
            field,
            "give one of contact_id, contact_phone or contact_email",
        ));
    }
    let needs = if channel == Channel::Email { "an e-mail address" } else { "a phone number" };
    Err(ApiError::validation(field, format!("the {channel} channel needs {needs}")))
}

/// A recipient given as a plain string.
fn address_detail(address: &str) -> RecipientDetail {
    let a = address.trim().to_owned();
    let mut d = RecipientDetail { contact_id: None, phone: None, email: None, name: None };
    if a.contains('@') {
        d.email = Some(a);
    } else if super::is_address(&a) || a.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        d.phone = Some(a);
    } else {
        d.contact_id = Some(a);
    }
    d
}

/// What makes two listings the same recipient: the contact id, else the phone as E.164, else
/// the e-mail address normalized; `None` for a listing that names none of them validly (it
/// fails on its own).
fn recipient_key(d: &RecipientDetail) -> Option<String> {
    use convo_store::{normalize_email, normalize_phone};
    if let Some(id) = d.contact_id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        return Some(format!("id:{id}"));
    }
    if let Some(phone) = d.phone.as_deref().and_then(|p| normalize_phone(p).ok()) {
        return Some(format!("phone:{phone}"));
    }
    d.email.as_deref().and_then(|e| normalize_email(e).ok()).map(|e| format!("email:{e}"))
}

fn describe(d: &RecipientDetail) -> String {
    d.contact_id.clone().or_else(|| d.phone.clone()).or_else(|| d.email.clone()).unwrap_or_default()
}
