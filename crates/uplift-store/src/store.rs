//! The storage facade the server holds: the control plane plus a registry of open
//! environment databases, on whichever backend the platform was started with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::RwLock;
use uplift_model::SchemaVersion;
use uplift_model::security::SecurityMode;
use uplift_model::standard::initial_catalog;

use crate::control::{Control, EnvRecord};
use crate::engine::sqlite::SqlitePool;
use crate::engine::{Pool, postgres};
use crate::envdb::EnvDb;
use crate::gate::WriteGate;
use crate::sql::ident;
use crate::{Result, StoreError};

/// Where the platform keeps its data.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Embedded: `DATA_DIR/control.db` and `DATA_DIR/envs/<env>/<database>.db`.
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL server: control plane in schema `uplift`, each environment
    /// database in a schema `env_<name>`.
    Postgres { url: String },
}

enum Engines {
    Sqlite { data_dir: PathBuf },
    Postgres { pool: Pool },
}

/// Bytes a copy of production needs and (where known) the bytes free for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub needed_bytes: u64,
    pub available_bytes: Option<u64>,
}

/// The name of a production database (the first; upgrades add others later).
pub const PROD_DATABASE: &str = "prod";
/// The control plane's PostgreSQL schema.
pub const CONTROL_SCHEMA: &str = "uplift";

/// Control plane and environment databases.
pub struct Store {
    engines: Engines,
    control: Control,
    envs: RwLock<HashMap<String, Arc<EnvDb>>>,
    /// Databases besides production (upgrade test databases), by (env, database).
    others: RwLock<HashMap<(String, String), Arc<EnvDb>>>,
    /// Held while an environment is created, so two creates of one name cannot clear
    /// each other's database; on PostgreSQL an advisory lock extends it to every
    /// server sharing the control plane.
    creating: tokio::sync::Mutex<()>,
    /// Each environment's write gate, shared by every production database it has had.
    gates: std::sync::Mutex<HashMap<String, Arc<WriteGate>>>,
}

/// The advisory lock PostgreSQL servers take to create environments one at a time.
const PG_CREATE_LOCK_KEY: i64 = 0x7570_6c69_6665; // "uplife"

