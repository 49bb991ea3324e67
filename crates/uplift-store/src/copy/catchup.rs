//! Step 3's catch-up: the records production changed after the new database's copy
//! read it, read again by id and put through the same row transforms. A change only
//! names a record, so each is applied as "delete it from the target, insert it again
//! from the source as it is now": applying a change twice, or one the copy already
//! saw, leaves the same row, and a deleted record simply finds nothing to insert.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use uplift_model::transform::{EntityTransform, EvalContext};
use uplift_model::{ColType, Value};

use super::{Work, open_tables, prepare};
use crate::capture::Change;
use crate::engine::{Dialect, Pool};
use crate::envdb::EnvDb;
use crate::sql::SqlBuf;
use crate::tally::{Tallies, Tally};
use crate::transform_sql::SourceTypes;
use crate::{Result, StoreError};

/// The prepared statements of one step 3's catch-up, source to target.
pub struct CatchUp {
    pool: Pool,
    /// By source entity name.
    work: BTreeMap<String, (usize, Work)>,
}

/// What one batch did in the target, per target entity: rows removed, rows put back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub deleted: u64,
    pub inserted: u64,
}

impl CatchUp {
    pub fn new(
        source: &EnvDb,
        target: &EnvDb,
        transforms: &[(EntityTransform, SourceTypes)],
        ctx: &EvalContext,
    ) -> Result<CatchUp> {
        let (pool, tables) = open_tables(source, target)?;
        let dialect = pool.dialect();
        let mut work = BTreeMap::new();
        for (slot, (t, types)) in transforms.iter().enumerate() {
            let w = prepare(slot, dialect, &tables, target, t, types, ctx)?;
            work.insert(t.source_entity.clone(), (slot, w));
        }
        Ok(CatchUp { pool, work })
    }

    /// Applies `changes` in one transaction of the target; changes to entities the
    /// plan drops are skipped. Returns the rows removed and put back.
    pub async fn apply(&self, changes: &[Change]) -> Result<Applied> {
        let mut by_entity: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in changes {
            by_entity
                .entry(c.entity.as_str())
                .or_default()
                .push(c.record_id.as_str());
        }
        let mut conn = self.pool.conn().await?;
        if self.pool.dialect() == Dialect::Sqlite {
            // The insert passes its rows through the copy's tally; this one is thrown away.
            let tallies: Tallies = Arc::new(Mutex::new(
                self.work
                    .values()
                    .map(|(_, w)| Tally::new(w.checks.clone(), 0))
                    .collect(),
            ));
            conn.with_sqlite(move |c| Ok(crate::tally::register(c, tallies)?))
                .await?;
        }
        conn.batch("BEGIN").await?;
        let mut applied = Applied::default();
        for (entity, ids) in by_entity {
            let Some((_, w)) = self.work.get(entity) else {
                continue;
            };
            let mut ids: Vec<&str> = ids;
            ids.sort_unstable();
            ids.dedup();
            let mut del = SqlBuf::new(self.pool.dialect());
            del.push("DELETE FROM ").push(&w.dst).push(" WHERE id IN (");
            in_list(&mut del, &ids);
            del.push(")");
            applied.deleted += conn.execute(&del.sql, &del.params).await?;
            let mut ins = w.insert_head.clone();
            ins.push("s.id IN (");
            in_list(&mut ins, &ids);
            ins.push(")").append(&w.insert_tail);
            applied.inserted += conn.execute(&ins.sql, &ins.params).await?;
        }
        conn.batch("COMMIT").await?;
        Ok(applied)
    }

    /// Per source entity: rows in the target, and rows of the source the copy keeps
    /// (not refused by an error rule). Equal when the target has caught up with a
    /// source no one is writing to.
    pub async fn counts(&self) -> Result<Vec<(String, u64, u64)>> {
        let mut conn = self.pool.conn().await?;
        let mut out = Vec::new();
        for (entity, (_, w)) in &self.work {
            let sql = format!(
                "SELECT (SELECT COUNT(*) FROM {}), ({})",
                w.dst.clone(),
                w.kept_count.sql
            );
            let row = conn
                .query_opt(&sql, &w.kept_count.params, &[ColType::Int, ColType::Int])
                .await?;
            let [Value::Int(target), Value::Int(kept)] = row
                .as_deref()
                .and_then(|r| <&[Value; 2]>::try_from(r).ok())
                .cloned()
                .unwrap_or([Value::Null, Value::Null])
            else {
                return Err(StoreError::Corrupt(format!("counting '{entity}'")));
            };
            out.push((entity.clone(), target as u64, kept as u64));
        }
        Ok(out)
    }
}

fn in_list(buf: &mut SqlBuf, ids: &[&str]) {
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            buf.push(", ");
        }
        buf.param(Value::Text((*id).to_string()), ColType::Text);
    }
}
