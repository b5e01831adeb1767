//! Holds: once per billing session, charged or released, refused for want of balance.

use super::fixtures::*;
use crate::{
    Balance, BillingBlock, BillingOutcome, Channel, CloseReason, MessageType,
    window::{Effect, Event, TimerKind, Webhook, WindowFacts, decide},
};

fn billing(d: &crate::window::Decision, msg: &str) -> BillingBlock {
    *d.sends().find(|(message, _)| message.id == id(msg)).expect("sent").1
}

#[test]
fn hold_placed_once_per_billing_session() {
    let s = after(&priced(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    // First free-form send: ask for the hold, send nothing yet.
    let d = decide(&s, &freeform("a"), h(1));
    assert_eq!(
        d.effects,
        [Effect::PlaceHold { hold_id: hold("a"), amount: m(50), message_id: id("a") }]
    );
    let d = decide(&d.next, &placed("a", 950), h(1));
    let balance = Balance { free: m(950), reserved: m(0), total: m(950) };
    assert_eq!(
        billing(&d, "a"),
        BillingBlock {
            in_session: true,
            hold_amount: m(50),
            message_price: m(50),
            balance: Some(balance)
        }
    );
    // Later sends in the same session: no hold, in session.
    let mut s = d.next;
    for msg in ["b", "c"] {
        let d = decide(&s, &freeform(msg), h(2));
        assert!(!d.effects.iter().any(|e| matches!(e, Effect::PlaceHold { .. })));
        assert_eq!(
            billing(&d, msg),
            BillingBlock {
                in_session: true,
                hold_amount: m(0),
                message_price: m(0),
                balance: Some(balance)
            }
        );
        s = d.next;
    }
    assert!(s.view().in_session);
    // The session's end charges the hold once, because a message was accepted.
    let s =
        after(&s, &[(accepted("b"), h(2)), (accepted("c"), h(2)), (inbound("m2", "ok"), h(23))]);
    let d = decide(&s, &fired(TimerKind::BillingSession), h(24));
    assert_eq!(d.effects, [Effect::ChargeHold { hold_id: hold("a"), amount: m(50) }]);
    // The window (slid to 47 h) outlives the session: the next send opens a new one.
    let d = decide(&d.next, &freeform("d"), h(30));
    assert_eq!(
        d.effects[0],
        Effect::PlaceHold { hold_id: hold("d"), amount: m(50), message_id: id("d") }
    );
    assert_eq!(d.effects[1], Effect::StartTimer { timer: TimerKind::BillingSession, at: h(54) });
}

#[test]
fn hold_released_when_nothing_was_accepted() {
    let s = after(
        &priced(Channel::Rcs),
        &[
            (inbound("m1", "hi"), h(0)),
            (freeform("a"), h(1)),
            (placed("a", 950), h(1)),
            (
                Event::ProviderRejected { message_id: id("a"), reason: "unreachable".to_owned() },
                h(1),
            ),
        ],
    );
    let d = decide(&s, &Event::CloseRequested, h(2));
    assert!(d.effects.contains(&Effect::ReleaseHold { hold_id: hold("a"), amount: m(50) }));
    assert!(d.effects.contains(&Effect::EmitWebhook(Webhook::ConversationEnded {
        seq: 3,
        conversation: 1,
        reason: CloseReason::Explicit,
        at: h(2),
        inbound_messages: 1,
        outbound_messages: 0,
        billing: BillingOutcome { sessions: 1, charged: m(0), released: m(50) },
        window: Some(WindowFacts {
            opened_at: h(0),
            expires_at: h(24),
            billing_session_ends_at: Some(h(24)),
        }),
    })));
    assert_eq!(
        d.effects.last(),
        Some(&Effect::Close { reason: CloseReason::Explicit, conversation: 1 })
    );
}

#[test]
fn insufficient_balance_refuses_and_sends_nothing() {
    let s = after(
        &priced(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (freeform("a"), h(1)), (freeform("b"), h(1))],
    );
    // `b` is queued behind `a`'s hold: it is refused with it.
    let refused = Event::HoldRefused { hold_id: hold("a"), balance: Balance::new(m(10)) };
    let d = decide(&s, &refused, h(1));
    assert_eq!(d.sends().count(), 0);
    for msg in ["a", "b"] {
        let e = d.rejection(&id(msg)).expect("refused");
        assert_eq!(e.code(), "insufficient_balance");
        assert_eq!(*e, crate::window::Error::InsufficientBalance { required: m(50), free: m(10) });
    }
    assert_eq!(d.next.pending_sends(), 0);
    // The next send asks for a hold again.
    let d = decide(&d.next, &freeform("c"), h(2));
    assert_eq!(
        d.effects,
        [Effect::PlaceHold { hold_id: hold("c"), amount: m(50), message_id: id("c") }]
    );
}

#[test]
fn sends_queued_behind_the_first_hold_go_out_with_it_in_order() {
    let s = after(
        &priced(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (freeform("a"), h(1)), (freeform("b"), h(1))],
    );
    let d = decide(&s, &placed("a", 950), h(1));
    let sent: Vec<_> =
        d.sends().map(|(msg, b)| (msg.id.to_string(), b.in_session, b.hold_amount)).collect();
    assert_eq!(sent, [("a".to_owned(), true, m(50)), ("b".to_owned(), true, m(0))]);
}

#[test]
fn templates_are_priced_per_message() {
    let s = priced(Channel::Whatsapp);
    let d = decide(&s, &template("t"), h(0));
    assert_eq!(
        d.effects,
        [Effect::PlaceHold { hold_id: hold("t"), amount: m(5), message_id: id("t") }]
    );
    let d = decide(&d.next, &placed("t", 995), h(0));
    assert_eq!(
        d.sends().next().map(|(msg, b)| (msg.message_type, b.message_price)),
        Some((MessageType::Message, m(5)))
    );
    let ok = decide(&d.next, &accepted("t"), h(0));
    assert_eq!(ok.effects[0], Effect::ChargeHold { hold_id: hold("t"), amount: m(5) });
    let rejected = decide(
        &d.next,
        &Event::ProviderRejected { message_id: id("t"), reason: "bad".to_owned() },
        h(0),
    );
    assert_eq!(rejected.effects, [Effect::ReleaseHold { hold_id: hold("t"), amount: m(5) }]);
    assert!(rejected.next.is_idle());
    // A template never opens or extends a window.
    assert!(ok.next.window().is_none());
}

#[test]
fn teardown_waits_for_sends_in_flight() {
    let s = after(
        &priced(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (freeform("a"), h(1)), (placed("a", 950), h(1))],
    );
    let d = decide(&s, &Event::CloseRequested, h(2));
    assert_eq!(d.closed(), None);
    assert_eq!(d.next.view().closing, Some(CloseReason::Explicit));
    assert_eq!(outcome(&decide(&d.next, &freeform("b"), h(2)), "b"), Err("no_active_session"));
    // Idempotent while closing.
    assert!(decide(&d.next, &Event::CloseRequested, h(2)).effects.is_empty());
    let d = decide(&d.next, &accepted("a"), h(3));
    let kinds: Vec<_> = webhooks(&d);
    assert_eq!(kinds, ["conversation.message_exchanged", "conversation.ended"]);
    assert!(d.effects.contains(&Effect::ChargeHold { hold_id: hold("a"), amount: m(50) }));
    assert_eq!(d.closed(), Some(CloseReason::Explicit));
    assert!(d.next.is_idle());
}

#[test]
fn free_channels_place_no_holds() {
    let s = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    let d = decide(&s, &freeform("a"), h(1));
    assert_eq!(d.sends().count(), 1);
    assert!(!d.effects.iter().any(|e| matches!(e, Effect::PlaceHold { .. })));
    let d = decide(&d.next, &accepted("a"), h(1));
    let d = decide(&d.next, &Event::CloseRequested, h(2));
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::ChargeHold { .. } | Effect::ReleaseHold { .. }))
    );
}
