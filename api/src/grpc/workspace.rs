//! `convo.v1.WorkspaceService` and `convo.v1.TemplateService` over
//! [`crate::app::WorkspaceAdmin`], the same functions the HTTP routes call, with their
//! conversions.
//!
//! The wire names channels, gates and modes as strings (the HTTP API's spelling); a string
//! that names none is refused here naming its field, everything else is the application's.

use convo_domain::{Channel, Gate, WindowMode};
use convo_proto::v1::{
    self as pb, template_service_server::TemplateService,
    workspace_service_server::WorkspaceService,
};
use convo_store::{Actor, ApiKeyScope, TemplateButton, TemplateButtonKind, TemplateCard};
use serde::{Serialize, de::DeserializeOwned};
use tonic::{Request, Response, Status};

use super::services::Api;
use crate::{
    app::{
        App,
        idempotency::operation,
        parse_channel,
        types::{
            BalanceOut, ComplianceIn, CreateTemplateRequest, InactivityPing, PolicyOverridesIn,
            Rates, SettingsOut, SettingsPatch, TemplateOut, TopUpOut, TopUpRequest, TopUpsQuery,
        },
    },
    error::ApiError,
};

// ---- requests: wire → application -----------------------------------------------------------

/// A snake-case enum (`Gate`, `WindowMode`) from its serde spelling.
fn variant<T: DeserializeOwned>(
    field: String,
    value: Option<String>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| ApiError::validation(field, format!("{v:?} is not a valid value")))
        })
        .transpose()
}

fn rates(r: pb::Rates) -> Rates {
    Rates { conversation_unit: r.conversation_unit, message: r.message, newsletter: r.newsletter }
}

fn overrides(prefix: &str, o: pb::PolicyOverrides) -> Result<PolicyOverridesIn, ApiError> {
    Ok(PolicyOverridesIn {
        gate: variant::<Gate>(format!("{prefix}gate"), o.gate)?,
        mode: variant::<WindowMode>(format!("{prefix}mode"), o.mode)?,
        window_secs: o.window_secs,
        billing_session_secs: o.billing_session_secs,
        human_agent_secs: o.human_agent_secs,
    })
}

fn compliance(c: pb::ComplianceTexts) -> ComplianceIn {
    ComplianceIn {
        help: c.help,
        opt_out_confirmation: c.opt_out_confirmation,
        opt_in_confirmation: c.opt_in_confirmation,
    }
}

fn ping(p: pb::InactivityPing) -> InactivityPing {
    InactivityPing {
        after_secs: p.after_secs,
        text: p.text,
        subject: p.subject,
        template: p.template,
    }
}

