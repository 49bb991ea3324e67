//! `$filter` trees to SQL. Values become parameters; property paths become columns of
//! the entity's table; OData's two-valued logic is kept (a comparison with a null
//! property is false, `ne` is true for null, `not` of a false comparison is true).

use time::{OffsetDateTime, PrimitiveDateTime, Time};
use uplift_model::codec::parse_guid;
use uplift_model::filter::{CompareOp, Expr, ExprKind, Func, Literal, ScalarType};
use uplift_model::layout::{PathTarget, field_columns, resolve_path};
use uplift_model::{ColType, Entity, SchemaVersion, Value};

use crate::engine::Dialect;
use crate::sql::{SqlBuf, ident};
use crate::{Result, StoreError};

/// Compiles `e` into `buf` as a boolean SQL expression over `entity`'s table (columns
/// unqualified, or qualified by `alias`).
pub fn compile(buf: &mut SqlBuf, entity: &Entity, version: SchemaVersion, e: &Expr) -> Result<()> {
    Compiler { entity, version }.boolean(buf, e)
}

struct Compiler<'a> {
    entity: &'a Entity,
    version: SchemaVersion,
}

/// One side of a comparison once resolved.
enum Operand<'a> {
    Column(PathTarget),
    Literal(&'a Literal),
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

impl Compiler<'_> {
    fn boolean(&self, buf: &mut SqlBuf, e: &Expr) -> Result<()> {
        if let Some((pred, holds)) = e.boolean_comparison() {
            // Unknown counts as false, as under `not`.
            buf.push(if holds {
                "COALESCE(("
            } else {
                "NOT COALESCE(("
            });
            self.boolean(buf, pred)?;
            buf.push("), FALSE)");
            return Ok(());
        }
        match &e.kind {
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                let op = if matches!(e.kind, ExprKind::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                buf.push("(");
                self.boolean(buf, a)?;
                buf.push(op);
                self.boolean(buf, b)?;
                buf.push(")");
            }
            ExprKind::Not(a) => {
                // NULL (unknown) counts as false before negating, as in OData.
                buf.push("NOT COALESCE((");
                self.boolean(buf, a)?;
                buf.push("), FALSE)");
            }
            ExprKind::Literal(Literal::Bool(b)) => {
                buf.push(if *b { "(1 = 1)" } else { "(1 = 0)" });
            }
            ExprKind::Property(path) => {
                let t = self.column(path)?;
                if t.scalar != ScalarType::Bool {
                    return Err(invalid(format!(
                        "property '{}' is not a boolean",
                        path.join("/")
                    )));
                }
                buf.push("(").ident(&t.column.name).push(" = ");
                buf.param(Value::Bool(true), ColType::Bool).push(")");
            }
            ExprKind::Compare { op, left, right } => self.compare(buf, *op, left, right)?,
            ExprKind::Call { func, args } => self.call(buf, *func, args)?,
            ExprKind::Literal(l) => return Err(invalid(format!("{l:?} is not a condition"))),
        }
        Ok(())
    }

    fn column(&self, path: &[String]) -> Result<PathTarget> {
        resolve_path(self.entity, self.version, path)
            .ok_or_else(|| invalid(format!("unknown property '{}'", path.join("/"))))
    }

    fn operand<'e>(&self, e: &'e Expr) -> Result<Operand<'e>> {
        match &e.kind {
            ExprKind::Property(p) => Ok(Operand::Column(self.column(p)?)),
            ExprKind::Literal(l) => Ok(Operand::Literal(l)),
            _ => Err(invalid(
                "comparison operands must be properties or literals",
            )),
        }
    }

    fn col_sql(buf: &mut SqlBuf, t: &PathTarget) {
        let col = order_sql(buf.dialect, t);
        buf.push(&col);
    }

    /// `Site eq null`: every part of a complex value is null.
    fn complex_null(&self, buf: &mut SqlBuf, op: CompareOp, path: &[String]) -> Result<bool> {
        let [name] = path else { return Ok(false) };
        let Some(field) = self.entity.field(self.version, name) else {
            return Ok(false);
        };
        if field.ty.parts().is_none() {
            return Ok(false);
        }
        let parts: Vec<String> = field_columns(field)
            .iter()
            .map(|c| format!("{} IS NULL", ident(&c.name)))
            .collect();
        match op {
            CompareOp::Eq => buf.push("(").push(&parts.join(" AND ")).push(")"),
            CompareOp::Ne => buf.push("NOT (").push(&parts.join(" AND ")).push(")"),
            _ => {
                return Err(invalid(format!(
                    "'{name}' is a complex value: only eq null and ne null apply to it"
                )));
            }
        };
        Ok(true)
    }

    fn compare(&self, buf: &mut SqlBuf, op: CompareOp, left: &Expr, right: &Expr) -> Result<()> {
        match (&left.kind, &right.kind) {
            (ExprKind::Property(p), ExprKind::Literal(Literal::Null))
            | (ExprKind::Literal(Literal::Null), ExprKind::Property(p))
                if self.complex_null(buf, op, p)? =>
            {
                return Ok(());
            }
            _ => {}
        }
        let (l, r) = (self.operand(left)?, self.operand(right)?);
        let sym = |op: CompareOp| match op {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        };
        match (l, r) {
            (Operand::Column(c), Operand::Literal(lit)) => {
                self.column_vs_literal(buf, &c, op, lit, sym(op))
            }
            (Operand::Literal(lit), Operand::Column(c)) => {
                let flipped = match op {
                    CompareOp::Gt => CompareOp::Lt,
                    CompareOp::Ge => CompareOp::Le,
                    CompareOp::Lt => CompareOp::Gt,
                    CompareOp::Le => CompareOp::Ge,
                    other => other,
                };
                self.column_vs_literal(buf, &c, flipped, lit, sym(flipped))
            }
            (Operand::Column(a), Operand::Column(b)) => {
                let (is, is_not) = match buf.dialect {
                    Dialect::Sqlite => (" IS ", " IS NOT "),
                    Dialect::Postgres => (" IS NOT DISTINCT FROM ", " IS DISTINCT FROM "),
                };
                buf.push("(");
                Self::col_sql(buf, &a);
                buf.push(match op {
                    CompareOp::Eq => is,
                    CompareOp::Ne => is_not,
                    other => match other {
                        CompareOp::Gt => " > ",
                        CompareOp::Ge => " >= ",
                        CompareOp::Lt => " < ",
                        _ => " <= ",
                    },
                });
                Self::col_sql(buf, &b);
                buf.push(")");
                Ok(())
            }
            (Operand::Literal(a), Operand::Literal(b)) => {
                // Constant conditions are rare but legal; evaluate them here.
                let truth = match (a, b, op) {
                    (x, y, CompareOp::Eq) => x == y,
                    (x, y, CompareOp::Ne) => x != y,
                    _ => return Err(invalid("only eq and ne compare two literals")),
                };
                buf.push(if truth { "(1 = 1)" } else { "(1 = 0)" });
                Ok(())
            }
        }
    }

    fn column_vs_literal(
        &self,
        buf: &mut SqlBuf,
        c: &PathTarget,
        op: CompareOp,
        lit: &Literal,
        sym: &str,
    ) -> Result<()> {
        if matches!(lit, Literal::Null) {
            buf.push("(").ident(&c.column.name);
            match op {
                CompareOp::Eq => buf.push(" IS NULL)"),
                CompareOp::Ne => buf.push(" IS NOT NULL)"),
                _ => return Err(invalid("null can only be compared with eq or ne")),
            };
            return Ok(());
        }
        let v = coerce(c, lit)?;
        let fold = c.scalar == ScalarType::String;
        buf.push("(");
        Self::col_sql(buf, c);
        buf.push(" ").push(sym).push(" ");
        folded_param(buf, v, c.column.ty, fold);
        if op == CompareOp::Ne {
            buf.push(" OR ").ident(&c.column.name).push(" IS NULL");
        }
        buf.push(")");
        Ok(())
    }

    fn call(&self, buf: &mut SqlBuf, func: Func, args: &[Expr]) -> Result<()> {
        let [subject, pattern] = args else {
            return Err(invalid(format!("{} takes two arguments", func.name())));
        };
        let like = match buf.dialect {
            Dialect::Sqlite => " LIKE ",
            Dialect::Postgres => " ILIKE ",
        };
        buf.push("(");
        match self.operand(subject)? {
            Operand::Column(c) => {
                buf.ident(&c.column.name);
            }
            Operand::Literal(Literal::String(s)) => {
                buf.param(Value::Text(s.clone()), ColType::Text);
            }
            Operand::Literal(_) => return Err(invalid(format!("{} takes text", func.name()))),
        }
        buf.push(like);
        let (pre, post) = match func {
            Func::Contains => ("%", "%"),
            Func::StartsWith => ("", "%"),
            Func::EndsWith => ("%", ""),
        };
        match self.operand(pattern)? {
            Operand::Literal(Literal::String(s)) => {
                buf.param(
                    Value::Text(format!("{pre}{}{post}", escape_like(s))),
                    ColType::Text,
                );
            }
            Operand::Column(c) => {
                buf.push("'")
                    .push(pre)
                    .push("' || ")
                    .ident(&c.column.name)
                    .push(" || '")
                    .push(post)
                    .push("'");
            }
            Operand::Literal(_) => return Err(invalid(format!("{} takes text", func.name()))),
        }
        buf.push(" ESCAPE '\\')");
        Ok(())
    }
}

