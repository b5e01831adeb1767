//! Ledger unit and property tests.

use proptest::prelude::*;

use super::*;

fn m(minor: u64) -> Money {
    Money::from_minor(minor)
}

fn h(id: &str) -> HoldId {
    HoldId::from(id)
}

#[test]
fn hold_then_charge_or_release() {
    let mut l = Ledger::new(m(100));
    assert_eq!(
        l.place_hold(h("a"), m(30)),
        Ok(Balance { free: m(70), reserved: m(30), total: m(100) })
    );
    assert_eq!(
        l.place_hold(h("b"), m(20)),
        Ok(Balance { free: m(50), reserved: m(50), total: m(100) })
    );
    assert_eq!(l.charge(&h("a")), Ok(Balance { free: m(50), reserved: m(20), total: m(70) }));
    assert_eq!(l.release(&h("b")), Ok(Balance { free: m(70), reserved: m(0), total: m(70) }));
    assert_eq!(l.resolution(&h("a")), Some(Resolution::Charged));
    assert_eq!(l.open_holds().count(), 0);
}

#[test]
fn insufficient_balance_reserves_nothing() {
    let mut l = Ledger::new(m(10));
    let err = l.place_hold(h("a"), m(11)).unwrap_err();
    assert_eq!(err, Error::InsufficientBalance { required: m(11), free: m(10) });
    assert_eq!(err.code(), "insufficient_balance");
    assert_eq!(l, Ledger::new(m(10)));
    assert_eq!(l.place_hold(h("a"), m(10)).map(|b| b.free), Ok(m(0)));
}

#[test]
fn operations_are_idempotent_under_retries() {
    let mut l = Ledger::new(m(100));
    l.place_hold(h("a"), m(30)).unwrap();
    assert_eq!(l.place_hold(h("a"), m(30)).map(|b| b.reserved), Ok(m(30)));
    assert_eq!(l.place_hold(h("a"), m(31)), Err(Error::HoldConflict { hold_id: h("a") }));
    l.charge(&h("a")).unwrap();
    assert_eq!(l.charge(&h("a")).map(|b| b.total), Ok(m(70)));
    let err = l.release(&h("a")).unwrap_err();
    assert_eq!(err, Error::AlreadyResolved { hold_id: h("a"), resolution: Resolution::Charged });
    assert_eq!(err.code(), "validation_failed");
    assert!(matches!(l.place_hold(h("a"), m(30)), Err(Error::AlreadyResolved { .. })));
    assert_eq!(l.release(&h("zzz")), Err(Error::UnknownHold { hold_id: h("zzz") }));
}

#[test]
fn credit_overflow_is_refused() {
    let mut l = Ledger::new(m(u64::MAX - 1));
    assert_eq!(l.credit(m(2)), Err(Error::Overflow));
    assert_eq!(l.credit(m(1)).map(|b| b.total), Ok(m(u64::MAX)));
}

#[derive(Debug, Clone)]
enum Op {
    Credit(u64),
    Place(u8, u64),
    Charge(u8),
    Release(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..500).prop_map(Op::Credit),
        (0u8..8, 0u64..400).prop_map(|(i, a)| Op::Place(i, a)),
        (0u8..8).prop_map(Op::Charge),
        (0u8..8).prop_map(Op::Release),
    ]
}

proptest! {
    /// The balance never goes negative (every counter stays representable and `free + reserved
    /// == total`), `reserved` always equals the sum of the open holds, `total` is credits minus
    /// charges, and a refused operation changes nothing.
    #[test]
    fn balance_never_negative_and_reserved_is_sum_of_open_holds(
        opening in 0u64..1_000,
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut l = Ledger::new(m(opening));
        let (mut credited, mut charged) = (i128::from(opening), 0i128);
        for op in ops {
            let before = l.clone();
            let result = match &op {
                Op::Credit(a) => l.credit(m(*a)),
                Op::Place(i, a) => l.place_hold(h(&format!("h{i}")), m(*a)),
                Op::Charge(i) => l.charge(&h(&format!("h{i}"))),
                Op::Release(i) => l.release(&h(&format!("h{i}"))),
            };
            match (&op, &result) {
                (_, Err(_)) => prop_assert_eq!(&l, &before),
                (Op::Credit(a), Ok(_)) => credited += i128::from(*a),
                (Op::Charge(i), Ok(_)) => {
                    let id = h(&format!("h{i}"));
                    if let Some(amount) = before.open_hold(&id) {
                        charged += i128::from(amount.minor());
                    }
                }
                _ => {}
            }
            if let (Op::Place(_, a), Err(Error::InsufficientBalance { free, .. })) = (&op, &result) {
                prop_assert!(*a > free.minor());
            }
            let b = l.balance();
            prop_assert!(b.is_consistent());
            let open: u128 = l.open_holds().map(|(_, a)| u128::from(a.minor())).sum();
            prop_assert_eq!(u128::from(b.reserved.minor()), open);
            prop_assert_eq!(i128::from(b.total.minor()), credited - charged);
            prop_assert!(credited - charged >= 0);
        }
    }
}
