//! A revert's carry-back: the records production changed after step 3's switch (its
//! capture has recorded them since), read from the upgraded database by id and put
//! back into the old one through the inverse row transforms. A record still there is
//! upserted — only the columns the inverse carries are written, so a classic value the
//! upgrade dropped keeps what the old database holds — and one deleted since is
//! deleted. Like the catch-up, applying a change twice leaves the same row.

use std::collections::BTreeMap;

use uplift_model::transform::{EntityTransform, EvalContext};
use uplift_model::{ColType, Value};

use super::catchup::{COUNT_IDS_PER_STATEMENT, by_entity, in_list};
use super::{open_tables, source_types};
use crate::capture::{self, Change};
use crate::engine::{Conn, Pool};
use crate::envdb::EnvDb;
use crate::sql::{SqlBuf, ident};
use crate::transform_sql;
use crate::{Result, StoreError};

/// One upgraded entity as a revert carries it back.
#[derive(Debug, Clone)]
pub struct RevertEntity {
    /// Source: the upgraded entity; target: the original. Its columns are those the
    /// revert writes, `id` first.
    pub transform: EntityTransform,
    /// Fields of the upgraded entity whose values a revert cannot carry back: (field,
    /// its columns).
    pub lost: Vec<(String, Vec<String>)>,
    /// The original's AutoNumber columns (not in `transform`): a record the revert
    /// inserts is numbered by the old database (PostgreSQL's identity; on SQLite, after
    /// the insert, the next number in turn).
    pub numbered: Vec<String>,
}

/// What a revert would carry back of one entity, from the changes captured so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityPreview {
    /// The upgraded entity (where the changes were made) and the original.
    pub entity: String,
    pub target_entity: String,
    /// Records written (created or updated) since the switch and still there.
    pub upserts: u64,
    /// Records deleted since the switch.
    pub deletes: u64,
    /// Per field that cannot be carried back: the changed records holding a value in it.
    pub lost: Vec<(String, u64)>,
}

/// What one batch did in the old database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    pub upserted: u64,
    pub deleted: u64,
}

/// One entity's statements.
struct Work {
    src: String,
    dst: String,
    numbered: Vec<String>,
    /// `INSERT INTO dst (…) SELECT <inverse> FROM src s WHERE s.id IN (`, then the ids,
    /// then `upsert_tail`.
    upsert_head: SqlBuf,
    upsert_tail: String,
}

/// The prepared statements of one revert, upgraded database to old.
pub struct Revert {
    pool: Pool,
    /// By upgraded entity name (the name its captured changes carry).
    work: BTreeMap<String, Work>,
}

impl Revert {
    pub fn new(
        source: &EnvDb,
        target: &EnvDb,
        entities: &[RevertEntity],
        ctx: &EvalContext,
    ) -> Result<Revert> {
        let (pool, tables) = open_tables(source, target)?;
        let catalog = source.catalog();
        let mut work = BTreeMap::new();
        for e in entities {
            let t = &e.transform;
            let Some(entity) = catalog.entity(&t.source_entity) else {
                continue;
            };
            let types = source_types(source, entity);
            let (src, dst) = (
                (tables.source)(&t.source_table),
                (tables.target)(&t.target_table),
            );
            let mut head = SqlBuf::new(pool.dialect());
            let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
            head.push("INSERT INTO ")
                .push(&dst)
                .push(" (")
                .push(&names.join(", "))
                .push(") SELECT ");
            for (i, c) in t.columns.iter().enumerate() {
                if i > 0 {
                    head.push(", ");
                }
                transform_sql::column(&mut head, c, &types, ctx)?;
            }
            head.push(" FROM ").push(&src).push(" s WHERE s.id IN (");
            let set: Vec<String> = names
                .iter()
                .filter(|n| n.as_str() != ident("id"))
                .map(|n| format!("{n} = excluded.{n}"))
                .collect();
            let upsert_tail = format!(") ON CONFLICT (id) DO UPDATE SET {}", set.join(", "));
            work.insert(
                t.source_entity.clone(),
                Work {
                    src,
                    dst,
                    numbered: e.numbered.clone(),
                    upsert_head: head,
                    upsert_tail,
                },
            );
        }
        Ok(Revert { pool, work })
    }

    /// Carries `changes` back in one transaction of the old database.
    pub async fn apply(&self, changes: &[Change]) -> Result<Carried> {
        let mut tx = self.pool.begin().await?;
        let mut carried = Carried::default();
        for (entity, all) in by_entity(changes) {
            let Some(w) = self.work.get(entity) else {
                continue;
            };
            for ids in all.chunks(COUNT_IDS_PER_STATEMENT) {
                let mut up = w.upsert_head.clone();
                in_list(&mut up, ids);
                up.push(&w.upsert_tail);
                carried.upserted += tx.execute(&up.sql, &up.params).await?;
                let mut del = SqlBuf::new(self.pool.dialect());
                del.push("DELETE FROM ").push(&w.dst).push(" WHERE id IN (");
                in_list(&mut del, ids);
                del.push(") AND id NOT IN (SELECT s.id FROM ")
                    .push(&w.src)
                    .push(" s WHERE s.id IN (");
                in_list(&mut del, ids);
                del.push("))");
                carried.deleted += tx.execute(&del.sql, &del.params).await?;
            }
            if self.pool.dialect() == crate::engine::Dialect::Sqlite {
                number_new_rows(&mut tx, w).await?;
            }
        }
        tx.commit().await?;
        Ok(carried)
    }

