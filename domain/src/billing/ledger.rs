//! The workspace balance and its holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Error, Money};
use crate::HoldId;

/// A workspace balance: `free + reserved == total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Balance {
    /// Available for new holds.
    pub free: Money,
    /// Held by open holds.
    pub reserved: Money,
    /// Everything the workspace owns: `free + reserved`.
    pub total: Money,
}

impl Balance {
    /// A balance of `total`, all of it free.
    pub const fn new(total: Money) -> Self {
        Self { free: total, reserved: Money::ZERO, total }
    }

    /// Whether `free + reserved == total`.
    pub fn is_consistent(&self) -> bool {
        self.free.checked_add(self.reserved) == Some(self.total)
    }
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The amount left the balance (`reserved` and `total` went down).
    Charged,
    /// The amount went back to `free`.
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Resolved {
    amount: Money,
    resolution: Resolution,
}

/// The pure model of a workspace's billing ledger. Every operation either applies completely
/// or returns an error and changes nothing; each is idempotent under retries (placing the same
/// hold twice, or charging a charged hold, is a no-op), as activities are retried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    balance: Balance,
    holds: BTreeMap<HoldId, Money>,
    resolved: BTreeMap<HoldId, Resolved>,
}

impl Ledger {
    /// A ledger with `opening` free.
    pub fn new(opening: Money) -> Self {
        Self { balance: Balance::new(opening), ..Self::default() }
    }

    /// The current balance.
    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// The amount of the open hold `id`.
    pub fn open_hold(&self, id: &HoldId) -> Option<Money> {
        self.holds.get(id).copied()
    }

    /// Every open hold, by id.
    pub fn open_holds(&self) -> impl Iterator<Item = (&HoldId, Money)> + '_ {
        self.holds.iter().map(|(id, amount)| (id, *amount))
    }

    /// How hold `id` was resolved, if it was.
    pub fn resolution(&self, id: &HoldId) -> Option<Resolution> {
        self.resolved.get(id).map(|r| r.resolution)
    }

    /// Adds `amount` to the balance (a top-up).
    pub fn credit(&mut self, amount: Money) -> Result<Balance, Error> {
        let total = self.balance.total.checked_add(amount).ok_or(Error::Overflow)?;
        let free = self.balance.free.checked_add(amount).ok_or(Error::Overflow)?;
        self.balance = Balance { free, total, ..self.balance };
        Ok(self.balance)
    }

    /// Reserves `amount` under `id`. Refused with [`Error::InsufficientBalance`] when `free`
    /// cannot cover it; placing the same hold again with the same amount is a no-op.
    pub fn place_hold(&mut self, id: HoldId, amount: Money) -> Result<Balance, Error> {
        if let Some(&existing) = self.holds.get(&id) {
            return if existing == amount {
                Ok(self.balance)
            } else {
                Err(Error::HoldConflict { hold_id: id })
            };
        }
        if let Some(r) = self.resolved.get(&id) {
            return Err(Error::AlreadyResolved { hold_id: id, resolution: r.resolution });
        }
        let free = self
            .balance
            .free
            .checked_sub(amount)
            .ok_or(Error::InsufficientBalance { required: amount, free: self.balance.free })?;
        let reserved = self.balance.reserved.checked_add(amount).ok_or(Error::Overflow)?;
        self.balance = Balance { free, reserved, ..self.balance };
        self.holds.insert(id, amount);
        Ok(self.balance)
    }

    /// Charges hold `id`: its amount leaves `reserved` and `total`.
    pub fn charge(&mut self, id: &HoldId) -> Result<Balance, Error> {
        self.resolve(id, Resolution::Charged)
    }

    /// Releases hold `id`: its amount goes back to `free`.
    pub fn release(&mut self, id: &HoldId) -> Result<Balance, Error> {
        self.resolve(id, Resolution::Released)
    }

    fn resolve(&mut self, id: &HoldId, resolution: Resolution) -> Result<Balance, Error> {
        if let Some(r) = self.resolved.get(id) {
            return if r.resolution == resolution {
                Ok(self.balance)
            } else {
                Err(Error::AlreadyResolved { hold_id: id.clone(), resolution: r.resolution })
            };
        }
        let amount =
            *self.holds.get(id).ok_or_else(|| Error::UnknownHold { hold_id: id.clone() })?;
        // `reserved` is the sum of the open holds, so it covers `amount`; checked anyway so a
        // corrupted ledger reports instead of wrapping.
        let reserved = self.balance.reserved.checked_sub(amount).ok_or(Error::Overflow)?;
        self.balance = match resolution {
            Resolution::Charged => Balance {
                reserved,
                total: self.balance.total.checked_sub(amount).ok_or(Error::Overflow)?,
                ..self.balance
            },
            Resolution::Released => Balance {
                reserved,
                free: self.balance.free.checked_add(amount).ok_or(Error::Overflow)?,
                ..self.balance
            },
        };
        self.holds.remove(id);
        self.resolved.insert(id.clone(), Resolved { amount, resolution });
        Ok(self.balance)
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
