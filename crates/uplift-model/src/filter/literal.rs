//! Reading and writing literal text (numbers, dates, date-times, GUIDs,
//! strings).
//!
//! Both directions live together because the printer's output has to be
//! exactly what the reader accepts: keeping them side by side keeps that
//! contract visible.

use std::fmt::Write as _;

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use super::ast::Literal;

/// Whether `s` is exactly a GUID in 8-4-4-4-12 hex form.
///
/// Checked before a token is read as a number or a name, because a GUID can
/// start with a digit (`0123abcd-...`) or a letter (`deadbeef-...`).
pub(crate) fn is_guid_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether `s` looks like an attempt at a GUID (hex groups joined by `-`,
/// starting with the 8-digit group), so a malformed one gets a message about
/// GUIDs rather than about numbers or names.
pub(crate) fn looks_like_guid_attempt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 9
        && b[8] == b'-'
        && b[..8].iter().all(u8::is_ascii_hexdigit)
        && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-')
}

/// Classifies a run of number-ish characters (it starts with a digit or a
/// `-` followed by a digit): GUID, date, date-time, integer or decimal.
///
/// Returns the message for a bad literal; the caller knows the position.
pub(crate) fn classify_chunk(chunk: &str) -> Result<Literal, String> {
    if is_guid_shape(chunk) {
        return uuid::Uuid::parse_str(chunk)
            .map(Literal::Guid)
            .map_err(|e| format!("invalid GUID '{chunk}': {e}"));
    }
    let b = chunk.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return if chunk.contains(['T', 't']) {
            parse_date_time(chunk).map(Literal::DateTimeOffset)
        } else {
            parse_date(chunk).map(Literal::Date)
        };
    }
    if looks_like_guid_attempt(chunk) {
        return Err(format!(
            "invalid GUID '{chunk}': expected 8-4-4-4-12 hexadecimal digits"
        ));
    }
    parse_number(chunk)
}

/// Reads `-?[0-9]+` as Int and `-?[0-9]+(.[0-9]+)?([eE][+-]?[0-9]+)?` (with a
/// fraction or an exponent) as Decimal.
///
/// The grammar is checked by hand because Rust's own parsers accept more
/// (`inf`, `.5`, `1.`, `+1`) than OData does.
fn parse_number(s: &str) -> Result<Literal, String> {
    let bad = || format!("invalid number '{s}'");
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return Err(bad());
    }
    let mut is_decimal = false;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return Err(bad());
        }
        is_decimal = true;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if !digits(&mut i) {
            return Err(bad());
        }
        is_decimal = true;
    }
    if i != b.len() {
        return Err(bad());
    }
    if is_decimal {
        crate::decimal::parse(s).map(Literal::Decimal).ok_or_else(|| {
            format!(
                "decimal '{s}' is out of range (at most 28 significant digits, magnitude below 7.9e28)"
            )
        })
    } else {
        s.parse::<i64>()
            .map(Literal::Int)
            .map_err(|_| format!("integer '{s}' is out of range for a 64-bit integer"))
    }
}

/// A little cursor over ASCII text for the fixed-width date formats.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    /// Exactly `n` decimal digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.b.get(self.i..self.i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_any(&mut self, cs: &[u8]) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        if cs.contains(&c) {
            self.i += 1;
            Some(c)
        } else {
            None
        }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// Reads the `YYYY-MM-DD` at the cursor, for years 0001-9999: the whole range
/// of four-digit years, with no database-specific floor (such as SQL Server's
/// 1753) leaking into the API.
fn read_date(c: &mut Cursor<'_>) -> Result<Date, String> {
    let (Some(y), true, Some(m), true, Some(d)) = (
        c.digits(4),
        c.eat(b'-'),
        c.digits(2),
        c.eat(b'-'),
        c.digits(2),
    ) else {
        return Err("expected YYYY-MM-DD".into());
    };
    if y == 0 {
        return Err("year must be between 0001 and 9999".into());
    }
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| "month must be between 01 and 12".to_string())?;
    // y <= 9999 and d <= 99, so the conversions cannot fail.
    let year = i32::try_from(y).map_err(|e| e.to_string())?;
    let day = u8::try_from(d).map_err(|e| e.to_string())?;
    Date::from_calendar_date(year, month, day).map_err(|e| e.to_string())
}

/// Parses a `YYYY-MM-DD` date.
pub(crate) fn parse_date(s: &str) -> Result<Date, String> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    match read_date(&mut c) {
        Ok(d) if c.done() => Ok(d),
        Ok(_) => Err(format!("invalid date '{s}': expected YYYY-MM-DD")),
        Err(why) => Err(format!("invalid date '{s}': {why}")),
    }
}

