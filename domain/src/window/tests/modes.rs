//! Property tests over whole sessions: sliding is never stricter than fixed, and business
//! messages never extend a window.

use proptest::prelude::*;

use super::fixtures::*;
use crate::{
    Channel, PolicyOverrides, Timestamp, WindowMode,
    window::{Event, State, TimerKind, decide, validate},
};

/// `state` at `now` once every timer due by then has fired, as the host would fire them.
fn tick(state: &State, now: Timestamp) -> State {
    let mut s = state.clone();
    while let Some((timer, at)) = TimerKind::ALL
        .iter()
        .filter_map(|k| s.armed_timer(*k).map(|at| (*k, at)))
        .filter(|(_, at)| *at <= now)
        .min_by_key(|(_, at)| *at)
    {
        s = decide(&s, &Event::TimerFired { timer }, at).next;
    }
    s
}

fn sessions() -> (State, State) {
    let mode = |m| PolicyOverrides { mode: Some(m), ..PolicyOverrides::default() };
    (
        overridden(Channel::Whatsapp, mode(WindowMode::Sliding)),
        overridden(Channel::Whatsapp, mode(WindowMode::Fixed)),
    )
}

proptest! {
    /// Whenever fixed gating allows a free-form send, sliding gating allows it too, and a
    /// sliding window never ends earlier than the fixed one opened by the same message.
    #[test]
    fn sliding_is_never_stricter_than_fixed(
        steps in prop::collection::vec((1u64..40 * 60, any::<bool>()), 1..30),
    ) {
        let (mut sliding, mut fixed) = sessions();
        let mut now = min(0);
        for (i, (delta, is_inbound)) in steps.into_iter().enumerate() {
            now = now.plus_secs(delta * 60);
            let event = if is_inbound {
                inbound(&format!("in{i}"), "hello")
            } else {
                freeform(&format!("probe{i}"))
            };
            sliding = tick(&sliding, now);
            fixed = tick(&fixed, now);
            if !is_inbound && validate(&fixed, &event, now).is_ok() {
                prop_assert!(validate(&sliding, &event, now).is_ok(), "fixed allows at {now}, sliding does not");
            }
            sliding = decide(&sliding, &event, now).next;
            fixed = decide(&fixed, &event, now).next;
            if let (Some(s), Some(f)) = (sliding.window(), fixed.window())
                && s.opened_at() == f.opened_at()
            {
                prop_assert!(s.expires_at() >= f.expires_at());
            }
        }
    }

    /// However many business sends and hold answers arrive, the window's ends do not move.
    #[test]
    fn business_messages_never_extend_a_session(
        channel in prop::sample::select(Channel::ALL.to_vec()),
        sends in prop::collection::vec((0u64..23 * 60, any::<bool>()), 0..20),
    ) {
        let mut s = after(&priced(channel), &[(inbound("m1", "hi"), h(0))]);
        let ends = s.window().map(|w| (w.expires_at(), w.closes_at()));
        for (i, (at, human_agent)) in sends.into_iter().enumerate() {
            let msg = format!("s{i}");
            let send = if human_agent { human(&msg) } else { freeform(&msg) };
            for event in [send, placed(&msg, 1_000), placed("s0", 1_000), accepted(&msg), template(&format!("t{i}"))] {
                s = decide(&s, &event, min(at)).next;
                prop_assert_eq!(s.window().map(|w| (w.expires_at(), w.closes_at())), ends);
            }
        }
    }
}
