//! Copying an environment database into another through row transforms, pushed down
//! into the engine when both share it: SQLite with the source attached to the target's
//! connection, PostgreSQL across schemas. The whole copy is one transaction reading one
//! snapshot of the source, written in bounded chunks (by id) so progress is visible and
//! cancel is prompt; a crash or a cancel leaves the target without half a copy.

use std::sync::Arc;

use uplift_model::transform::{EntityTransform, EvalContext, Severity};
use uplift_model::{ColType, Value};

use crate::engine::sqlite::SqlitePool;
use crate::engine::{Conn, Dialect, Pool};
use crate::envdb::EnvDb;
use crate::sql::{SqlBuf, ident};
use crate::transform_sql::{self, SourceTypes};
use crate::{Result, StoreError};

/// Rows per `INSERT … SELECT`: large enough to amortise a statement, small enough that
/// progress moves and a cancel is honoured within a fraction of a second.
pub const CHUNK_ROWS: u64 = 50_000;
/// Sampled ids per entity and severity.
pub const MAX_SAMPLES: u64 = 100;
/// The alias of the source database on SQLite.
const SQLITE_SOURCE: &str = "src";

/// Told about progress; asked whether to stop.
pub trait CopyObserver: Send + Sync {
    /// `done` of `total` source rows of `entity` processed.
    fn progress(&self, entity: &str, done: u64, total: u64);
    fn cancelled(&self) -> bool;
}

/// One sampled row.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledRow {
    pub id: String,
    pub reason: String,
}

/// The outcome of copying one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityCopy {
    pub source_entity: String,
    pub target_entity: String,
    pub exported: u64,
    pub imported: u64,
    pub errors: u64,
    pub warnings: u64,
    pub error_samples: Vec<SampledRow>,
    pub warning_samples: Vec<SampledRow>,
    /// Row count and checksum of the transformed source, from the copy's snapshot.
    pub source_rows: u64,
    pub source_checksum: String,
}

/// How the copying connection names the two sides' tables.
struct Tables {
    source: Box<dyn Fn(&str) -> String + Send + Sync>,
    target: Box<dyn Fn(&str) -> String + Send + Sync>,
}

fn open_tables(source: &EnvDb, target: &EnvDb) -> Result<(Pool, Tables)> {
    match (source.pool(), target.pool()) {
        (Pool::Sqlite(s), Pool::Sqlite(t)) => {
            let pool = Pool::Sqlite(SqlitePool::open_with(
                t.path(),
                vec![(SQLITE_SOURCE.into(), s.path().to_path_buf())],
            )?);
            Ok((
                pool,
                Tables {
                    source: Box::new(|t| format!("{}.{}", ident(SQLITE_SOURCE), ident(t))),
                    target: Box::new(|t| format!("\"main\".{}", ident(t))),
                },
            ))
        }
        (Pool::Postgres(_), Pool::Postgres(_)) => {
            let (ss, ts) = (
                source.schema().unwrap_or("public").to_string(),
                target.schema().unwrap_or("public").to_string(),
            );
            Ok((
                target.pool().clone(),
                Tables {
                    source: Box::new(move |t| format!("{}.{}", ident(&ss), ident(t))),
                    target: Box::new(move |t| format!("{}.{}", ident(&ts), ident(t))),
                },
            ))
        }
        _ => Err(StoreError::Invalid(
            "a push-down copy needs both databases on the same engine".into(),
        )),
    }
}

/// The source column types an entity's transform may read.
pub fn source_types(source: &EnvDb, entity: &uplift_model::Entity) -> SourceTypes {
    source
        .layout(entity)
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect()
}

async fn count(conn: &mut Conn, buf: &SqlBuf) -> Result<u64> {
    let row = conn
        .query_opt(&buf.sql, &buf.params, &[ColType::Int])
        .await?;
    Ok(row.and_then(|r| r[0].as_int()).unwrap_or(0) as u64)
}

