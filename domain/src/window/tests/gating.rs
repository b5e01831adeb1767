//! Free-form gating per channel and policy: table-driven over (state, events, now).

use super::fixtures::*;
use crate::{
    Channel, Consent, MessageType, PolicyOverrides, WindowMode,
    window::{Effect, Error, Event, TimerKind, decide, validate},
};

fn fixed() -> PolicyOverrides {
    PolicyOverrides { mode: Some(WindowMode::Fixed), ..PolicyOverrides::default() }
}

type Expected = Result<(MessageType, bool), &'static str>;

#[test]
fn reply_at_hour_23_then_send_at_hour_30() {
    use MessageType::{Conversation, Message};
    let conv: Expected = Ok((Conversation, false));
    let table: Vec<(&str, crate::window::State, Event, Expected)> = vec![
        ("whatsapp sliding", free(Channel::Whatsapp), freeform("s"), conv),
        (
            "whatsapp fixed override",
            overridden(Channel::Whatsapp, fixed()),
            freeform("s"),
            Err("no_active_session"),
        ),
        ("rcs fixed session", free(Channel::Rcs), freeform("s"), Err("no_active_session")),
        ("messenger sliding", free(Channel::Messenger), freeform("s"), conv),
        ("instagram sliding", free(Channel::Instagram), freeform("s"), conv),
        (
            "messenger fixed, bot",
            overridden(Channel::Messenger, fixed()),
            freeform("s"),
            Err("no_active_session"),
        ),
        (
            "messenger fixed, human agent",
            overridden(Channel::Messenger, fixed()),
            human("s"),
            Ok((Conversation, true)),
        ),
        ("sms sliding", free(Channel::Sms), freeform("s"), conv),
        (
            "sms fixed, no opt-in",
            overridden(Channel::Sms, fixed()),
            freeform("s"),
            Err("no_active_session"),
        ),
        (
            "email fixed, no subject",
            overridden(Channel::Email, fixed()),
            freeform("s"),
            Err("validation_failed"),
        ),
        (
            "email fixed, with subject",
            overridden(Channel::Email, fixed()),
            Event::FreeformSendRequested {
                message_id: id("s"),
                text: "Following up".to_owned(),
                subject: Some("Your order".to_owned()),
                sender: crate::Sender::Automated,
            },
            Ok((Message, false)),
        ),
    ];
    for (name, state, send, expected) in table {
        let s = after(&state, &[(inbound("m1", "hi"), h(0)), (inbound("m2", "thanks"), h(23))]);
        let d = decide(&s, &send, h(30));
        assert_eq!(outcome(&d, "s"), expected, "{name}");
        // The update validator agrees with the decision.
        assert_eq!(
            validate(&s, &send, h(30)).map_err(|e| e.code().as_str()),
            expected.map(|_| ()),
            "{name}"
        );
    }
}

#[test]
fn sliding_moves_the_expiry_timer_and_fixed_does_not() {
    let start = inbound("m1", "hi");
    let reply = inbound("m2", "thanks");
    let sliding = run(&free(Channel::Whatsapp), &[(start.clone(), h(0)), (reply.clone(), h(23))]);
    assert_eq!(
        sliding[0].effects[2..],
        [
            Effect::StartTimer { timer: TimerKind::Expiry, at: h(24) },
            Effect::StartTimer { timer: TimerKind::BillingSession, at: h(24) },
        ]
    );
    assert_eq!(webhooks(&sliding[0]), ["conversation.started", "conversation.message_exchanged"]);
    assert_eq!(
        sliding[1].effects[1..],
        [
            Effect::CancelTimer { timer: TimerKind::Expiry },
            Effect::StartTimer { timer: TimerKind::Expiry, at: h(47) },
        ]
    );
    let view = sliding[1].next.view();
    // Both clocks: free-form until 47 h, the billing session still ends at 24 h.
    assert_eq!((view.expires_at, view.billing_session_ends_at), (Some(h(47)), Some(h(24))));

    let fixed = run(&free(Channel::Rcs), &[(start, h(0)), (reply, h(23))]);
    assert_eq!(webhooks(&fixed[1]), ["conversation.message_exchanged"]);
    assert_eq!(fixed[1].effects.len(), 1);
    assert_eq!(fixed[1].next.view().expires_at, Some(h(24)));
}

#[test]
fn no_window_is_no_active_session_never_a_downgrade() {
    for channel in
        [Channel::Whatsapp, Channel::Rcs, Channel::Messenger, Channel::Instagram, Channel::Sms]
    {
        let d = decide(&priced(channel), &freeform("s"), h(0));
        assert_eq!(
            d.rejection(&id("s")),
            Some(&Error::NoActiveSession { expired_at: None }),
            "{channel}"
        );
        assert_eq!(d.effects.len(), 1, "{channel}: nothing sent, held or scheduled");
        assert_eq!(d.next, priced(channel));
    }
    // After the expiry timer tore the window down.
    let s = after(
        &free(Channel::Whatsapp),
        &[(inbound("m1", "hi"), h(0)), (fired(TimerKind::Expiry), h(24))],
    );
    assert_eq!(outcome(&decide(&s, &freeform("s"), h(25)), "s"), Err("no_active_session"));
    // Templates are never gated.
    assert_eq!(
        outcome(&decide(&free(Channel::Whatsapp), &template("t"), h(0)), "t"),
        Ok((MessageType::Message, false))
    );
}

