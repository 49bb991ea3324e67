//! Change capture for step 3: triggers on every entity table write `(seq, entity,
//! record_id, op)` into `_uplift_changes` in the writing transaction, so a committed
//! write always leaves its change and a rolled-back one never does, whichever path made
//! it. Step 3 builds the new production from a snapshot taken after the triggers are
//! in, then applies the captured changes by id: a change only says *which* record to
//! read again, so applying one twice, or one the snapshot already held, is harmless.
//!
//! Changes are consumed, not followed by a cursor: on PostgreSQL a sequence number is
//! taken at insert time and a transaction can commit after a later one, so "everything
//! above the last seq applied" could skip it. Reading the oldest entries and deleting
//! exactly those applied leaves a late commit in the table for the next round.

use uplift_model::{ColType, Entity, Value};

use crate::Result;
use crate::engine::{Dialect, Tx};
use crate::envdb::EnvDb;
use crate::sql::{ident, placeholders};

/// The change table, in a database with capture installed.
pub const TABLE: &str = "_uplift_changes";
/// The trigger function (PostgreSQL), one per schema.
const FUNCTION: &str = "_uplift_capture";
/// Every capture trigger's name starts with this.
const TRIGGER_PREFIX: &str = "_uplift_cap_";

/// What a write did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
}

impl ChangeOp {
    fn code(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<ChangeOp> {
        [ChangeOp::Insert, ChangeOp::Update, ChangeOp::Delete]
            .into_iter()
            .find(|op| op.code() == s)
    }
}

/// One captured write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    /// The entity's name in the catalog (not its table's).
    pub entity: String,
    pub record_id: String,
    pub op: ChangeOp,
}

/// Attempts at installing capture: its triggers lock each table in turn, which a
/// write load can deadlock with or keep waiting.
const INSTALL_ATTEMPTS: u64 = 10;
/// How long the install waits for one table's lock (PostgreSQL) before it gives up and
/// tries again, so the writes queued behind its lock request are not held for long.
const INSTALL_LOCK_TIMEOUT_MS: u64 = 2_000;

