//! Evaluating a filter in-process, over JSON values: for flows, which test a trigger's
//! record (which may already be gone from the database) and branch on their own
//! variables. Semantics follow the data API's SQL: string comparisons ignore case,
//! and a comparison with a missing or null value is unknown, which does not hold
//! (`eq null` and `ne null` test for it).

use std::cmp::Ordering;

use serde_json::Value as Json;

use super::ast::{CompareOp, Expr, ExprKind, Func, Literal};
use crate::decimal::{self, Decimal};
use crate::value::{parse_date, parse_instant};

/// Whether `e` holds, reading properties through `lookup` (`None` for missing).
pub fn eval_filter(e: &Expr, lookup: &dyn Fn(&[String]) -> Option<Json>) -> bool {
    truth(e, lookup) == Some(true)
}

/// Three-valued: `None` is unknown.
fn truth(e: &Expr, lookup: &dyn Fn(&[String]) -> Option<Json>) -> Option<bool> {
    if let Some((pred, holds)) = e.boolean_comparison() {
        // Unknown counts as false, as under `not`.
        return Some(truth(pred, lookup).unwrap_or(false) == holds);
    }
    match &e.kind {
        ExprKind::Not(x) => truth(x, lookup).map(|b| !b),
        ExprKind::And(a, b) => match (truth(a, lookup), truth(b, lookup)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        ExprKind::Or(a, b) => match (truth(a, lookup), truth(b, lookup)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        ExprKind::Compare { op, left, right } => {
            let (l, r) = (operand(left, lookup), operand(right, lookup));
            match (&l, &r) {
                (Operand::Null, Operand::Null) => {
                    Some(matches!(op, CompareOp::Eq | CompareOp::Le | CompareOp::Ge))
                }
                (Operand::Null, _) | (_, Operand::Null) => match op {
                    CompareOp::Eq => Some(false),
                    CompareOp::Ne => Some(true),
                    _ => None,
                },
                _ => compare(&l, &r).map(|o| match op {
                    CompareOp::Eq => o == Ordering::Equal,
                    CompareOp::Ne => o != Ordering::Equal,
                    CompareOp::Gt => o == Ordering::Greater,
                    CompareOp::Ge => o != Ordering::Less,
                    CompareOp::Lt => o == Ordering::Less,
                    CompareOp::Le => o != Ordering::Greater,
                }),
            }
        }
        ExprKind::Call { func, args } => {
            let texts: Vec<Option<String>> = args
                .iter()
                .map(|a| match operand(a, lookup) {
                    Operand::Text(s) => Some(s.to_lowercase()),
                    _ => None,
                })
                .collect();
            match (texts.first(), texts.get(1)) {
                (Some(Some(s)), Some(Some(p))) => Some(match func {
                    Func::Contains => s.contains(p.as_str()),
                    Func::StartsWith => s.starts_with(p.as_str()),
                    Func::EndsWith => s.ends_with(p.as_str()),
                }),
                _ => None,
            }
        }
        ExprKind::Literal(Literal::Bool(b)) => Some(*b),
        ExprKind::Property(_) => match operand(e, lookup) {
            Operand::Bool(b) => Some(b),
            _ => None,
        },
        ExprKind::Literal(_) => None,
    }
}

enum Operand {
    Null,
    Bool(bool),
    Number(Decimal),
    Text(String),
    /// Dates and instants, as seconds since the epoch (dates at midnight UTC).
    Time(f64),
}

fn operand(e: &Expr, lookup: &dyn Fn(&[String]) -> Option<Json>) -> Operand {
    match &e.kind {
        ExprKind::Literal(l) => match l {
            Literal::Null => Operand::Null,
            Literal::Bool(b) => Operand::Bool(*b),
            Literal::Int(i) => Operand::Number(Decimal::from(*i)),
            Literal::Decimal(d) => Operand::Number(*d),
            Literal::String(s) => Operand::Text(s.clone()),
            Literal::Guid(g) => Operand::Text(g.to_string()),
            Literal::Date(d) => Operand::Time(d.midnight().assume_utc().unix_timestamp() as f64),
            Literal::DateTimeOffset(t) => Operand::Time(t.unix_timestamp_nanos() as f64 / 1e9),
        },
        ExprKind::Property(path) => match lookup(path) {
            None | Some(Json::Null) => Operand::Null,
            Some(Json::Bool(b)) => Operand::Bool(b),
            Some(Json::Number(n)) => decimal::from_json(&n).map_or(Operand::Null, Operand::Number),
            Some(Json::String(s)) => Operand::Text(s),
            Some(other) => Operand::Text(other.to_string()),
        },
        _ => match truth(e, lookup) {
            Some(b) => Operand::Bool(b),
            None => Operand::Null,
        },
    }
}

/// A text compared with a time is read as one (JSON carries dates as text).
fn as_time(s: &str) -> Option<f64> {
    parse_instant(s)
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .or_else(|| parse_date(s).map(|d| d.midnight().assume_utc().unix_timestamp() as f64))
}

fn compare(l: &Operand, r: &Operand) -> Option<Ordering> {
    match (l, r) {
        (Operand::Bool(a), Operand::Bool(b)) => Some(a.cmp(b)),
        (Operand::Number(a), Operand::Number(b)) => a.partial_cmp(b),
        (Operand::Text(a), Operand::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Operand::Time(a), Operand::Time(b)) => a.partial_cmp(b),
        (Operand::Text(a), Operand::Time(b)) => as_time(a)?.partial_cmp(b),
        (Operand::Time(a), Operand::Text(b)) => a.partial_cmp(&as_time(b)?),
        (Operand::Text(a), Operand::Number(b)) => decimal::parse(a)?.partial_cmp(b),
        (Operand::Number(a), Operand::Text(b)) => a.partial_cmp(&decimal::parse(b)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_filter;
    use serde_json::json;

    fn holds(filter: &str, record: &Json) -> bool {
        let e = parse_filter(filter).unwrap();
        eval_filter(&e, &|path: &[String]| {
            let mut v = record;
            for p in path {
                v = v.get(p)?;
            }
            Some(v.clone())
        })
    }

    #[test]
    fn filters_hold_as_the_data_api_would_select() {
        let r = json!({
            "Name": "Fabrikam", "Revenue": 1200.5, "Active": true, "Owner": null,
            "Since": "2020-05-01", "Address": {"city": "Oslo"}
        });
        let cases = [
            ("Name eq 'fabrikam'", true),
            ("Name ne 'Fabrikam'", false),
            ("Revenue gt 1000 and Active", true),
            ("Revenue lt 1000 or Address/city eq 'oslo'", true),
            ("not (Revenue ge 2000)", true),
            ("Owner eq null", true),
            ("Owner ne null", false),
            ("Owner eq 'x'", false),
            ("not (Owner gt 3)", false),
            ("Missing eq null", true),
            (
                "contains(Name, 'BRIK') and startswith(Name, 'fa') and endswith(Name, 'kam')",
                true,
            ),
            ("Since lt 2021-01-01", true),
            ("Since gt 2020-05-01T12:00:00Z", false),
            ("Active eq false", false),
        ];
        for (f, want) in cases {
            assert_eq!(holds(f, &r), want, "{f}");
        }
    }
}
