//! Copying an environment database into another through row transforms, pushed down
//! into the engine when both share it: SQLite with the source attached to the target's
//! connection, PostgreSQL across schemas.
//!
//! The work per entity is: a scan of the source (row count, every rule's matches,
//! samples, and the checksum of the transformed rows), the load (`INSERT … SELECT` in
//! bounded chunks, in the source's physical order, so progress moves and a cancel is
//! prompt), the key and indexes (built after the load: far cheaper than maintaining a
//! random-order text key row by row), and the checksum of what landed in the target.
//! On PostgreSQL two lanes share the work, so both cores of a small machine are used:
//! each takes whole entities, in a transaction reading the snapshot a holding
//! transaction exported, as a role that may read production and nothing more
//! ([`crate::reader_role`]). SQLite has one writer: it loads every entity with the
//! source counted and checksummed on the way by [`crate::tally`] (so the source is read
//! and transformed once), with a rollback journal so the new pages are written once;
//! production is attached to it read-only.
//! A failed or cancelled copy leaves a target to be dropped, never one that is served:
//! the test database is only served once step 1 has finished.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use uplift_model::transform::{EntityTransform, EvalContext, Severity};
use uplift_model::{ColType, Value};

use crate::engine::sqlite::SqlitePool;
use crate::engine::{Conn, Dialect, Pool};
use crate::envdb::EnvDb;
use crate::reader_role::ReaderRole;
use crate::sql::{SqlBuf, ident};
use crate::tally::{Tallies, Tally};
use crate::transform_sql::{self, SourceTypes};
use crate::{Result, StoreError};

pub mod catchup;
pub mod revert;

/// Default rows per `INSERT … SELECT`: large enough to amortise a statement, small
/// enough that progress moves and a cancel is honoured within a fraction of a second.
pub const CHUNK_ROWS: u64 = 50_000;
/// Sampled ids per entity and severity.
pub const MAX_SAMPLES: u64 = 100;
/// The alias of the source database on SQLite.
const SQLITE_SOURCE: &str = "src";
/// Connections a PostgreSQL copy works on at once: one per core of the small machines
/// Uplift targets; more only makes them wait on each other.
const POSTGRES_LANES: usize = 2;

/// Told about progress; asked whether to stop.
pub trait CopyObserver: Send + Sync {
    /// `done` of `total` source rows of `entity` loaded. Called for every entity with
    /// `done` 0 and an estimated `total` before any is loaded, so the whole copy's size
    /// is known from the start, and again with the exact total once the copy has
    /// counted it, when the two differ.
    fn progress(&self, entity: &str, done: u64, total: u64);
    /// The keys and indexes of `entity` are built.
    fn keyed(&self, _entity: &str) {}
    /// `entity` is read back and checksummed: its copy is complete.
    fn read_back(&self, _entity: &str) {}
    /// A chunk statement of `entity` is about to run (for diagnostics and tests that
    /// check a cancel stops the copy at once).
    fn chunk_started(&self, _entity: &str) {}
    fn cancelled(&self) -> bool;
}

/// How the load is sliced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyLimits {
    /// Rows per `INSERT … SELECT`.
    pub chunk_rows: u64,
    /// A pause after each chunk: zero but in tests that need a copy to last (a kill
    /// or a cancel in the middle of it).
    pub chunk_pause_ms: u64,
}

impl Default for CopyLimits {
    fn default() -> Self {
        CopyLimits {
            chunk_rows: CHUNK_ROWS,
            chunk_pause_ms: 0,
        }
    }
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
    /// Row count and checksum of the target table, read back after the load.
    pub target_rows: u64,
    pub target_checksum: String,
}

