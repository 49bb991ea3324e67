//! SQLite: a small pool of rusqlite connections, used from async code by moving the
//! connection onto a blocking thread for each statement.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uplift_model::value::{format_date, format_instant, parse_date, parse_instant};
use uplift_model::{ColType, Value};

use super::Row;
use crate::{Result, StoreError};

/// How many connections one SQLite file may have open at once. WAL mode lets readers
/// run beside the single writer; more than a handful buys nothing on small machines.
pub const POOL_MAX_CONNECTIONS: usize = 8;
/// How long a writer waits for the write lock before giving up.
pub const BUSY_TIMEOUT_MS: u64 = 10_000;
const STATEMENT_CACHE_CAPACITY: usize = 256;

/// Connections to one SQLite file.
pub struct SqlitePool {
    path: PathBuf,
    /// Other database files attached to every connection, by schema alias.
    attached: Vec<(String, PathBuf)>,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl SqlitePool {
    /// Opens (creating if needed) a database file in WAL mode.
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        Self::open_with(path, Vec::new())
    }

    /// Opens a pool whose connections also see other files under aliases
    /// (`ATTACH`), read-only, so one statement can read one database and write
    /// another, and nothing can write the attached ones (step 1 attaches production).
    pub fn open_with(path: &Path, attached: Vec<(String, PathBuf)>) -> Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let first = open_conn(path, &attached)?;
        first.pragma_update(None, "journal_mode", "WAL")?;
        Ok(Arc::new(SqlitePool {
            path: path.to_path_buf(),
            attached,
            idle: Mutex::new(vec![first]),
            permits: Arc::new(Semaphore::new(POOL_MAX_CONNECTIONS)),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn get(self: &Arc<Self>) -> Result<SqliteConn> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let idle = self
            .idle
            .lock()
            .map_err(|_| StoreError::Pool("pool lock poisoned".into()))?
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => open_conn(&self.path, &self.attached)?,
        };
        Ok(SqliteConn {
            conn: Some(conn),
            pool: self.clone(),
            _permit: permit,
        })
    }

    /// Closes every idle connection, so the file can be deleted.
    pub fn close_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

fn open_conn(path: &Path, attached: &[(String, PathBuf)]) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    for (alias, file) in attached {
        let sql = format!("ATTACH DATABASE ?1 AS {}", crate::sql::ident(alias));
        conn.execute(&sql, [read_only_uri(file)])?;
    }
    crate::checksum::register(&conn)?;
    crate::decimal_sql::register(&conn)?;
    Ok(conn)
}

/// A `file:` URI that opens `path` read-only. `%`, `?` and `#` would end or escape the
/// path in a URI, so they are percent-encoded.
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3F"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

/// A connection checked out of a [`SqlitePool`].
pub struct SqliteConn {
    conn: Option<Connection>,
    pool: Arc<SqlitePool>,
    _permit: OwnedSemaphorePermit,
}

impl SqliteConn {
    /// Runs `f` with the connection off the async executor's hot path. Elsewhere (a
    /// current-thread runtime) it moves to a blocking thread and back; if the caller is
    /// cancelled meanwhile, the connection is dropped with the thread's work, never
    /// reused half-way through.
    pub(crate) async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        // On a multi-threaded runtime a statement runs in place: most take
        // microseconds, less than handing the connection to another thread and back.
        if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
            let conn = self.conn.as_mut().ok_or_else(|| {
                StoreError::Pool("connection lost by a cancelled statement".into())
            })?;
            return tokio::task::block_in_place(|| f(conn));
        }
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| StoreError::Pool("connection lost by a cancelled statement".into()))?;
        let (conn, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut conn);
            (conn, out)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        self.conn = Some(conn);
        out
    }

    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        types: &[ColType],
    ) -> Result<Vec<Row>> {
        let (sql, params, types) = (sql.to_string(), params.to_vec(), types.to_vec());
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(Param)))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(read_row(row, &types)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let (sql, params) = (sql.to_string(), params.to_vec());
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(Param)))? as u64)
        })
        .await
    }

    pub(crate) async fn batch(&mut self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.run(move |c| Ok(c.execute_batch(&sql)?)).await
    }
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
                return; // a connection we cannot reset is closed, not reused
            }
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(conn);
            }
        }
    }
}

/// A [`Value`] bound as a SQLite parameter, in the storage form [`read_value`] reads.
pub struct Param<'a>(pub &'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Value::Decimal(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(d.to_string())),
            Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
            Value::Date(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(format_date(*d))),
            Value::DateTime(t) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Text(format_instant(*t)))
            }
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// Reads a row's columns as the given types.
pub fn read_row(row: &rusqlite::Row<'_>, types: &[ColType]) -> Result<Row> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| read_value(row.get_ref(i)?, *t))
        .collect()
}

/// Reads one stored value as `ty`, accepting SQLite's loose typing (an integer where a
/// real is expected, say) but nothing that would change the value's meaning.
pub fn read_value(v: ValueRef<'_>, ty: ColType) -> Result<Value> {
    let bad = |what: &str| StoreError::Corrupt(format!("expected {ty:?}, found {what}"));
    Ok(match (v, ty) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Text(t), ColType::Text) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Integer(i), ColType::Int) => Value::Int(i),
        (v @ (ValueRef::Integer(_) | ValueRef::Real(_) | ValueRef::Text(_)), ColType::Decimal) => {
            Value::Decimal(
                crate::decimal_sql::read(v).ok_or_else(|| bad("a value that is not a decimal"))?,
            )
        }
        (ValueRef::Integer(i), ColType::Bool) => Value::Bool(i != 0),
        (ValueRef::Text(t), ColType::Date) => {
            let s = std::str::from_utf8(t).map_err(|_| bad("non-UTF-8 text"))?;
            Value::Date(parse_date(s).ok_or_else(|| bad(s))?)
        }
        (ValueRef::Text(t), ColType::DateTime) => {
            let s = std::str::from_utf8(t).map_err(|_| bad("non-UTF-8 text"))?;
            Value::DateTime(parse_instant(s).ok_or_else(|| bad(s))?)
        }
        (ValueRef::Blob(b), ColType::Bytes) => Value::Bytes(b.to_vec()),
        (ValueRef::Integer(i), ColType::Text) => Value::Text(i.to_string()),
        (other, _) => return Err(bad(&format!("{:?}", other.data_type()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step 1 attaches production to the test database's connection: it reads it and
    /// can write nothing to it, even by mistake. A name with URI characters still
    /// opens the file it names.
    #[tokio::test]
    async fn attached_databases_are_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("pro%d #1?.db");
        let db = Connection::open(&source).unwrap();
        db.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)")
            .unwrap();
        // Closed, so no other connection keeps its WAL index (as when step 1 resumes
        // after a restart, before production was opened).
        drop(db);
        let pool = SqlitePool::open_with(
            &dir.path().join("test.db"),
            vec![("src".into(), source.clone())],
        )
        .unwrap();
        let mut conn = pool.get().await.unwrap();
        let rows = conn
            .query("SELECT x FROM src.t", &[], &[ColType::Int])
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![Value::Int(1)]],
            "it reads the attached file"
        );
        let write = conn.execute("INSERT INTO src.t VALUES (2)", &[]).await;
        let Err(crate::StoreError::Sqlite(e)) = write else {
            panic!("a write to the attached database was not refused: {write:?}");
        };
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ReadOnly),
            "{e}"
        );
        conn.execute("CREATE TABLE main.copy AS SELECT x FROM src.t", &[])
            .await
            .expect("the main database takes writes");
    }
}
