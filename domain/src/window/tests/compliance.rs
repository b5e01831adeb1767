//! STOP, START and HELP inside and outside a window.

use super::fixtures::*;
use crate::{
    BillingOutcome, Channel, CloseReason, ComplianceTexts, Consent, Direction, Keyword,
    window::{Config, Effect, Event, State, TimerKind, Webhook, WindowFacts, decide},
};

/// A priced WhatsApp session with a window opened at 0 and one accepted in-session send.
fn active() -> State {
    after(
        &priced(Channel::Whatsapp),
        &[
            (inbound("m1", "hi"), h(0)),
            (freeform("a"), h(1)),
            (placed("a", 950), h(1)),
            (accepted("a"), h(1)),
        ],
    )
}

#[test]
fn stop_inside_a_window_confirms_once_and_tears_down() {
    let d = decide(&active(), &inbound("m2", "  Stop "), h(2));
    let opted_out = Consent::OptedOut { at: h(2) };
    assert_eq!(
        d.effects,
        [
            Effect::RecordConsent { consent: opted_out },
            Effect::SendConfirmation {
                message_id: id("reply:m2"),
                kind: Keyword::OptOut,
                text: ComplianceTexts::default().opt_out_confirmation,
            },
            Effect::EmitWebhook(Webhook::MessageExchanged {
                seq: 4,
                conversation: Some(1),
                message_id: id("m2"),
                direction: Direction::Inbound,
                at: h(2),
                expires_at: Some(h(24)),
                window: Some(WindowFacts {
                    opened_at: h(0),
                    expires_at: h(24),
                    billing_session_ends_at: Some(h(24)),
                }),
            }),
            Effect::ChargeHold { hold_id: hold("a"), amount: m(50) },
            Effect::CancelTimer { timer: TimerKind::Expiry },
            Effect::CancelTimer { timer: TimerKind::BillingSession },
            Effect::EmitWebhook(Webhook::ConversationEnded {
                seq: 5,
                conversation: 1,
                reason: CloseReason::ComplianceStop,
                at: h(2),
                inbound_messages: 2,
                outbound_messages: 1,
                billing: BillingOutcome { sessions: 1, charged: m(50), released: m(0) },
                window: Some(WindowFacts {
                    opened_at: h(0),
                    expires_at: h(24),
                    billing_session_ends_at: Some(h(24)),
                }),
            }),
            Effect::Close { reason: CloseReason::ComplianceStop, conversation: 1 },
        ]
    );
    let s = d.next;
    assert!(s.is_idle());
    assert_eq!(s.consent(), opted_out);

    // Every later business-initiated send is blocked, on every kind of send.
    for send in [freeform("b"), human("b"), template("b")] {
        assert_eq!(outcome(&decide(&s, &send, h(3)), "b"), Err("contact_opted_out"), "{send:?}");
    }
    // A second STOP gets no second confirmation; other messages open nothing.
    assert!(decide(&s, &inbound("m3", "STOP"), h(3)).effects.is_empty());
    assert!(decide(&s, &inbound("m3", "hello?"), h(3)).effects.is_empty());
    // HELP is still answered: the contact asked for it.
    let help = decide(&s, &inbound("m3", "help"), h(3));
    assert!(matches!(&help.effects[..], [Effect::SendConfirmation { kind: Keyword::Help, .. }]));
}

#[test]
fn stop_blocks_a_send_still_waiting_for_its_hold() {
    let s = after(
        &priced(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (freeform("a"), h(1)), (inbound("m2", "STOP"), h(1))],
    );
    // The teardown waits for the hold's answer.
    assert_eq!(s.view().closing, Some(CloseReason::ComplianceStop));
    let d = decide(&s, &placed("a", 950), h(1));
    assert_eq!(outcome(&d, "a"), Err("contact_opted_out"));
    assert_eq!(d.sends().count(), 0);
    assert!(d.effects.contains(&Effect::ReleaseHold { hold_id: hold("a"), amount: m(50) }));
    assert_eq!(d.closed(), Some(CloseReason::ComplianceStop));
}

#[test]
fn start_opts_back_in_and_opens_a_window() {
    let s = after(&active(), &[(inbound("m2", "STOP"), h(2))]);
    let d = decide(&s, &inbound("m3", "start"), h(5));
    assert_eq!(d.effects[0], Effect::RecordConsent { consent: Consent::OptedIn { at: h(5) } });
    assert!(
        matches!(&d.effects[1], Effect::SendConfirmation { kind: Keyword::OptIn, message_id, .. } if *message_id == id("reply:m3"))
    );
    assert_eq!(webhooks(&d), ["conversation.started", "conversation.message_exchanged"]);
    assert_eq!(
        outcome(&decide(&d.next, &freeform("b"), h(6)), "b"),
        Ok((crate::MessageType::Conversation, false))
    );
    // YES from a contact with no recorded consent records the opt-in silently.
    let d = decide(&free(Channel::Sms), &inbound("m1", "YES"), h(0));
    assert_eq!(d.effects[0], Effect::RecordConsent { consent: Consent::OptedIn { at: h(0) } });
    assert!(!d.effects.iter().any(|e| matches!(e, Effect::SendConfirmation { .. })));
}

#[test]
fn help_answers_with_the_workspace_text() {
    let texts = ComplianceTexts {
        help: "Acme support: acme.example/help".to_owned(),
        ..ComplianceTexts::default()
    };
    let s = State::new(Config { compliance: texts, ..Config::new(Channel::Sms) }, Consent::Unknown);
    let d = decide(&s, &inbound("m1", "INFO"), h(0));
    assert_eq!(
        d.effects[0],
        Effect::SendConfirmation {
            message_id: id("reply:m1"),
            kind: Keyword::Help,
            text: "Acme support: acme.example/help".to_owned(),
        }
    );
    // HELP is a user message too: it opens the window.
    assert_eq!(webhooks(&d), ["conversation.started", "conversation.message_exchanged"]);
    assert_eq!(d.next.consent(), Consent::Unknown);
}

#[test]
fn only_the_whole_message_is_a_keyword() {
    let d = decide(&active(), &inbound("m2", "please stop calling"), h(2));
    assert_eq!(webhooks(&d), ["conversation.message_exchanged"]);
    assert_eq!(d.next.consent(), Consent::Unknown);
    assert!(d.next.window().is_some());
}

#[test]
fn an_opt_out_recorded_elsewhere_closes_without_a_confirmation() {
    let event = Event::ConsentChanged { consent: Consent::OptedOut { at: h(2) } };
    let d = decide(&active(), &event, h(2));
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::SendConfirmation { .. } | Effect::RecordConsent { .. }))
    );
    assert_eq!(d.closed(), Some(CloseReason::ComplianceStop));
    assert_eq!(outcome(&decide(&d.next, &template("t"), h(3)), "t"), Err("contact_opted_out"));
}

#[test]
fn stop_after_an_unprocessed_expiry_closes_it_as_expired() {
    let s = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    let d = decide(&s, &inbound("m2", "STOP"), h(30));
    assert_eq!(d.closed(), Some(CloseReason::Expired));
    assert_eq!(d.next.consent(), Consent::OptedOut { at: h(30) });
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, Effect::SendConfirmation { kind: Keyword::OptOut, .. }))
    );
}
