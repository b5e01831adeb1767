//! Close reasons, timers, the inactivity ping, provider timestamps and payload shapes.

use super::fixtures::*;
use crate::{
    Channel, CloseReason, Consent, DAY_SECS,
    window::{Config, Content, Effect, Event, InactivityPing, State, TimerKind, decide},
};

#[test]
fn expiry_closes_as_expired_and_explicit_close_is_idempotent() {
    let s = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    let expired = decide(&s, &fired(TimerKind::Expiry), h(24));
    assert_eq!(expired.closed(), Some(CloseReason::Expired));
    assert_eq!(expired.next.last_close(), Some(CloseReason::Expired));
    assert!(expired.next.is_idle());

    let closed = decide(&s, &Event::CloseRequested, h(1));
    assert_eq!(closed.closed(), Some(CloseReason::Explicit));
    let again = decide(&closed.next, &Event::CloseRequested, h(1));
    assert!(again.effects.is_empty());
    assert_eq!(again.next, closed.next);
}

#[test]
fn a_replaced_timer_firing_late_changes_nothing() {
    let s = after(
        &free(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (inbound("m2", "more"), h(10))],
    );
    assert_eq!(s.armed_timer(TimerKind::Expiry), Some(h(34)));
    let d = decide(&s, &fired(TimerKind::Expiry), h(24));
    assert!(d.effects.is_empty());
    assert_eq!(d.next, s);
    // A timer that is not running at all, likewise.
    let d = decide(&s, &fired(TimerKind::Inactivity), h(30));
    assert!(d.effects.is_empty());
}

#[test]
fn an_inbound_after_the_end_closes_and_reopens_in_one_decision() {
    let s = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    // The expiry timer has not been processed when the message arrives.
    let d = decide(&s, &inbound("m2", "back again"), h(30));
    assert_eq!(
        webhooks(&d),
        ["conversation.ended", "conversation.started", "conversation.message_exchanged"]
    );
    let close_at = d.effects.iter().position(|e| matches!(e, Effect::Close { .. })).unwrap();
    assert!(
        d.effects[close_at + 1..]
            .contains(&Effect::StartTimer { timer: TimerKind::Expiry, at: h(54) })
    );
    assert_eq!(d.next.view().opened_at, Some(h(30)));
}

#[test]
fn the_window_is_measured_from_the_provider_timestamp() {
    let sent = |msg: &str, at| Event::InboundMessage {
        message_id: id(msg),
        text: "hi".to_owned(),
        sent_at: Some(at),
    };
    let d = decide(&free(Channel::Whatsapp), &sent("m1", h(2)), h(3));
    assert_eq!(d.next.view().expires_at, Some(h(26)));
    // Delivered more than a window late: it opens nothing.
    let d = decide(&free(Channel::Whatsapp), &sent("m1", h(0)), h(25));
    assert!(d.effects.is_empty() && d.next.window().is_none());
    // A timestamp from the future is clamped to now.
    let d = decide(&free(Channel::Whatsapp), &sent("m1", h(9)), h(3));
    assert_eq!(d.next.view().opened_at, Some(h(3)));
}

fn pinging(content: Content) -> State {
    let ping = InactivityPing { after_secs: 4 * 3600, content };
    let config =
        Config { inactivity_ping: Some(ping), rates: rates(), ..Config::new(Channel::Whatsapp) };
    State::new(config, Consent::Unknown)
}

#[test]
fn inactivity_ping_once_per_silence() {
    let text = Content::Text { body: "Still there?".to_owned(), subject: None };
    let d = decide(&pinging(text.clone()), &inbound("m1", "hi"), h(0));
    assert!(d.effects.contains(&Effect::StartTimer { timer: TimerKind::Inactivity, at: h(4) }));
    // A business message does not re-arm it; the ping is an ordinary gated, billed send.
    let s = after(&d.next, &[(freeform("a"), h(1)), (placed("a", 950), h(1))]);
    assert_eq!(s.armed_timer(TimerKind::Inactivity), Some(h(4)));
    let d = decide(&s, &fired(TimerKind::Inactivity), h(4));
    let (message, billing) = d.sends().next().expect("ping sent");
    assert_eq!(
        (message.id.as_str(), &message.content, billing.in_session),
        ("ping:m1", &text, true)
    );
    assert_eq!(d.next.armed_timer(TimerKind::Inactivity), None);
    // The next user message re-arms it.
    let d = decide(&d.next, &inbound("m2", "yes?"), h(5));
    assert!(d.effects.contains(&Effect::StartTimer { timer: TimerKind::Inactivity, at: h(9) }));
}

