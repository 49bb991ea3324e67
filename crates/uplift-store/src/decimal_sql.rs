//! Exact decimals on SQLite, which has no decimal type: values are stored as their
//! decimal text in columns that compare (and sort, and index) by the `uplift_decimal`
//! collation, and step 1's arithmetic on them runs in functions over
//! [`uplift_model::decimal`], so no value passes through a binary float.
//!
//! Every connection registers these ([`register`]); a tool without them can still read
//! the values, which are plain text.

use std::cmp::Ordering;

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use uplift_model::decimal::{self, Decimal};

/// The collation decimal columns compare by.
pub const COLLATION: &str = "uplift_decimal";
/// The declared type of a decimal column.
pub const SQLITE_COLUMN_TYPE: &str = "TEXT COLLATE uplift_decimal";
/// `uplift_dec_times(value, rate, scale)`: `value × rate` rounded half away from zero
/// to `scale` digits, as text; NULL when an argument is NULL or it does not fit.
pub const TIMES: &str = "uplift_dec_times";
/// `uplift_dec_round(x)`: `x` rounded half away from zero to a whole number, saturating.
pub const ROUND: &str = "uplift_dec_round";

/// SQL that is true when the stored decimal `c` (an SQL expression, not NULL) has a
/// fractional part. Plain SQL on the text, not a function over a parsed decimal: it runs
/// once per row of step 1's warning checks, where a call out to Rust cost more than the
/// check (a REAL or INTEGER written by an older version is compared with its truncation).
pub fn fractional_sql(c: &str) -> String {
    format!(
        "(CASE typeof({c}) WHEN 'text' THEN instr({c}, '.') > 0 AND \
         rtrim(substr({c}, instr({c}, '.') + 1), '0') <> '' \
         WHEN 'real' THEN {c} <> CAST({c} AS INTEGER) ELSE 0 END)"
    )
}

