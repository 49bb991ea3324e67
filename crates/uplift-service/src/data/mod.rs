//! Record access on one database of an environment, with the acting user's rights:
//! what the OData data API and the app player both read and write through. The
//! policy's [`DataRights`] decide every privilege; the store's write path does the
//! rest (validation, lookups, system fields, row versions).

pub mod query;
pub mod shape;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use uplift_model::codec::parse_guid;
use uplift_model::entity::KEY;
use uplift_model::layout::VERSION_COLUMN;
use uplift_model::{Catalog, Entity, FieldType, SchemaVersion};
use uplift_store::EnvDb;
use uplift_store::control::EnvRecord;
use uplift_store::records::{self, Actor as Writer, ListQuery};

use crate::Services;
use crate::auth::Actor;
use crate::error::{Missing, Result, ServiceError};
use crate::policy::{self, DataRights, Database};
use query::{
    DEFAULT_PAGE_SIZE, Expand, MAX_PAGE_SIZE, Options, decode_skiptoken, encode_skiptoken,
};
use shape::RowShape;

/// How often a data API write is sent: once, and again if it waited at the gate while
/// step 3 retired the database it was for.
const SWITCH_TRIES: usize = 2;

/// The suffix of a lookup's navigation property (`Account` → `Account_ref`).
pub const NAV_SUFFIX: &str = "_ref";

/// What a resource path segment names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Metadata,
    Set(String),
    Entity(String, String),
}

/// Parses `$metadata`, `accounts` or `accounts(<id>)` (also `accounts(id=<id>)`).
pub fn parse_resource(s: &str) -> Result<Resource> {
    if s == "$metadata" {
        return Ok(Resource::Metadata);
    }
    match (s.find('('), s.ends_with(')')) {
        (Some(open), true) => {
            let set = &s[..open];
            let inner = &s[open + 1..s.len() - 1];
            let inner = inner.strip_prefix("id=").unwrap_or(inner);
            let key = inner.trim_matches('\'');
            let id = parse_guid(key).ok_or_else(|| {
                ServiceError::Invalid(format!("key '{inner}' of {set} is not a GUID"))
            })?;
            Ok(Resource::Entity(set.to_string(), id))
        }
        (None, false) => Ok(Resource::Set(s.to_string())),
        _ => Err(ServiceError::Invalid(format!(
            "'{s}' is not a resource path"
        ))),
    }
}

/// A page of records.
#[derive(Debug, Clone)]
pub struct Page {
    pub set: String,
    /// The `$select` list, which the context URL names.
    pub select: Option<Vec<String>>,
    pub values: Vec<Map<String, Json>>,
    pub count: Option<u64>,
    /// The query options of the next page (the carried ones, `$top`, `$skiptoken`).
    pub next: Option<Vec<(String, String)>>,
    /// The page size the client asked for with `Prefer`, as applied.
    pub page_size_applied: Option<u64>,
}

/// One record.
#[derive(Debug, Clone)]
pub struct Record {
    pub set: String,
    /// The `$select` list, which the context URL names.
    pub select: Option<Vec<String>>,
    pub id: String,
    pub value: Map<String, Json>,
    pub etag: Option<String>,
}

/// Data access for one actor on one database of one environment.
pub struct DataSession {
    rights: DataRights,
    db: Arc<EnvDb>,
    catalog: Arc<Catalog>,
    /// Names the environment's completed upgrade changed (production only).
    renames: crate::cache::Renames,
}

impl Services {
    /// Opens `database` of `env` for `actor`; what they may do is checked per call.
    pub async fn open_data(
        &self,
        actor: &Actor,
        env: &str,
        database: Database,
    ) -> Result<DataSession> {
        let rec = self.env(env).await?;
        policy::open_database(actor, env, database)?;
        match database {
            Database::Production => {
                let db = self.store.env_db(env).await?;
                self.session(actor, &rec, db).await
            }
            Database::Test => self.test_session(actor, &rec, None).await,
        }
    }