#[test]
fn template_ping_and_pings_that_would_come_too_late() {
    let tpl = Content::template("nudge");
    let s = after(&pinging(tpl), &[(inbound("m1", "hi"), h(0))]);
    let d = decide(&s, &fired(TimerKind::Inactivity), h(4));
    assert_eq!(
        d.effects[0],
        Effect::PlaceHold { hold_id: hold("ping:m1"), amount: m(5), message_id: id("ping:m1") }
    );
    // A ping due after the window's end is never armed.
    let late = InactivityPing { after_secs: DAY_SECS, content: Content::template("n") };
    let config = Config { inactivity_ping: Some(late), ..Config::new(Channel::Whatsapp) };
    let s = after(&State::new(config, Consent::Unknown), &[(inbound("m1", "hi"), h(0))]);
    assert_eq!(s.armed_timer(TimerKind::Inactivity), None);
}

#[test]
fn payloads_round_trip_through_json() {
    let decisions = run(
        &priced(Channel::Messenger),
        &[
            (inbound("m1", "hi"), h(0)),
            (freeform("a"), h(1)),
            (placed("a", 950), h(1)),
            (inbound("m2", "STOP"), h(2)),
        ],
    );
    for d in &decisions {
        let json = serde_json::to_string(d).unwrap();
        assert_eq!(&serde_json::from_str::<crate::window::Decision>(&json).unwrap(), d);
    }
    let json = serde_json::to_value(&decisions[0].effects).unwrap();
    assert_eq!(json[0]["effect"], "emit_webhook");
    assert_eq!(json[0]["type"], "conversation.started");
    assert_eq!(json[2]["effect"], "start_timer");
    let close = Effect::Close { reason: CloseReason::ComplianceStop, conversation: 2 };
    let json =
        serde_json::json!({"effect": "close", "reason": "COMPLIANCE_STOP", "conversation": 2});
    assert_eq!(serde_json::to_value(close).unwrap(), json);
    let view = serde_json::to_value(decisions[2].next.view()).unwrap();
    assert_eq!(view["expires_at"], h(24).as_epoch_millis());
    assert_eq!(view["human_agent_expires_at"], h(7 * 24).as_epoch_millis());
    assert_eq!(view["billing_session_ends_at"], h(24).as_epoch_millis());
}

#[test]
fn a_new_window_opens_while_the_previous_teardown_settles() {
    let s = after(
        &priced(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (freeform("a"), h(23)), (placed("a", 950), h(23))],
    );
    // Expired while `a` is still with the provider: the teardown waits.
    let s = after(&s, &[(fired(TimerKind::Expiry), h(24))]);
    assert_eq!(s.view().closing, Some(CloseReason::Expired));
    // The contact writes again: a second conversation opens at once and can be answered.
    let d = decide(&s, &inbound("m2", "hello?"), h(25));
    assert_eq!(webhooks(&d), ["conversation.started", "conversation.message_exchanged"]);
    assert_eq!(d.next.view().conversation, 2);
    let reply = decide(&d.next, &freeform("b"), h(25));
    assert_eq!(
        reply.effects[0],
        Effect::PlaceHold { hold_id: hold("b"), amount: m(50), message_id: id("b") }
    );
    // The first conversation ends when its send resolves, billed on its own.
    let d = decide(&reply.next, &accepted("a"), h(26));
    assert!(d.effects.contains(&Effect::ChargeHold { hold_id: hold("a"), amount: m(50) }));
    assert!(d.effects.contains(&Effect::Close { reason: CloseReason::Expired, conversation: 1 }));
    assert!(d.next.window().is_some() && !d.next.is_idle());
}
