//! The host side of the property tests: a simulated workflow that carries out effects
//! against a [`Ledger`], answers holds and sends later, fires timers as time passes, and checks
//! the invariants after every decision.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::fixtures::*;
use crate::{
    Consent, HoldId, Ledger, MessageId, MessageType, Money, Sender, Timestamp, billing,
    window::{Effect, Error, Event, State, TimerKind, decide, state::SessionHold, validate},
};

pub(super) const TEXTS: [&str; 8] =
    ["hello", "STOP", "start", "HELP", "yes", " Opt Out ", "please stop", "ok"];

#[derive(Debug, Clone)]
pub(super) enum Op {
    Advance(u64),
    Inbound(usize),
    Freeform(bool),
    Template(bool),
    Close,
    ExternalConsent(bool),
    Deliver(usize, bool),
    TopUp(u64),
}
#[derive(Debug)]
enum Answer {
    Hold(HoldId, Money),
    Provider(MessageId),
}

pub(super) struct Sim {
    pub(super) state: State,
    pub(super) ledger: Ledger,
    now: Timestamp,
    timers: BTreeMap<TimerKind, Timestamp>,
    outstanding: Vec<Answer>,
    refused: BTreeSet<MessageId>,
    next_id: u32,
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

impl Sim {
    pub(super) fn new(state: State, ledger: Ledger) -> Self {
        Self {
            state,
            ledger,
            now: min(0),
            timers: BTreeMap::new(),
            outstanding: Vec::new(),
            refused: BTreeSet::new(),
            next_id: 0,
        }
    }

    /// Answers everything outstanding (accepting every send) and lets time pass until no
    /// timer runs.
    pub(super) fn drain(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..50 {
            while !self.outstanding.is_empty() {
                self.deliver(0, true)?;
            }
            self.advance(self.now.plus_secs(10 * 24 * 3600))?;
            if self.outstanding.is_empty() && self.timers.is_empty() {
                break;
            }
        }
        Ok(())
    }

    fn fresh_id(&mut self, prefix: &str) -> MessageId {
        self.next_id += 1;
        id(&format!("{prefix}{}", self.next_id))
    }

    /// The holds the state believes are open in the ledger, with their amounts.
    fn state_holds(&self) -> BTreeMap<HoldId, Money> {
        let sessions = self.state.sessions.iter().filter_map(|b| match &b.hold {
            SessionHold::Placed { id, amount } => Some((id.clone(), *amount)),
            _ => None,
        });
        let own = self.state.pending.iter().filter(|p| p.session.is_none() && !p.awaiting_hold);
        let own = own.filter_map(|p| p.hold.clone().map(|h| (h, p.billing.message_price)));
        sessions.chain(own).collect()
    }