/// Parses `YYYY-MM-DDThh:mm[:ss[.fraction]](Z|±hh:mm)`.
///
/// The offset is mandatory: a date-time without one would silently take the
/// server's time zone, which is exactly the ambiguity OData's
/// DateTimeOffset exists to remove.
pub(crate) fn parse_date_time(s: &str) -> Result<OffsetDateTime, String> {
    const SHAPE: &str = "expected YYYY-MM-DDThh:mm[:ss[.fffffffff]] followed by Z or ±hh:mm";
    let bad = |why: &str| format!("invalid date-time '{s}': {why}");
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let date = read_date(&mut c).map_err(|why| bad(&why))?;
    if c.eat_any(b"Tt").is_none() {
        return Err(bad(SHAPE));
    }
    let (Some(hour), true, Some(minute)) = (c.digits(2), c.eat(b':'), c.digits(2)) else {
        return Err(bad(SHAPE));
    };
    let mut second = 0;
    let mut nanos = 0;
    if c.eat(b':') {
        second = c.digits(2).ok_or_else(|| bad(SHAPE))?;
        if c.eat(b'.') {
            let start = c.i;
            while c.b.get(c.i).is_some_and(u8::is_ascii_digit) {
                c.i += 1;
            }
            let n = c.i - start;
            if n == 0 {
                return Err(bad("expected digits after '.'"));
            }
            if n > 9 {
                return Err(bad("fractional seconds have more than 9 digits"));
            }
            let frac = c.b[start..c.i]
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            nanos = frac * 10u32.pow(9 - n as u32);
        }
    }
    let offset = match c.eat_any(b"Zz+-") {
        Some(b'Z' | b'z') => UtcOffset::UTC,
        Some(sign) => {
            let (Some(oh), true, Some(om)) = (c.digits(2), c.eat(b':'), c.digits(2)) else {
                return Err(bad(SHAPE));
            };
            if oh > 23 || om > 59 {
                return Err(bad("offset must be between -23:59 and +23:59"));
            }
            // Both are below 60, so they fit in an i8.
            let (oh, om) = (oh as i8, om as i8);
            let (oh, om) = if sign == b'-' { (-oh, -om) } else { (oh, om) };
            UtcOffset::from_hms(oh, om, 0).map_err(|e| bad(&e.to_string()))?
        }
        None => return Err(bad(SHAPE)),
    };
    if !c.done() {
        return Err(bad(SHAPE));
    }
    let (Ok(hour), Ok(minute), Ok(second)) = (
        u8::try_from(hour),
        u8::try_from(minute),
        u8::try_from(second),
    ) else {
        return Err(bad(SHAPE));
    };
    let time = Time::from_hms_nano(hour, minute, second, nanos).map_err(|e| bad(&e.to_string()))?;
    let t = OffsetDateTime::new_in_offset(date, time, offset);
    // Stored in UTC, so it must be an instant of the years 0001-9999 there too.
    match t.checked_to_offset(UtcOffset::UTC) {
        Some(utc) if (1..=9999).contains(&utc.year()) => Ok(t),
        _ => Err(bad("in UTC it falls outside the years 0001 to 9999")),
    }
}

/// Writes a literal in the form [`classify_chunk`] and the string lexer read
/// back to an equal value.
pub(crate) fn write_literal(lit: &Literal, out: &mut String) {
    match lit {
        Literal::Null => out.push_str("null"),
        Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Literal::Decimal(f) => write_decimal(*f, out),
        Literal::String(s) => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Literal::Date(d) => write_date(*d, out),
        Literal::DateTimeOffset(dt) => write_date_time(*dt, out),
        Literal::Guid(g) => {
            let _ = write!(out, "{}", g.hyphenated());
        }
    }
}

/// Writes every digit of the decimal, with `.0` appended when the text would
/// otherwise read back as an Int.
fn write_decimal(d: crate::Decimal, out: &mut String) {
    let text = d.to_string();
    out.push_str(&text);
    if !text.contains('.') {
        out.push_str(".0");
    }
}

fn write_date(d: Date, out: &mut String) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    );
}

/// Writes RFC 3339 with seconds always present, the fraction only when it is
/// non-zero (trailing zeros trimmed) and the writer's own offset kept, so the
/// text reads back to the same instant *and* the same offset.
///
/// Offsets with seconds cannot be written as `±hh:mm`; such values (never
/// produced by the parser) are written in UTC, which is still the same
/// instant.
fn write_date_time(dt: OffsetDateTime, out: &mut String) {
    let mut dt = dt;
    if dt.offset().seconds_past_minute() != 0
        && let Some(utc) = dt.checked_to_offset(UtcOffset::UTC)
    {
        dt = utc;
    }
    write_date(dt.date(), out);
    let _ = write!(
        out,
        "T{:02}:{:02}:{:02}",
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = dt.offset();
    if offset.is_utc() {
        out.push('Z');
    } else {
        let sign = if offset.is_negative() { '-' } else { '+' };
        let _ = write!(
            out,
            "{sign}{:02}:{:02}",
            offset.whole_hours().unsigned_abs(),
            offset.minutes_past_hour().unsigned_abs()
        );
    }
}