    /// Per upgraded entity among `changes`: how many of the changed records the old
    /// database holds, and how many the upgraded one does. Equal once the changes are
    /// carried back and no one writes; the work is in the number of changes.
    pub async fn counts_of(&self, changes: &[Change]) -> Result<Vec<(String, u64, u64)>> {
        let mut conn = self.pool.conn().await?;
        let mut out = Vec::new();
        for (entity, all) in by_entity(changes) {
            let Some(w) = self.work.get(entity) else {
                continue;
            };
            let (mut old, mut new) = (0, 0);
            for ids in all.chunks(COUNT_IDS_PER_STATEMENT) {
                old += count_in(&mut conn, &self.pool, &w.dst, ids).await?;
                new += count_in(&mut conn, &self.pool, &w.src, ids).await?;
            }
            out.push((entity.to_string(), old, new));
        }
        Ok(out)
    }
}

/// SQLite has no identity columns: each row the carry-back inserted without a number
/// gets the next one, in the order the rows were inserted (the write path's MAX + 1).
async fn number_new_rows(tx: &mut crate::engine::Tx, w: &Work) -> Result<()> {
    for c in &w.numbered {
        let c = ident(c);
        let sql = format!(
            "UPDATE {t} SET {c} = (SELECT COALESCE(MAX({c}), 0) + 1 FROM {t}) WHERE rowid = (SELECT MIN(rowid) FROM {t} WHERE {c} IS NULL)",
            t = w.dst
        );
        // Each statement numbers one row; the rows without one are those this batch
        // inserted, so the loop ends.
        while tx.execute(&sql, &[]).await? > 0 {}
    }
    Ok(())
}

async fn count_in(conn: &mut Conn, pool: &Pool, table: &str, ids: &[&str]) -> Result<u64> {
    let mut b = SqlBuf::new(pool.dialect());
    b.push("SELECT COUNT(*) FROM ")
        .push(table)
        .push(" WHERE id IN (");
    in_list(&mut b, ids);
    b.push(")");
    match conn
        .query_opt(&b.sql, &b.params, &[ColType::Int])
        .await?
        .as_deref()
    {
        Some([Value::Int(n)]) => Ok(u64::try_from(*n).unwrap_or(0)),
        _ => Err(StoreError::Corrupt(format!("counting {table}"))),
    }
}

/// What a revert would carry back from `source` (the upgraded production, its capture
/// on), entity by entity: read from the change table, so it costs what was changed.
pub async fn preview(source: &EnvDb, entities: &[RevertEntity]) -> Result<Vec<EntityPreview>> {
    if !capture::installed(source).await? {
        return Ok(Vec::new());
    }
    let mut conn = source.pool().conn().await?;
    let changes = source.qualify(capture::TABLE);
    let mut out = Vec::new();
    for e in entities {
        let t = &e.transform;
        let mut changed = SqlBuf::new(source.dialect());
        changed
            .push("SELECT COUNT(DISTINCT record_id) FROM ")
            .push(&changes)
            .push(" WHERE entity = ")
            .param(Value::Text(t.source_entity.clone()), ColType::Text);
        let changed = match conn
            .query_opt(&changed.sql, &changed.params, &[ColType::Int])
            .await?
            .as_deref()
        {
            Some([Value::Int(n)]) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        if changed == 0 {
            continue;
        }
        let mut b = SqlBuf::new(source.dialect());
        b.push("SELECT COUNT(*)");
        for (_, columns) in &e.lost {
            let any: Vec<String> = columns
                .iter()
                .map(|c| format!("s.{} IS NOT NULL", ident(c)))
                .collect();
            b.push(&format!(
                ", COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0)",
                any.join(" OR ")
            ));
        }
        b.push(" FROM ")
            .push(&source.qualify(&t.source_table))
            .push(" s WHERE s.id IN (SELECT record_id FROM ")
            .push(&changes)
            .push(" WHERE entity = ")
            .param(Value::Text(t.source_entity.clone()), ColType::Text)
            .push(")");
        let types = vec![ColType::Int; e.lost.len() + 1];
        let row = conn.query_opt(&b.sql, &b.params, &types).await?;
        let n: Vec<u64> = row
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.as_int().and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
            .collect();
        let upserts = n.first().copied().unwrap_or(0);
        out.push(EntityPreview {
            entity: t.source_entity.clone(),
            target_entity: t.target_entity.clone(),
            upserts,
            deletes: changed.saturating_sub(upserts),
            lost: e
                .lost
                .iter()
                .zip(n.iter().skip(1))
                .map(|((f, _), n)| (f.clone(), *n))
                .filter(|(_, n)| *n > 0)
                .collect(),
        });
    }
    Ok(out)
}