/// Installs capture on every entity table of `db` (again, harmlessly, if it is in).
/// One transaction: writes are captured from its commit on, all of them or none. A
/// deadlock with writers, or a lock not granted in time, is tried again.
pub async fn install(db: &EnvDb) -> Result<()> {
    let mut attempt = 1;
    loop {
        match install_once(db).await {
            Err(e) if e.is_transient() && attempt < INSTALL_ATTEMPTS => {
                tracing::info!(attempt, error = %e, "capture not installed yet; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn install_once(db: &EnvDb) -> Result<()> {
    let mut tx = db.pool().begin().await?;
    if db.dialect() == Dialect::Postgres {
        tx.batch(&format!(
            "SET LOCAL lock_timeout = '{INSTALL_LOCK_TIMEOUT_MS}ms'"
        ))
        .await?;
    }
    tx.batch(&table_sql(db)).await?;
    if db.dialect() == Dialect::Postgres {
        tx.batch(&function_sql(db)).await?;
    }
    for e in &db.catalog().entities {
        tx.batch(&triggers_sql(db, e)).await?;
    }
    tx.commit().await
}

/// Removes the triggers, the change table and (PostgreSQL) the function. Also what a
/// rolled-back step 3 does, so it works when capture is half there or not at all.
pub async fn remove(db: &EnvDb) -> Result<()> {
    let mut tx = db.pool().begin().await?;
    for name in trigger_names(&mut tx, db).await? {
        let sql = match db.dialect() {
            Dialect::Sqlite => format!("DROP TRIGGER IF EXISTS {}", ident(&name.0)),
            Dialect::Postgres => format!(
                "DROP TRIGGER IF EXISTS {} ON {}",
                ident(&name.0),
                db.qualify(&name.1)
            ),
        };
        tx.batch(&sql).await?;
    }
    if db.dialect() == Dialect::Postgres {
        let f = db.qualify(FUNCTION);
        tx.batch(&format!("DROP FUNCTION IF EXISTS {f}()")).await?;
    }
    tx.batch(&format!("DROP TABLE IF EXISTS {}", db.qualify(TABLE)))
        .await?;
    tx.commit().await
}

/// Whether capture is installed: the change table exists.
pub async fn installed(db: &EnvDb) -> Result<bool> {
    let (sql, params) = match db.schema() {
        None => (
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?".to_string(),
            vec![Value::Text(TABLE.into())],
        ),
        Some(schema) => (
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2"
                .to_string(),
            vec![Value::Text(schema.into()), Value::Text(TABLE.into())],
        ),
    };
    let mut conn = db.pool().conn().await?;
    let row = conn.query_opt(&sql, &params, &[ColType::Int]).await?;
    Ok(matches!(row.map(|r| r.into_iter().next()), Some(Some(Value::Int(n))) if n > 0))
}

/// The oldest `limit` captured changes, in sequence order.
pub async fn oldest(db: &EnvDb, limit: u32) -> Result<Vec<Change>> {
    let sql = placeholders(
        db.dialect(),
        &format!(
            "SELECT seq, entity, record_id, op FROM {} ORDER BY seq LIMIT ?",
            db.qualify(TABLE)
        ),
    );
    let mut conn = db.pool().conn().await?;
    let types = [ColType::Int, ColType::Text, ColType::Text, ColType::Text];
    let rows = conn
        .query(&sql, &[Value::Int(i64::from(limit))], &types)
        .await?;
    rows.into_iter().map(change_of).collect()
}

/// Forgets the changes `seqs` (applied).
pub async fn consume(db: &EnvDb, seqs: &[i64]) -> Result<()> {
    db.delete_seqs(TABLE, seqs).await
}

/// Forgets every captured change: what a database recorded before it became
/// production (step 3's catch-up writing into it) is not a change a revert carries back.
pub async fn clear(db: &EnvDb) -> Result<()> {
    let mut conn = db.pool().conn().await?;
    conn.batch(&format!("DELETE FROM {}", db.qualify(TABLE)))
        .await
}

/// How many captured changes wait to be applied: the lag.
pub async fn lag(db: &EnvDb) -> Result<u64> {
    let sql = format!("SELECT count(*) FROM {}", db.qualify(TABLE));
    let mut conn = db.pool().conn().await?;
    let row = conn.query_opt(&sql, &[], &[ColType::Int]).await?;
    Ok(match row.and_then(|r| r.into_iter().next()) {
        Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    })
}

fn change_of(row: Vec<Value>) -> Result<Change> {
    let corrupt = || crate::StoreError::Corrupt("a captured change does not read".into());
    let mut it = row.into_iter();
    let (Some(Value::Int(seq)), Some(Value::Text(entity)), Some(Value::Text(record_id))) =
        (it.next(), it.next(), it.next())
    else {
        return Err(corrupt());
    };
    let op = match it.next() {
        Some(Value::Text(op)) => ChangeOp::parse(&op).ok_or_else(corrupt)?,
        _ => return Err(corrupt()),
    };
    Ok(Change {
        seq,
        entity,
        record_id,
        op,
    })
}

fn table_sql(db: &EnvDb) -> String {
    let seq = match db.dialect() {
        Dialect::Sqlite => "seq INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Postgres => "seq bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({seq}, entity TEXT NOT NULL, record_id TEXT NOT NULL, op TEXT NOT NULL)",
        db.qualify(TABLE)
    )
}

/// One PostgreSQL function for every table: the entity's name is the trigger's argument.
fn function_sql(db: &EnvDb) -> String {
    let table = db.qualify(TABLE);
    format!(
        "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO {table} (entity, record_id, op) VALUES (TG_ARGV[0], OLD.id::text, 'delete');
    RETURN OLD;
  END IF;
  INSERT INTO {table} (entity, record_id, op) VALUES (TG_ARGV[0], NEW.id::text, lower(TG_OP));
  RETURN NEW;
END
$body$",
        f = db.qualify(FUNCTION)
    )
}

/// The statements putting `e`'s triggers in place.
fn triggers_sql(db: &EnvDb, e: &Entity) -> String {
    let physical = uplift_model::layout::table_name(e);
    let table = db.table(e);
    let entity = literal(&e.name);
    match db.dialect() {
        Dialect::Postgres => {
            let name = ident(&format!("{TRIGGER_PREFIX}{physical}"));
            format!(
                "DROP TRIGGER IF EXISTS {name} ON {table};
CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {}({entity})",
                db.qualify(FUNCTION)
            )
        }
        Dialect::Sqlite => {
            let changes = db.qualify(TABLE);
            [
                ("insert", "AFTER INSERT", "NEW"),
                ("update", "AFTER UPDATE", "NEW"),
                ("delete", "AFTER DELETE", "OLD"),
            ]
            .iter()
            .map(|(op, when, row)| {
                let name = ident(&format!("{TRIGGER_PREFIX}{physical}_{op}"));
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {name} {when} ON {table} BEGIN INSERT INTO {changes} (entity, record_id, op) VALUES ({entity}, {row}.\"id\", '{op}'); END;"
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
        }
    }
}

/// Every capture trigger in `db`: its name and its table.
async fn trigger_names(tx: &mut Tx, db: &EnvDb) -> Result<Vec<(String, String)>> {
    let (sql, params) = match db.schema() {
        None => (
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, ?) = ?"
                .to_string(),
            vec![
                Value::Int(TRIGGER_PREFIX.len() as i64),
                Value::Text(TRIGGER_PREFIX.into()),
            ],
        ),
        Some(schema) => (
            "SELECT DISTINCT trigger_name::text, event_object_table::text FROM information_schema.triggers WHERE trigger_schema = $1 AND left(trigger_name, $2) = $3"
                .to_string(),
            vec![
                Value::Text(schema.into()),
                Value::Int(TRIGGER_PREFIX.len() as i64),
                Value::Text(TRIGGER_PREFIX.into()),
            ],
        ),
    };
    let rows = tx
        .query(&sql, &params, &[ColType::Text, ColType::Text])
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match <[Value; 2]>::try_from(r) {
            Ok([Value::Text(n), Value::Text(t)]) => Some((n, t)),
            _ => None,
        })
        .collect())
}

/// `s` as a SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
