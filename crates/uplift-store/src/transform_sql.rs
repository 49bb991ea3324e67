//! Row transforms (the upgrade plan's IR) as SQL: one `SELECT` list over a source table
//! aliased `s`, conditions for the rows a rule refuses or warns about, and an
//! order-independent checksum over a row. Used to push a copy down into the engine
//! (`INSERT … SELECT`) when source and target share it.

use std::collections::HashMap;

use uplift_model::transform::{ColumnExpr, Condition, EvalContext, TargetColumn, TimeKind};
use uplift_model::{ColType, Decimal, Value};

use crate::decimal_sql;
use crate::engine::Dialect;
use crate::engine::postgres::type_name;
use crate::sql::{SqlBuf, ident};
use crate::{Result, StoreError};

/// Source column types by physical name, to pick conversions per engine.
pub type SourceTypes = HashMap<String, ColType>;

fn src(column: &str) -> String {
    format!("s.{}", ident(column))
}

fn source_type(types: &SourceTypes, column: &str) -> Result<ColType> {
    types.get(column).copied().ok_or_else(|| {
        StoreError::Invalid(format!(
            "the transform reads an unknown source column '{column}'"
        ))
    })
}

/// SQLite's storage affinity for a class; every expression is cast to it so that a
/// copied value and a recomputed one hash alike.
fn sqlite_affinity(ty: ColType) -> &'static str {
    match ty {
        ColType::Text | ColType::Date | ColType::DateTime => "TEXT",
        ColType::Int | ColType::Bool => "INTEGER",
        ColType::Decimal => "TEXT",
        ColType::Bytes => "BLOB",
    }
}

/// Appends the SQL computing one target column, cast to the target type.
pub fn column(
    buf: &mut SqlBuf,
    c: &TargetColumn,
    types: &SourceTypes,
    ctx: &EvalContext,
) -> Result<()> {
    buf.push("CAST((");
    expr(buf, &c.expr, c.ty, types, ctx)?;
    let ty = match buf.dialect {
        Dialect::Sqlite => sqlite_affinity(c.ty),
        Dialect::Postgres => type_name(c.ty),
    };
    buf.push(") AS ").push(ty).push(")");
    Ok(())
}

fn floor_param(buf: &mut SqlBuf, floor: time::Date, as_type: ColType) {
    match as_type {
        ColType::Date => buf.param(Value::Date(floor), ColType::Date),
        _ => buf.param(
            Value::DateTime(floor.midnight().assume_utc()),
            ColType::DateTime,
        ),
    };
}

/// A source date or instant as `kind`: on SQLite both are text, so a date becomes its
/// midnight by suffix and an instant its date by prefix; on PostgreSQL, in UTC.
fn as_kind(dialect: Dialect, sql: &str, from: ColType, kind: TimeKind) -> String {
    match (dialect, from, kind) {
        (Dialect::Sqlite, ColType::Date, TimeKind::Instant) => {
            format!("({sql} || 'T00:00:00.000Z')")
        }
        (Dialect::Sqlite, ColType::DateTime, TimeKind::Date) => format!("substr({sql}, 1, 10)"),
        (Dialect::Postgres, ColType::Date, TimeKind::Instant) => {
            format!("(({sql})::timestamp AT TIME ZONE 'UTC')")
        }
        (Dialect::Postgres, ColType::DateTime, TimeKind::Date) => {
            format!("(({sql}) AT TIME ZONE 'UTC')::date")
        }
        _ => sql.to_string(),
    }
}

