//! Currencies and their minor units, and amounts rendered in major units exactly.
//!
//! convo stores and computes every amount in integer minor units ([`Money`]); an answer that
//! shows major units (`0.25`, `49.75`, as the RCS conversation API does) renders the integer
//! with the currency's ISO 4217 exponent, so no floating-point arithmetic ever touches it.

use super::Money;

/// The currency a workspace bills in when it names none.
pub const DEFAULT_CURRENCY: &str = "EUR";

/// ISO 4217 currencies with no minor unit.
const EXPONENT_0: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies with three decimals.
const EXPONENT_3: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Whether `code` is written as an ISO 4217 code: three upper-case ASCII letters.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// How many decimals `code`'s minor unit has (2 unless ISO 4217 says 0 or 3).
pub fn minor_exponent(code: &str) -> u32 {
    if EXPONENT_0.contains(&code) {
        0
    } else if EXPONENT_3.contains(&code) {
        3
    } else {
        2
    }
}

impl Money {
    /// The amount in major units with exactly `exponent` decimals, as a decimal string
    /// (`4975` with 2 → `"49.75"`, `5` with 2 → `"0.05"`, `7` with 0 → `"7"`).
    pub fn to_major(self, exponent: u32) -> String {
        let digits = self.minor().to_string();
        let exponent = exponent as usize;
        if exponent == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = exponent + 1);
        let (whole, fraction) = padded.split_at(padded.len() - exponent);
        format!("{whole}.{fraction}")
    }
}

/// `money` in `currency`'s major units as the JSON number answers show (`25` cents → `0.25`):
/// parsed from the exact decimal, so it prints back as that decimal (no two decimals of 15
/// significant digits or fewer share a double, and every balance is far below that).
pub fn major_units(money: Money, currency: &str) -> f64 {
    money.to_major(minor_exponent(currency)).parse().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_seed_amounts_render_as_documented() {
        assert_eq!(Money::from_minor(25).to_major(2), "0.25");
        assert_eq!(Money::from_minor(4975).to_major(2), "49.75");
        assert_eq!(Money::from_minor(5000).to_major(2), "50.00");
        assert_eq!(Money::from_minor(0).to_major(2), "0.00");
        assert_eq!(Money::from_minor(7).to_major(3), "0.007");
        assert_eq!(Money::from_minor(120).to_major(0), "120");
        assert_eq!(
            (minor_exponent("EUR"), minor_exponent("JPY"), minor_exponent("KWD")),
            (2, 0, 3)
        );
        assert!(is_currency_code("USD") && !is_currency_code("usd") && !is_currency_code("EURO"));
    }

    proptest! {
        /// The rendering is exact: removing the point gives the minor units back, with exactly
        /// `exponent` decimals; and as a JSON number (what the API sends) it reads back as the
        /// same decimal for every amount up to 10^15 minor units.
        #[test]
        fn major_units_are_exact(minor in 0u64..1_000_000_000_000_000, exponent in 0u32..4) {
            let major = Money::from_minor(minor).to_major(exponent);
            let decimals = major.split_once('.').map_or(0, |(_, f)| f.len());
            prop_assert_eq!(decimals, exponent as usize);
            prop_assert_eq!(major.replace('.', "").parse::<u64>().unwrap(), minor);
            let number: f64 = major.parse().unwrap();
            let back = format!("{:.*}", exponent as usize, number);
            prop_assert_eq!(back, major);
        }
    }
}
