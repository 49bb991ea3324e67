//! Loading many rows at once: prepared inserts in one transaction on SQLite, binary
//! COPY on PostgreSQL. For generated or copied data that is already valid; it skips
//! the per-record checks of the write path.

use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use uplift_model::layout::{Column, entity_columns};
use uplift_model::{ColType, Entity, FieldType, Value};

use crate::engine::postgres::Param;
use crate::engine::sqlite;
use crate::envdb::EnvDb;
use crate::sql::ident;
use crate::{Result, StoreError};

fn pg_type(ty: ColType) -> Type {
    match ty {
        ColType::Text => Type::TEXT,
        ColType::Int => Type::INT8,
        ColType::Decimal => Type::NUMERIC,
        ColType::Bool => Type::BOOL,
        ColType::Date => Type::DATE,
        ColType::DateTime => Type::TIMESTAMPTZ,
        ColType::Bytes => Type::BYTEA,
    }
}

/// Appends rows (each aligned with [`entity_columns`]) to an entity's table in one
/// transaction.
pub async fn load(db: &EnvDb, entity: &Entity, rows: Vec<Vec<Value>>) -> Result<u64> {
    let version = db.catalog().version;
    let cols: Vec<Column> = entity_columns(entity, version);
    if let Some(r) = rows.iter().find(|r| r.len() != cols.len()) {
        return Err(StoreError::Invalid(format!(
            "bulk row has {} values for {} columns",
            r.len(),
            cols.len()
        )));
    }
    let names: Vec<String> = cols.iter().map(|c| ident(&c.name)).collect();
    let table = db.table(entity);
    let n = rows.len() as u64;
    let mut tx = db.pool().begin().await?;
    match db.dialect() {
        crate::Dialect::Sqlite => {
            let marks = vec!["?"; cols.len()].join(", ");
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({marks})",
                names.join(", ")
            );
            tx.with_sqlite(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                for r in &rows {
                    stmt.execute(rusqlite::params_from_iter(r.iter().map(sqlite::Param)))?;
                }
                Ok(())
            })
            .await?;
        }
        crate::Dialect::Postgres => {
            let client = tx
                .postgres_client()
                .ok_or_else(|| StoreError::Pool("no PostgreSQL client".into()))?;
            let sink = client
                .copy_in(&format!(
                    "COPY {table} ({}) FROM STDIN BINARY",
                    names.join(", ")
                ))
                .await?;
            let types: Vec<Type> = cols.iter().map(|c| pg_type(c.ty)).collect();
            let writer = BinaryCopyInWriter::new(sink, &types);
            pin_mut!(writer);
            for r in &rows {
                let params: Vec<Param<'_>> = r.iter().map(Param).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                writer.as_mut().write(&refs).await?;
            }
            writer.finish().await?;
        }
    }
    tx.commit().await?;
    Ok(n)
}

/// After loading explicit AutoNumber values on PostgreSQL, moves each identity
/// sequence past the largest value so the next record continues the series.
pub async fn sync_autonumbers(db: &EnvDb, entity: &Entity) -> Result<()> {
    if db.dialect() != crate::Dialect::Postgres {
        return Ok(());
    }
    let mut conn = db.pool().conn().await?;
    for f in entity
        .fields
        .iter()
        .filter(|f| f.ty == FieldType::AutoNumber)
    {
        let col = uplift_model::names::physical(&f.name, None);
        let table = db.table(entity);
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{}', '{col}'), GREATEST(COALESCE((SELECT MAX({}) FROM {table}), 0), 1))",
            table.replace('\'', "''"),
            ident(&col)
        );
        conn.batch(&sql).await?;
    }
    Ok(())
}

/// Refreshes the planner's statistics for an entity's table. After a bulk load the
/// planner otherwise guesses, and picks sorts over index walks for ordered lists.
pub async fn analyze(db: &EnvDb, entity: &Entity) -> Result<()> {
    let mut conn = db.pool().conn().await?;
    conn.batch(&format!("ANALYZE {}", db.table(entity))).await
}
