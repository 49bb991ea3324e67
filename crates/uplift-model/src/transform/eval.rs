//! Evaluates a row transform in process: the reference semantics of the IR. Step 1
//! never runs it; it is the independent oracle the SQL compiled from the same IR is
//! tested against (`tests/it/transform_oracle.rs` in uplift-server), and what a later
//! catch-up of captured changes or a revert can run row by row.

use std::collections::{BTreeMap, HashMap};

use crate::Value;
use crate::decimal::{self, Decimal};
use rust_decimal::prelude::ToPrimitive;
use time::{Date, OffsetDateTime, Time, UtcOffset};

use super::{ColumnExpr, Condition, EntityTransform, Severity, TimeKind};

/// A source row: its values by physical column name.
pub trait SourceRow {
    fn value(&self, column: &str) -> Option<&Value>;
}

impl SourceRow for BTreeMap<String, Value> {
    fn value(&self, column: &str) -> Option<&Value> {
        self.get(column)
    }
}

impl SourceRow for HashMap<String, Value> {
    fn value(&self, column: &str) -> Option<&Value> {
        self.get(column)
    }
}

impl SourceRow for [(String, Value)] {
    fn value(&self, column: &str) -> Option<&Value> {
        self.iter().find(|(c, _)| c == column).map(|(_, v)| v)
    }
}

impl SourceRow for Vec<(String, Value)> {
    fn value(&self, column: &str) -> Option<&Value> {
        self.as_slice().value(column)
    }
}

/// What is the same for every row of an upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalContext {
    /// When the upgrade's copy started; `createdon`/`modifiedon` of every row.
    pub upgrade_time: OffsetDateTime,
    /// E-mail of the account running the upgrade; `createdby`/`modifiedby`.
    pub actor: String,
}

/// What becomes of one source row. Checks are named by their index in
/// [`EntityTransform::checks`], so a caller counts them without comparing strings.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// The row is copied with `values` (one per [`EntityTransform::columns`], in order).
    Copied {
        values: Vec<Value>,
        warnings: Vec<usize>,
    },
    /// An error check held: the row is not copied.
    Rejected {
        errors: Vec<usize>,
        warnings: Vec<usize>,
    },
}

impl RowOutcome {
    /// The value of a target column, when the row is copied.
    pub fn value<'a>(&'a self, t: &EntityTransform, column: &str) -> Option<&'a Value> {
        match self {
            RowOutcome::Copied { values, .. } => t
                .columns
                .iter()
                .position(|c| c.name == column)
                .and_then(|i| values.get(i)),
            RowOutcome::Rejected { .. } => None,
        }
    }

    pub fn warnings(&self) -> &[usize] {
        match self {
            RowOutcome::Copied { warnings, .. } | RowOutcome::Rejected { warnings, .. } => warnings,
        }
    }

    pub fn errors(&self) -> &[usize] {
        match self {
            RowOutcome::Copied { .. } => &[],
            RowOutcome::Rejected { errors, .. } => errors,
        }
    }
}

/// The row does not have the shape the transform was built for: a caller's bug (wrong
/// table, wrong catalog), never a data problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("column '{column}' is missing from the source row of {entity}")]
    MissingColumn { entity: String, column: String },
    #[error("column '{column}' of {entity} holds {found:?}, expected {expected}")]
    WrongClass {
        entity: String,
        column: String,
        expected: &'static str,
        found: Value,
    },
}

/// Builds the target row for one source row, or says which error checks refuse it.
pub fn evaluate<R: SourceRow + ?Sized>(
    t: &EntityTransform,
    row: &R,
    ctx: &EvalContext,
) -> Result<RowOutcome, EvalError> {
    let ev = Eval { t, row };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (i, check) in t.checks.iter().enumerate() {
        if ev.holds(&check.condition)? {
            match check.severity {
                Severity::Error => errors.push(i),
                Severity::Warning => warnings.push(i),
            }
        }
    }
    if !errors.is_empty() {
        return Ok(RowOutcome::Rejected { errors, warnings });
    }
    let values = t
        .columns
        .iter()
        .map(|c| ev.compute(&c.expr, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RowOutcome::Copied { values, warnings })
}

struct Eval<'a, R: ?Sized> {
    t: &'a EntityTransform,
    row: &'a R,
}

/// A date or an instant read from a column.
enum Moment {
    Date(Date),
    Instant(OffsetDateTime),
}

fn midnight_utc(d: Date) -> OffsetDateTime {
    d.with_time(Time::MIDNIGHT).assume_utc()
}

