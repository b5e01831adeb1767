//! Builders shared by the state-machine tests.

use crate::{
    Balance, Channel, Consent, HoldId, MessageId, MessageType, Money, PolicyOverrides, RateCard,
    Timestamp,
    window::{Config, Decision, Effect, Event, Sender, State, TimerKind, decide},
};

/// Milliseconds in an hour.
pub(super) const HOUR_MS: u64 = 60 * 60 * 1000;
/// An arbitrary epoch for the tests (14 Nov 2023).
const T0: u64 = 1_700_000_000_000;

/// `hours` after the test epoch.
pub(super) fn h(hours: u64) -> Timestamp {
    Timestamp::from_epoch_millis(T0 + hours * HOUR_MS)
}

/// `minutes` after the test epoch.
pub(super) fn min(minutes: u64) -> Timestamp {
    Timestamp::from_epoch_millis(T0 + minutes * 60 * 1000)
}

pub(super) fn m(minor: u64) -> Money {
    Money::from_minor(minor)
}

pub(super) fn id(s: &str) -> MessageId {
    MessageId::from(s)
}

pub(super) fn hold(s: &str) -> HoldId {
    HoldId::for_message(&id(s))
}

/// Unit 50, MESSAGE 5, NEWSLETTER 1.
pub(super) fn rates() -> RateCard {
    RateCard { conversation_unit: m(50), message: m(5), newsletter: m(1) }
}

/// A session on `channel` with its default policy and free rates.
pub(super) fn free(channel: Channel) -> State {
    State::new(Config::new(channel), Consent::Unknown)
}

/// A session on `channel` with its default policy and [`rates`].
pub(super) fn priced(channel: Channel) -> State {
    State::new(Config { rates: rates(), ..Config::new(channel) }, Consent::Unknown)
}

/// A free session on `channel` with `overrides` applied.
pub(super) fn overridden(channel: Channel, overrides: PolicyOverrides) -> State {
    let policy = channel.default_policy().with_overrides(&overrides).unwrap();
    State::new(Config { policy, ..Config::new(channel) }, Consent::Unknown)
}

pub(super) fn inbound(msg: &str, text: &str) -> Event {
    Event::InboundMessage { message_id: id(msg), text: text.to_owned(), sent_at: None }
}

pub(super) fn freeform(msg: &str) -> Event {
    Event::FreeformSendRequested {
        message_id: id(msg),
        text: "How can we help?".to_owned(),
        subject: None,
        sender: Sender::Automated,
    }
}

pub(super) fn human(msg: &str) -> Event {
    match freeform(msg) {
        Event::FreeformSendRequested { message_id, text, subject, .. } => {
            Event::FreeformSendRequested { message_id, text, subject, sender: Sender::HumanAgent }
        }
        other => other,
    }
}

pub(super) fn template(msg: &str) -> Event {
    Event::TemplateSendRequested {
        message_id: id(msg),
        template: "order_update".to_owned(),
        message_type: MessageType::Message,
        params: Default::default(),
    }
}

pub(super) fn placed(msg: &str, free: u64) -> Event {
    Event::HoldPlaced { hold_id: hold(msg), balance: Balance::new(m(free)) }
}

pub(super) fn accepted(msg: &str) -> Event {
    Event::ProviderAccepted { message_id: id(msg) }
}

pub(super) fn fired(timer: TimerKind) -> Event {
    Event::TimerFired { timer }
}

/// Feeds `steps` in order and returns every decision.
pub(super) fn run(state: &State, steps: &[(Event, Timestamp)]) -> Vec<Decision> {
    let mut current = state.clone();
    let mut decisions = Vec::new();
    for (event, now) in steps {
        let d = decide(&current, event, *now);
        current = d.next.clone();
        decisions.push(d);
    }
    decisions
}

/// The state after `steps`.
pub(super) fn after(state: &State, steps: &[(Event, Timestamp)]) -> State {
    run(state, steps).pop().map_or_else(|| state.clone(), |d| d.next)
}

/// What a decision did with send `msg`: `Ok(type, human_agent_tag)` if handed to the provider
/// or waiting on a hold, `Err(code)` if refused.
pub(super) fn outcome(d: &Decision, msg: &str) -> Result<(MessageType, bool), &'static str> {
    if let Some(e) = d.rejection(&id(msg)) {
        return Err(e.code().as_str());
    }
    if let Some((message, _)) = d.sends().find(|(message, _)| message.id == id(msg)) {
        return Ok((message.message_type, message.human_agent_tag));
    }
    let waiting = d.next.pending.iter().find(|p| p.message.id == id(msg));
    waiting.map(|p| (p.message.message_type, p.message.human_agent_tag)).ok_or("no outcome")
}

/// The webhook event types of a decision, in order.
pub(super) fn webhooks(d: &Decision) -> Vec<&'static str> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            Effect::EmitWebhook(w) => Some(match w {
                crate::window::Webhook::ConversationStarted { .. } => "conversation.started",
                crate::window::Webhook::MessageExchanged { .. } => "conversation.message_exchanged",
                crate::window::Webhook::ConversationEnded { .. } => "conversation.ended",
            }),
            _ => None,
        })
        .collect()
}