fn patch(r: pb::UpdateSettingsRequest) -> Result<SettingsPatch, ApiError> {
    use pb::update_settings_request::InactivityPingChange;
    let key = |map: &str, k: &str| parse_channel(&format!("{map}.{k}"), k);
    Ok(SettingsPatch {
        rates: r
            .rates
            .into_iter()
            .map(|(k, v)| Ok((key("rates", &k)?, rates(v))))
            .collect::<Result<_, ApiError>>()?,
        policies: r
            .policies
            .into_iter()
            .map(|(k, v)| {
                let channel = key("policies", &k)?;
                Ok((channel, overrides(&format!("policies.{k}."), v)?))
            })
            .collect::<Result<_, ApiError>>()?,
        compliance: r.compliance.map(compliance),
        inactivity_ping: match r.inactivity_ping_change {
            None | Some(InactivityPingChange::ClearInactivityPing(false)) => None,
            Some(InactivityPingChange::ClearInactivityPing(true)) => Some(None),
            Some(InactivityPingChange::InactivityPing(p)) => Some(Some(ping(p))),
        },
        currency: r.currency,
        volume_tiers: r
            .volume_tiers
            .into_iter()
            .map(|(k, v)| {
                let tiers = v
                    .tiers
                    .into_iter()
                    .map(|t| convo_domain::billing::VolumeTier { name: t.name, up_to: t.up_to })
                    .collect();
                Ok((key("volume_tiers", &k)?, tiers))
            })
            .collect::<Result<_, ApiError>>()?,
        use_cases: r
            .use_cases
            .into_iter()
            .map(|(k, v)| {
                let channel = key("use_cases", &k)?;
                if v.is_empty() {
                    return Ok((channel, None));
                }
                let use_case = convo_domain::UseCase::ALL
                    .into_iter()
                    .find(|u| u.as_str() == v)
                    .ok_or_else(|| {
                        ApiError::validation(
                            format!("use_cases.{k}"),
                            "must be otp, transactional, promotional or multi_use",
                        )
                    })?;
                Ok((channel, Some(use_case)))
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

/// The application names a nested request's fields from its own root (`message`); on the wire
/// they sit under `parent` (`rates.message`).
fn nested(parent: &'static str) -> impl Fn(ApiError) -> ApiError {
    move |mut e| {
        if let Some(field) = &e.field
            && field != "channel"
        {
            e.field = Some(format!("{parent}.{field}"));
        }
        e
    }
}

// ---- answers: application → wire ------------------------------------------------------------

/// A snake-case enum's serde spelling.
fn spelling(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn balance(b: BalanceOut) -> pb::Balance {
    pb::Balance { free: b.free, reserved: b.reserved, total: b.total }
}

fn settings(s: SettingsOut) -> pb::WorkspaceSettings {
    pb::WorkspaceSettings {
        workspace_id: s.workspace_id,
        rates: s
            .rates
            .into_iter()
            .map(|(c, r)| {
                let r = pb::Rates {
                    conversation_unit: r.conversation_unit,
                    message: r.message,
                    newsletter: r.newsletter,
                };
                (c.as_str().to_owned(), r)
            })
            .collect(),
        policies: s
            .policies
            .into_iter()
            .map(|(c, p)| {
                let o = p.overrides;
                let e = p.effective;
                let policy = pb::ChannelPolicy {
                    overrides: Some(pb::PolicyOverrides {
                        gate: o.gate.map(spelling),
                        mode: o.mode.map(spelling),
                        window_secs: o.window_secs,
                        billing_session_secs: o.billing_session_secs,
                        human_agent_secs: o.human_agent_secs,
                    }),
                    effective: Some(pb::WindowPolicy {
                        gate: spelling(e.gate),
                        mode: spelling(e.mode),
                        window_secs: e.window_secs,
                        billing_session_secs: e.billing_session_secs,
                        human_agent_secs: e.human_agent_secs,
                    }),
                };
                (c.as_str().to_owned(), policy)
            })
            .collect(),
        compliance: Some(pb::ComplianceTexts {
            help: Some(s.compliance.help),
            opt_out_confirmation: Some(s.compliance.opt_out_confirmation),
            opt_in_confirmation: Some(s.compliance.opt_in_confirmation),
        }),
        inactivity_ping: s.inactivity_ping.map(|p| pb::InactivityPing {
            after_secs: p.after_secs,
            text: p.text,
            subject: p.subject,
            template: p.template,
        }),
        currency: s.currency,
        volume_tiers: s
            .volume_tiers
            .into_iter()
            .map(|(c, tiers)| {
                let tiers = tiers
                    .into_iter()
                    .map(|t| pb::VolumeTier { name: t.name, up_to: t.up_to })
                    .collect();
                (c.as_str().to_owned(), pb::VolumeTiers { tiers })
            })
            .collect(),
        use_cases: s
            .use_cases
            .into_iter()
            .map(|(c, u)| (c.as_str().to_owned(), u.as_str().to_owned()))
            .collect(),
    }
}

fn top_up(t: TopUpOut) -> pb::TopUp {
    pb::TopUp {
        id: t.id,
        amount: t.amount,
        reason: t.reason,
        by: t.by.map(|a| pb::Actor { kind: a.kind, id: a.id }),
        created_at: t.created_at,
        balance_after: t.balance_after.map(balance),
    }
}

fn template(t: TemplateOut) -> pb::MessageTemplate {
    let c = t.components;
    pb::MessageTemplate {
        name: t.name,
        channel: t.channel.as_str().to_owned(),
        language: t.language,
        body: t.body,
        variables: t.variables,
        created_at: t.created_at,
        category: t.category.as_str().to_owned(),
        status: t.status.as_str().to_owned(),
        header: c.header,
        footer: c.footer,
        subject: c.subject,
        buttons: c.buttons.into_iter().map(button_out).collect(),
        cards: c
            .cards
            .into_iter()
            .map(|card| pb::TemplateCard {
                header: card.header,
                body: card.body,
                buttons: card.buttons.into_iter().map(button_out).collect(),
            })
            .collect(),
    }
}

fn button_out(b: TemplateButton) -> pb::TemplateButton {
    let kind = serde_json::to_value(b.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
    pb::TemplateButton {
        kind: kind.unwrap_or_default(),
        text: b.text,
        url: b.url,
        phone_number: b.phone_number,
    }
}

/// An upper-case enum value as the HTTP API spells it (`marketing` reads as `MARKETING`).
fn upper<T: DeserializeOwned>(field: &str, value: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(value.trim().to_uppercase()))
        .map_err(|_| ApiError::validation(field, format!("{value:?} is not an accepted value")))
}

fn buttons_in(field: &str, list: Vec<pb::TemplateButton>) -> Result<Vec<TemplateButton>, ApiError> {
    list.into_iter()
        .enumerate()
        .map(|(i, b)| {
            let kind: TemplateButtonKind =
                serde_json::from_value(serde_json::Value::String(b.kind.trim().to_lowercase()))
                    .map_err(|_| {
                        ApiError::validation(
                            format!("{field}[{i}].kind"),
                            "must be quick_reply, url or phone_number",
                        )
                    })?;
            Ok(TemplateButton { kind, text: b.text, url: b.url, phone_number: b.phone_number })
        })
        .collect()
}

fn ok<T, P>(
    result: Result<T, ApiError>,
    convert: impl FnOnce(T) -> P,
) -> Result<Response<P>, Status> {
    Ok(Response::new(convert(result?)))
}

// ---- services -------------------------------------------------------------------------------

#[tonic::async_trait]
impl WorkspaceService for Api {
    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        ok(self.app.workspace().settings(&ws).await, settings)
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        let patch = patch(request.into_inner())?;
        ok(self.app.workspace().update_settings(&ws, patch).await, settings)
    }

    async fn set_rates(
        &self,
        request: Request<pb::SetRatesRequest>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        let r = request.into_inner();
        let input =
            r.rates.map(rates).ok_or_else(|| ApiError::validation("rates", "is required"))?;
        let answer =
            self.app.workspace().set_rates(&ws, &r.channel, input).await.map_err(nested("rates"));
        ok(answer, settings)
    }

    async fn set_policy(
        &self,
        request: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        let r = request.into_inner();
        let input = overrides("overrides.", r.overrides.unwrap_or_default())?;
        let answer = self
            .app
            .workspace()
            .set_policy(&ws, &r.channel, input)
            .await
            .map_err(nested("overrides"));
        ok(answer, settings)
    }

    async fn set_compliance(
        &self,
        request: Request<pb::ComplianceTexts>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        let input = compliance(request.into_inner());
        ok(self.app.workspace().set_compliance(&ws, input).await, settings)
    }

    async fn set_inactivity_ping(
        &self,
        request: Request<pb::InactivityPing>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        let input = ping(request.into_inner());
        ok(self.app.workspace().set_inactivity_ping(&ws, input).await, settings)
    }

    async fn clear_inactivity_ping(
        &self,
        request: Request<pb::ClearInactivityPingRequest>,
    ) -> Result<Response<pb::WorkspaceSettings>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        ok(self.app.workspace().clear_inactivity_ping(&ws).await, settings)
    }

    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::Balance>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        ok(self.app.workspace().balance(&ws).await, balance)
    }

    async fn top_up(
        &self,
        request: Request<pb::TopUpRequest>,
    ) -> Result<Response<pb::TopUp>, Status> {
        let (metadata, _, message) = request.into_parts();
        let caller = self.authenticate_caller(&metadata, ApiKeyScope::Admin).await?;
        let ws = &caller.workspace;
        let input = TopUpRequest { amount: message.amount, reason: message.reason };
        let print = App::request_fingerprint(operation::TOP_UP, "", &input)?;
        let by = Actor::ApiKey(caller.api_key_id.clone());
        let answer = self
            .idempotent(ws, &metadata, print, |key| async move {
                self.app.workspace().top_up(ws, by, input, key.as_deref()).await
            })
            .await?;
        Ok(answer.into_response(top_up))
    }

    async fn list_top_ups(
        &self,
        request: Request<pb::ListTopUpsRequest>,
    ) -> Result<Response<pb::ListTopUpsResponse>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let query = TopUpsQuery { limit: request.get_ref().limit };
        ok(self.app.workspace().top_ups(&ws, query).await, |list| pb::ListTopUpsResponse {
            top_ups: list.data.into_iter().map(top_up).collect(),
        })
    }
}

#[tonic::async_trait]
impl TemplateService for Api {
    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::MessageTemplate>, Status> {
        let (metadata, _, message) = request.into_parts();
        let ws = &self.authenticate(&metadata, ApiKeyScope::Admin).await?;
        let channel: Channel = parse_channel("channel", &message.channel)?;
        let input = CreateTemplateRequest {
            name: message.name,
            channel,
            language: message.language,
            body: message.body,
            variables: message.variables,
            category: message.category.as_deref().map(|c| upper("category", c)).transpose()?,
            status: message.status.as_deref().map(|s| upper("status", s)).transpose()?,
            header: message.header,
            footer: message.footer,
            subject: message.subject,
            buttons: buttons_in("buttons", message.buttons)?,
            cards: message
                .cards
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    Ok(TemplateCard {
                        header: c.header,
                        body: c.body,
                        buttons: buttons_in(&format!("cards[{i}].buttons"), c.buttons)?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        };
        let print = App::request_fingerprint(operation::CREATE_TEMPLATE, "", &input)?;
        let answer = self
            .idempotent(ws, &metadata, print, |_| async move {
                self.app.workspace().create_template(ws, input).await
            })
            .await?;
        Ok(answer.into_response(template))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        ok(self.app.workspace().templates(&ws).await, |list| pb::ListTemplatesResponse {
            templates: list.data.into_iter().map(template).collect(),
        })
    }

    async fn get_template(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::MessageTemplate>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Read).await?;
        let r = request.get_ref();
        ok(self.app.workspace().template(&ws, &r.name, r.channel.as_deref()).await, template)
    }

    async fn delete_template(
        &self,
        request: Request<pb::DeleteTemplateRequest>,
    ) -> Result<Response<pb::Ack>, Status> {
        let ws = self.authenticate(request.metadata(), ApiKeyScope::Admin).await?;
        let r = request.get_ref();
        ok(self.app.workspace().delete_template(&ws, &r.name, r.channel.as_deref()).await, |()| {
            pb::Ack { ok: true }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_name_nothing_are_refused_by_field() {
        let bad_mode = pb::PolicyOverrides { mode: Some("elastic".into()), ..Default::default() };
        let e = overrides("overrides.", bad_mode).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("overrides.mode"));
        let o = overrides(
            "",
            pb::PolicyOverrides { gate: Some("until_opt_in".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(o.gate, Some(Gate::UntilOptIn));
        let request = pb::UpdateSettingsRequest {
            rates: [("fax".to_owned(), pb::Rates::default())].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(patch(request).unwrap_err().field.as_deref(), Some("rates.fax"));
        assert_eq!(spelling(WindowMode::Fixed), "fixed");
        assert_eq!(spelling(Gate::UntilOptIn), "until_opt_in");
    }

    #[test]
    fn a_ping_change_is_a_ping_a_clear_or_nothing() {
        use pb::update_settings_request::InactivityPingChange;
        let with = |change| {
            patch(pb::UpdateSettingsRequest {
                inactivity_ping_change: change,
                ..Default::default()
            })
            .unwrap()
            .inactivity_ping
        };
        assert_eq!(with(None), None);
        assert_eq!(with(Some(InactivityPingChange::ClearInactivityPing(true))), Some(None));
        let p =
            pb::InactivityPing { after_secs: 60, text: Some("hi".into()), ..Default::default() };
        assert_eq!(
            with(Some(InactivityPingChange::InactivityPing(p))).flatten().map(|p| p.after_secs),
            Some(60)
        );
    }
}