fn expr(
    buf: &mut SqlBuf,
    e: &ColumnExpr,
    target: ColType,
    types: &SourceTypes,
    ctx: &EvalContext,
) -> Result<()> {
    let d = buf.dialect;
    match e {
        ColumnExpr::Source { column } => {
            source_type(types, column)?;
            buf.push(&src(column));
        }
        ColumnExpr::Const(v) => {
            buf.param(v.clone(), target);
        }
        ColumnExpr::Null => {
            buf.push("NULL");
        }
        ColumnExpr::UpgradeTime => {
            buf.param(Value::DateTime(ctx.upgrade_time), ColType::DateTime);
        }
        ColumnExpr::UpgradeActor => {
            buf.param(Value::Text(ctx.actor.clone()), ColType::Text);
        }
        ColumnExpr::Floor {
            column,
            floor,
            kind,
        } => {
            let from = source_type(types, column)?;
            let c = src(column);
            buf.push("CASE WHEN ")
                .push(&c)
                .push(" IS NULL THEN NULL WHEN ")
                .push(&c)
                .push(" < ");
            floor_param(buf, *floor, from);
            buf.push(" THEN ");
            let as_type = match kind {
                TimeKind::Date => ColType::Date,
                TimeKind::Instant => ColType::DateTime,
            };
            floor_param(buf, *floor, as_type);
            buf.push(" ELSE ")
                .push(&as_kind(d, &c, from, *kind))
                .push(" END");
        }
        ColumnExpr::DateToInstant { column } => {
            let from = source_type(types, column)?;
            buf.push(&as_kind(d, &src(column), from, TimeKind::Instant));
        }
        ColumnExpr::Round { column } => {
            source_type(types, column)?;
            match d {
                Dialect::Sqlite => buf
                    .push(decimal_sql::ROUND)
                    .push("(")
                    .push(&src(column))
                    .push(")"),
                Dialect::Postgres => buf
                    .push("round((")
                    .push(&src(column))
                    .push(")::numeric)::bigint"),
            };
        }
        ColumnExpr::Label { column, options } => {
            source_type(types, column)?;
            if options.is_empty() {
                buf.push("NULL");
                return Ok(());
            }
            // Both sides are folded by the engine, so a label matches as the column does.
            buf.push("CASE ").push(&fold(d, "lower", &src(column)));
            for (label, value) in options {
                buf.push(" WHEN ");
                fold_param(buf, "lower", label);
                buf.push(" THEN ");
                buf.param(Value::Int(*value), ColType::Int);
            }
            buf.push(" END");
        }
        ColumnExpr::Rate { code_column, rates } => {
            // Codes are ISO upper-case; the rule and the data are both upper-cased.
            source_type(types, code_column)?;
            rate_case(buf, code_column, rates);
        }
        ColumnExpr::Times {
            value_column,
            code_column,
            rates,
            scale,
        } => {
            source_type(types, value_column)?;
            source_type(types, code_column)?;
            // Exact on both: numeric on PostgreSQL (a column made before decimals
            // were exact is cast), decimal text through a function on SQLite.
            let value = src(value_column);
            match d {
                Dialect::Sqlite => buf
                    .push(decimal_sql::TIMES)
                    .push("(")
                    .push(&value)
                    .push(", "),
                Dialect::Postgres => buf.push("round((").push(&value).push(")::numeric * "),
            };
            rate_case(buf, code_column, rates);
            buf.push(", ").push(&scale.to_string()).push(")");
        }
        ColumnExpr::OptionLabel { column, options } => {
            source_type(types, column)?;
            if options.is_empty() {
                buf.push("NULL");
                return Ok(());
            }
            buf.push("CASE ").push(&src(column));
            for (value, label) in options {
                buf.push(" WHEN ").param(Value::Int(*value), ColType::Int);
                buf.push(" THEN ")
                    .param(Value::Text(label.clone()), ColType::Text);
            }
            buf.push(" END");
        }
        ColumnExpr::FirstOf { columns } => {
            let mut cols = Vec::new();
            for c in columns {
                source_type(types, c)?;
                cols.push(src(c));
            }
            match cols.len() {
                0 => buf.push("NULL"),
                1 => buf.push(&cols[0]),
                _ => buf.push("COALESCE(").push(&cols.join(", ")).push(")"),
            };
        }
        ColumnExpr::WholeToDecimal { column } => {
            source_type(types, column)?;
            // SQLite keeps decimals as text, which an integer's digits already are; the
            // cast of `column` to the target's class does it.
            match d {
                Dialect::Sqlite => buf.push(&src(column)),
                Dialect::Postgres => buf.push("(").push(&src(column)).push(")::numeric"),
            };
        }
    }
    Ok(())
}