impl EntityCopy {
    /// Every exported row was imported or refused, and the target holds exactly the
    /// transformed source.
    pub fn matches(&self) -> bool {
        self.target_rows == self.source_rows
            && self.target_checksum == self.source_checksum
            && self.target_rows == self.imported
            && self.imported + self.errors == self.exported
    }
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
                    &format!(
                        "SELECT (SELECT MIN(rowid) FROM {src}), (SELECT MAX(rowid) FROM {src})"
                    ),
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
            "COALESCE(SUM(hash_record_extended(ROW(".to_string(),
            "), 0))".to_string(),
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

/// One entity's statements, built once and shared by the lanes.
struct Work {
    source_entity: String,
    target_entity: String,
    /// Rule reasons and severities, in the order the scan counts them.
    checks: Vec<(Severity, String)>,
    /// Count, per-rule counts, refused and warned rows, checksum of the rows kept.
    scan: SqlBuf,
    scan_types: Vec<ColType>,
    /// Per rule: `SELECT s.id … WHERE <rule> ORDER BY s.id LIMIT `.
    samples: Vec<SqlBuf>,
    src: String,
    /// The target table, qualified for the copying connection.
    dst: String,
    /// `SELECT COUNT(*)` of the source rows the copy keeps (not refused), ending in a
    /// `WHERE` clause that `AND` can narrow.
    kept_count: SqlBuf,
    /// The chunk statement: `insert_head`, a range of the source, `insert_tail`. On
    /// PostgreSQL the tail leaves refused rows out; on SQLite it passes every row
    /// through [`crate::tally`], which counts it and says whether it goes in.
    insert_head: SqlBuf,
    insert_tail: SqlBuf,
    keys: Vec<String>,
    /// Count and checksum of the target table.
    check: SqlBuf,
}

/// What the scan of the source found.
struct Scanned {
    exported: u64,
    errors: u64,
    warnings: u64,
    error_samples: Vec<SampledRow>,
    warning_samples: Vec<SampledRow>,
    source_checksum: String,
}

fn prepare(
    slot: usize,
    dialect: Dialect,
    tables: &Tables,
    target: &EnvDb,
    t: &EntityTransform,
    types: &SourceTypes,
    ctx: &EvalContext,
) -> Result<Work> {
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
    let refused = any_of(&mut refused, t, types, Severity::Error)?.then_some(refused);
    let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();

    // One scan counts the rows, every rule's matches, and the rows refused or warned
    // about, and takes the checksum of the transformed rows that are not refused.
    let mut scan = SqlBuf::new(dialect);
    scan.push("SELECT COUNT(*)");
    for check in &t.checks {
        scan.push(", COALESCE(SUM(CASE WHEN ");
        transform_sql::condition(&mut scan, &check.condition, types)?;
        scan.push(" THEN 1 ELSE 0 END), 0)");
    }
    for severity in [Severity::Error, Severity::Warning] {
        let mut any = SqlBuf::new(dialect);
        if any_of(&mut any, t, types, severity)? {
            scan.push(", COALESCE(SUM(CASE WHEN ")
                .append(&any)
                .push(" THEN 1 ELSE 0 END), 0)");
        } else {
            scan.push(", 0");
        }
    }
    scan.push(", ")
        .append(&checksum_of(dialect, &select, refused.as_ref()));
    scan.push(" FROM ").push(&src).push(" s");
    let mut scan_types = vec![ColType::Int; t.checks.len() + 3];
    scan_types.push(ColType::Text);

    let mut samples = Vec::new();
    for check in &t.checks {
        let mut b = SqlBuf::new(dialect);
        b.push("SELECT s.id FROM ").push(&src).push(" s WHERE ");
        transform_sql::condition(&mut b, &check.condition, types)?;
        b.push(" ORDER BY s.id LIMIT ");
        samples.push(b);
    }

    let mut insert_head = SqlBuf::new(dialect);
    insert_head
        .push("INSERT INTO ")
        .push(&dst)
        .push(" (")
        .push(&names.join(", "))
        .push(") SELECT ");
    let mut insert_tail = SqlBuf::new(dialect);
    match dialect {
        Dialect::Postgres => {
            insert_head
                .append(&select)
                .push(" FROM ")
                .push(&src)
                .push(" s WHERE ");
            if let Some(refused) = &refused {
                insert_tail.push(" AND NOT ").append(refused);
            }
        }
        Dialect::Sqlite => {
            // The inner query computes each row's rule flags and values once; its
            // LIMIT keeps SQLite from flattening it (which would compute them again
            // for the outer WHERE).
            let outs: Vec<String> = (0..t.columns.len()).map(|i| format!("_c{i}")).collect();
            let flags: Vec<String> = (0..t.checks.len()).map(|i| format!("_k{i}")).collect();
            insert_head
                .push(&outs.join(", "))
                .push(" FROM (SELECT s.id AS _id");
            for (i, check) in t.checks.iter().enumerate() {
                insert_head.push(", CASE WHEN ");
                transform_sql::condition(&mut insert_head, &check.condition, types)?;
                insert_head.push(&format!(" THEN 1 ELSE 0 END AS _k{i}"));
            }
            for (i, col) in t.columns.iter().enumerate() {
                insert_head.push(", ");
                transform_sql::column(&mut insert_head, col, types, ctx)?;
                insert_head.push(&format!(" AS _c{i}"));
            }
            insert_head.push(" FROM ").push(&src).push(" s WHERE ");
            let args: Vec<String> = ["_id".to_string()]
                .into_iter()
                .chain(flags)
                .chain(outs)
                .collect();
            insert_tail.push(&format!(
                " LIMIT -1) WHERE {}({slot}, {})",
                crate::tally::FUNCTION,
                args.join(", ")
            ));
        }
    }

    let keys = match target.catalog().entity(&t.target_entity) {
        Some(e) => crate::ddl::build_keys(dialect, &|x| target.qualify(x), e),
        None => Vec::new(),
    };

    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("t.{}", ident(&c.name)))
        .collect();
    let mut row = SqlBuf::new(dialect);
    row.push(&cols.join(", "));
    let mut check = SqlBuf::new(dialect);
    check
        .push("SELECT COUNT(*), ")
        .append(&checksum_of(dialect, &row, None))
        .push(" FROM ")
        .push(&dst)
        .push(" t");

