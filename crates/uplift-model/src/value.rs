//! Stored values: what one physical column holds, independent of the engine.

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

/// The storage class of a column. Engines map each to a native type (`bigint`,
/// `timestamptz`, ...) and read values back by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColType {
    Text,
    Int,
    /// An exact decimal: PostgreSQL `numeric`; on SQLite decimal text compared by the
    /// `uplift_decimal` collation, so every digit is kept.
    Decimal,
    Bool,
    Date,
    DateTime,
    Bytes,
}

/// One column's value. Dates and instants are typed so that engines store them natively
/// and compare them correctly; instants are always UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Decimal(Decimal),
    Bool(bool),
    Date(Date),
    DateTime(OffsetDateTime),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// The canonical text form of an instant: UTC, fixed width, millisecond precision.
/// Fixed width makes lexical order equal time order, which SQLite relies on.
pub fn format_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let ms = t.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms
    )
}

/// Parses an RFC 3339 instant and normalises it to UTC with millisecond precision, the
/// precision every engine keeps, so a value reads back exactly as it was stored.
///
/// An instant that falls outside the years 0001-9999 in UTC (`9999-12-31T23:00:00-23:00`)
/// is not one: no engine stores it and its UTC form has no four-digit year.
pub fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let t = t.checked_to_offset(time::UtcOffset::UTC)?;
    if !(1..=9999).contains(&t.year()) {
        return None;
    }
    let ms = t.millisecond();
    t.replace_nanosecond(u32::from(ms) * 1_000_000).ok()
}

pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    // Four digits, from 0001: `0000` and `-001` are not dates.
    if year < 1 || !s[..4].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_outside_years_1_to_9999_in_utc_are_refused() {
        for s in ["9999-12-31T23:00:00-23:00", "0001-01-01T00:00:00+01:00"] {
            assert_eq!(parse_instant(s), None, "{s}");
        }
        assert!(parse_instant("9999-12-31T23:59:59.999Z").is_some());
        assert!(parse_instant("0001-01-01T00:59:00-01:00").is_some());
    }

    #[test]
    fn dates_of_year_zero_or_below_are_refused() {
        for s in ["0000-01-01", "-001-01-01"] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn instants_normalise_to_utc_milliseconds() {
        let t = parse_instant("2024-03-01T10:00:00.123456+02:00").unwrap();
        assert_eq!(format_instant(t), "2024-03-01T08:00:00.123Z");
        let old = parse_instant("1700-01-01T00:00:00Z").unwrap();
        assert_eq!(format_instant(old), "1700-01-01T00:00:00.000Z");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(format_date(parse_date("1699-12-31").unwrap()), "1699-12-31");
        for bad in ["2024-13-01", "2024-02-30", "24-01-01", "2024/01/01", ""] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }
}