/// Appends "some check of this severity holds" (NULL counting as false); `false` when
/// the entity has no such check.
pub fn any_of(
    buf: &mut SqlBuf,
    t: &EntityTransform,
    types: &SourceTypes,
    severity: Severity,
) -> Result<bool> {
    let checks: Vec<_> = t.checks.iter().filter(|c| c.severity == severity).collect();
    if checks.is_empty() {
        return Ok(false);
    }
    // NULL (a condition over a NULL value) counts as false, also under NOT.
    buf.push("COALESCE((");
    for (i, c) in checks.iter().enumerate() {
        if i > 0 {
            buf.push(" OR ");
        }
        transform_sql::condition(buf, &c.condition, types)?;
    }
    buf.push("), FALSE)");
    Ok(true)
}

/// The checksum expression over a row of the given SQL expressions.
fn checksum_sql(dialect: Dialect, exprs: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("{}({exprs})", crate::checksum::SQLITE_FUNCTION),
        Dialect::Postgres => {
            format!("COALESCE(SUM(hashtextextended(ROW({exprs})::text, 0)), 0)::text")
        }
    }
}

/// Copies every entity of `transforms` from `source` into `target` (whose tables exist
/// and are empty) in one transaction.
pub async fn copy(
    source: &EnvDb,
    target: &EnvDb,
    transforms: &[(EntityTransform, SourceTypes)],
    ctx: &EvalContext,
    observer: Arc<dyn CopyObserver>,
) -> Result<Vec<EntityCopy>> {
    let (pool, tables) = open_tables(source, target)?;
    let dialect = pool.dialect();
    // One snapshot of the source for the whole copy; production writers are not blocked.
    let mut tx = pool.begin_snapshot().await?;
    let mut out = Vec::new();
    for (t, types) in transforms {
        let src = (tables.source)(&t.source_table);
        let dst = (tables.target)(&t.target_table);
        let mut c = SqlBuf::new(dialect);
        c.push("SELECT COUNT(*) FROM ").push(&src);
        let exported = count(&mut tx, &c).await?;
        observer.progress(&t.source_entity, 0, exported);

        // Errors and warnings: counts and samples, before any row moves.
        let mut errors = 0;
        let mut warnings = 0;
        let mut error_samples = Vec::new();
        let mut warning_samples = Vec::new();
        for severity in [Severity::Error, Severity::Warning] {
            let mut b = SqlBuf::new(dialect);
            b.push("SELECT COUNT(*) FROM ").push(&src).push(" s WHERE ");
            if !any_of(&mut b, t, types, severity)? {
                continue;
            }
            let n = count(&mut tx, &b).await?;
            match severity {
                Severity::Error => errors = n,
                Severity::Warning => warnings = n,
            }
            let samples = match severity {
                Severity::Error => &mut error_samples,
                Severity::Warning => &mut warning_samples,
            };
            for check in t.checks.iter().filter(|c| c.severity == severity) {
                let room = MAX_SAMPLES.saturating_sub(samples.len() as u64);
                if room == 0 {
                    break;
                }
                let mut b = SqlBuf::new(dialect);
                b.push("SELECT s.id FROM ").push(&src).push(" s WHERE ");
                transform_sql::condition(&mut b, &check.condition, types)?;
                b.push(" ORDER BY s.id LIMIT ");
                b.param(Value::Int(room as i64), ColType::Int);
                for r in tx.query(&b.sql, &b.params, &[ColType::Text]).await? {
                    samples.push(SampledRow {
                        id: r[0].as_text().unwrap_or_default().to_string(),
                        reason: check.reason.clone(),
                    });
                }
            }
        }

        // The SELECT list of the transform, shared by the insert and the checksum.
        let mut select = SqlBuf::new(dialect);
        for (i, col) in t.columns.iter().enumerate() {
            if i > 0 {
                select.push(", ");
            }
            transform_sql::column(&mut select, col, types, ctx)?;
        }
        let mut refused = SqlBuf::new(dialect);
        let has_errors = any_of(&mut refused, t, types, Severity::Error)?;
        let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();

        // Chunks by source id: [lo, hi] bounds found first, then copied.
        let mut imported = 0;
        let mut done = 0;
        let mut lo: Option<String> = None;
        loop {
            if observer.cancelled() {
                return Err(StoreError::Conflict("the copy was cancelled".into()));
            }
            let mut b = SqlBuf::new(dialect);
            b.push("SELECT s.id FROM ").push(&src).push(" s");
            if let Some(l) = &lo {
                b.push(" WHERE s.id > ");
                b.param(Value::Text(l.clone()), ColType::Text);
            }
            b.push(" ORDER BY s.id LIMIT 1 OFFSET ");
            b.param(Value::Int(CHUNK_ROWS as i64 - 1), ColType::Int);
            let hi = tx
                .query_opt(&b.sql, &b.params, &[ColType::Text])
                .await?
                .and_then(|r| r[0].as_text().map(str::to_string));

            let mut ins = SqlBuf::new(dialect);
            ins.push("INSERT INTO ")
                .push(&dst)
                .push(" (")
                .push(&names.join(", "))
                .push(") SELECT ");
            ins.append(&select);
            ins.push(" FROM ").push(&src).push(" s WHERE 1 = 1");
            if let Some(l) = &lo {
                ins.push(" AND s.id > ");
                ins.param(Value::Text(l.clone()), ColType::Text);
            }
            if let Some(h) = &hi {
                ins.push(" AND s.id <= ");
                ins.param(Value::Text(h.clone()), ColType::Text);
            }
            if has_errors {
                ins.push(" AND NOT ");
                ins.append(&refused);
            }
            imported += tx.execute(&ins.sql, &ins.params).await?;
            done = match &hi {
                Some(_) => (done + CHUNK_ROWS).min(exported),
                None => exported,
            };
            observer.progress(&t.source_entity, done, exported);
            match hi {
                Some(h) => lo = Some(h),
                None => break,
            }
        }

        // The transformed source's checksum, from the same snapshot.
        let mut sum = SqlBuf::new(dialect);
        sum.push("SELECT COUNT(*), ");
        let wrapped = SqlBuf {
            dialect,
            sql: checksum_sql(dialect, &select.sql),
            params: select.params.clone(),
        };
        sum.append(&wrapped);
        sum.push(" FROM ").push(&src).push(" s");
        if has_errors {
            sum.push(" WHERE NOT ");
            sum.append(&refused);
        }
        let row = tx
            .query_opt(&sum.sql, &sum.params, &[ColType::Int, ColType::Text])
            .await?
            .ok_or_else(|| StoreError::Corrupt("checksum query returned nothing".into()))?;
        out.push(EntityCopy {
            source_entity: t.source_entity.clone(),
            target_entity: t.target_entity.clone(),
            exported,
            imported,
            errors,
            warnings,
            error_samples,
            warning_samples,
            source_rows: row[0].as_int().unwrap_or(0) as u64,
            source_checksum: checksum_text(&row[1]),
        });
    }
    tx.commit().await?;
    Ok(out)
}

fn checksum_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The row count and checksum of a target table, to compare with the copy's.
pub async fn target_checksum(target: &EnvDb, t: &EntityTransform) -> Result<(u64, String)> {
    let dialect = target.dialect();
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("t.{}", ident(&c.name)))
        .collect();
    let mut b = SqlBuf::new(dialect);
    b.push("SELECT COUNT(*), ")
        .push(&checksum_sql(dialect, &cols.join(", ")))
        .push(" FROM ")
        .push(&target.qualify(&t.target_table))
        .push(" t");
    let mut conn = target.pool().conn().await?;
    let row = conn
        .query_opt(&b.sql, &b.params, &[ColType::Int, ColType::Text])
        .await?
        .ok_or_else(|| StoreError::Corrupt("checksum query returned nothing".into()))?;
    Ok((row[0].as_int().unwrap_or(0) as u64, checksum_text(&row[1])))
}