/// Environment names become file names and schema names, so they are kept plain.
pub fn valid_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl Store {
    pub async fn open(backend: Backend) -> Result<Store> {
        let (engines, control) = match backend {
            Backend::Sqlite { data_dir } => {
                std::fs::create_dir_all(&data_dir)?;
                let pool = Pool::Sqlite(SqlitePool::open(&data_dir.join("control.db"))?);
                (
                    Engines::Sqlite { data_dir },
                    Control::open(pool, None).await?,
                )
            }
            Backend::Postgres { url } => {
                let pool = Pool::Postgres(postgres::connect(&url)?);
                let control = Control::open(pool.clone(), Some(CONTROL_SCHEMA)).await?;
                (Engines::Postgres { pool }, control)
            }
        };
        Ok(Store {
            engines,
            control,
            envs: RwLock::new(HashMap::new()),
            others: RwLock::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            gates: Default::default(),
        })
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Which engine serves environment databases ("sqlite" or "postgres").
    pub fn engine_name(&self) -> &'static str {
        match self.engines {
            Engines::Sqlite { .. } => "sqlite",
            Engines::Postgres { .. } => "postgres",
        }
    }

    fn sqlite_path(data_dir: &std::path::Path, env: &str, database: &str) -> PathBuf {
        data_dir
            .join("envs")
            .join(env)
            .join(format!("{database}.db"))
    }

    fn pg_schema(env: &str, database: &str) -> String {
        if database == PROD_DATABASE {
            format!("env_{env}")
        } else {
            format!("env_{env}__{}", database.replace('-', ""))
        }
    }

    fn location(&self, env: &str, database: &str) -> Result<(Pool, Option<String>)> {
        Ok(match &self.engines {
            Engines::Sqlite { data_dir } => {
                let path = Self::sqlite_path(data_dir, env, database);
                (Pool::Sqlite(SqlitePool::open(&path)?), None)
            }
            Engines::Postgres { pool } => (pool.clone(), Some(Self::pg_schema(env, database))),
        })
    }

    /// Creates an environment: its production database with the version's initial
    /// catalog, then its control-plane record.
    pub async fn create_environment(
        &self,
        name: &str,
        version: SchemaVersion,
        mode: SecurityMode,
    ) -> Result<EnvRecord> {
        if !valid_env_name(name) {
            return Err(StoreError::Invalid(format!(
                "'{name}' is not a valid environment name: use 1 to 40 lower-case letters, digits or underscores, starting with a letter"
            )));
        }
        let _one_at_a_time = self.creating.lock().await;
        let _across_servers = self.create_lock().await?;
        if self.control.get_env(name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "environment '{name}' already exists"
            )));
        }
        // A database left behind by an interrupted create or delete is removed first.
        self.drop_database(name, PROD_DATABASE).await?;
        let (pool, schema) = self.location(name, PROD_DATABASE)?;
        let db = EnvDb::create(pool, schema, initial_catalog(version)).await?;
        let record = EnvRecord {
            name: name.into(),
            schema_version: version,
            security_mode: mode,
            created_at: uplift_model::value::format_instant(time::OffsetDateTime::now_utc()),
            database: PROD_DATABASE.into(),
        };
        if let Err(e) = self.control.insert_env(&record).await {
            drop(db);
            self.drop_database(name, PROD_DATABASE).await?;
            return Err(e);
        }
        db.share_gate(self.gate(name));
        self.envs.write().await.insert(name.into(), Arc::new(db));
        Ok(record)
    }

    /// On PostgreSQL, a transaction holding the creation lock until it is dropped
    /// (a dropped transaction's session is closed, which releases the lock, after a
    /// panic too).
    async fn create_lock(&self) -> Result<Option<crate::engine::Tx>> {
        let Engines::Postgres { pool } = &self.engines else {
            return Ok(None);
        };
        let mut tx = pool.begin().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[uplift_model::Value::Int(PG_CREATE_LOCK_KEY)],
        )
        .await?;
        Ok(Some(tx))
    }

    /// The production database of an environment, opened on first use.
    pub async fn env_db(&self, name: &str) -> Result<Arc<EnvDb>> {
        if let Some(db) = self.envs.read().await.get(name) {
            return Ok(db.clone());
        }
        let record = self
            .control
            .get_env(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no environment '{name}'")))?;
        let mut envs = self.envs.write().await;
        if let Some(db) = envs.get(name) {
            return Ok(db.clone());
        }
        let (pool, schema) = self.location(name, &record.database)?;
        let db = Arc::new(EnvDb::open(pool, schema).await?);
        db.share_gate(self.gate(name));
        envs.insert(name.into(), db.clone());
        Ok(db)
    }

    /// The write gate of `env`'s production (see [`crate::gate`]).
    pub fn gate(&self, env: &str) -> Arc<WriteGate> {
        self.gates
            .lock()
            .map(|mut g| g.entry(env.to_string()).or_default().clone())
            .unwrap_or_default()
    }

    /// Step 3's switch, first half: applies `s` in the control plane (one
    /// transaction). Call with the environment's gate closed, then
    /// [`Store::serve_switched`].
    pub async fn commit_switch(&self, s: &crate::control::Switch) -> Result<()> {
        self.database(&s.env, &s.to_database).await?;
        self.control.switch(s).await
    }

    /// Step 3's switch, second half: serves `s.to_database` as `s.env`'s production,
    /// carrying `renames` (see [`EnvDb::renames`]), and retires the old one, whose
    /// waiting writes then go to the new one.
    pub async fn serve_switched(
        &self,
        s: &crate::control::Switch,
        renames: std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let new = self.database(&s.env, &s.to_database).await?;
        // A revert switches back to a database an earlier switch retired.
        new.reinstate();
        new.set_renames(renames);
        new.share_gate(self.gate(&s.env));
        let mut envs = self.envs.write().await;
        let old = envs.insert(s.env.clone(), new);
        let mut others = self.others.write().await;
        others.remove(&(s.env.clone(), s.to_database.clone()));
        if let Some(old) = old {
            old.retire();
            others.insert((s.env.clone(), s.from_database.clone()), old);
        }
        Ok(())
    }

    /// Whether a database name can be used for a non-production database: plain, so
    /// it maps onto a file name and a schema name.
    fn valid_database_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 20
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// Creates another database of an environment (an upgrade's test database) with
    /// the given catalog, replacing any leftover of the same name.
    pub async fn create_database(
        &self,
        env: &str,
        database: &str,
        catalog: uplift_model::Catalog,
    ) -> Result<Arc<EnvDb>> {
        self.create_database_with(env, database, catalog, crate::ddl::Keys::WithTable)
            .await
    }

    /// [`Store::create_database`], with keys now or after a bulk load.
    pub async fn create_database_with(
        &self,
        env: &str,
        database: &str,
        catalog: uplift_model::Catalog,
        keys: crate::ddl::Keys,
    ) -> Result<Arc<EnvDb>> {
        if !Self::valid_database_name(database) {
            return Err(StoreError::Invalid(format!(
                "'{database}' is not a valid database name"
            )));
        }
        self.not_production(env, database).await?;
        self.remove_database(env, database).await?;
        let (pool, schema) = self.location(env, database)?;
        let db = Arc::new(EnvDb::create_with(pool, schema, catalog, keys).await?);
        self.others
            .write()
            .await
            .insert((env.into(), database.into()), db.clone());
        Ok(db)
    }

    /// The database an app or flow is bound to: production when the binding names the
    /// environment's production database, else that other database. A binding to a
    /// database the environment does not have is an error, never production.
    pub async fn bound(&self, env: &str, database: &str) -> Result<Arc<EnvDb>> {
        let record = self
            .control
            .get_env(env)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no environment '{env}'")))?;
        if record.database == database {
            return self.env_db(env).await;
        }
        self.database(env, database).await.map_err(|_| {
            StoreError::NotFound(format!(
                "'{env}' has no database '{database}', which this app or flow is bound to"
            ))
        })
    }

    /// Another database of an environment, opened on first use.
    pub async fn database(&self, env: &str, database: &str) -> Result<Arc<EnvDb>> {
        let key = (env.to_string(), database.to_string());
        if let Some(db) = self.others.read().await.get(&key) {
            return Ok(db.clone());
        }
        if !Self::valid_database_name(database) {
            return Err(StoreError::Invalid(format!(
                "'{database}' is not a valid database name"
            )));
        }
        if self.not_production(env, database).await.is_err() {
            return self.env_db(env).await;
        }
        if !self.database_exists(env, database).await? {
            return Err(StoreError::NotFound(format!(
                "environment '{env}' has no database '{database}'"
            )));
        }
        let mut others = self.others.write().await;
        if let Some(db) = others.get(&key) {
            return Ok(db.clone());
        }
        let (pool, schema) = self.location(env, database)?;
        let db = Arc::new(EnvDb::open(pool, schema).await?);
        others.insert(key, db.clone());
        Ok(db)
    }

    /// What a second copy of `env`'s production needs, and what the disk holding it has
    /// free (SQLite; PostgreSQL does not say how full its tablespace's disk is).
    pub async fn space_for_copy(&self, env: &str) -> Result<Space> {
        let record = self
            .control
            .get_env(env)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no environment '{env}'")))?;
        match &self.engines {
            Engines::Sqlite { data_dir } => {
                let path = Self::sqlite_path(data_dir, env, &record.database);
                let mut needed = 0;
                for suffix in ["", "-wal"] {
                    if let Ok(m) = std::fs::metadata(format!("{}{suffix}", path.display())) {
                        needed += m.len();
                    }
                }
                let dir = path.parent().unwrap_or(data_dir);
                let available = rustix::fs::statvfs(dir)
                    .ok()
                    .map(|v| v.f_bavail.saturating_mul(v.f_frsize));
                Ok(Space {
                    needed_bytes: needed,
                    available_bytes: available,
                })
            }
            Engines::Postgres { pool } => {
                let mut conn = pool.conn().await?;
                let row = conn
                    .query_opt(
                        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
                        &[uplift_model::Value::Text(Self::pg_schema(env, &record.database))],
                        &[uplift_model::ColType::Int],
                    )
                    .await?;
                let needed = row.and_then(|r| r[0].as_int()).unwrap_or(0);
                Ok(Space {
                    needed_bytes: u64::try_from(needed).unwrap_or(0),
                    available_bytes: None,
                })
            }
        }
    }

    /// How long the oldest transaction open on the server has been open, in seconds
    /// (PostgreSQL; SQLite's transactions are the server's own and short).
    pub async fn oldest_transaction_s(&self, _env: &str) -> Result<Option<u64>> {
        let Engines::Postgres { pool } = &self.engines else {
            return Ok(None);
        };
        let mut conn = pool.conn().await?;
        let row = conn
            .query_opt(
                "SELECT (EXTRACT(EPOCH FROM max(now() - xact_start)))::bigint FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND state <> 'idle'",
                &[],
                &[uplift_model::ColType::Int],
            )
            .await?;
        Ok(row
            .and_then(|r| r[0].as_int())
            .map(|s| u64::try_from(s).unwrap_or(0)))
    }

    /// Refuses `database` when it is `env`'s production: creating or removing it as
    /// another database would destroy production.
    async fn not_production(&self, env: &str, database: &str) -> Result<()> {
        match self.control.get_env(env).await? {
            Some(r) if r.database == database => Err(StoreError::Invalid(format!(
                "'{database}' is the production database of '{env}'"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether a database exists (without creating it).
    pub async fn database_exists(&self, env: &str, database: &str) -> Result<bool> {
        match &self.engines {
            Engines::Sqlite { data_dir } => Ok(Self::sqlite_path(data_dir, env, database).exists()),
            Engines::Postgres { pool } => {
                let mut conn = pool.conn().await?;
                let sql = crate::sql::placeholders(
                    pool.dialect(),
                    "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?",
                );
                let row = conn
                    .query_opt(
                        &sql,
                        &[uplift_model::Value::Text(Self::pg_schema(env, database))],
                        &[uplift_model::ColType::Int],
                    )
                    .await?;
                Ok(row.is_some())
            }
        }
    }

    /// Removes a non-production database; a no-op when it does not exist.
    pub async fn remove_database(&self, env: &str, database: &str) -> Result<()> {
        if !Self::valid_database_name(database) {
            return Err(StoreError::Invalid(format!(
                "'{database}' is not a valid database name"
            )));
        }
        self.not_production(env, database).await?;
        if let Some(db) = self
            .others
            .write()
            .await
            .remove(&(env.to_string(), database.to_string()))
            && let Pool::Sqlite(p) = db.pool()
        {
            p.close_idle();
        }
        self.drop_database(env, database).await
    }

    /// Deletes an environment and its databases.
    pub async fn delete_environment(&self, name: &str) -> Result<()> {
        let record = self
            .control
            .get_env(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no environment '{name}'")))?;
        self.control.delete_env(name).await?;
        if let Some(db) = self.envs.write().await.remove(name)
            && let Pool::Sqlite(p) = db.pool()
        {
            p.close_idle();
        }
        self.drop_database(name, &record.database).await?;
        let others: Vec<(String, String)> = self
            .others
            .read()
            .await
            .keys()
            .filter(|(e, _)| e == name)
            .cloned()
            .collect();
        for (env, database) in others {
            self.remove_database(&env, &database).await?;
        }
        match &self.engines {
            Engines::Sqlite { data_dir } => {
                let dir = data_dir.join("envs").join(name);
                if dir.exists() {
                    std::fs::remove_dir_all(dir)?;
                }
            }
            Engines::Postgres { pool } => {
                // Test databases not opened by this process are schemas too.
                let mut conn = pool.conn().await?;
                let sql = crate::sql::placeholders(
                    pool.dialect(),
                    "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?",
                );
                let pattern = format!("env\\_{}\\_\\_%", name.replace('_', "\\_"));
                let rows = conn
                    .query(
                        &sql,
                        &[uplift_model::Value::Text(pattern)],
                        &[uplift_model::ColType::Text],
                    )
                    .await?;
                for r in rows {
                    if let Some(schema) = r[0].as_text() {
                        conn.batch(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema)))
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn drop_database(&self, env: &str, database: &str) -> Result<()> {
        match &self.engines {
            Engines::Sqlite { data_dir } => {
                let path = Self::sqlite_path(data_dir, env, database);
                // A rollback journal left by a killed load would be played back into the
                // next database created at this path.
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let p = PathBuf::from(format!("{}{suffix}", path.display()));
                    if p.exists() {
                        std::fs::remove_file(p)?;
                    }
                }
            }
            Engines::Postgres { pool } => {
                let mut conn = pool.conn().await?;
                conn.batch(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    ident(&Self::pg_schema(env, database))
                ))
                .await?;
            }
        }
        Ok(())
    }
}
