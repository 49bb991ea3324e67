//! Building SQL text with parameters for either dialect.

use uplift_model::{ColType, Value};

use crate::engine::Dialect;
use crate::engine::postgres::type_name;

/// Quotes an identifier. Physical names are generated and already safe; quoting anyway
/// keeps reserved words (`Position`, `Order`) usable as names.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A statement under construction: text plus the values its placeholders stand for.
/// Values never enter the text, so nothing a user types can change a statement.
#[derive(Debug, Clone)]
pub struct SqlBuf {
    pub dialect: Dialect,
    pub sql: String,
    pub params: Vec<Value>,
}

impl SqlBuf {
    pub fn new(dialect: Dialect) -> Self {
        SqlBuf {
            dialect,
            sql: String::new(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }

    pub fn ident(&mut self, name: &str) -> &mut Self {
        self.sql.push_str(&ident(name));
        self
    }

    /// Adds a placeholder for `v`, stored as `ty`. On PostgreSQL the placeholder is cast
    /// to the column type, which fixes the parameter's wire type (and lets NULL bind
    /// anywhere). Integers bound to decimal columns are widened here.
    /// A decimal compared with an integer column keeps its fraction: the placeholder is
    /// then typed as decimal, and the engine widens the column.
    pub fn param(&mut self, v: Value, ty: ColType) -> &mut Self {
        let (v, ty) = match (v, ty) {
            (Value::Int(i), ColType::Decimal) => (Value::Decimal(i.into()), ty),
            (v @ Value::Decimal(_), ColType::Int) => (v, ColType::Decimal),
            (v, _) => (v, ty),
        };
        self.params.push(v);
        match self.dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                let n = self.params.len();
                self.sql.push_str(&format!("${n}::{}", type_name(ty)));
            }
        }
        self
    }

    /// Appends another fragment built separately, renumbering its PostgreSQL
    /// placeholders to follow this one's.
    pub fn append(&mut self, other: &SqlBuf) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => self.sql.push_str(&other.sql),
            Dialect::Postgres => {
                let shifted = shift_placeholders(&other.sql, self.params.len());
                self.sql.push_str(&shifted);
            }
        }
        self.params.extend(other.params.iter().cloned());
        self
    }

    /// A placeholder whose type follows from the value (for LIMIT, control-plane
    /// columns and the like).
    pub fn value(&mut self, v: Value) -> &mut Self {
        let ty = match &v {
            Value::Int(_) => ColType::Int,
            Value::Decimal(_) => ColType::Decimal,
            Value::Bool(_) => ColType::Bool,
            Value::Date(_) => ColType::Date,
            Value::DateTime(_) => ColType::DateTime,
            Value::Bytes(_) => ColType::Bytes,
            Value::Text(_) | Value::Null => ColType::Text,
        };
        self.param(v, ty)
    }
}

/// `$1` → `$(1+offset)` in PostgreSQL text built by [`SqlBuf`], where placeholders are
/// the only `$` followed by a digit.
fn shift_placeholders(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            let k: usize = n.parse().unwrap_or(0);
            out.push_str(&format!("${}", k + offset));
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites `?` placeholders to `$1, $2, ...` for PostgreSQL, so hand-written statements
/// (the control plane's) are written once for both engines. `?` never appears in those
/// statements other than as a placeholder.
pub fn placeholders(dialect: Dialect, sql: &str) -> String {
    match dialect {
        Dialect::Sqlite => sql.to_string(),
        Dialect::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// The native column type for a storage class on each engine. SQLite text compares
/// without regard to (ASCII) case, as the reference product's data API does;
/// PostgreSQL gets the same behaviour through `lower()` in queries.
pub fn column_type(dialect: Dialect, ty: ColType) -> &'static str {
    match dialect {
        Dialect::Postgres => type_name(ty),
        Dialect::Sqlite => match ty {
            ColType::Text => "TEXT COLLATE NOCASE",
            ColType::Int | ColType::Bool => "INTEGER",
            ColType::Decimal => crate::decimal_sql::SQLITE_COLUMN_TYPE,
            ColType::Date | ColType::DateTime => "TEXT",
            ColType::Bytes => "BLOB",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uplift_model::Value;

    #[test]
    fn appended_fragments_keep_their_values_in_order() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let mut a = SqlBuf::new(dialect);
            a.push("x = ").value(Value::Int(1));
            let mut b = SqlBuf::new(dialect);
            b.push(" AND y = ")
                .value(Value::Int(2))
                .push(" AND z = ")
                .value(Value::Int(3));
            a.append(&b);
            assert_eq!(a.params, [Value::Int(1), Value::Int(2), Value::Int(3)]);
            let expected = match dialect {
                Dialect::Sqlite => "x = ? AND y = ? AND z = ?",
                Dialect::Postgres => "x = $1::bigint AND y = $2::bigint AND z = $3::bigint",
            };
            assert_eq!(a.sql, expected);
        }
        assert_eq!(
            placeholders(Dialect::Postgres, "a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
    }
}
