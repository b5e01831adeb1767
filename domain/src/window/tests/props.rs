//! Property tests: the state machine driven together with a [`crate::Ledger`], the way the
//! workflow drives it (see `sim`): holds are placed in the ledger and answered later, sends are
//! accepted or rejected later, timers fire when time passes.

use proptest::prelude::*;

use super::{
    fixtures::*,
    sim::{Op, Sim, TEXTS},
};
use crate::{
    Channel, Consent, Ledger, Money, PolicyOverrides, WindowMode,
    window::{Config, Content, InactivityPing, State},
};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u64..3_000).prop_map(Op::Advance),
        3 => (0..TEXTS.len()).prop_map(Op::Inbound),
        4 => any::<bool>().prop_map(Op::Freeform),
        1 => any::<bool>().prop_map(Op::Template),
        1 => Just(Op::Close),
        1 => any::<bool>().prop_map(Op::ExternalConsent),
        6 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::Deliver(i, ok)),
        1 => (0u64..200).prop_map(Op::TopUp),
    ]
}
fn config() -> impl Strategy<Value = Config> {
    (
        prop::sample::select(Channel::ALL.to_vec()),
        prop_oneof![Just(WindowMode::Fixed), Just(WindowMode::Sliding)],
        prop::option::of((1u64..30, any::<bool>())),
    )
        .prop_map(|(channel, mode, ping)| {
            let overrides = PolicyOverrides { mode: Some(mode), ..PolicyOverrides::default() };
            let inactivity_ping = ping.map(|(hours, text)| InactivityPing {
                after_secs: hours * 3600,
                content: if text {
                    Content::Text {
                        body: "still there?".to_owned(),
                        subject: Some("ping".to_owned()),
                    }
                } else {
                    Content::template("nudge")
                },
            });
            Config {
                policy: channel.default_policy().with_overrides(&overrides).unwrap(),
                rates: rates(),
                inactivity_ping,
                ..Config::new(channel)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Over random interleavings: the ledger's balance never goes negative, `reserved` always
    /// equals the sum of the open holds (and those are the holds the session believes open),
    /// timers in the effects match the state, no business message reaches an opted-out contact
    /// or survives an `insufficient_balance`, business events never move the window, and once
    /// everything is answered and time has passed, the session is idle with no hold left open.
    #[test]
    fn session_and_ledger_stay_consistent(
        config in config(),
        opening in 0u64..300,
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut sim = Sim::new(State::new(config, Consent::Unknown), Ledger::new(m(opening)));
        for op in &ops {
            sim.apply(op)?;
        }
        sim.drain()?;
        prop_assert!(sim.state.is_idle(), "not idle: {:?}", sim.state.view());
        prop_assert_eq!(sim.ledger.open_holds().count(), 0);
        prop_assert_eq!(sim.ledger.balance().reserved, Money::ZERO);
    }
}