    let mut kept_count = SqlBuf::new(dialect);
    // `WHERE 1 = 1`, so that a catch-up can narrow it to some ids with `AND`.
    kept_count
        .push("SELECT COUNT(*) FROM ")
        .push(&src)
        .push(" s WHERE 1 = 1");
    if let Some(refused) = &refused {
        kept_count.push(" AND NOT ").append(refused);
    }

    tracing::trace!(entity = %t.source_entity, sql = %insert_head.sql, tail = %insert_tail.sql, "copy statement");
    Ok(Work {
        source_entity: t.source_entity.clone(),
        target_entity: t.target_entity.clone(),
        checks: t
            .checks
            .iter()
            .map(|c| (c.severity, c.reason.clone()))
            .collect(),
        scan,
        scan_types,
        samples,
        src,
        dst,
        kept_count,
        insert_head,
        insert_tail,
        keys,
        check,
    })
}

/// Counts, samples and checksums one entity's source.
async fn scan(conn: &mut Conn, w: &Work) -> Result<Scanned> {
    let n = w.checks.len();
    let mut source_checksum = String::new();
    let counts: Vec<u64> = conn
        .query_opt(&w.scan.sql, &w.scan.params, &w.scan_types)
        .await?
        .map(|r| {
            source_checksum = checksum_text(&r[n + 3]);
            r.iter().map(|v| v.as_int().unwrap_or(0) as u64).collect()
        })
        .unwrap_or_else(|| vec![0; n + 4]);
    let mut error_samples = Vec::new();
    let mut warning_samples = Vec::new();
    // Samples are read only for rules that matched.
    for (i, (severity, reason)) in w.checks.iter().enumerate() {
        let samples = match severity {
            Severity::Error => &mut error_samples,
            Severity::Warning => &mut warning_samples,
        };
        let room = MAX_SAMPLES.saturating_sub(samples.len() as u64);
        if counts[i + 1] == 0 || room == 0 {
            continue;
        }
        let mut b = w.samples[i].clone();
        b.param(Value::Int(room as i64), ColType::Int);
        for r in conn.query(&b.sql, &b.params, &[ColType::Text]).await? {
            samples.push(SampledRow {
                id: r[0].as_text().unwrap_or_default().to_string(),
                reason: reason.clone(),
            });
        }
    }
    Ok(Scanned {
        exported: counts[0],
        errors: counts[n + 1],
        warnings: counts[n + 2],
        error_samples,
        warning_samples,
        source_checksum,
    })
}

