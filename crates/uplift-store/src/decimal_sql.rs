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
    match (decimal::parse(a), decimal::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
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
