//! Exact decimals: how `DecimalNumber`, `Quantity`, `Currency` and `Money` values cross
//! JSON, text and arithmetic without binary floating point.
//!
//! Values are carried as [`Decimal`] (96-bit mantissa, up to 28 fractional digits), the
//! scale a writer gave is kept (`11.00` stays `11.00`), and every rounding in the
//! platform is half away from zero, the rule of PostgreSQL's `round(numeric, n)`, so the
//! engines and the in-process code round alike.

use std::str::FromStr;

pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use serde_json::{Number, Value as Json};

/// Reads a decimal from its text: plain (`-12.50`) or scientific (`1.25E-2`). `None`
/// when it is not a number, or when it has more digits than a [`Decimal`] keeps
/// exactly (refused rather than silently rounded).
pub fn parse(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() || s.contains(['_', ' ']) {
        return None;
    }
    if s.contains(['e', 'E']) {
        let d = Decimal::from_scientific(s).ok()?;
        // `from_scientific` rounds digits it cannot hold; only exact reads count.
        return (exact_scientific(s, d)).then_some(d);
    }
    Decimal::from_str_exact(s).ok().or_else(|| {
        // Trailing fractional zeros a decimal has no room for (`…335.0` at the
        // largest magnitude) carry no digit: read the value without them.
        let trimmed = s
            .contains('.')
            .then(|| s.trim_end_matches('0').trim_end_matches('.'))?;
        Decimal::from_str_exact(trimmed).ok()
    })
}

/// Whether `d` holds every significant digit of the scientific text `s`.
fn exact_scientific(s: &str, d: Decimal) -> bool {
    let mantissa = s.split(['e', 'E']).next().unwrap_or_default();
    let significant = mantissa
        .trim_start_matches(['-', '+'])
        .replace('.', "")
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len();
    let kept = d.normalize().mantissa().unsigned_abs().to_string();
    let kept = if d.is_zero() {
        0
    } else {
        kept.trim_end_matches('0').len()
    };
    kept == significant
}

/// The decimal a JSON number spells, exactly as written (the server parses JSON with
/// `arbitrary_precision`, so the digits reach here untouched).
pub fn from_json(n: &Number) -> Option<Decimal> {
    parse(&n.to_string())
}

/// A decimal as a JSON number with exactly its digits (`12.10`, never
/// `12.100000000000001`).
pub fn to_json(d: Decimal) -> Json {
    Number::from_str(&d.to_string()).map_or(Json::Null, Json::Number)
}

/// A binary float as the decimal of its shortest round-trip text (`0.1` → `0.1`): for
/// values that were stored as floats before decimals were exact.
pub fn from_f64(f: f64) -> Option<Decimal> {
    if !f.is_finite() {
        return None;
    }
    parse(&format!("{f:?}")).or_else(|| Decimal::from_f64_retain(f))
}

/// Rounds to `scale` fractional digits, halves away from zero (`2.5` → `3`).
pub fn round(d: Decimal, scale: u32) -> Decimal {
    d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero)
}

/// `value × rate` rounded to `scale` digits, or `None` when the product does not fit.
pub fn times_rounded(value: Decimal, rate: Decimal, scale: u32) -> Option<Decimal> {
    let product = value.checked_mul(rate)?;
    let mut r = round(product, scale);
    // Keep the scale the currency has (`12.1` → `12.10`), as PostgreSQL does.
    r.rescale(scale);
    Some(r)
}

/// The minor units of an ISO 4217 currency: how many fractional digits its amounts
/// have. 2 unless listed (JPY 0, KWD 3, ...).
pub fn minor_units(code: &str) -> u32 {
    const NONE: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    const FOUR: &[&str] = &["CLF", "UYW"];
    let code = code.to_ascii_uppercase();
    let code = code.as_str();
    if NONE.contains(&code) {
        0
    } else if THREE.contains(&code) {
        3
    } else if FOUR.contains(&code) {
        4
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn text_reads_exactly_or_not_at_all() {
        let cases: &[(&str, Option<&str>)] = &[
            ("12.10", Some("12.10")),
            ("-0.001", Some("-0.001")),
            ("1.25E-2", Some("0.0125")),
            ("1e3", Some("1000")),
            ("1e300", None),
            ("0.12345678901234567890123456789", None),
            ("12.3.4", None),
            ("", None),
            ("1_000", None),
            (
                "79228162514264337593543950335.0",
                Some("79228162514264337593543950335"),
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(parse(text), expect.map(d), "{text}");
        }
    }

    #[test]
    fn json_keeps_the_digits_written() {
        let n: Number = serde_json::from_str("12.10").unwrap();
        assert_eq!(from_json(&n), Some(d("12.10")));
        assert_eq!(to_json(d("12.10")).to_string(), "12.10");
        let big: Number = serde_json::from_str("12345678901234567.89").unwrap();
        assert_eq!(
            to_json(from_json(&big).unwrap()).to_string(),
            "12345678901234567.89"
        );
    }

    #[test]
    fn money_rounds_to_minor_units_half_away_from_zero() {
        let cases = [
            ("11.00", "1.1", 2, "12.10"),
            ("0.125", "1", 2, "0.13"),
            ("-0.125", "1", 2, "-0.13"),
            ("1000", "0.0062", 0, "6"),
            ("3", "0.3333333333", 2, "1.00"),
        ];
        for (value, rate, scale, expect) in cases {
            let got = times_rounded(d(value), d(rate), scale).unwrap();
            assert_eq!(got.to_string(), expect, "{value} × {rate}");
        }
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        for (code, units) in [("EUR", 2), ("usd", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3)] {
            assert_eq!(minor_units(code), units, "{code}");
        }
    }

    #[test]
    fn floats_become_their_shortest_text() {
        assert_eq!(from_f64(0.1), Some(d("0.1")));
        assert_eq!(from_f64(12.100000000000001), Some(d("12.100000000000001")));
        assert_eq!(from_f64(f64::NAN), None);
    }
}