fn utc_millis(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    let ms = u32::from(t.millisecond());
    t.replace_nanosecond(ms * 1_000_000).unwrap_or(t)
}

fn rate_of(rates: &[(String, Decimal)], code: &str) -> Option<Decimal> {
    rates
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, r)| *r)
}

/// Round half away from zero, saturating at the ends of the integer range.
fn round_whole(x: Decimal) -> i64 {
    let r = decimal::round(x, 0);
    r.to_i64().unwrap_or(if r.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    })
}

impl<R: SourceRow + ?Sized> Eval<'_, R> {
    fn get(&self, column: &str) -> Result<&Value, EvalError> {
        self.row
            .value(column)
            .ok_or_else(|| EvalError::MissingColumn {
                entity: self.t.source_entity.clone(),
                column: column.to_string(),
            })
    }

    fn wrong(&self, column: &str, expected: &'static str, found: &Value) -> EvalError {
        EvalError::WrongClass {
            entity: self.t.source_entity.clone(),
            column: column.to_string(),
            expected,
            found: found.clone(),
        }
    }

    fn moment(&self, column: &str) -> Result<Option<Moment>, EvalError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Date(d) => Ok(Some(Moment::Date(*d))),
            Value::DateTime(t) => Ok(Some(Moment::Instant(*t))),
            other => Err(self.wrong(column, "a date or an instant", other)),
        }
    }

    fn number(&self, column: &str) -> Result<Option<Decimal>, EvalError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Decimal(d) => Ok(Some(*d)),
            Value::Int(i) => Ok(Some(Decimal::from(*i))),
            other => Err(self.wrong(column, "a number", other)),
        }
    }

    fn text(&self, column: &str) -> Result<Option<&str>, EvalError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            other => Err(self.wrong(column, "text", other)),
        }
    }

    fn holds(&self, c: &Condition) -> Result<bool, EvalError> {
        Ok(match c {
            Condition::Before { column, floor } => match self.moment(column)? {
                None => false,
                Some(Moment::Date(d)) => d < *floor,
                Some(Moment::Instant(t)) => t < midnight_utc(*floor),
            },
            Condition::AnyNotNull { columns } => {
                let mut any = false;
                for col in columns {
                    any |= !self.get(col)?.is_null();
                }
                any
            }
            Condition::Fractional { column } => {
                self.number(column)?.is_some_and(|x| !x.fract().is_zero())
            }
            Condition::OutOfRange { column, min, max } => {
                self.number(column)?.is_some_and(|x| x < *min || x > *max)
            }
            Condition::UnknownLabel { column, labels } => self
                .text(column)?
                .is_some_and(|s| !labels.iter().any(|l| l.eq_ignore_ascii_case(s))),
            Condition::MissingRate { code_column, codes } => self
                .text(code_column)?
                .is_some_and(|s| !codes.iter().any(|c| c.eq_ignore_ascii_case(s))),
        })
    }

    fn compute(&self, e: &ColumnExpr, ctx: &EvalContext) -> Result<Value, EvalError> {
        Ok(match e {
            ColumnExpr::Source { column } => self.get(column)?.clone(),
            ColumnExpr::Const(v) => v.clone(),
            ColumnExpr::Null => Value::Null,
            ColumnExpr::UpgradeTime => Value::DateTime(utc_millis(ctx.upgrade_time)),
            ColumnExpr::UpgradeActor => Value::Text(ctx.actor.clone()),
            ColumnExpr::Floor {
                column,
                floor,
                kind,
            } => match (self.moment(column)?, kind) {
                (None, _) => Value::Null,
                (Some(Moment::Date(d)), TimeKind::Date) => Value::Date(d.max(*floor)),
                (Some(Moment::Date(d)), TimeKind::Instant) => {
                    Value::DateTime(midnight_utc(d.max(*floor)))
                }
                (Some(Moment::Instant(t)), TimeKind::Instant) => {
                    Value::DateTime(t.max(midnight_utc(*floor)))
                }
                (Some(Moment::Instant(t)), TimeKind::Date) => {
                    Value::Date(t.to_offset(UtcOffset::UTC).date().max(*floor))
                }
            },
            ColumnExpr::DateToInstant { column } => match self.moment(column)? {
                None => Value::Null,
                Some(Moment::Date(d)) => Value::DateTime(midnight_utc(d)),
                Some(Moment::Instant(t)) => Value::DateTime(t),
            },
            ColumnExpr::Round { column } => match self.number(column)? {
                None => Value::Null,
                Some(x) => Value::Int(round_whole(x)),
            },
            ColumnExpr::Label { column, options } => match self.text(column)? {
                None => Value::Null,
                Some(s) => options
                    .iter()
                    .find(|(l, _)| l.eq_ignore_ascii_case(s))
                    .map_or(Value::Null, |(_, v)| Value::Int(*v)),
            },
            ColumnExpr::Rate { code_column, rates } => match self.text(code_column)? {
                None => Value::Null,
                Some(code) => rate_of(rates, code).map_or(Value::Null, Value::Decimal),
            },
            ColumnExpr::Times {
                value_column,
                code_column,
                rates,
                scale,
            } => match (self.number(value_column)?, self.text(code_column)?) {
                (Some(v), Some(code)) => rate_of(rates, code)
                    .and_then(|r| decimal::times_rounded(v, r, *scale))
                    .map_or(Value::Null, Value::Decimal),
                _ => Value::Null,
            },
            ColumnExpr::OptionLabel { column, options } => match self.get(column)? {
                Value::Null => Value::Null,
                Value::Int(v) => options
                    .iter()
                    .find(|(o, _)| o == v)
                    .map_or(Value::Null, |(_, l)| Value::Text(l.clone())),
                other => return Err(self.wrong(column, "a whole number", other)),
            },
            ColumnExpr::FirstOf { columns } => {
                let mut out = Value::Null;
                for c in columns {
                    let v = self.get(c)?;
                    if !v.is_null() {
                        out = v.clone();
                        break;
                    }
                }
                out
            }
            ColumnExpr::WholeToDecimal { column } => match self.number(column)? {
                None => Value::Null,
                Some(x) => Value::Decimal(x),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RowCheck, TargetColumn};
    use super::*;
    use crate::ColType;
    use time::macros::{date, datetime};

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn transform(
        columns: Vec<(&str, ColumnExpr)>,
        checks: Vec<(Severity, Condition)>,
    ) -> EntityTransform {
        EntityTransform {
            source_entity: "S".into(),
            target_entity: "t".into(),
            source_table: "s".into(),
            target_table: "t".into(),
            columns: columns
                .into_iter()
                .map(|(n, expr)| TargetColumn {
                    name: n.into(),
                    ty: ColType::Text,
                    expr,
                })
                .collect(),
            checks: checks
                .into_iter()
                .map(|(severity, condition)| RowCheck {
                    severity,
                    field: "f".into(),
                    reason: "r".into(),
                    condition,
                })
                .collect(),
        }
    }

    fn ctx() -> EvalContext {
        EvalContext {
            upgrade_time: datetime!(2025-01-02 03:04:05.678901 +02:00),
            actor: "admin@example.com".into(),
        }
    }

    fn row(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(c, v)| (c.to_string(), v.clone()))
            .collect()
    }

    /// Each expression on a few inputs, NULL included: the IR's reference semantics.
    #[test]
    fn expressions() {
        let floor = date!(1753 - 01 - 01);
        let rates = vec![
            ("EUR".to_string(), dec("1.0")),
            ("USD".to_string(), dec("0.5")),
        ];
        let cases: Vec<(ColumnExpr, Value, Value)> = vec![
            (
                ColumnExpr::Source { column: "x".into() },
                Value::Int(3),
                Value::Int(3),
            ),
            (ColumnExpr::Null, Value::Int(3), Value::Null),
            (ColumnExpr::Const(Value::Int(1)), Value::Null, Value::Int(1)),
            (
                ColumnExpr::Floor {
                    column: "x".into(),
                    floor,
                    kind: TimeKind::Date,
                },
                Value::Date(date!(1700 - 05 - 06)),
                Value::Date(floor),
            ),
            (
                ColumnExpr::Floor {
                    column: "x".into(),
                    floor,
                    kind: TimeKind::Date,
                },
                Value::Date(date!(1999 - 05 - 06)),
                Value::Date(date!(1999 - 05 - 06)),
            ),
            (
                ColumnExpr::Floor {
                    column: "x".into(),
                    floor,
                    kind: TimeKind::Instant,
                },
                Value::DateTime(datetime!(1600-01-01 10:00 UTC)),
                Value::DateTime(datetime!(1753-01-01 00:00 UTC)),
            ),
            (
                ColumnExpr::Floor {
                    column: "x".into(),
                    floor,
                    kind: TimeKind::Instant,
                },
                Value::Date(date!(1800 - 02 - 03)),
                Value::DateTime(datetime!(1800-02-03 00:00 UTC)),
            ),
            (
                ColumnExpr::Floor {
                    column: "x".into(),
                    floor,
                    kind: TimeKind::Instant,
                },
                Value::Null,
                Value::Null,
            ),
            (
                ColumnExpr::DateToInstant { column: "x".into() },
                Value::Date(date!(2020 - 02 - 29)),
                Value::DateTime(datetime!(2020-02-29 00:00 UTC)),
            ),
            (
                ColumnExpr::Round { column: "x".into() },
                Value::Decimal(dec("2.5")),
                Value::Int(3),
            ),
            (
                ColumnExpr::Round { column: "x".into() },
                Value::Decimal(dec("-2.5")),
                Value::Int(-3),
            ),
            (
                ColumnExpr::Round { column: "x".into() },
                Value::Decimal(dec("1.49")),
                Value::Int(1),
            ),
            (
                ColumnExpr::Round { column: "x".into() },
                Value::Null,
                Value::Null,
            ),
            (
                ColumnExpr::Label {
                    column: "x".into(),
                    options: vec![("Open".into(), 100_000_000), ("Closed".into(), 100_000_001)],
                },
                Value::Text("closed".into()),
                Value::Int(100_000_001),
            ),
            (
                ColumnExpr::Label {
                    column: "x".into(),
                    options: vec![("Open".into(), 100_000_000)],
                },
                Value::Text("Nope".into()),
                Value::Null,
            ),
            (
                ColumnExpr::Rate {
                    code_column: "x".into(),
                    rates: rates.clone(),
                },
                Value::Text("usd".into()),
                Value::Decimal(dec("0.5")),
            ),
            (
                ColumnExpr::Rate {
                    code_column: "x".into(),
                    rates: rates.clone(),
                },
                Value::Text("GBP".into()),
                Value::Null,
            ),
            (
                ColumnExpr::Rate {
                    code_column: "x".into(),
                    rates: rates.clone(),
                },
                Value::Null,
                Value::Null,
            ),
        ];
        for (expr, input, expected) in cases {
            let t = transform(vec![("out", expr.clone())], vec![]);
            let out = evaluate(&t, &row(&[("x", input.clone())]), &ctx());
            let got = out.as_ref().ok().and_then(|o| o.value(&t, "out"));
            assert_eq!(got, Some(&expected), "{expr:?} on {input:?}: {out:?}");
        }
    }

    #[test]
    fn times_multiplies_by_the_rate_of_the_rows_code() {
        let rates = vec![
            ("EUR".to_string(), dec("1.0")),
            ("USD".to_string(), dec("0.5")),
        ];
        let t = transform(
            vec![(
                "base",
                ColumnExpr::Times {
                    value_column: "v".into(),
                    code_column: "c".into(),
                    rates,
                    scale: 2,
                },
            )],
            vec![],
        );
        let cases = [
            (
                Value::Decimal(dec("10.0")),
                Value::Text("USD".into()),
                Value::Decimal(dec("5.0")),
            ),
            (
                Value::Decimal(dec("10.0")),
                Value::Text("EUR".into()),
                Value::Decimal(dec("10.0")),
            ),
            (Value::Null, Value::Text("USD".into()), Value::Null),
            (Value::Decimal(dec("10.0")), Value::Null, Value::Null),
            (
                Value::Decimal(dec("10.0")),
                Value::Text("JPY".into()),
                Value::Null,
            ),
        ];
        for (v, c, expected) in cases {
            let out = evaluate(&t, &row(&[("v", v), ("c", c)]), &ctx()).ok();
            assert_eq!(
                out.as_ref().and_then(|o| o.value(&t, "base")),
                Some(&expected)
            );
        }
    }

    #[test]
    fn upgrade_time_is_utc_milliseconds_and_actor_is_text() {
        let t = transform(
            vec![
                ("on", ColumnExpr::UpgradeTime),
                ("by", ColumnExpr::UpgradeActor),
            ],
            vec![],
        );
        let out = evaluate(&t, &row(&[]), &ctx()).ok();
        assert_eq!(
            out.as_ref().and_then(|o| o.value(&t, "on")),
            Some(&Value::DateTime(datetime!(2025-01-02 01:04:05.678 UTC)))
        );
        assert_eq!(
            out.as_ref().and_then(|o| o.value(&t, "by")),
            Some(&Value::Text("admin@example.com".into()))
        );
    }

    /// Each condition: when it holds, and that NULL never holds.
    #[test]
    fn conditions() {
        let floor = date!(1753 - 01 - 01);
        let cases: Vec<(Condition, Value, bool)> = vec![
            (
                Condition::Before {
                    column: "x".into(),
                    floor,
                },
                Value::Date(date!(1752 - 12 - 31)),
                true,
            ),
            (
                Condition::Before {
                    column: "x".into(),
                    floor,
                },
                Value::Date(floor),
                false,
            ),
            (
                Condition::Before {
                    column: "x".into(),
                    floor,
                },
                Value::DateTime(datetime!(1752-12-31 23:59:59 UTC)),
                true,
            ),
            (
                Condition::Before {
                    column: "x".into(),
                    floor,
                },
                Value::DateTime(datetime!(1753-01-01 00:00 UTC)),
                false,
            ),
            (
                Condition::Before {
                    column: "x".into(),
                    floor,
                },
                Value::Null,
                false,
            ),
            (
                Condition::AnyNotNull {
                    columns: vec!["x".into()],
                },
                Value::Text("a".into()),
                true,
            ),
            (
                Condition::AnyNotNull {
                    columns: vec!["x".into()],
                },
                Value::Null,
                false,
            ),
            (
                Condition::Fractional { column: "x".into() },
                Value::Decimal(dec("1.5")),
                true,
            ),
            (
                Condition::Fractional { column: "x".into() },
                Value::Decimal(dec("-2.0")),
                false,
            ),
            (
                Condition::Fractional { column: "x".into() },
                Value::Null,
                false,
            ),
            (
                Condition::OutOfRange {
                    column: "x".into(),
                    min: dec("-10.0"),
                    max: dec("10.0"),
                },
                Value::Decimal(dec("10.5")),
                true,
            ),
            (
                Condition::OutOfRange {
                    column: "x".into(),
                    min: dec("-10.0"),
                    max: dec("10.0"),
                },
                Value::Decimal(dec("-10.0")),
                false,
            ),
            (
                Condition::UnknownLabel {
                    column: "x".into(),
                    labels: vec!["Open".into()],
                },
                Value::Text("OPEN".into()),
                false,
            ),
            (
                Condition::UnknownLabel {
                    column: "x".into(),
                    labels: vec!["Open".into()],
                },
                Value::Text("Shut".into()),
                true,
            ),
            (
                Condition::UnknownLabel {
                    column: "x".into(),
                    labels: vec!["Open".into()],
                },
                Value::Null,
                false,
            ),
            (
                Condition::MissingRate {
                    code_column: "x".into(),
                    codes: vec!["EUR".into()],
                },
                Value::Text("eur".into()),
                false,
            ),
            (
                Condition::MissingRate {
                    code_column: "x".into(),
                    codes: vec!["EUR".into()],
                },
                Value::Text("USD".into()),
                true,
            ),
            (
                Condition::MissingRate {
                    code_column: "x".into(),
                    codes: vec!["EUR".into()],
                },
                Value::Null,
                false,
            ),
        ];
        for (cond, input, expected) in cases {
            let t = transform(vec![], vec![(Severity::Warning, cond.clone())]);
            let out = evaluate(&t, &row(&[("x", input.clone())]), &ctx());
            let held = out.map(|o| !o.warnings().is_empty());
            assert_eq!(held, Ok(expected), "{cond:?} on {input:?}");
        }
    }

    #[test]
    fn an_error_check_rejects_the_row_and_warnings_are_kept() {
        let t = transform(
            vec![("x", ColumnExpr::Source { column: "x".into() })],
            vec![
                (
                    Severity::Warning,
                    Condition::AnyNotNull {
                        columns: vec!["x".into()],
                    },
                ),
                (
                    Severity::Error,
                    Condition::Fractional { column: "x".into() },
                ),
            ],
        );
        let out = evaluate(&t, &row(&[("x", Value::Decimal(dec("1.5")))]), &ctx());
        assert_eq!(
            out,
            Ok(RowOutcome::Rejected {
                errors: vec![1],
                warnings: vec![0]
            })
        );
        let out = evaluate(&t, &row(&[("x", Value::Decimal(dec("2.0")))]), &ctx());
        assert_eq!(
            out,
            Ok(RowOutcome::Copied {
                values: vec![Value::Decimal(dec("2.0"))],
                warnings: vec![0]
            })
        );
    }

    #[test]
    fn rows_of_the_wrong_shape_are_refused_not_panicked_on() {
        let t = transform(
            vec![("x", ColumnExpr::Round { column: "x".into() })],
            vec![],
        );
        let missing = evaluate(&t, &row(&[]), &ctx());
        assert!(matches!(missing, Err(EvalError::MissingColumn { .. })));
        let wrong = evaluate(&t, &row(&[("x", Value::Text("1".into()))]), &ctx());
        assert!(matches!(wrong, Err(EvalError::WrongClass { .. })));
    }
}