    /// Creates a record through the data API: [`DataSession::insert`] on a session
    /// opened for it, opened and sent again once if the write waited at the gate while
    /// step 3 switched production (it then meets the new schema and roles).
    pub async fn insert_record(
        &self,
        actor: &Actor,
        env: &str,
        database: Database,
        set: &str,
        input: Map<String, Json>,
    ) -> Result<Record> {
        for _ in 1..SWITCH_TRIES {
            let data = self.open_data(actor, env, database).await?;
            match data.insert(set, input.clone()).await {
                Err(ServiceError::Switched) => continue,
                r => return r,
            }
        }
        let data = self.open_data(actor, env, database).await?;
        data.insert(set, input).await
    }

    /// [`DataSession::update`], as [`Services::insert_record`] sends it.
    pub async fn update_record(
        &self,
        actor: &Actor,
        env: &str,
        database: Database,
        (set, id): (&str, &str),
        input: Map<String, Json>,
        expected: Option<i64>,
    ) -> Result<Record> {
        for _ in 1..SWITCH_TRIES {
            let data = self.open_data(actor, env, database).await?;
            match data.update(set, id, input.clone(), expected).await {
                Err(ServiceError::Switched) => continue,
                r => return r,
            }
        }
        let data = self.open_data(actor, env, database).await?;
        data.update(set, id, input, expected).await
    }

    /// [`DataSession::delete`], as [`Services::insert_record`] sends it.
    pub async fn delete_record(
        &self,
        actor: &Actor,
        env: &str,
        database: Database,
        (set, id): (&str, &str),
        expected: Option<i64>,
    ) -> Result<()> {
        for _ in 1..SWITCH_TRIES {
            let data = self.open_data(actor, env, database).await?;
            match data.delete(set, id, expected).await {
                Err(ServiceError::Switched) => continue,
                r => return r,
            }
        }
        let data = self.open_data(actor, env, database).await?;
        data.delete(set, id, expected).await
    }

    /// Opens a database by its name, as an app or flow binding names it.
    pub(crate) async fn open_bound(
        &self,
        actor: &Actor,
        env: &str,
        database: &str,
    ) -> Result<DataSession> {
        let rec = self.env(env).await?;
        let which = if database == rec.database {
            Database::Production
        } else {
            Database::Test
        };
        policy::open_database(actor, env, which)?;
        match which {
            Database::Production => {
                let db = self.store.bound(env, database).await?;
                self.session(actor, &rec, db).await
            }
            Database::Test => self.test_session(actor, &rec, Some(database)).await,
        }
    }

    /// A session on production, with the actor's roles there.
    async fn session(&self, actor: &Actor, rec: &EnvRecord, db: Arc<EnvDb>) -> Result<DataSession> {
        let env = rec.name.as_str();
        let grants = self.grants(env, actor.email()).await?;
        Ok(DataSession {
            rights: DataRights {
                actor: actor.clone(),
                env: env.into(),
                mode: rec.security_mode,
                database: Database::Production,
                grants,
            },
            catalog: db.catalog(),
            renames: match db.renames() {
                Some(r) => r,
                None => self.renames(env).await?,
            },
            db,
        })
    }

    /// What `env`'s completed upgrade renamed, read from its log once per cache life
    /// (a database this process switched to carries its own, see `EnvDb::renames`).
    async fn renames(&self, env: &str) -> Result<crate::cache::Renames> {
        if let Some(r) = self.cache.renames(env) {
            return Ok(r);
        }
        let seen = self.cache.epoch();
        let latest = self.upgrades.latest(env).await?;
        let settled = latest.as_ref().is_none_or(|(_, s)| {
            !matches!(
                s.status,
                uplift_upgrade::state::Status::Step3Running
                    | uplift_upgrade::state::Status::RevertRunning
            )
        });
        let r: crate::cache::Renames = latest
            .and_then(|(_, s)| s.step3)
            .and_then(|t| t.current_renames().cloned())
            .map(Arc::new)
            .unwrap_or_default();
        // While step 3 or a revert runs the answer changes at the switch: read from the
        // log each time then, never cached.
        if settled {
            self.cache.put_renames(seen, env, r.clone());
        }
        Ok(r)
    }