    fn step(&mut self, event: Event) -> Result<(), TestCaseError> {
        let validated = validate(&self.state, &event, self.now);
        let before = self.state.window().copied();
        let d = decide(&self.state, &event, self.now);
        match &event {
            Event::FreeformSendRequested { message_id, .. }
            | Event::TemplateSendRequested { message_id, .. } => match &validated {
                Err(e) => prop_assert_eq!(d.rejection(message_id), Some(e)),
                Ok(()) => prop_assert!(d.rejection(message_id).is_none()),
            },
            Event::InboundMessage { .. }
            | Event::TimerFired { .. }
            | Event::ConsentChanged { .. } => {}
            // Business-side events never move the window's ends.
            _ => {
                if let (Some(a), Some(b)) = (before, d.next.window()) {
                    prop_assert_eq!(
                        (a.expires_at(), a.closes_at()),
                        (b.expires_at(), b.closes_at())
                    );
                }
            }
        }
        let opted_out = d.next.consent().is_opted_out();
        for effect in &d.effects {
            match effect {
                Effect::StartTimer { timer, at } => {
                    prop_assert!(
                        self.timers.insert(*timer, *at).is_none(),
                        "{timer:?} started twice"
                    );
                    // Only a ping can be overdue (a window reopened after a teardown that waited).
                    prop_assert!(*at >= self.now || *timer == TimerKind::Inactivity, "{effect:?}");
                }
                Effect::CancelTimer { timer } => {
                    prop_assert!(self.timers.remove(timer).is_some(), "{timer:?} not running");
                }
                Effect::PlaceHold { hold_id, amount, .. } => {
                    self.outstanding.push(Answer::Hold(hold_id.clone(), *amount));
                }
                Effect::ChargeHold { hold_id, amount }
                | Effect::ReleaseHold { hold_id, amount } => {
                    prop_assert_eq!(self.ledger.open_hold(hold_id), Some(*amount));
                    let result = match effect {
                        Effect::ChargeHold { .. } => self.ledger.charge(hold_id),
                        _ => self.ledger.release(hold_id),
                    };
                    result.map_err(fail)?;
                }
                Effect::Send { message, .. } => {
                    prop_assert!(!opted_out, "business send to an opted-out contact");
                    prop_assert!(!self.refused.contains(&message.id), "refused send went out");
                    self.outstanding.push(Answer::Provider(message.id.clone()));
                }
                Effect::Reject { message_id, error: Error::InsufficientBalance { .. } } => {
                    self.refused.insert(message_id.clone());
                }
                _ => {}
            }
        }
        self.state = d.next;
        for kind in TimerKind::ALL {
            prop_assert_eq!(self.timers.get(&kind).copied(), self.state.armed_timer(kind));
        }
        // The balance never goes negative and `reserved` is the sum of the open holds, which
        // are exactly the holds the session believes open.
        let balance = self.ledger.balance();
        prop_assert!(balance.is_consistent());
        let open: BTreeMap<HoldId, Money> =
            self.ledger.open_holds().map(|(id, a)| (id.clone(), a)).collect();
        let sum: u128 = open.values().map(|a| u128::from(a.minor())).sum();
        prop_assert_eq!(u128::from(balance.reserved.minor()), sum);
        prop_assert_eq!(open, self.state_holds());
        Ok(())
    }

    fn advance(&mut self, until: Timestamp) -> Result<(), TestCaseError> {
        while let Some((&timer, &at)) = self.timers.iter().min_by_key(|(_, at)| **at) {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            // A fired timer is gone from the host; `step` checks the state forgot it too.
            self.timers.remove(&timer);
            self.step(Event::TimerFired { timer })?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn deliver(&mut self, index: usize, ok: bool) -> Result<(), TestCaseError> {
        if self.outstanding.is_empty() {
            return Ok(());
        }
        let event = match self.outstanding.remove(index % self.outstanding.len()) {
            Answer::Hold(hold_id, amount) => {
                match self.ledger.place_hold(hold_id.clone(), amount) {
                    Ok(balance) => Event::HoldPlaced { hold_id, balance },
                    Err(billing::Error::InsufficientBalance { .. }) => {
                        Event::HoldRefused { hold_id, balance: self.ledger.balance() }
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
            Answer::Provider(message_id) if ok => Event::ProviderAccepted { message_id },
            Answer::Provider(message_id) => {
                Event::ProviderRejected { message_id, reason: "rejected".to_owned() }
            }
        };
        self.step(event)
    }

    pub(super) fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Advance(minutes) => self.advance(self.now.plus_secs(minutes * 60)),
            Op::Inbound(i) => {
                let message_id = self.fresh_id("in");
                self.step(Event::InboundMessage {
                    message_id,
                    text: TEXTS[i].to_owned(),
                    sent_at: None,
                })
            }
            Op::Freeform(is_human) => {
                let message_id = self.fresh_id("s");
                let sender = if is_human { Sender::HumanAgent } else { Sender::Automated };
                let subject = Some("re".to_owned());
                self.step(Event::FreeformSendRequested {
                    message_id,
                    text: "hi".to_owned(),
                    subject,
                    sender,
                })
            }
            Op::Template(newsletter) => {
                let message_id = self.fresh_id("t");
                let message_type =
                    if newsletter { MessageType::Newsletter } else { MessageType::Message };
                self.step(Event::TemplateSendRequested {
                    message_id,
                    template: "tpl".to_owned(),
                    message_type,
                    params: Default::default(),
                })
            }
            Op::Close => self.step(Event::CloseRequested),
            Op::ExternalConsent(out) => {
                let consent = if out {
                    Consent::OptedOut { at: self.now }
                } else {
                    Consent::OptedIn { at: self.now }
                };
                self.step(Event::ConsentChanged { consent })
            }
            Op::Deliver(i, ok) => self.deliver(i, ok),
            Op::TopUp(amount) => self.ledger.credit(m(amount)).map(|_| ()).map_err(fail),
        }
    }
}
