//! One environment database (production, later test copies): where its tables live,
//! its catalog, and catalog changes applied together with their DDL.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use uplift_model::input::{CatalogChange, EntityDef, apply};
use uplift_model::layout::{Column, entity_columns, table_name};
use uplift_model::{Catalog, ColType, Entity, Value};

use crate::ddl::{self, CATALOG_TABLE};
use crate::engine::{Dialect, Pool};
use crate::gate::WriteGate;
use crate::sql::{ident, placeholders};
use crate::{Result, StoreError};

/// What every request on an entity needs, computed once per catalog version: its
/// columns, their types, the qualified table and the statement that reads one record.
#[derive(Debug)]
pub struct Layout {
    pub columns: Vec<Column>,
    pub types: Vec<ColType>,
    pub table: String,
    pub select_list: String,
    /// `SELECT <all columns> FROM <table> WHERE id = <placeholder>`.
    pub by_id_sql: String,
}

/// A database holding one environment's records, with its catalog cached in memory.
pub struct EnvDb {
    pool: Pool,
    /// The PostgreSQL schema holding the tables; `None` on SQLite, where the database
    /// is a file of its own.
    schema: Option<String>,
    catalog: RwLock<Arc<Catalog>>,
    layouts: RwLock<HashMap<String, Arc<Layout>>>,
    /// Serialises catalog changes, so two concurrent applies cannot both validate
    /// against the same old catalog.
    ddl_lock: tokio::sync::Mutex<()>,
    /// Entities some flow reacts to: their changes go to the outbox.
    watched: std::sync::RwLock<Watch>,
    /// The gate every record write passes; production databases of one environment
    /// share their environment's (see [`crate::gate`]).
    gate: std::sync::RwLock<Arc<WriteGate>>,
    /// Set by step 3's switch, while the gate is closed: this database is no longer its
    /// environment's production, and a write that reaches it goes to the new one.
    retired: std::sync::atomic::AtomicBool,
    /// Old names step 3's switch made this database replace (old → new), set before it
    /// is served, so a request that finds this database also finds what was renamed.
    renames: std::sync::OnceLock<Arc<BTreeMap<String, String>>>,
}

/// What flows react to in a database, and how the runtime hears of a new outbox entry
/// without waiting for its next poll.
#[derive(Default)]
struct Watch {
    entities: std::collections::HashSet<String>,
    on_change: Option<Arc<tokio::sync::Notify>>,
}

impl EnvDb {
    /// The gate this database's writes pass.
    pub fn gate(&self) -> Arc<WriteGate> {
        self.gate.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Makes this database's writes pass `gate` (its environment's).
    pub fn share_gate(&self, gate: Arc<WriteGate>) {
        if let Ok(mut g) = self.gate.write() {
            *g = gate;
        }
    }

    /// The names this database's switch replaced, while this process serves it (see
    /// [`EnvDb::set_renames`]).
    pub fn renames(&self) -> Option<Arc<BTreeMap<String, String>>> {
        self.renames.get().cloned()
    }

    /// Records the names the switch to this database replaced.
    pub fn set_renames(&self, renames: BTreeMap<String, String>) {
        let _ = self.renames.set(Arc::new(renames));
    }

    /// Whether step 3 switched its environment to another database.
    pub fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks the database as no longer production (see [`EnvDb::is_retired`]).
    pub fn retire(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Makes a retired database production again (a revert switches back to it).
    pub fn reinstate(&self) {
        self.retired
            .store(false, std::sync::atomic::Ordering::Release);
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The qualified, quoted name of a physical table.
    pub fn qualify(&self, table: &str) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", ident(s), ident(table)),
            None => ident(table),
        }
    }

