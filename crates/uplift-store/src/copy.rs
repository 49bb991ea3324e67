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

/// Default rows per `INSERT … SELECT`: large enough to amortise a statement, small
/// enough that progress moves and a cancel is honoured within a fraction of a second.
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

/// A slice of the source in its physical order; the last one is open-ended so rows
/// beyond the bounds measured at the start are never missed.
enum Range {
    Rowid(i64, Option<i64>),
    Blocks(i64, Option<i64>),
}

impl Range {
    fn predicate(&self, buf: &mut SqlBuf) {
        match self {
            Range::Rowid(lo, hi) => {
                buf.push("s.rowid >= ").param(Value::Int(*lo), ColType::Int);
                if let Some(hi) = hi {
                    buf.push(" AND s.rowid < ")
                        .param(Value::Int(*hi), ColType::Int);
                }
            }
            Range::Blocks(lo, hi) => {
                buf.push("s.ctid >= CAST(")
                    .param(Value::Text(format!("({lo},0)")), ColType::Text)
                    .push(" AS tid)");
                if let Some(hi) = hi {
                    buf.push(" AND s.ctid < CAST(")
                        .param(Value::Text(format!("({hi},0)")), ColType::Text)
                        .push(" AS tid)");
                }
            }
        }
    }
}

/// Splits a source table into ranges of about `chunk_rows` rows.
async fn chunks(
    conn: &mut Conn,
    dialect: Dialect,
    src: &str,
    rows: u64,
    chunk_rows: u64,
) -> Result<Vec<Range>> {
    let per = chunk_rows.max(1) as i64;
    let mut out = Vec::new();
    match dialect {
        Dialect::Sqlite => {
            let r = conn
                .query_opt(
                    &format!("SELECT MIN(rowid), MAX(rowid) FROM {src}"),
                    &[],
                    &[ColType::Int, ColType::Int],
                )
                .await?;
            let (lo, hi) = match r.as_deref() {
                Some([Value::Int(lo), Value::Int(hi)]) => (*lo, *hi),
                _ => return Ok(vec![Range::Rowid(i64::MIN, None)]),
            };
            let mut a = lo;
            while a + per <= hi {
                out.push(Range::Rowid(a, Some(a + per)));
                a += per;
            }
            out.push(Range::Rowid(a, None));
        }
        Dialect::Postgres => {
            let mut b = SqlBuf::new(dialect);
            b.push("SELECT pg_relation_size(CAST(")
                .param(Value::Text(src.to_string()), ColType::Text);
            b.push(" AS regclass)) / current_setting('block_size')::bigint");
            let blocks = conn
                .query_opt(&b.sql, &b.params, &[ColType::Int])
                .await?
                .and_then(|r| r[0].as_int())
                .unwrap_or(0);
            let step = (blocks * per / (rows.max(1) as i64)).max(1);
            let mut a = 0;
            while a + step <= blocks {
                out.push(Range::Blocks(a, Some(a + step)));
                a += step;
            }
            out.push(Range::Blocks(a, None));
        }
    }
    Ok(out)
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

/// The checksum aggregate over a row of `exprs`, counting only rows where `refused`
/// does not hold.
fn checksum_of(dialect: Dialect, exprs: &SqlBuf, refused: Option<&SqlBuf>) -> SqlBuf {
    let mut b = SqlBuf::new(dialect);
    let (open, close) = match dialect {
        Dialect::Sqlite => (
            format!("{}(", crate::checksum::SQLITE_FUNCTION),
            ")".to_string(),
        ),
        Dialect::Postgres => (
            "COALESCE(SUM(hashtextextended(ROW(".to_string(),
            ")::text, 0))".to_string(),
        ),
    };
    b.push(&open).append(exprs).push(&close);
    if let Some(r) = refused {
        b.push(" FILTER (WHERE NOT ").append(r).push(")");
    }
    if dialect == Dialect::Postgres {
        b.push(", 0)::text");
    }
    b
}

/// Copies every entity of `transforms` from `source` into `target` (whose tables exist
/// and are empty) in one transaction.
pub async fn copy(
    source: &EnvDb,
    target: &EnvDb,
    transforms: &[(EntityTransform, SourceTypes)],
    ctx: &EvalContext,
    chunk_rows: u64,
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

        // One scan counts the rows, every rule's matches, and the rows refused or
        // warned about; samples are then read only for rules that matched.
        let mut source_checksum = String::new();
        let mut c = SqlBuf::new(dialect);
        c.push("SELECT COUNT(*)");
        for check in &t.checks {
            c.push(", COALESCE(SUM(CASE WHEN ");
            transform_sql::condition(&mut c, &check.condition, types)?;
            c.push(" THEN 1 ELSE 0 END), 0)");
        }
        for severity in [Severity::Error, Severity::Warning] {
            let mut any = SqlBuf::new(dialect);
            if any_of(&mut any, t, types, severity)? {
                c.push(", COALESCE(SUM(CASE WHEN ")
                    .append(&any)
                    .push(" THEN 1 ELSE 0 END), 0)");
            } else {
                c.push(", 0");
            }
        }
        // The same scan takes the checksum of the transformed source (the rows not
        // refused), from the same snapshot as the copy.
        c.push(", ");
        let filter = has_errors.then_some(&refused);
        c.append(&checksum_of(dialect, &select, filter));
        c.push(" FROM ").push(&src).push(" s");
        let mut tys = vec![ColType::Int; t.checks.len() + 3];
        tys.push(ColType::Text);
        let counts: Vec<u64> = tx
            .query_opt(&c.sql, &c.params, &tys)
            .await?
            .map(|r| {
                source_checksum = checksum_text(&r[tys.len() - 1]);
                r.iter().map(|v| v.as_int().unwrap_or(0) as u64).collect()
            })
            .unwrap_or_else(|| vec![0; tys.len()]);
        let exported = counts[0];
        let (errors, warnings) = (counts[t.checks.len() + 1], counts[t.checks.len() + 2]);
        observer.progress(&t.source_entity, 0, exported);
        let mut error_samples = Vec::new();
        let mut warning_samples = Vec::new();
        for (i, check) in t.checks.iter().enumerate() {
            let samples = match check.severity {
                Severity::Error => &mut error_samples,
                Severity::Warning => &mut warning_samples,
            };
            let room = MAX_SAMPLES.saturating_sub(samples.len() as u64);
            if counts[i + 1] == 0 || room == 0 {
                continue;
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

        // Chunks in the source's physical order (SQLite rowids, PostgreSQL blocks), so
        // each is a sequential read rather than an index walk.
        let plan = chunks(&mut tx, dialect, &src, exported, chunk_rows).await?;
        let mut imported = 0;
        for (n, range) in plan.iter().enumerate() {
            if observer.cancelled() {
                return Err(StoreError::Conflict("the copy was cancelled".into()));
            }
            let mut ins = SqlBuf::new(dialect);
            ins.push("INSERT INTO ")
                .push(&dst)
                .push(" (")
                .push(&names.join(", "))
                .push(") SELECT ");
            ins.append(&select);
            ins.push(" FROM ").push(&src).push(" s WHERE ");
            range.predicate(&mut ins);
            if has_errors {
                ins.push(" AND NOT ");
                ins.append(&refused);
            }
            imported += tx.execute(&ins.sql, &ins.params).await?;
            let done = exported * (n as u64 + 1) / plan.len() as u64;
            observer.progress(&t.source_entity, done, exported);
        }

        out.push(EntityCopy {
            source_entity: t.source_entity.clone(),
            target_entity: t.target_entity.clone(),
            exported,
            imported,
            errors,
            warnings,
            error_samples,
            warning_samples,
            source_rows: exported - errors,
            source_checksum,
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
    let mut row_sql = SqlBuf::new(dialect);
    row_sql.push(&cols.join(", "));
    let mut b = SqlBuf::new(dialect);
    b.push("SELECT COUNT(*), ")
        .append(&checksum_of(dialect, &row_sql, None))
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
