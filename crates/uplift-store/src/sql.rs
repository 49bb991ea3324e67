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
    /// anywhere). Integers bound to real columns are widened here.
    /// A real compared with an integer column keeps its fraction: the placeholder is
    /// then typed as real, and the engine widens the column.
    pub fn param(&mut self, v: Value, ty: ColType) -> &mut Self {
        let (v, ty) = match (v, ty) {
            (Value::Int(i), ColType::Float) => (Value::Float(i as f64), ty),
            (v @ Value::Float(_), ColType::Int) => (v, ColType::Float),
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

    /// A placeholder whose type follows from the value (for LIMIT, control-plane
    /// columns and the like).
    pub fn value(&mut self, v: Value) -> &mut Self {
        let ty = match &v {
            Value::Int(_) => ColType::Int,
            Value::Float(_) => ColType::Float,
            Value::Bool(_) => ColType::Bool,
            Value::Date(_) => ColType::Date,
            Value::DateTime(_) => ColType::DateTime,
            Value::Bytes(_) => ColType::Bytes,
            Value::Text(_) | Value::Null => ColType::Text,
        };
        self.param(v, ty)
    }
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
            ColType::Float => "REAL",
            ColType::Date | ColType::DateTime => "TEXT",
            ColType::Bytes => "BLOB",
        },
    }
}
