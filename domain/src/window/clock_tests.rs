//! Tests of the window clock.

use proptest::prelude::*;

use super::*;
use crate::channel::{Channel, DAY_SECS as DAY, Gate};

fn ts(secs: u64) -> Timestamp {
    Timestamp::from_epoch_secs(secs)
}

#[test]
fn whatsapp_inbound_restarts_the_24h_window() {
    let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(1_000));
    assert_eq!(w.expires_at(), ts(1_000 + DAY));
    let r = w.record(Direction::Inbound, ts(5_000)).unwrap();
    assert_eq!(r, Recorded::Extended { from: ts(1_000 + DAY), to: ts(5_000 + DAY) });
    assert!(w.is_open_at(ts(5_000 + DAY - 1)));
    assert!(!w.is_open_at(ts(5_000 + DAY)));
}

#[test]
fn a_reply_within_the_same_second_still_slides() {
    let opened = Timestamp::from_epoch_millis(1_000_000);
    let mut w = Window::open(Channel::Whatsapp.default_policy(), opened);
    let reply = Timestamp::from_epoch_millis(1_000_250);
    assert!(matches!(w.record(Direction::Inbound, reply), Ok(Recorded::Extended { .. })));
    assert_eq!(w.expires_at(), reply.plus_secs(DAY));
}

#[test]
fn rcs_inbound_does_not_extend() {
    let mut w = Window::open(Channel::Rcs.default_policy(), ts(1_000));
    assert_eq!(w.record(Direction::Inbound, ts(5_000)), Ok(Recorded::Unchanged));
    assert_eq!(w.expires_at(), ts(1_000 + DAY));
    assert_eq!(w.last_inbound_at(), ts(5_000));
}

#[test]
fn business_message_does_not_extend() {
    let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(0));
    assert_eq!(w.record(Direction::Outbound, ts(DAY - 1)), Ok(Recorded::Unchanged));
    assert_eq!(w.expires_at(), ts(DAY));
}

#[test]
fn messages_at_or_after_the_end_are_rejected() {
    let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(0));
    let err = w.record(Direction::Inbound, ts(DAY)).unwrap_err();
    assert_eq!(err, Error::NoActiveSession { expired_at: Some(ts(DAY)) });
    assert_eq!(err.code(), "no_active_session");
    assert_eq!(w.expires_at(), ts(DAY));
}

#[test]
fn late_inbound_timestamp_never_shortens() {
    let mut w = Window::open(Channel::Whatsapp.default_policy(), ts(10_000));
    w.record(Direction::Inbound, ts(20_000)).unwrap();
    assert_eq!(w.record(Direction::Inbound, ts(15_000)), Ok(Recorded::Unchanged));
    assert_eq!(w.expires_at(), ts(20_000 + DAY));
}

#[test]
fn remaining_counts_down_to_zero() {
    let w = Window::open(Channel::Sms.default_policy(), ts(0));
    assert_eq!(w.remaining_at(ts(0)), Duration::from_secs(DAY));
    assert_eq!(w.remaining_at(ts(DAY + 5)), Duration::ZERO);
}

#[test]
fn messenger_human_agent_allowance_is_seven_days_after_the_last_user_message() {
    let mut w = Window::open(Channel::Messenger.default_policy(), ts(0));
    assert_eq!(w.human_agent_expires_at(), Some(ts(7 * DAY)));
    assert_eq!(w.closes_at(), ts(7 * DAY));
    // Inside 24 h anyone may send; after it only a human agent, with the tag.
    let table = [
        (Sender::Automated, ts(DAY - 1), Some(false)),
        (Sender::HumanAgent, ts(DAY - 1), Some(false)),
        (Sender::Automated, ts(DAY), None),
        (Sender::HumanAgent, ts(DAY), Some(true)),
        (Sender::HumanAgent, ts(7 * DAY - 1), Some(true)),
        (Sender::HumanAgent, ts(7 * DAY), None),
    ];
    for (sender, at, expected) in table {
        assert_eq!(w.allows(sender, at), expected, "{sender:?} at {at}");
    }
    // A user message on day 3 reopens the standard window and slides the allowance.
    assert!(matches!(w.record(Direction::Inbound, ts(3 * DAY)), Ok(Recorded::Extended { .. })));
    assert_eq!((w.expires_at(), w.closes_at()), (ts(4 * DAY), ts(10 * DAY)));
    assert_eq!(w.allows(Sender::Automated, ts(3 * DAY + 1)), Some(false));
}