#[test]
fn messenger_human_agent_allowance() {
    let s = after(&free(Channel::Messenger), &[(inbound("m1", "hi"), h(0))]);
    assert_eq!(s.view().human_agent_expires_at, Some(h(7 * 24)));
    let table = [
        (freeform("s"), h(23), Ok((MessageType::Conversation, false))),
        (freeform("s"), h(25), Err("no_active_session")),
        (human("s"), h(25), Ok((MessageType::Conversation, true))),
        (human("s"), h(7 * 24 - 1), Ok((MessageType::Conversation, true))),
    ];
    for (send, now, expected) in table {
        assert_eq!(outcome(&decide(&s, &send, now), "s"), expected, "{send:?} at {now}");
    }
    // The window closes (EXPIRED) only when the allowance ends.
    assert_eq!(s.armed_timer(TimerKind::Expiry), Some(h(7 * 24)));
    let no_allowance = PolicyOverrides { human_agent_secs: Some(0), ..PolicyOverrides::default() };
    let s = after(&overridden(Channel::Messenger, no_allowance), &[(inbound("m1", "hi"), h(0))]);
    assert_eq!(outcome(&decide(&s, &human("s"), h(25)), "s"), Err("no_active_session"));
}

#[test]
fn sms_needs_no_window_once_opted_in() {
    let opted_in = crate::window::State::new(
        crate::window::Config::new(Channel::Sms),
        Consent::OptedIn { at: h(0) },
    );
    assert_eq!(
        outcome(&decide(&opted_in, &freeform("s"), h(1)), "s"),
        Ok((MessageType::Message, false))
    );
    // Inside a window it is a conversation message all the same.
    let s = after(&opted_in, &[(inbound("m1", "hi"), h(1))]);
    assert_eq!(
        outcome(&decide(&s, &freeform("s"), h(2)), "s"),
        Ok((MessageType::Conversation, false))
    );
}

#[test]
fn malformed_requests_are_validation_failures() {
    let s = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    let blank = Event::FreeformSendRequested {
        message_id: id("s"),
        text: "  ".to_owned(),
        subject: None,
        sender: crate::Sender::Automated,
    };
    let no_name = Event::TemplateSendRequested {
        message_id: id("t"),
        template: String::new(),
        message_type: MessageType::Message,
        params: Default::default(),
    };
    let conversation_template = Event::TemplateSendRequested {
        message_id: id("t"),
        template: "x".to_owned(),
        message_type: MessageType::Conversation,
        params: Default::default(),
    };
    for event in [blank, no_name, conversation_template, freeform("")] {
        let d = decide(&s, &event, h(1));
        assert!(
            matches!(d.effects[..], [Effect::Reject { ref error, .. }] if error.code() == "validation_failed"),
            "{event:?}"
        );
    }
    // The same id twice while the first is in flight.
    let s = after(&s, &[(freeform("s"), h(1))]);
    assert_eq!(outcome(&decide(&s, &freeform("s"), h(1)), "s"), Err("validation_failed"));
}

fn rich(msg: &str, chips: usize) -> Event {
    Event::RichSendRequested {
        message_id: id(msg),
        rich: Box::new(crate::rich::Rich {
            text: Some("Your order arrives tomorrow".to_owned()),
            suggestions: vec![
                crate::rich::Suggestion::Reply {
                    text: "All good".to_owned(),
                    postback_data: None
                };
                chips
            ],
            ..crate::rich::Rich::default()
        }),
        sender: crate::Sender::Automated,
    }
}

/// Rich content is free-form: on RCS it rides the open window as CONVERSATION and is refused
/// `no_active_session` once the window is gone; anywhere but RCS, and beyond RBM's limits, it
/// is malformed.
#[test]
fn rich_content_is_rcs_free_form_within_rbm_limits() {
    use MessageType::Conversation;
    let open = after(&free(Channel::Rcs), &[(inbound("m1", "hi"), h(0))]);
    let table: Vec<(&str, &crate::window::State, Event, crate::Timestamp, Expected)> = vec![
        ("rcs, in window", &open, rich("r", 2), h(1), Ok((Conversation, false))),
        ("rcs, after the window", &open, rich("r", 2), h(30), Err("no_active_session")),
        ("rcs, 12 chips", &open, rich("r", 12), h(1), Err("validation_failed")),
    ];
    let wa = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    let table =
        table.into_iter().chain([("whatsapp", &wa, rich("r", 1), h(1), Err("validation_failed"))]);
    for (name, state, send, at, expected) in table {
        assert_eq!(outcome(&decide(state, &send, at), "r"), expected, "{name}");
        assert_eq!(
            validate(state, &send, at).map_err(|e| e.code().as_str()),
            expected.map(|_| ()),
            "{name}"
        );
    }
}

/// The contact writes on SMS into an open WhatsApp window: the session follows to SMS (its
/// window, clock and totals unchanged), so free-form goes on SMS; the same channel, or an
/// invalid configuration, changes nothing.
#[test]
fn the_session_follows_the_contacts_latest_channel() {
    let open = after(&free(Channel::Whatsapp), &[(inbound("m1", "hi"), h(0))]);
    let sms = free(Channel::Sms).config().clone();
    let moved = decide(&open, &Event::ChannelChanged { config: Box::new(sms.clone()) }, h(1));
    assert!(moved.effects.is_empty(), "{:?}", moved.effects);
    assert_eq!(moved.next.config().channel, Channel::Sms);
    assert_eq!(moved.next.window(), open.window(), "the window is the same window");
    let d = decide(&moved.next, &freeform("s"), h(2));
    assert_eq!(outcome(&d, "s"), Ok((MessageType::Conversation, false)));
    let same = decide(&moved.next, &Event::ChannelChanged { config: Box::new(sms) }, h(2));
    assert_eq!(same.next, moved.next);
    let mut broken = free(Channel::Email).config().clone();
    broken.policy.window_secs = 0;
    let refused = decide(&moved.next, &Event::ChannelChanged { config: Box::new(broken) }, h(2));
    assert_eq!(refused.next.config().channel, Channel::Sms);
}