    /// A session on the test database of the environment's upgrade, once step 1 has
    /// finished, with the rights the actor will have after the upgrade (the upgraded
    /// roles) plus what an admin granted for testing. `named` is the database an app or
    /// flow is bound to: one that is not the current test database is gone.
    async fn test_session(
        &self,
        actor: &Actor,
        rec: &EnvRecord,
        named: Option<&str>,
    ) -> Result<DataSession> {
        let env = rec.name.as_str();
        let (id, state) = self.serving_upgrade(env).await?;
        if named.is_some_and(|n| n != state.test_database) {
            return Err(ServiceError::NotFound(Missing::TestDatabase {
                env: env.into(),
            }));
        }
        let db = self.store.database(env, &state.test_database).await?;
        let (mode, grants) = self.test_rights(env, &id, &state, actor.email()).await?;
        Ok(DataSession {
            rights: DataRights {
                actor: actor.clone(),
                env: env.into(),
                mode,
                database: Database::Test,
                grants: Arc::new(grants),
            },
            catalog: db.catalog(),
            db,
            renames: Default::default(),
        })
    }
}

fn missing_record(entity: &Entity, id: &str) -> ServiceError {
    ServiceError::NotFound(Missing::Record {
        entity: entity.name.clone(),
        id: id.into(),
    })
}

impl DataSession {
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn version(&self) -> SchemaVersion {
        self.catalog.version
    }

    /// Using the environment at all: its service document and `$metadata`.
    /// Whether the session's actor may exercise `privilege` on `entity` here.
    pub fn may(&self, entity: &str, privilege: &str) -> bool {
        self.rights.may(entity, privilege)
    }

    pub fn require_environment(&self) -> Result<()> {
        self.rights.require_environment()
    }

    pub fn entity_by_set(&self, set: &str) -> Result<&Entity> {
        self.catalog.entity_by_set(set).ok_or_else(|| {
            let env = self.rights.env.clone();
            ServiceError::NotFound(match self.renames.get(set) {
                Some(new) => Missing::Renamed {
                    env,
                    old: set.into(),
                    new: new.clone(),
                },
                None => Missing::EntitySet {
                    env,
                    set: set.into(),
                },
            })
        })
    }

    /// The entity by its logical name, as a definition refers to it.
    pub(crate) fn entity_named(
        &self,
        name: &str,
        what: impl FnOnce() -> String,
    ) -> Result<&Entity> {
        self.catalog.entity(name).ok_or_else(|| {
            ServiceError::Conflict(format!("{}, which its database no longer has", what()))
        })
    }

    /// Parses a raw query string against `set`'s entity.
    pub fn options(&self, set: &str, raw: Option<&str>) -> Result<Options> {
        query::parse(raw, self.entity_by_set(set)?, &self.catalog)
    }