/// Reads a stored decimal: its text, or an integer or float written by older versions.
pub fn read(v: ValueRef<'_>) -> Option<Decimal> {
    match v {
        ValueRef::Text(t) => decimal::parse(std::str::from_utf8(t).ok()?),
        ValueRef::Integer(i) => Some(Decimal::from(i)),
        ValueRef::Real(f) => decimal::from_f64(f),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// Decimal order of two texts; a text that is not a decimal sorts after every
/// decimal, by its bytes, so the order stays total.
fn compare(a: &str, b: &str) -> Ordering {
    if let (Some(x), Some(y)) = (Plain::read(a), Plain::read(b)) {
        return x.cmp(&y);
    }
    match (decimal::parse(a), decimal::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// A decimal text in the form the platform writes (`-?digits(.digits)?`, at most
/// [`Plain::MAX_DIGITS`] digits, so [`decimal::parse`] reads it too), compared on its
/// digits without parsing: the collation runs twice per row in step 1's range checks.
#[derive(Debug, PartialEq, Eq)]
struct Plain<'a> {
    negative: bool,
    /// Without leading zeros.
    int: &'a [u8],
    /// Without trailing zeros.
    frac: &'a [u8],
}

impl<'a> Plain<'a> {
    /// Fewer digits than a [`Decimal`]'s largest value has, so every such text fits.
    const MAX_DIGITS: usize = 28;

    fn read(s: &'a str) -> Option<Plain<'a>> {
        let b = s.as_bytes();
        let (negative, b) = match b.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, b),
        };
        let (int, frac): (&[u8], &[u8]) = match b.iter().position(|&c| c == b'.') {
            Some(dot) if dot + 1 < b.len() => (&b[..dot], &b[dot + 1..]),
            Some(_) => return None,
            None => (b, &[]),
        };
        let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
        let well_formed = !int.is_empty() && digits(int) && digits(frac);
        if !well_formed || int.len() + frac.len() > Self::MAX_DIGITS {
            return None;
        }
        let int = &int[int.iter().take_while(|&&c| c == b'0').count()..];
        let frac = &frac[..frac.len() - frac.iter().rev().take_while(|&&c| c == b'0').count()];
        // Zero has no sign: `-0.0` equals `0`.
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Some(Plain {
            negative,
            int,
            frac,
        })
    }

    fn magnitude(&self, other: &Plain<'_>) -> Ordering {
        let int = self.int.len().cmp(&other.int.len());
        int.then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl Ord for Plain<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude(other),
            (true, true) => other.magnitude(self),
        }
    }
}

impl PartialOrd for Plain<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn arg(ctx: &Context<'_>, i: usize) -> Option<Decimal> {
    read(ctx.get_raw(i))
}

/// Registers the collation and the functions on a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_collation(COLLATION, compare)?;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function(TIMES, 3, flags, |ctx| {
        let scale = ctx.get::<Option<i64>>(2)?;
        let out = match (arg(ctx, 0), arg(ctx, 1), scale) {
            (Some(v), Some(r), Some(s)) => u32::try_from(s)
                .ok()
                .and_then(|s| decimal::times_rounded(v, r, s)),
            _ => None,
        };
        Ok(out.map(|d| d.to_string()))
    })?;
    conn.create_scalar_function(ROUND, 1, flags, |ctx| {
        Ok(arg(ctx, 0).map(|x| {
            let r = decimal::round(x, 0);
            i64::try_from(r).unwrap_or(if r.is_sign_negative() {
                i64::MIN
            } else {
                i64::MAX
            })
        }))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        c
    }

    #[test]
    fn decimal_columns_sort_and_compare_by_value() {
        let c = conn();
        c.execute_batch(&format!(
            "CREATE TABLE t (x {SQLITE_COLUMN_TYPE});
             INSERT INTO t VALUES ('10'), ('9.5'), ('-1'), ('12345678901234567890.01'), ('12345678901234567890.001'), ('0.10');"
        ))
        .unwrap();
        let sorted: Vec<String> = c
            .prepare("SELECT x FROM t ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            sorted,
            [
                "-1",
                "0.10",
                "9.5",
                "10",
                "12345678901234567890.001",
                "12345678901234567890.01"
            ]
        );
        let above: i64 = c
            .query_row("SELECT count(*) FROM t WHERE x > '9.75'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(above, 3);
        let equal: i64 = c
            .query_row("SELECT count(*) FROM t WHERE x = '0.1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(equal, 1, "0.10 equals 0.1");
    }

    #[test]
    fn plain_texts_compare_as_their_parsed_values() {
        let texts = [
            "0",
            "-0",
            "0.0",
            "-0.000",
            "00012.50",
            "12.5",
            "12.49",
            "-12.5",
            "-12.51",
            "9",
            "10",
            "-9",
            "-10",
            "0.001",
            "-0.001",
            "0.01",
            "5.",
            ".5",
            "+5",
            "1e2",
            "abc",
            "",
            "-",
            "99999999999999999999999999999",
            "9999999999999999999999999999",
            "0.0000000000000000000000000001",
        ];
        for a in texts {
            for b in texts {
                let slow = match (decimal::parse(a), decimal::parse(b)) {
                    (Some(x), Some(y)) => Some(x.cmp(&y)),
                    _ => None,
                };
                let fast = Plain::read(a).zip(Plain::read(b)).map(|(x, y)| x.cmp(&y));
                if fast.is_some() {
                    assert_eq!(fast, slow, "{a} vs {b}");
                }
            }
        }
        for text in ["1", "-0.5", "123.450"] {
            assert!(Plain::read(text).is_some(), "{text} takes the fast path");
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        let c = conn();
        let cases: &[(&str, Option<&str>)] = &[
            ("SELECT uplift_dec_times('11.00', '1.1', 2)", Some("12.10")),
            ("SELECT uplift_dec_times(11, 1.1, 2)", Some("12.10")),
            ("SELECT uplift_dec_times('-0.125', '1', 2)", Some("-0.13")),
            ("SELECT uplift_dec_times(NULL, '1', 2)", None),
            ("SELECT CAST(uplift_dec_round('2.5') AS TEXT)", Some("3")),
            ("SELECT CAST(uplift_dec_round('-2.5') AS TEXT)", Some("-3")),
        ];
        for (sql, expect) in cases {
            let got: Option<String> = c.query_row(sql, [], |r| r.get(0)).unwrap();
            assert_eq!(got.as_deref(), *expect, "{sql}");
        }
    }

    #[test]
    fn fractional_parts_are_found_in_text_and_in_older_numbers() {
        let c = conn();
        let cases: &[(&str, bool)] = &[
            ("'2.50'", true),
            ("'2.00'", false),
            ("'2'", false),
            ("'-0.001'", true),
            ("'12345678901234567890.10'", true),
            ("2.5", true),
            ("2.0", false),
            ("7", false),
        ];
        c.execute_batch(&format!("CREATE TABLE t (x {SQLITE_COLUMN_TYPE})"))
            .unwrap();
        for (value, expect) in cases {
            c.execute_batch(&format!("DELETE FROM t; INSERT INTO t VALUES ({value})"))
                .unwrap();
            let sql = format!("SELECT {} FROM t", fractional_sql("x"));
            let got: bool = c.query_row(&sql, [], |r| r.get(0)).unwrap();
            assert_eq!(got, *expect, "{value}");
        }
    }
}
