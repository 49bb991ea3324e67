//! One interface over SQLite and PostgreSQL: pooled connections, parameterised
//! statements with typed values, and transactions that roll back when dropped.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use uplift_model::{ColType, Value};

use crate::{Result, StoreError};

/// Which SQL the statements must be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A pool of connections to one database (a SQLite file, or a PostgreSQL server whose
/// schemas hold several logical databases).
#[derive(Clone)]
pub enum Pool {
    Sqlite(Arc<sqlite::SqlitePool>),
    Postgres(deadpool_postgres::Pool),
}

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn conn(&self) -> Result<Conn> {
        Ok(Conn {
            inner: match self {
                Pool::Sqlite(p) => Inner::Sqlite(p.get().await?),
                Pool::Postgres(p) => Inner::Postgres(Some(
                    p.get().await.map_err(|e| StoreError::Pool(e.to_string()))?,
                )),
            },
        })
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes cannot fail
    /// half-way on a lock upgrade.
    pub async fn begin(&self) -> Result<Tx> {
        let mut conn = self.conn().await?;
        let sql = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        conn.batch(sql).await?;
        Ok(Tx { conn, done: false })
    }

    /// Starts a transaction that reads one snapshot and may write: SQLite's deferred
    /// transaction (write lock only at the first write, on the written database) and
    /// PostgreSQL's repeatable read. A long copy reads production without blocking it.
    pub async fn begin_snapshot(&self) -> Result<Tx> {
        let mut conn = self.conn().await?;
        let sql = match self.dialect() {
            Dialect::Sqlite => "BEGIN DEFERRED",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        };
        conn.batch(sql).await?;
        Ok(Tx { conn, done: false })
    }

    /// Starts a PostgreSQL read-only transaction whose snapshot others can join with
    /// [`Pool::begin_at`], so several connections read exactly the same data in
    /// parallel. The snapshot lives as long as this transaction.
    pub async fn begin_exported(&self) -> Result<(Tx, String)> {
        if self.dialect() != Dialect::Postgres {
            return Err(StoreError::Invalid(
                "exported snapshots are a PostgreSQL feature".into(),
            ));
        }
        let mut tx = self.begin_read().await?;
        let id = tx
            .query_opt("SELECT pg_export_snapshot()", &[], &[ColType::Text])
            .await?
            .and_then(|r| r[0].as_text().map(str::to_string))
            .ok_or_else(|| StoreError::Corrupt("no snapshot was exported".into()))?;
        Ok((tx, id))
    }

    /// Starts a PostgreSQL transaction that reads the snapshot `id` exported by
    /// [`Pool::begin_exported`] and may write.
    pub async fn begin_at(&self, id: &str) -> Result<Tx> {
        // Snapshot ids are hex digits and dashes; anything else is not one of ours.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::Invalid(format!("'{id}' is not a snapshot id")));
        }
        let mut conn = self.conn().await?;
        conn.batch(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{id}'"
        ))
        .await?;
        Ok(Tx { conn, done: false })
    }

    /// Starts a read-only transaction: one consistent snapshot for several queries.
    pub async fn begin_read(&self) -> Result<Tx> {
        let mut conn = self.conn().await?;
        let sql = match self.dialect() {
            Dialect::Sqlite => "BEGIN DEFERRED",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        conn.batch(sql).await?;
        Ok(Tx { conn, done: false })
    }
}

/// A pooled connection; returned to its pool when dropped.
pub struct Conn {
    inner: Inner,
}

enum Inner {
    Sqlite(sqlite::SqliteConn),
    /// `None` once the connection has been discarded (see [`Tx`]'s drop).
    Postgres(Option<deadpool_postgres::Object>),
}

/// One result row: one value per requested column type.
pub type Row = Vec<Value>;

impl Conn {
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a query and reads each row's columns as `types` says.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        types: &[ColType],
    ) -> Result<Vec<Row>> {
        match &mut self.inner {
            Inner::Sqlite(c) => c.query(sql, params, types).await,
            Inner::Postgres(c) => postgres::query(live(c)?, sql, params, types).await,
        }
    }

    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[Value],
        types: &[ColType],
    ) -> Result<Option<Row>> {
        Ok(self.query(sql, params, types).await?.into_iter().next())
    }

    /// Runs a statement and returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        match &mut self.inner {
            Inner::Sqlite(c) => c.execute(sql, params).await,
            Inner::Postgres(c) => postgres::execute(live(c)?, sql, params).await,
        }
    }

    /// Runs several parameterless statements (DDL, transaction control).
    pub async fn batch(&mut self, sql: &str) -> Result<()> {
        match &mut self.inner {
            Inner::Sqlite(c) => c.batch(sql).await,
            Inner::Postgres(c) => Ok(live(c)?.batch_execute(sql).await?),
        }
    }

    /// Gives access to the raw SQLite connection for bulk work that must not pay a
    /// thread hop per row.
    pub async fn with_sqlite<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match &mut self.inner {
            Inner::Sqlite(c) => c.run(f).await,
            Inner::Postgres(_) => Err(StoreError::Invalid("not a SQLite connection".into())),
        }
    }

    /// The raw PostgreSQL client, for COPY.
    pub fn postgres_client(&self) -> Option<&deadpool_postgres::Object> {
        match &self.inner {
            Inner::Postgres(Some(c)) => Some(c),
            _ => None,
        }
    }

    fn discard(&mut self) {
        if let Inner::Postgres(c) = &mut self.inner
            && let Some(obj) = c.take()
        {
            // Detach from the pool: the connection closes and the server rolls back.
            drop(deadpool_postgres::Object::take(obj));
        }
        // A SQLite connection rolls back when it goes back to its pool.
    }
}

fn live(c: &mut Option<deadpool_postgres::Object>) -> Result<&mut deadpool_postgres::Object> {
    c.as_mut()
        .ok_or_else(|| StoreError::Pool("connection was discarded".into()))
}

/// A transaction. Dropping it without [`Tx::commit`] rolls it back, so an early return
/// or a panic never leaves half a change behind.
pub struct Tx {
    conn: Conn,
    done: bool,
}

impl Tx {
    pub async fn commit(mut self) -> Result<()> {
        self.conn.batch("COMMIT").await?;
        self.done = true;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<()> {
        self.conn.batch("ROLLBACK").await?;
        self.done = true;
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.done {
            self.conn.discard();
        }
    }
}
