//! PostgreSQL through tokio-postgres and a deadpool pool. Statements are prepared once
//! per connection and cached.

use std::error::Error;
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Object, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use uplift_model::{ColType, Decimal, Value};

use super::Row;
use crate::{Result, StoreError};

/// Connections per server. PostgreSQL's own default limit is 100; a server process
/// needs far fewer, and more than a few per core only adds contention.
pub const POOL_MAX_CONNECTIONS: usize = 16;

/// Connects a pool to `url` (`postgres://user@host:port/db`).
pub fn connect(url: &str) -> Result<deadpool_postgres::Pool> {
    let cfg = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    let mgr = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(mgr)
        .max_size(POOL_MAX_CONNECTIONS)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))
}

pub(crate) async fn query(
    c: &mut Object,
    sql: &str,
    params: &[Value],
    types: &[ColType],
) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let rows = c.query(&stmt, &refs).await?;
    rows.iter().map(|r| read_row(r, types)).collect()
}

pub(crate) async fn execute(c: &mut Object, sql: &str, params: &[Value]) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await?;
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    Ok(c.execute(&stmt, &refs).await?)
}

/// Reads a row's columns as the given types.
pub fn read_row(row: &tokio_postgres::Row, types: &[ColType]) -> Result<Row> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| read_value(row, i, *t))
        .collect()
}

fn read_value(row: &tokio_postgres::Row, i: usize, ty: ColType) -> Result<Value> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    let col_ty = row.columns()[i].type_().clone();
    Ok(match ty {
        ColType::Text => opt(row.try_get::<_, Option<String>>(i)?, Value::Text),
        ColType::Int => match col_ty {
            Type::INT4 => opt(row.try_get::<_, Option<i32>>(i)?, |v| Value::Int(v.into())),
            Type::INT2 => opt(row.try_get::<_, Option<i16>>(i)?, |v| Value::Int(v.into())),
            _ => opt(row.try_get::<_, Option<i64>>(i)?, Value::Int),
        },
        ColType::Decimal => match col_ty {
            Type::INT8 => opt(row.try_get::<_, Option<i64>>(i)?, |v| {
                Value::Decimal(v.into())
            }),
            // Columns made before decimals were exact.
            Type::FLOAT8 => match row.try_get::<_, Option<f64>>(i)? {
                None => Value::Null,
                Some(f) => Value::Decimal(uplift_model::decimal::from_f64(f).ok_or_else(|| {
                    StoreError::Corrupt(format!("{f} does not fit an exact decimal"))
                })?),
            },
            _ => opt(row.try_get::<_, Option<Decimal>>(i)?, Value::Decimal),
        },
        ColType::Bool => opt(row.try_get::<_, Option<bool>>(i)?, Value::Bool),
        ColType::Date => opt(row.try_get::<_, Option<time::Date>>(i)?, Value::Date),
        ColType::DateTime => opt(
            row.try_get::<_, Option<time::OffsetDateTime>>(i)?,
            Value::DateTime,
        ),
        ColType::Bytes => opt(row.try_get::<_, Option<Vec<u8>>>(i)?, Value::Bytes),
    })
}

/// A [`Value`] bound as a PostgreSQL parameter. Statements cast every placeholder to
/// its column's type (`$1::bigint`), so the wire type is always the value's own.
#[derive(Debug)]
pub struct Param<'a>(pub &'a Value);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(s) => s.to_sql_checked(ty, out),
            Value::Int(i) if *ty == Type::NUMERIC => Decimal::from(*i).to_sql_checked(ty, out),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql_checked(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql_checked(ty, out),
            Value::Int(i) => i.to_sql_checked(ty, out),
            Value::Decimal(d) => d.to_sql_checked(ty, out),
            Value::Bool(b) => b.to_sql_checked(ty, out),
            Value::Date(d) => d.to_sql_checked(ty, out),
            Value::DateTime(t) => t.to_sql_checked(ty, out),
            Value::Bytes(b) => b.as_slice().to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The native type of a storage class.
pub fn type_name(ty: ColType) -> &'static str {
    match ty {
        ColType::Text => "text",
        ColType::Int => "bigint",
        ColType::Decimal => "numeric",
        ColType::Bool => "boolean",
        ColType::Date => "date",
        ColType::DateTime => "timestamptz",
        ColType::Bytes => "bytea",
    }
}