    /// A page of `set` as `opts` ask; `preferred` is the client's `odata.maxpagesize`.
    pub async fn list(&self, set: &str, opts: &Options, preferred: Option<u64>) -> Result<Page> {
        let entity = self.entity_by_set(set)?;
        let version = self.version();
        self.rights.require(&entity.name, "Read")?;
        let expand_fields: BTreeSet<&str> = opts.expand.iter().map(|e| e.field.as_str()).collect();
        let cols: Vec<_> = self
            .db
            .layout(entity)
            .columns
            .iter()
            .filter(|&c| match &opts.select {
                None => true,
                Some(names) => {
                    c.field == KEY
                        || c.field == VERSION_COLUMN
                        || names.contains(&c.field)
                        || expand_fields.contains(c.field.as_str())
                }
            })
            .cloned()
            .collect();
        let page_size = preferred
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let limit = opts.top.map_or(page_size, |t| t.min(page_size));
        let keys = records::order_keys(entity, version, &opts.orderby)?;
        let after = match &opts.skiptoken {
            Some(t) => Some(decode_skiptoken(
                t,
                &keys.iter().map(|(k, _)| k.column.ty).collect::<Vec<_>>(),
            )?),
            None => None,
        };
        let q = ListQuery {
            filter: opts.filter.clone(),
            orderby: opts.orderby.clone(),
            skip: if after.is_some() { 0 } else { opts.skip },
            limit,
            after,
        };
        let page = records::list(&self.db, entity, &cols, &q).await?;
        let count = match opts.count {
            true => Some(records::count(&self.db, entity, opts.filter.as_ref()).await?),
            false => None,
        };
        let shape = RowShape::new(entity, version, &cols);
        let keep = keeper(opts);
        let mut values: Vec<Map<String, Json>> = page
            .rows
            .iter()
            .map(|r| shape.to_json(r, Some(&keep)))
            .collect();
        self.expand(&shape, &page.rows, &mut values, &opts.expand)
            .await?;
        let remaining = opts.top.map(|t| t.saturating_sub(values.len() as u64));
        let next = page.next.filter(|_| remaining != Some(0)).map(|pos| {
            let mut params = opts.carried.clone();
            if let Some(r) = remaining {
                params.push(("$top".into(), r.to_string()));
            }
            params.push(("$skiptoken".into(), encode_skiptoken(&pos)));
            params
        });
        Ok(Page {
            set: entity.set_name.clone(),
            select: opts.select.clone(),
            values,
            count,
            next,
            page_size_applied: preferred.map(|n| n.clamp(1, MAX_PAGE_SIZE)),
        })
    }

    pub async fn count(&self, set: &str, opts: &Options) -> Result<u64> {
        let entity = self.entity_by_set(set)?;
        self.rights.require(&entity.name, "Read")?;
        Ok(records::count(&self.db, entity, opts.filter.as_ref()).await?)
    }