/// An estimate of each transform's source rows, in order, at no cost: the size of a
/// copy before it starts ([`estimate`]). The copy reports each entity's exact count as
/// it learns it ([`CopyObserver::progress`]).
pub async fn estimated_rows(
    source: &EnvDb,
    transforms: &[(EntityTransform, SourceTypes)],
) -> Result<Vec<u64>> {
    let mut conn = source.pool().conn().await?;
    let mut out = Vec::with_capacity(transforms.len());
    for (t, _) in transforms {
        out.push(estimate(&mut conn, &source.qualify(&t.source_table)).await?);
    }
    Ok(out)
}

/// The rows of `table` without reading it. SQLite: the span of rowids (two pages;
/// exact unless rows were deleted, an overestimate then); PostgreSQL: the planner's
/// `reltuples`, or a count for a table never analysed.
async fn estimate(conn: &mut Conn, table: &str) -> Result<u64> {
    let mut b = SqlBuf::new(conn.dialect());
    match conn.dialect() {
        // One aggregate per subquery: SQLite answers a lone MIN or MAX of the rowid
        // from one end of the table, but scans it for both in one SELECT.
        Dialect::Sqlite => b.push(&format!(
            "SELECT COALESCE((SELECT MAX(rowid) FROM {table}) - (SELECT MIN(rowid) FROM {table}) + 1, 0)"
        )),
        Dialect::Postgres => b
            .push("SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END FROM pg_class c WHERE c.oid = CAST(")
            .param(Value::Text(table.to_string()), ColType::Text)
            .push(" AS regclass)"),
    };
    let estimate = conn
        .query_opt(&b.sql, &b.params, &[ColType::Int])
        .await?
        .and_then(|r| r[0].as_int());
    let n = match estimate {
        Some(n) => n,
        None => count(conn, table).await? as i64,
    };
    Ok(n.max(0) as u64)
}

async fn count(conn: &mut Conn, table: &str) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let n = conn.query_opt(&sql, &[], &[ColType::Int]).await?;
    Ok(n.and_then(|r| r[0].as_int()).unwrap_or(0).max(0) as u64)
}

/// Every entity's estimated size, told to the observer before any row moves, so the
/// whole copy's size is known from the first report. A full `COUNT(*)` of every table
/// up front cost more than the progress is worth: PostgreSQL's lanes count each entity
/// exactly in their scan, in parallel, and SQLite's load counts it on the way.
async fn estimate_all(conn: &mut Conn, work: &[Work], stop: &Stop) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(work.len());
    for w in work {
        let n = estimate(conn, &w.src).await?;
        stop.observer.progress(&w.source_entity, 0, n);
        out.push(n);
    }
    Ok(out)
}

