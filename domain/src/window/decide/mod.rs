//! [`decide`]: the session's state machine as one pure function.
//!
//! `decide(state, event, now)` clones the state, applies the event, then reconciles the timers
//! (the running timers are always the ones the new state needs: a moved deadline is a
//! `CancelTimer` followed by a `StartTimer`). Nothing here reads a clock or does I/O.

mod inbound;
mod lifecycle;
mod send;

use super::{Decision, Effect, Error, Event, State, Webhook};
use crate::{MessageId, Timestamp};

/// Applies `event`, processed at `now`, to `state`.
///
/// A timer firing that the state no longer runs (it was replaced or cancelled, and the firing
/// raced the cancellation) changes nothing.
pub fn decide(state: &State, event: &Event, now: Timestamp) -> Decision {
    if let Event::TimerFired { timer } = event
        && state.timers.get(*timer).is_none_or(|at| now < at)
    {
        return Decision { next: state.clone(), effects: Vec::new() };
    }
    let mut cx = Cx { s: state.clone(), effects: Vec::new(), now };
    match event {
        Event::InboundMessage { message_id, text, sent_at } => {
            cx.on_inbound(message_id, text, *sent_at);
        }
        Event::FreeformSendRequested { .. }
        | Event::RichSendRequested { .. }
        | Event::TemplateSendRequested { .. } => {
            if let Some(request) = send::Request::from_event(event) {
                cx.request(request);
            }
        }
        Event::HoldPlaced { hold_id, balance } => cx.hold_placed(hold_id, *balance),
        Event::HoldRefused { hold_id, balance } => cx.hold_refused(hold_id, *balance),
        Event::ProviderAccepted { message_id } => cx.provider_outcome(message_id, true),
        Event::ProviderRejected { message_id, .. } => cx.provider_outcome(message_id, false),
        Event::ConsentChanged { consent } => cx.consent_changed(*consent),
        Event::CloseRequested => cx.begin_close(super::CloseReason::Explicit),
        Event::ChannelChanged { config } => cx.channel_changed(config),
        Event::TimerFired { timer } => cx.on_timer(*timer),
    }
    cx.reconcile_timers();
    Decision { next: cx.s, effects: cx.effects }
}

/// Checks a send request against `state` without changing anything: the answer an update
/// validator gives. `Ok` for events that are not send requests. A send that passes may still be
/// refused later with `insufficient_balance`, which only the ledger can tell.
pub fn validate(state: &State, event: &Event, now: Timestamp) -> Result<(), Error> {
    match send::Request::from_event(event) {
        Some(request) => send::check(state, &request, now).map(|_| ()),
        None => Ok(()),
    }
}

/// The decision being built.
struct Cx {
    s: State,
    effects: Vec<Effect>,
    now: Timestamp,
}

impl Cx {
    fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn next_seq(&mut self) -> u64 {
        self.s.webhook_seq += 1;
        self.s.webhook_seq
    }

    fn webhook(&mut self, make: impl FnOnce(u64) -> Webhook) {
        let seq = self.next_seq();
        self.emit(Effect::EmitWebhook(make(seq)));
    }

    fn reject(&mut self, message_id: MessageId, error: Error) {
        self.emit(Effect::Reject { message_id, error });
    }
}