/// Escapes LIKE wildcards so a user's `%` or `_` match themselves.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Turns a literal into the stored form of the column it is compared with.
fn coerce(c: &PathTarget, lit: &Literal) -> Result<Value> {
    let name = c.column.field.as_str();
    let mismatch = || {
        invalid(format!(
            "cannot compare '{name}' ({:?}) with {lit:?}",
            c.scalar
        ))
    };
    Ok(match (c.scalar, lit) {
        (ScalarType::String, Literal::String(s)) => Value::Text(s.clone()),
        (ScalarType::Guid, Literal::Guid(g)) => Value::Text(g.hyphenated().to_string()),
        (ScalarType::Guid, Literal::String(s)) => Value::Text(
            parse_guid(s)
                .ok_or_else(|| invalid(format!("'{s}' is not a GUID (comparing '{name}')")))?,
        ),
        (ScalarType::Int | ScalarType::Decimal, Literal::Int(i)) => Value::Int(*i),
        (ScalarType::Int | ScalarType::Decimal, Literal::Decimal(d)) => Value::Decimal(*d),
        (ScalarType::Bool, Literal::Bool(b)) => Value::Bool(*b),
        (ScalarType::Date, Literal::Date(d)) => Value::Date(*d),
        (ScalarType::Date, Literal::DateTimeOffset(t)) => {
            Value::Date(t.to_offset(time::UtcOffset::UTC).date())
        }
        (ScalarType::DateTimeOffset, Literal::DateTimeOffset(t)) => Value::DateTime(normalise(*t)),
        (ScalarType::DateTimeOffset, Literal::Date(d)) => {
            Value::DateTime(PrimitiveDateTime::new(*d, Time::MIDNIGHT).assume_utc())
        }
        _ => return Err(mismatch()),
    })
}

fn normalise(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let ms = u32::from(t.millisecond());
    t.replace_nanosecond(ms * 1_000_000).unwrap_or(t)
}

/// A value compared with a column, folded like [`order_sql`] folds the column when
/// `fold` (a string comparison).
pub fn folded_param(buf: &mut SqlBuf, v: Value, ty: ColType, fold: bool) {
    if fold && buf.dialect == Dialect::Postgres {
        buf.push("lower(").param(v, ty).push(")");
    } else {
        buf.param(v, ty);
    }
}

/// The SQL for a column as compared and ordered: text folded to lower case on
/// PostgreSQL (SQLite's text columns are declared case-insensitive instead).
pub fn order_sql(dialect: Dialect, t: &PathTarget) -> String {
    if dialect == Dialect::Postgres && t.scalar == ScalarType::String {
        format!("lower({})", ident(&t.column.name))
    } else {
        ident(&t.column.name)
    }
}