fn rate_case(buf: &mut SqlBuf, code_column: &str, rates: &[(String, Decimal)]) {
    if rates.is_empty() {
        buf.push("NULL");
        return;
    }
    let d = buf.dialect;
    buf.push("CASE ").push(&fold(d, "upper", &src(code_column)));
    for (code, rate) in rates {
        buf.push(" WHEN ");
        fold_param(buf, "upper", code);
        buf.push(" THEN ");
        buf.param(Value::Decimal(*rate), ColType::Decimal);
    }
    buf.push(" END");
}

/// Appends a condition over the source row (true only for non-NULL values).
pub fn condition(buf: &mut SqlBuf, c: &Condition, types: &SourceTypes) -> Result<()> {
    let d = buf.dialect;
    match c {
        Condition::Before { column, floor } => {
            let from = source_type(types, column)?;
            buf.push("(")
                .push(&src(column))
                .push(" IS NOT NULL AND ")
                .push(&src(column))
                .push(" < ");
            floor_param(buf, *floor, from);
            buf.push(")");
        }
        Condition::AnyNotNull { columns } => {
            buf.push("(");
            for (i, col) in columns.iter().enumerate() {
                source_type(types, col)?;
                if i > 0 {
                    buf.push(" OR ");
                }
                buf.push(&src(col)).push(" IS NOT NULL");
            }
            if columns.is_empty() {
                buf.push("1 = 0");
            }
            buf.push(")");
        }
        Condition::Fractional { column } => {
            source_type(types, column)?;
            let c = src(column);
            buf.push("(").push(&c).push(" IS NOT NULL AND ");
            match d {
                Dialect::Sqlite => buf.push(&decimal_sql::fractional_sql(&c)).push(")"),
                Dialect::Postgres => buf.push(&c).push(" <> trunc(").push(&c).push("))"),
            };
        }
        Condition::OutOfRange { column, min, max } => {
            source_type(types, column)?;
            let c = src(column);
            buf.push("(").push(&c).push(" < ");
            buf.param(Value::Decimal(*min), ColType::Decimal);
            buf.push(" OR ").push(&c).push(" > ");
            buf.param(Value::Decimal(*max), ColType::Decimal);
            buf.push(")");
        }
        Condition::UnknownLabel { column, labels } => {
            source_type(types, column)?;
            in_list(buf, &fold(d, "lower", &src(column)), "lower", labels);
        }
        Condition::MissingRate { code_column, codes } => {
            source_type(types, code_column)?;
            in_list(buf, &fold(d, "upper", &src(code_column)), "upper", codes);
        }
    }
    Ok(())
}

/// `f(sql)` (`lower` or `upper`) folding ASCII letters only, as the evaluator and
/// SQLite do: PostgreSQL's `lower()` follows the database's locale (the Kelvin sign
/// `K` becomes `k`), so there it runs under the "C" collation, which folds ASCII only.
fn fold(d: Dialect, f: &str, sql: &str) -> String {
    match d {
        Dialect::Sqlite => format!("{f}({sql})"),
        Dialect::Postgres => format!("{f}(({sql}) COLLATE \"C\")"),
    }
}

/// [`fold`] of a text parameter.
fn fold_param(buf: &mut SqlBuf, f: &str, text: &str) {
    let d = buf.dialect;
    buf.push(f).push("((");
    buf.param(Value::Text(text.to_string()), ColType::Text);
    match d {
        Dialect::Sqlite => buf.push("))"),
        Dialect::Postgres => buf.push(") COLLATE \"C\")"),
    };
}

/// `(x IS NOT NULL AND x NOT IN (f(item), ...))`, `f` folding case like `x` does.
fn in_list(buf: &mut SqlBuf, x: &str, f: &str, items: &[String]) {
    buf.push("(").push(x).push(" IS NOT NULL");
    if !items.is_empty() {
        buf.push(" AND ").push(x).push(" NOT IN (");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                buf.push(", ");
            }
            fold_param(buf, f, item);
        }
        buf.push(")");
    }
    buf.push(")");
}