#[test]
fn whatsapp_has_no_human_agent_allowance() {
    let w = Window::open(Channel::Whatsapp.default_policy(), ts(0));
    assert_eq!(w.human_agent_expires_at(), None);
    assert_eq!(w.allows(Sender::HumanAgent, ts(DAY)), None);
}

fn policy() -> impl Strategy<Value = WindowPolicy> {
    (
        1u64..=7 * DAY,
        prop_oneof![Just(WindowMode::Fixed), Just(WindowMode::Sliding)],
        prop_oneof![Just(0u64), Just(7 * DAY)],
    )
        .prop_map(|(window_secs, mode, human_agent_secs)| WindowPolicy {
            gate: Gate::Window,
            window_secs,
            mode,
            billing_session_secs: DAY,
            human_agent_secs,
        })
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Inbound), Just(Direction::Outbound)]
}

proptest! {
    #[test]
    fn sliding_expiry_is_never_earlier_than_fixed(
        window_secs in 0u64..=30 * DAY,
        opened in 0u64..=4_000_000_000,
        inbound in 0u64..=4_000_000_000,
    ) {
        let sliding = WindowPolicy { window_secs, human_agent_secs: 7 * DAY, ..Channel::Whatsapp.default_policy() };
        let fixed = WindowPolicy { mode: WindowMode::Fixed, ..sliding };
        prop_assert!(expiry(&sliding, ts(opened), ts(inbound)) >= expiry(&fixed, ts(opened), ts(inbound)));
        prop_assert!(human_agent_expiry(&sliding, ts(opened), ts(inbound)) >= human_agent_expiry(&fixed, ts(opened), ts(inbound)));
    }

    #[test]
    fn business_messages_never_extend(
        policy in policy(),
        opened in 0u64..=4_000_000_000,
        steps in prop::collection::vec((direction(), 0u64..=2 * DAY * 1000), 0..20),
    ) {
        let mut w = Window::open(policy, ts(opened));
        let mut now = ts(opened);
        for (dir, delta_ms) in steps {
            now = Timestamp::from_epoch_millis(now.as_epoch_millis() + delta_ms);
            let before = w;
            let result = w.record(dir, now);
            if dir == Direction::Outbound || result.is_err() {
                prop_assert_eq!(w, before);
            }
        }
    }

    #[test]
    fn expiry_never_moves_backwards_and_follows_the_mode(
        policy in policy(),
        opened in 0u64..=4_000_000_000,
        steps in prop::collection::vec((direction(), 0u64..=2 * DAY * 1000), 0..20),
    ) {
        let mut w = Window::open(policy, ts(opened));
        let mut now = ts(opened);
        for (dir, delta_ms) in steps {
            now = Timestamp::from_epoch_millis(now.as_epoch_millis() + delta_ms);
            let (before, closes_before) = (w.expires_at(), w.closes_at());
            let recorded = w.record(dir, now);
            prop_assert!(w.expires_at() >= before && w.closes_at() >= closes_before);
            match (policy.mode, dir, recorded) {
                (WindowMode::Fixed, _, _) => {
                    prop_assert_eq!(w.expires_at(), ts(opened).plus_secs(policy.window_secs));
                }
                (WindowMode::Sliding, Direction::Inbound, Ok(_)) => {
                    prop_assert_eq!(w.expires_at(), now.plus_secs(policy.window_secs));
                }
                _ => {}
            }
        }
    }
}