/// Loads one entity of `total` rows in chunks; returns the rows inserted.
async fn load(
    conn: &mut Conn,
    w: &Work,
    total: u64,
    limits: CopyLimits,
    stop: &Stop,
) -> Result<u64> {
    let dialect = conn.dialect();
    let plan = chunks(conn, dialect, &w.src, total, limits.chunk_rows).await?;
    let mut imported = 0;
    for (n, range) in plan.iter().enumerate() {
        stop.check()?;
        stop.observer.chunk_started(&w.source_entity);
        let mut ins = w.insert_head.clone();
        range.predicate(&mut ins);
        ins.append(&w.insert_tail);
        imported += conn.execute(&ins.sql, &ins.params).await?;
        let done = total * (n as u64 + 1) / plan.len() as u64;
        stop.observer.progress(&w.source_entity, done, total);
        if limits.chunk_pause_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(limits.chunk_pause_ms)).await;
        }
    }
    Ok(imported)
}

async fn build_keys(conn: &mut Conn, w: &Work, stop: &Stop) -> Result<()> {
    for stmt in &w.keys {
        stop.check()?;
        conn.batch(stmt).await?;
    }
    stop.observer.keyed(&w.source_entity);
    Ok(())
}

/// Row count and checksum of one entity's target table.
async fn read_back(conn: &mut Conn, w: &Work) -> Result<(u64, String)> {
    let row = conn
        .query_opt(
            &w.check.sql,
            &w.check.params,
            &[ColType::Int, ColType::Text],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("checksum query returned nothing".into()))?;
    Ok((row[0].as_int().unwrap_or(0) as u64, checksum_text(&row[1])))
}

/// The caller's cancel, and a failure in another lane: either stops every lane at its
/// next chunk or statement.
struct Stop {
    observer: Arc<dyn CopyObserver>,
    failed: AtomicBool,
}

impl Stop {
    fn check(&self) -> Result<()> {
        if self.observer.cancelled() {
            return Err(StoreError::Conflict("the copy was cancelled".into()));
        }
        if self.failed.load(Ordering::Relaxed) {
            return Err(StoreError::Conflict(KNOCK_ON.into()));
        }
        Ok(())
    }

    /// Passes a lane's result on, telling the other lanes to stop if it failed.
    fn watch<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        r
    }
}

fn copied(w: &Work, s: Scanned, imported: u64, target: (u64, String)) -> EntityCopy {
    EntityCopy {
        source_entity: w.source_entity.clone(),
        target_entity: w.target_entity.clone(),
        exported: s.exported,
        imported,
        errors: s.errors,
        warnings: s.warnings,
        error_samples: s.error_samples,
        warning_samples: s.warning_samples,
        source_rows: s.exported - s.errors.min(s.exported),
        source_checksum: s.source_checksum,
        target_rows: target.0,
        target_checksum: target.1,
    }
}

/// What a lane reports when it stopped because another one failed.
const KNOCK_ON: &str = "another part of the copy failed";

fn is_knock_on(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(m) if m == KNOCK_ON)
}