    /// Deletes the rows `seqs` of a queue table keyed by `seq` (the outbox, the
    /// change capture): what its reader has applied.
    pub(crate) async fn delete_seqs(&self, table: &str, seqs: &[i64]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; seqs.len()].join(", ");
        let sql = crate::sql::placeholders(
            self.dialect(),
            &format!("DELETE FROM {} WHERE seq IN ({marks})", self.qualify(table)),
        );
        let params: Vec<Value> = seqs.iter().map(|s| Value::Int(*s)).collect();
        let mut conn = self.pool().conn().await?;
        conn.execute(&sql, &params).await?;
        Ok(())
    }

    /// The qualified table of an entity.
    pub fn table(&self, entity: &Entity) -> String {
        self.qualify(&table_name(entity))
    }

    /// The current catalog. Cheap: readers share one snapshot until the next change.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Creates the database's tables for `catalog` and records the catalog, in one
    /// transaction: a failure leaves no half-made database.
    pub async fn create(pool: Pool, schema: Option<String>, catalog: Catalog) -> Result<EnvDb> {
        Self::create_with(pool, schema, catalog, ddl::Keys::WithTable).await
    }

    /// [`EnvDb::create`], with tables keyed now or after a bulk load ([`EnvDb::build_keys`]).
    pub async fn create_with(
        pool: Pool,
        schema: Option<String>,
        catalog: Catalog,
        keys: ddl::Keys,
    ) -> Result<EnvDb> {
        let db = EnvDb {
            pool,
            schema,
            catalog: RwLock::new(Arc::new(catalog.clone())),
            layouts: RwLock::new(HashMap::new()),
            ddl_lock: tokio::sync::Mutex::new(()),
            watched: Default::default(),
            gate: Default::default(),
            retired: Default::default(),
            renames: Default::default(),
        };
        let mut tx = db.pool.begin().await?;
        if let Some(s) = &db.schema {
            tx.batch(&format!("CREATE SCHEMA {}", ident(s))).await?;
        }
        tx.batch(&format!(
            "CREATE TABLE {} (id INTEGER NOT NULL PRIMARY KEY, catalog TEXT NOT NULL)",
            db.qualify(CATALOG_TABLE)
        ))
        .await?;
        tx.batch(&crate::outbox::create_sql(
            db.dialect(),
            &db.qualify(crate::outbox::TABLE),
        ))
        .await?;
        let qualify = |t: &str| db.qualify(t);
        for e in &catalog.entities {
            for stmt in ddl::create_entity_with(db.dialect(), &qualify, e, catalog.version, keys) {
                tx.batch(&stmt).await?;
            }
        }
        let sql = placeholders(
            db.dialect(),
            &format!(
                "INSERT INTO {} (id, catalog) VALUES (1, ?)",
                db.qualify(CATALOG_TABLE)
            ),
        );
        tx.execute(&sql, &[Value::Text(to_json(&catalog)?)]).await?;
        tx.commit().await?;
        Ok(db)
    }

    /// Opens an existing database and loads its catalog.
    pub async fn open(pool: Pool, schema: Option<String>) -> Result<EnvDb> {
        let db = EnvDb {
            pool,
            schema,
            catalog: RwLock::new(Arc::new(Catalog::empty(
                uplift_model::SchemaVersion::Classic,
            ))),
            layouts: RwLock::new(HashMap::new()),
            ddl_lock: tokio::sync::Mutex::new(()),
            watched: Default::default(),
            gate: Default::default(),
            retired: Default::default(),
            renames: Default::default(),
        };
        let mut conn = db.pool.conn().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT catalog FROM {} WHERE id = 1",
                    db.qualify(CATALOG_TABLE)
                ),
                &[],
                &[ColType::Text],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("the database has no catalog".into()))?;
        let text = row[0]
            .as_text()
            .ok_or_else(|| StoreError::Corrupt("catalog is not text".into()))?;
        let catalog: Catalog = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("catalog does not parse: {e}")))?;
        db.set_catalog(catalog);
        // Databases made before the outbox existed get it on first open.
        conn.batch(&crate::outbox::create_sql(
            db.dialect(),
            &db.qualify(crate::outbox::TABLE),
        ))
        .await?;
        drop(conn);
        if db.dialect() == Dialect::Postgres {
            db.rebuild_stale_key_indexes().await?;
        }
        Ok(db)
    }

    /// Rebuilds business-key indexes declared before they matched the lists'
    /// `NULLS FIRST` ordering (PostgreSQL cannot walk those for an ordered page, which
    /// then sorts the whole table), each in its own transaction; once rebuilt, opening
    /// again finds nothing to do.
    async fn rebuild_stale_key_indexes(&self) -> Result<()> {
        let Some(schema) = self.schema.clone() else {
            return Ok(());
        };
        let mut conn = self.pool.conn().await?;
        let defs: HashMap<String, String> = conn
            .query(
                "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1",
                &[Value::Text(schema)],
                &[ColType::Text, ColType::Text],
            )
            .await?
            .into_iter()
            .filter_map(|r| Some((r[0].as_text()?.to_string(), r[1].as_text()?.to_string())))
            .collect();
        drop(conn);
        let catalog = self.catalog();
        for entity in &catalog.entities {
            for (name, create) in ddl::postgres_key_indexes(&|t| self.qualify(t), entity) {
                let Some(def) = defs.get(&name) else { continue };
                if def.contains("NULLS FIRST") {
                    continue;
                }
                tracing::info!(index = %name, "rebuilding a key index to match list ordering");
                let mut tx = self.pool.begin().await?;
                tx.batch(&format!("DROP INDEX {}", self.qualify(&name)))
                    .await?;
                tx.batch(&create).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Says which entities flows react to; changes to them are written to the outbox,
    /// and `on_change` is notified once each such change commits.
    pub fn watch(
        &self,
        entities: impl IntoIterator<Item = String>,
        on_change: Arc<tokio::sync::Notify>,
    ) {
        if let Ok(mut w) = self.watched.write() {
            *w = Watch {
                entities: entities.into_iter().collect(),
                on_change: Some(on_change),
            };
        }
    }

    /// Whether a change to `entity` goes to the outbox.
    pub fn is_watched(&self, entity: &str) -> bool {
        self.watched
            .read()
            .is_ok_and(|w| w.entities.contains(entity))
    }

    /// Tells the watcher a change reached the outbox (after its commit).
    pub(crate) fn outbox_committed(&self) {
        if let Ok(w) = self.watched.read()
            && let Some(n) = &w.on_change
        {
            n.notify_one();
        }
    }

    fn set_catalog(&self, c: Catalog) {
        match self.catalog.write() {
            Ok(mut g) => *g = Arc::new(c),
            Err(p) => *p.into_inner() = Arc::new(c),
        }
        match self.layouts.write() {
            Ok(mut g) => g.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }

    /// The layout of an entity of the current catalog, built on first use.
    pub fn layout(&self, entity: &Entity) -> Arc<Layout> {
        if let Some(l) = self
            .layouts
            .read()
            .ok()
            .and_then(|m| m.get(&entity.name).cloned())
        {
            return l;
        }
        let columns = entity_columns(entity, self.catalog().version);
        let types = columns.iter().map(|c| c.ty).collect();
        let select_list = columns
            .iter()
            .map(|c| ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let table = self.table(entity);
        let placeholder = match self.dialect() {
            Dialect::Sqlite => "?",
            Dialect::Postgres => "$1::text",
        };
        let by_id_sql = format!("SELECT {select_list} FROM {table} WHERE id = {placeholder}");
        let layout = Arc::new(Layout {
            columns,
            types,
            table,
            select_list,
            by_id_sql,
        });
        if let Ok(mut m) = self.layouts.write() {
            m.insert(entity.name.clone(), layout.clone());
        }
        layout
    }

    /// Validates entity definitions against the catalog and applies them: new tables,
    /// new columns and the new catalog commit in one transaction, or nothing changes.
    pub async fn apply(&self, defs: &BTreeMap<String, EntityDef>) -> Result<Vec<CatalogChange>> {
        let _guard = self.ddl_lock.lock().await;
        let current = self.catalog();
        let (next, changes) =
            apply(&current, defs).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if next == *current {
            return Ok(changes);
        }
        let mut tx = self.pool.begin().await?;
        let qualify = |t: &str| self.qualify(t);
        for change in &changes {
            let stmts = match change {
                CatalogChange::CreateEntity { entity } => {
                    let e = next
                        .entity(entity)
                        .ok_or_else(|| StoreError::Corrupt(format!("{entity} vanished")))?;
                    ddl::create_entity(self.dialect(), &qualify, e, next.version)
                }
                CatalogChange::AddField { entity, field } => {
                    let e = next
                        .entity(entity)
                        .ok_or_else(|| StoreError::Corrupt(format!("{entity} vanished")))?;
                    let f = e
                        .fields
                        .iter()
                        .find(|f| f.name == *field)
                        .ok_or_else(|| StoreError::Corrupt(format!("{field} vanished")))?;
                    ddl::add_field(self.dialect(), &qualify, e, f)
                }
            };
            for stmt in stmts {
                tx.batch(&stmt).await?;
            }
        }
        let sql = placeholders(
            self.dialect(),
            &format!(
                "UPDATE {} SET catalog = ? WHERE id = 1",
                self.qualify(CATALOG_TABLE)
            ),
        );
        tx.execute(&sql, &[Value::Text(to_json(&next)?)]).await?;
        tx.commit().await?;
        self.set_catalog(next);
        Ok(changes)
    }
}

fn to_json(c: &Catalog) -> Result<String> {
    serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))
}