    /// Replaces each expanded lookup with the target record (or null), fetched in
    /// one batch per lookup rather than once per row, and expands inside it as the
    /// item's nested `$expand` says (boxed: it recurses).
    fn expand<'a>(
        &'a self,
        shape: &'a RowShape<'_>,
        rows: &'a [Vec<uplift_model::Value>],
        values: &'a mut [Map<String, Json>],
        expand: &'a [Expand],
    ) -> futures_util::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for e in expand {
                let target = self.entity_named(&e.target, || {
                    format!("$expand follows '{}' to entity '{}'", e.name, e.target)
                })?;
                self.rights.require(&target.name, "Read")?;
                let ids: BTreeSet<&str> = rows
                    .iter()
                    .filter_map(|r| shape.lookup(r, &e.field))
                    .collect();
                let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
                let found = records::get_many(&self.db, target, &ids).await?;
                let tshape = RowShape::new(target, self.version(), &self.db.layout(target).columns);
                let keep = |name: &str| {
                    e.select
                        .as_ref()
                        .is_none_or(|s| s.iter().any(|n| n == name))
                };
                let mut objects: Vec<Map<String, Json>> = found
                    .iter()
                    .map(|r| tshape.to_json(r, Some(&keep)))
                    .collect();
                self.expand(&tshape, &found, &mut objects, &e.expand)
                    .await?;
                let by_id: HashMap<&str, &Map<String, Json>> = found
                    .iter()
                    .zip(&objects)
                    .filter_map(|(r, o)| tshape.id(r).map(|id| (id, o)))
                    .collect();
                for (row, obj) in rows.iter().zip(values.iter_mut()) {
                    let v = shape
                        .lookup(row, &e.field)
                        .and_then(|id| by_id.get(id))
                        .map_or(Json::Null, |o| Json::Object((*o).clone()));
                    obj.insert(e.name.clone(), v);
                }
            }
            Ok(())
        })
    }

    /// One record of `set`, with `opts`' `$select` and `$expand`.
    pub async fn get(&self, set: &str, id: &str, opts: &Options) -> Result<Record> {
        let entity = self.entity_by_set(set)?;
        let version = self.version();
        self.rights.require(&entity.name, "Read")?;
        let row = records::get(&self.db, entity, id)
            .await?
            .ok_or_else(|| missing_record(entity, id))?;
        let layout = self.db.layout(entity);
        let shape = RowShape::new(entity, version, &layout.columns);
        let keep = keeper(opts);
        let mut values = vec![shape.to_json(&row, Some(&keep))];
        let rows = vec![row];
        self.expand(&shape, &rows, &mut values, &opts.expand)
            .await?;
        Ok(Record {
            set: entity.set_name.clone(),
            select: opts.select.clone(),
            id: id.to_string(),
            value: values.pop().unwrap_or_default(),
            etag: shape.etag(&rows[0]),
        })
    }

    /// The record a lookup of a record points at (`contacts(<id>)/Account_ref`), or
    /// `None` when the lookup is empty.
    pub async fn navigate(
        &self,
        set: &str,
        id: &str,
        nav: &str,
        raw: Option<&str>,
    ) -> Result<Option<Record>> {
        let entity = self.entity_by_set(set)?;
        let field = nav.strip_suffix(NAV_SUFFIX).unwrap_or(nav);
        let Some(FieldType::Lookup { target }) = entity.field(self.version(), field).map(|f| &f.ty)
        else {
            return Err(ServiceError::NotFound(Missing::NavigationProperty {
                entity: entity.name.clone(),
                name: nav.into(),
            }));
        };
        self.rights.require(&entity.name, "Read")?;
        let row = records::get(&self.db, entity, id)
            .await?
            .ok_or_else(|| missing_record(entity, id))?;
        let shape = RowShape::new(entity, self.version(), &self.db.layout(entity).columns);
        let target_set = self
            .catalog
            .entity(target)
            .map(|t| t.set_name.clone())
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Stored(format!(
                    "lookup target '{target}' is missing"
                )))
            })?;
        match shape.lookup(&row, field) {
            Some(target_id) => {
                let opts = self.options(&target_set, raw)?;
                Ok(Some(self.get(&target_set, target_id, &opts).await?))
            }
            None => Ok(None),
        }
    }

    fn record(&self, entity: &Entity, row: &[uplift_model::Value]) -> Record {
        let layout = self.db.layout(entity);
        let shape = RowShape::new(entity, self.version(), &layout.columns);
        Record {
            set: entity.set_name.clone(),
            select: None,
            id: shape.id(row).unwrap_or_default().to_string(),
            value: shape.to_json(row, None),
            etag: shape.etag(row),
        }
    }

    fn writer(&self) -> Writer {
        Writer::person(self.rights.actor.email().to_string())
    }

    /// Creates a record of `set` from an OData payload.
    pub async fn insert(&self, set: &str, input: Map<String, Json>) -> Result<Record> {
        let entity = self.entity_by_set(set)?;
        self.rights.require(&entity.name, "Create")?;
        self.refuse_old_names(entity, &input)?;
        let (input, lookups) = self.normalise_payload(entity, input)?;
        self.authorize_lookups(entity, &lookups)?;
        let row = records::insert(&self.db, entity, &input, &self.writer()).await?;
        Ok(self.record(entity, &row))
    }

    /// Changes a record; `expected` is the row version an `If-Match` named.
    pub async fn update(
        &self,
        set: &str,
        id: &str,
        input: Map<String, Json>,
        expected: Option<i64>,
    ) -> Result<Record> {
        let entity = self.entity_by_set(set)?;
        self.rights
            .require(&entity.name, self.version().update_privilege())?;
        self.refuse_old_names(entity, &input)?;
        let (input, lookups) = self.normalise_payload(entity, input)?;
        self.authorize_lookups(entity, &lookups)?;
        let row = records::update(&self.db, entity, id, &input, expected, &self.writer()).await?;
        Ok(self.record(entity, &row))
    }

    pub async fn delete(&self, set: &str, id: &str, expected: Option<i64>) -> Result<()> {
        let entity = self.entity_by_set(set)?;
        self.rights.require(&entity.name, "Delete")?;
        records::delete(&self.db, entity, id, expected, &self.writer()).await?;
        Ok(())
    }

    /// Refuses a payload naming a property the environment's upgrade renamed, naming
    /// its new name (a client written for the old schema, or a write held across the
    /// switch).
    fn refuse_old_names(&self, entity: &Entity, input: &Map<String, Json>) -> Result<()> {
        if self.renames.is_empty() {
            return Ok(());
        }
        for key in input.keys() {
            let name = key.split('@').next().unwrap_or(key);
            if entity.field(self.version(), name).is_some() {
                continue;
            }
            if let Some(new) = self.renames.get(&format!("{}/{name}", entity.set_name)) {
                return Err(ServiceError::Invalid(format!(
                    "property '{name}' of {} is now '{new}': the upgrade of '{}' renamed it",
                    entity.set_name, self.rights.env
                )));
            }
        }
        Ok(())
    }

    /// Turns `X@odata.bind` entries into plain lookup ids and drops other
    /// annotations, then says which lookups the payload sets (for Append/AppendTo).
    fn normalise_payload(
        &self,
        entity: &Entity,
        mut input: Map<String, Json>,
    ) -> Result<(Map<String, Json>, Vec<String>)> {
        let version = self.version();
        let keys: Vec<String> = input.keys().filter(|k| k.contains('@')).cloned().collect();
        for k in keys {
            let v = input.remove(&k).unwrap_or(Json::Null);
            let Some(field_name) = k.strip_suffix("@odata.bind") else {
                continue;
            };
            let field_name = field_name.strip_suffix(NAV_SUFFIX).unwrap_or(field_name);
            let Some(FieldType::Lookup { target }) =
                entity.field(version, field_name).map(|f| &f.ty)
            else {
                return Err(ServiceError::Invalid(format!(
                    "'{k}': '{field_name}' is not a lookup of {}",
                    entity.name
                )));
            };
            let bound = self.bound_id(entity, &k, field_name, target, &v)?;
            input.insert(field_name.to_string(), bound);
        }
        let lookups = input
            .iter()
            .filter(|(k, v)| {
                !v.is_null()
                    && entity
                        .field(version, k)
                        .is_some_and(|f| matches!(f.ty, FieldType::Lookup { .. }))
            })
            .map(|(k, _)| k.clone())
            .collect();
        Ok((input, lookups))
    }

    /// The id an `@odata.bind` value (`accounts(<id>)`, maybe as a URL) names.
    fn bound_id(
        &self,
        entity: &Entity,
        k: &str,
        field: &str,
        target: &str,
        v: &Json,
    ) -> Result<Json> {
        let s = match v {
            Json::Null => return Ok(Json::Null),
            Json::String(s) => s,
            other => {
                return Err(ServiceError::Invalid(format!(
                    "'{k}' must be a string like accounts(<id>), got {other}"
                )));
            }
        };
        let path = s.rsplit('/').next().unwrap_or(s);
        let Resource::Entity(set, id) = parse_resource(path)? else {
            return Err(ServiceError::Invalid(format!(
                "'{k}': '{s}' is not an entity reference like {}(<id>)",
                entity.set_name
            )));
        };
        let t = self.entity_by_set(&set)?;
        if t.name != target {
            return Err(ServiceError::Invalid(format!(
                "'{k}': {field} looks up {target}, not {}",
                t.name
            )));
        }
        Ok(Json::String(id))
    }

    /// The modern version's Append/AppendTo rule: setting a lookup needs Append on
    /// the record's entity and AppendTo on the target.
    fn authorize_lookups(&self, entity: &Entity, lookups: &[String]) -> Result<()> {
        if self.version() != SchemaVersion::Modern || lookups.is_empty() {
            return Ok(());
        }
        self.rights.require(&entity.name, "Append")?;
        for l in lookups {
            if let Some(FieldType::Lookup { target }) =
                entity.field(self.version(), l).map(|f| &f.ty)
            {
                self.rights.require(target, "AppendTo")?;
            }
        }
        Ok(())
    }
}

/// The `$select` filter of a record's JSON.
fn keeper(opts: &Options) -> impl Fn(&str) -> bool + '_ {
    move |name: &str| {
        opts.select
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }
}
