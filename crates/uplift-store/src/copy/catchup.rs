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
        for (entity, ids) in by_entity(changes) {
            let Some((_, w)) = self.work.get(entity) else {
                continue;
            };
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

    /// Per source entity among `changes`: how many of the changed records the target
    /// holds, and how many of them the source has and the copy keeps. Equal once the
    /// changes are applied and no one writes; the work is in the number of changes,
    /// not the size of the tables, so the pause can check it whatever the size.
    pub async fn counts_of(&self, changes: &[Change]) -> Result<Vec<(String, u64, u64)>> {
        let mut conn = self.pool.conn().await?;
        let mut out = Vec::new();
        for (entity, all) in by_entity(changes) {
            let Some((_, w)) = self.work.get(entity) else {
                continue;
            };
            let count = |n: Option<Vec<Value>>| match n.as_deref() {
                Some([Value::Int(n)]) => Ok(*n as u64),
                _ => Err(StoreError::Corrupt(format!("counting '{entity}'"))),
            };
            let (mut held, mut kept) = (0, 0);
            // In slices, so that no statement passes the engines' parameter limits.
            for ids in all.chunks(COUNT_IDS_PER_STATEMENT) {
                let mut target = SqlBuf::new(self.pool.dialect());
                target
                    .push("SELECT COUNT(*) FROM ")
                    .push(&w.dst)
                    .push(" WHERE id IN (");
                in_list(&mut target, ids);
                target.push(")");
                let mut source = w.kept_count.clone();
                source.push(" AND s.id IN (");
                in_list(&mut source, ids);
                source.push(")");
                let n = conn.query_opt(&target.sql, &target.params, &[ColType::Int]);
                held += count(n.await?)?;
                let n = conn.query_opt(&source.sql, &source.params, &[ColType::Int]);
                kept += count(n.await?)?;
            }
            out.push((entity.to_string(), held, kept));
        }
        Ok(out)
    }
}

/// Ids per counting statement (each is a bound parameter).
pub(super) const COUNT_IDS_PER_STATEMENT: usize = 1_000;

/// The changed ids of each entity, sorted, each once.
pub(super) fn by_entity(changes: &[Change]) -> BTreeMap<&str, Vec<&str>> {
    let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in changes {
        by.entry(c.entity.as_str())
            .or_default()
            .push(c.record_id.as_str());
    }
    for ids in by.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    by
}

pub(super) fn in_list(buf: &mut SqlBuf, ids: &[&str]) {
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            buf.push(", ");
        }
        buf.param(Value::Text((*id).to_string()), ColType::Text);
    }
}