/// Waits for every lane; on failure, reports the cause rather than the lanes that
/// stopped because of it.
async fn join<T>(lanes: Vec<tokio::task::JoinHandle<Result<Vec<T>>>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for lane in lanes {
        match lane.await {
            Ok(Ok(v)) => out.extend(v),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(StoreError::Task(e.to_string())),
        }
    }
    if let Some(i) = errors.iter().position(|e| !is_knock_on(e)) {
        return Err(errors.swap_remove(i));
    }
    match errors.pop() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Copies every entity of `transforms` from `source` into `target`, whose tables exist,
/// are empty and have no keys yet ([`crate::ddl::Keys::AfterLoad`]); builds the keys
/// and reads each table back for the check.
pub async fn copy(
    source: &EnvDb,
    target: &EnvDb,
    transforms: &[(EntityTransform, SourceTypes)],
    ctx: &EvalContext,
    limits: CopyLimits,
    observer: Arc<dyn CopyObserver>,
) -> Result<Vec<EntityCopy>> {
    let (pool, tables) = open_tables(source, target)?;
    let dialect = pool.dialect();
    let work: Vec<Work> = transforms
        .iter()
        .enumerate()
        .map(|(slot, (t, types))| prepare(slot, dialect, &tables, target, t, types, ctx))
        .collect::<Result<_>>()?;
    let work = Arc::new(work);
    let stop = Arc::new(Stop {
        observer,
        failed: AtomicBool::new(false),
    });
    let mut out = match dialect {
        Dialect::Sqlite => copy_sqlite(target, pool, work.clone(), limits, stop).await?,
        Dialect::Postgres => {
            let (src, tgt) = (
                source.schema().unwrap_or("public"),
                target.schema().unwrap_or("public"),
            );
            let role = ReaderRole::create(&pool, src, tgt).await?;
            let copied = copy_postgres(pool.clone(), &role, work.clone(), limits, stop).await;
            // The role goes whatever the copy's outcome; the copy's error comes first.
            let finished = role.finish(&pool).await;
            let copied = copied?;
            finished?;
            copied
        }
    };
    // In the order the caller gave.
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// SQLite, which has one writer: one connection loads every entity, tallying the
/// source as it goes, builds the keys, commits, and reads the tables back.
async fn copy_sqlite(
    target: &EnvDb,
    pool: Pool,
    work: Arc<Vec<Work>>,
    limits: CopyLimits,
    stop: Arc<Stop>,
) -> Result<Vec<(usize, EntityCopy)>> {
    let tallies: Tallies = Arc::new(Mutex::new(
        work.iter()
            .map(|w| Tally::new(w.checks.clone(), MAX_SAMPLES as usize))
            .collect(),
    ));
    // The load writes a new file's pages once, straight into it, with a rollback
    // journal (which skips pages the file did not have), rather than into the WAL
    // and again at the checkpoint. Changing the mode needs the only open connection,
    // so the test database's own idle ones are closed first; should another
    // connection hold it open, the mode stays WAL and the load is merely slower.
    if let Pool::Sqlite(p) = target.pool() {
        p.close_idle();
    }
    let mut conn = pool.conn().await?;
    conn.batch("PRAGMA main.journal_mode = DELETE").await?;
    // A dropped connection rolls back, so an error below leaves nothing half-loaded.
    conn.batch("BEGIN DEFERRED").await?;
    let t = tallies.clone();
    conn.with_sqlite(move |c| Ok(crate::tally::register(c, t)?))
        .await?;
    let started = std::time::Instant::now();
    let totals = estimate_all(&mut conn, &work, &stop).await?;
    let mut imported = Vec::new();
    for (i, (w, total)) in work.iter().zip(totals).enumerate() {
        imported.push(load(&mut conn, w, total, limits, &stop).await?);
        // The tally counted the rows the load read: the exact size, should rows have
        // been deleted since the estimate.
        let counted = tallies
            .lock()
            .map_err(|_| StoreError::Pool("tally lock poisoned".into()))?[i]
            .rows;
        if counted != total {
            stop.observer.progress(&w.source_entity, counted, counted);
        }
    }
    let loaded = started.elapsed();
    for w in work.iter() {
        build_keys(&mut conn, w, &stop).await?;
    }
    let keyed = started.elapsed();
    conn.batch("COMMIT").await?;
    conn.batch("PRAGMA main.journal_mode = WAL").await?;
    let committed = started.elapsed();
    let mut out = Vec::new();
    for (i, w) in work.iter().enumerate() {
        stop.check()?;
        let back = read_back(&mut conn, w).await?;
        stop.observer.read_back(&w.source_entity);
        let scanned = tallies
            .lock()
            .map_err(|_| StoreError::Pool("tally lock poisoned".into()))
            .map(|mut all| scanned(std::mem::take(&mut all[i])))?;
        out.push((i, copied(w, scanned, imported[i], back)));
    }
    tracing::debug!(
        ?loaded,
        ?keyed,
        ?committed,
        read_back = ?started.elapsed(),
        "copied"
    );
    Ok(out)
}

/// What the tally saw, in the form the scan gives on PostgreSQL.
fn scanned(t: Tally) -> Scanned {
    let samples = |set: std::collections::BTreeSet<(String, String)>| {
        set.into_iter()
            .map(|(id, reason)| SampledRow { id, reason })
            .collect()
    };
    Scanned {
        exported: t.rows,
        errors: t.errors,
        warnings: t.warnings,
        error_samples: samples(t.error_samples),
        warning_samples: samples(t.warning_samples),
        source_checksum: (t.checksum as i64).to_string(),
    }
}

/// PostgreSQL: lanes take whole entities, largest first, each in a transaction that
/// reads the snapshot exported by a holding transaction, and scan, load, key and read
/// back each one, as a role that may only read production ([`ReaderRole`]).
async fn copy_postgres(
    pool: Pool,
    role: &ReaderRole,
    work: Arc<Vec<Work>>,
    limits: CopyLimits,
    stop: Arc<Stop>,
) -> Result<Vec<(usize, EntityCopy)>> {
    let (mut hold, snapshot) = pool.begin_exported().await?;
    estimate_all(&mut hold, &work, &stop).await?;
    // Largest first, so the last entity to finish is a small one.
    let mut sizes = Vec::new();
    for (i, w) in work.iter().enumerate() {
        let mut b = SqlBuf::new(Dialect::Postgres);
        b.push("SELECT pg_relation_size(CAST(")
            .param(Value::Text(w.src.clone()), ColType::Text)
            .push(" AS regclass))");
        let size = hold
            .query_opt(&b.sql, &b.params, &[ColType::Int])
            .await?
            .and_then(|r| r[0].as_int())
            .unwrap_or(0);
        sizes.push((size, i));
    }
    sizes.sort_by(|a, b| b.cmp(a));
    let queue = Arc::new(Mutex::new(
        sizes.into_iter().map(|(_, i)| i).collect::<VecDeque<_>>(),
    ));
    let mut lanes = Vec::new();
    for _ in 0..POSTGRES_LANES.min(work.len().max(1)) {
        let (work, stop, pool, queue, snapshot) = (
            work.clone(),
            stop.clone(),
            pool.clone(),
            queue.clone(),
            snapshot.clone(),
        );
        let role = role.clone();
        lanes.push(tokio::spawn(async move {
            let r = async {
                let mut tx = pool.begin_at(&snapshot).await?;
                role.enter(&mut tx).await?;
                let mut out = Vec::new();
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(i) = next else { break };
                    let w = &work[i];
                    stop.check()?;
                    let t0 = std::time::Instant::now();
                    let s = scan(&mut tx, w).await?;
                    let t1 = t0.elapsed();
                    // The scan counted the rows in the snapshot the lane loads from.
                    stop.observer.progress(&w.source_entity, 0, s.exported);
                    let imported = load(&mut tx, w, s.exported, limits, &stop).await?;
                    let t2 = t0.elapsed();
                    build_keys(&mut tx, w, &stop).await?;
                    let t3 = t0.elapsed();
                    // Read back inside the lane's transaction: its own rows, as stored.
                    let back = read_back(&mut tx, w).await?;
                    stop.observer.read_back(&w.source_entity);
                    tracing::debug!(
                        entity = %w.source_entity,
                        scanned = ?t1,
                        loaded = ?t2,
                        keyed = ?t3,
                        read_back = ?t0.elapsed(),
                        "copied"
                    );
                    out.push((i, copied(w, s, imported, back)));
                }
                tx.commit().await?;
                Ok(out)
            }
            .await;
            stop.watch(r)
        }));
    }
    let done = join(lanes).await?;
    hold.rollback().await?;
    Ok(done)
}

fn checksum_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The row count and checksum of a target table as the copy's check computes them,
/// for a caller that wants to check the target again later.
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
