//! The OData v4 data API of an environment: service document, `$metadata`, and
//! collection/entity requests over the environment's production database.

pub mod json;
pub mod metadata;
pub mod query;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as Json, json};
use uplift_model::codec::parse_guid;
use uplift_model::entity::KEY;
use uplift_model::layout::VERSION_COLUMN;
use uplift_model::security::allowed;
use uplift_model::{Catalog, Entity, FieldType, SchemaVersion};
use uplift_store::EnvDb;
use uplift_store::control::EnvRecord;
use uplift_store::records::{self, Actor, ListQuery};

use crate::auth::Caller;
use crate::error::{ApiError, parse_body};
use crate::state::AppState;
use json::{RowShape, parse_if_match};
use query::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_skiptoken, encode_skiptoken};

const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Which database of the environment a data request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Production,
    /// The test database of the environment's upgrade, open to admins and makers.
    Test,
}

fn data_routes(prefix: &str, target: Target) -> Router<AppState> {
    Router::new()
        .route(prefix, get(service_document))
        .route(&format!("{prefix}/"), get(service_document))
        .route(
            &format!("{prefix}/{{resource}}"),
            get(get_resource)
                .post(post_resource)
                .patch(patch_resource)
                .delete(delete_resource),
        )
        .route(&format!("{prefix}/{{resource}}/{{sub}}"), get(get_sub))
        .layer(axum::Extension(target))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(data_routes(
            "/api/environments/{env}/data",
            Target::Production,
        ))
        .merge(data_routes(
            "/api/environments/{env}/upgrade/test/data",
            Target::Test,
        ))
        .layer(axum::middleware::map_response(odata_version))
}

async fn odata_version(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    resp
}

/// Everything a data request needs, resolved once.
struct DataCtx {
    target: Target,
    state: AppState,
    caller: Caller,
    env: EnvRecord,
    db: Arc<EnvDb>,
    catalog: Arc<Catalog>,
    base: String,
}

impl DataCtx {
    async fn new(
        target: Target,
        state: AppState,
        caller: Caller,
        env: &str,
        headers: &HeaderMap,
    ) -> Result<DataCtx, ApiError> {
        let rec = state.env(env).await?;
        let (db, path) = match target {
            Target::Production => (state.store.env_db(env).await?, "data"),
            Target::Test => {
                if caller.require_maker().is_err() {
                    return Err(ApiError::forbidden(format!(
                        "the test database of '{env}' is open to administrators and makers only"
                    )));
                }
                // The folded log is enough here; live progress is not needed.
                let latest = state.upgrades.latest(env).await?;
                let ready = latest
                    .filter(|(_, s)| s.status == uplift_upgrade::state::Status::Step2Verifying);
                let Some((_, upgrade)) = ready else {
                    return Err(ApiError::not_found(format!(
                        "'{env}' has no test database ready (step 1 has not completed)"
                    )));
                };
                (
                    state.store.database(env, &upgrade.test_database).await?,
                    "upgrade/test/data",
                )
            }
        };
        let catalog = db.catalog();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        let base = format!("{proto}://{host}/api/environments/{env}/{path}");
        Ok(DataCtx {
            target,
            state,
            caller,
            env: rec,
            db,
            catalog,
            base,
        })
    }

    fn version(&self) -> SchemaVersion {
        self.catalog.version
    }

    async fn can(&self, entity: &str, privilege: &str) -> Result<bool, ApiError> {
        if self.target == Target::Test {
            return Ok(true); // only admins and makers reach a test context at all
        }
        let u = &self.caller.0;
        let grants = self.state.grants(&self.env.name, &u.email).await?;
        let refs: Vec<_> = grants.iter().collect();
        Ok(allowed(
            self.env.security_mode,
            u.role,
            u.status,
            &refs,
            entity,
            privilege,
        ))
    }

    async fn authorize(&self, entity: &str, privilege: &str) -> Result<(), ApiError> {
        if self.can(entity, privilege).await? {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} lacks the {privilege} privilege on {entity} in environment '{}'",
                self.caller.0.email, self.env.name
            )))
        }
    }

    /// Whether the caller may use the environment at all (see its metadata).
    async fn authorize_env(&self) -> Result<(), ApiError> {
        let u = &self.caller.0;
        if self.target == Target::Test
            || self.caller.is_admin()
            || self.env.security_mode == uplift_model::security::SecurityMode::Open
        {
            return Ok(());
        }
        if self
            .state
            .grants(&self.env.name, &u.email)
            .await?
            .is_empty()
        {
            return Err(ApiError::forbidden(format!(
                "{} has no role in environment '{}'",
                u.email, self.env.name
            )));
        }
        Ok(())
    }

    fn entity_by_set(&self, set: &str) -> Result<&Entity, ApiError> {
        self.catalog.entity_by_set(set).ok_or_else(|| {
            ApiError::not_found(format!(
                "no entity set '{set}' in environment '{}'",
                self.env.name
            ))
        })
    }
}

/// Data access on behalf of an app or flow bound to `db`: the same query surface and
/// the caller's own privileges, on whichever database the binding names.
pub(crate) struct BoundData {
    ctx: DataCtx,
}

impl BoundData {
    /// `base` is the URL prefix links in answers start with.
    pub(crate) async fn new(
        state: AppState,
        caller: Caller,
        env: &str,
        db: Arc<EnvDb>,
        base: String,
    ) -> Result<BoundData, ApiError> {
        let rec = state.env(env).await?;
        let catalog = db.catalog();
        Ok(BoundData {
            ctx: DataCtx {
                target: Target::Production,
                state,
                caller,
                env: rec,
                db,
                catalog,
                base,
            },
        })
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.ctx.catalog
    }

    /// A page of `set`, as `GET …/data/{set}?{raw}` answers it.
    pub(crate) async fn list(
        &self,
        set: &str,
        raw: &str,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        list(&self.ctx, set, Some(raw), headers).await
    }

    /// One record, as `GET …/data/{set}({id})?{raw}` answers it.
    pub(crate) async fn get(&self, set: &str, id: &str, raw: &str) -> Result<Response, ApiError> {
        get_one(&self.ctx, set, id, Some(raw)).await
    }
}

/// What a resource path segment names.
enum Resource {
    Metadata,
    Set(String),
    Entity(String, String),
}

fn parse_resource(s: &str) -> Result<Resource, ApiError> {
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
                ApiError::bad_request(format!("key '{inner}' of {set} is not a GUID"))
            })?;
            Ok(Resource::Entity(set.to_string(), id))
        }
        (None, false) => Ok(Resource::Set(s.to_string())),
        _ => Err(ApiError::bad_request(format!(
            "'{s}' is not a resource path"
        ))),
    }
}

fn json_response(status: StatusCode, body: Json) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    r
}

async fn service_document(
    axum::Extension(target): axum::Extension<Target>,
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = DataCtx::new(target, s, caller, &env, &headers).await?;
    ctx.authorize_env().await?;
    let sets: Vec<Json> = ctx
        .catalog
        .entities
        .iter()
        .map(|e| json!({"name": e.set_name, "kind": "EntitySet", "url": e.set_name}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"@odata.context": format!("{}/$metadata", ctx.base), "value": sets}),
    ))
}

async fn get_resource(
    axum::Extension(target): axum::Extension<Target>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = DataCtx::new(target, s, caller, &env, &headers).await?;
    match parse_resource(&resource)? {
        Resource::Metadata => {
            ctx.authorize_env().await?;
            let mut r = metadata::csdl(&ctx.catalog).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            Ok(r)
        }
        Resource::Set(set) => list(&ctx, &set, raw.as_deref(), &headers).await,
        Resource::Entity(set, id) => get_one(&ctx, &set, &id, raw.as_deref()).await,
    }
}

async fn get_sub(
    axum::Extension(target): axum::Extension<Target>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource, sub)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = DataCtx::new(target, s, caller, &env, &headers).await?;
    match (parse_resource(&resource)?, sub.as_str()) {
        (Resource::Set(set), "$count") => {
            let entity = ctx.entity_by_set(&set)?;
            ctx.authorize(&entity.name, "Read").await?;
            let opts = query::parse(raw.as_deref(), entity, ctx.version())?;
            let n = records::count(&ctx.db, entity, opts.filter.as_ref()).await?;
            let mut r = n.to_string().into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(r)
        }
        (Resource::Entity(set, id), nav) => {
            // `contacts(<id>)/Account_ref` (or `/Account`): the record a lookup points at.
            let entity = ctx.entity_by_set(&set)?;
            let field = nav.strip_suffix(metadata::NAV_SUFFIX).unwrap_or(nav);
            let Some(FieldType::Lookup { target }) =
                entity.field(ctx.version(), field).map(|f| &f.ty)
            else {
                return Err(ApiError::not_found(format!(
                    "{} has no navigation property '{nav}'",
                    entity.name
                )));
            };
            ctx.authorize(&entity.name, "Read").await?;
            let row = records::get(&ctx.db, entity, &id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no {} with id {id}", entity.name)))?;
            let shape = RowShape::new(entity, ctx.version(), &ctx.db.layout(entity).columns);
            let target_set = ctx
                .catalog
                .entity(target)
                .map(|t| t.set_name.clone())
                .ok_or_else(|| {
                    ApiError::not_found(format!("lookup target '{target}' is missing"))
                })?;
            match shape.lookup(&row, field) {
                Some(target_id) => get_one(&ctx, &target_set, target_id, raw.as_deref()).await,
                None => Ok(StatusCode::NO_CONTENT.into_response()),
            }
        }
        _ => Err(ApiError::not_found(format!(
            "no resource '{resource}/{sub}'"
        ))),
    }
}

fn max_page_size(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.trim().parse().ok())
        })
}

fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "return=minimal"))
}

async fn list(
    ctx: &DataCtx,
    set: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let entity = ctx.entity_by_set(set)?;
    let version = ctx.version();
    ctx.authorize(&entity.name, "Read").await?;
    let opts = query::parse(raw, entity, version)?;

    let expand_fields: BTreeSet<&str> = opts.expand.iter().map(|(_, f)| f.as_str()).collect();
    let cols: Vec<_> = ctx
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
    let preferred = max_page_size(headers);
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
    let page = records::list(&ctx.db, entity, &cols, &q).await?;
    let count = if opts.count {
        Some(records::count(&ctx.db, entity, opts.filter.as_ref()).await?)
    } else {
        None
    };

    let shape = RowShape::new(entity, version, &cols);
    let selected: Option<BTreeSet<String>> =
        opts.select.as_ref().map(|s| s.iter().cloned().collect());
    let keep = |name: &str| selected.as_ref().is_none_or(|s| s.contains(name));
    let mut values: Vec<Map<String, Json>> = page
        .rows
        .iter()
        .map(|r| shape.to_json(r, Some(&keep)))
        .collect();
    expand(ctx, entity, &shape, &page.rows, &mut values, &opts.expand).await?;

    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/$metadata#{}", ctx.base, entity.set_name)),
    );
    if let Some(n) = count {
        body.insert("@odata.count".into(), json!(n));
    }
    let returned = values.len() as u64;
    body.insert(
        "value".into(),
        Json::Array(values.into_iter().map(Json::Object).collect()),
    );
    let remaining = opts.top.map(|t| t.saturating_sub(returned));
    if let Some(pos) = page.next
        && remaining != Some(0)
    {
        let mut params = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &opts.carried {
            params.append_pair(k, v);
        }
        if let Some(r) = remaining {
            params.append_pair("$top", &r.to_string());
        }
        params.append_pair("$skiptoken", &encode_skiptoken(&pos));
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/{}?{}",
                ctx.base,
                entity.set_name,
                params.finish()
            )),
        );
    }
    let mut r = json_response(StatusCode::OK, Json::Object(body));
    if let Some(n) = preferred
        && let Ok(v) =
            HeaderValue::from_str(&format!("odata.maxpagesize={}", n.clamp(1, MAX_PAGE_SIZE)))
    {
        r.headers_mut().insert("Preference-Applied", v);
    }
    Ok(r)
}

/// Replaces each expanded lookup with the target record (or null), fetched in one
/// batch per lookup rather than once per row.
async fn expand(
    ctx: &DataCtx,
    entity: &Entity,
    shape: &RowShape<'_>,
    rows: &[Vec<uplift_model::Value>],
    values: &mut [Map<String, Json>],
    expand: &[(String, String)],
) -> Result<(), ApiError> {
    let version = ctx.version();
    for (name, field) in expand {
        let Some(FieldType::Lookup { target }) = entity.field(version, field).map(|f| &f.ty) else {
            continue;
        };
        let target = ctx.catalog.entity(target).ok_or_else(|| {
            ApiError::bad_request(format!("$expand: lookup target '{target}' is missing"))
        })?;
        ctx.authorize(&target.name, "Read").await?;
        let ids: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| shape.lookup(r, field))
            .map(str::to_string)
            .collect();
        let ids: Vec<String> = ids.into_iter().collect();
        let found = records::get_many(&ctx.db, target, &ids).await?;
        let tshape = RowShape::new(target, version, &ctx.db.layout(target).columns);
        let by_id: HashMap<String, Map<String, Json>> = found
            .iter()
            .filter_map(|r| {
                tshape
                    .id(r)
                    .map(|id| (id.to_string(), tshape.to_json(r, None)))
            })
            .collect();
        for (row, obj) in rows.iter().zip(values.iter_mut()) {
            let v = shape
                .lookup(row, field)
                .and_then(|id| by_id.get(id))
                .cloned()
                .map_or(Json::Null, Json::Object);
            obj.insert(name.clone(), v);
        }
    }
    Ok(())
}

async fn get_one(
    ctx: &DataCtx,
    set: &str,
    id: &str,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    let entity = ctx.entity_by_set(set)?;
    let version = ctx.version();
    ctx.authorize(&entity.name, "Read").await?;
    let opts = query::parse(raw, entity, version)?;
    let row = records::get(&ctx.db, entity, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no {} with id {id}", entity.name)))?;
    let layout = ctx.db.layout(entity);
    let cols = &layout.columns;
    let shape = RowShape::new(entity, version, cols);
    let selected: Option<BTreeSet<String>> =
        opts.select.as_ref().map(|s| s.iter().cloned().collect());
    let keep = |name: &str| selected.as_ref().is_none_or(|s| s.contains(name));
    let mut values = vec![shape.to_json(&row, Some(&keep))];
    let rows = vec![row];
    expand(ctx, entity, &shape, &rows, &mut values, &opts.expand).await?;
    let mut obj = values.pop().unwrap_or_default();
    obj.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#{}/$entity",
            ctx.base, entity.set_name
        )),
    );
    let mut r = json_response(StatusCode::OK, Json::Object(obj));
    if let Some(e) = shape
        .etag(&rows[0])
        .and_then(|e| HeaderValue::from_str(&e).ok())
    {
        r.headers_mut().insert(header::ETAG, e);
    }
    Ok(r)
}

type Body = Result<Bytes, BytesRejection>;

/// Turns `X@odata.bind` entries into plain lookup ids and drops other annotations,
/// then says which lookups the payload sets (for the Append/AppendTo check).
fn normalise_payload(
    ctx: &DataCtx,
    entity: &Entity,
    mut input: Map<String, Json>,
) -> Result<(Map<String, Json>, Vec<String>), ApiError> {
    let version = ctx.version();
    let keys: Vec<String> = input.keys().filter(|k| k.contains('@')).cloned().collect();
    for k in keys {
        let v = input.remove(&k).unwrap_or(Json::Null);
        let Some(field_name) = k.strip_suffix("@odata.bind") else {
            continue;
        };
        let field_name = field_name
            .strip_suffix(metadata::NAV_SUFFIX)
            .unwrap_or(field_name);
        let Some(FieldType::Lookup { target }) = entity.field(version, field_name).map(|f| &f.ty)
        else {
            return Err(ApiError::bad_request(format!(
                "'{k}': '{field_name}' is not a lookup of {}",
                entity.name
            )));
        };
        let bound = match &v {
            Json::Null => Json::Null,
            Json::String(s) => {
                let path = s.rsplit('/').next().unwrap_or(s);
                match parse_resource(path)? {
                    Resource::Entity(set, id) => {
                        let t = ctx.entity_by_set(&set)?;
                        if t.name != *target {
                            return Err(ApiError::bad_request(format!(
                                "'{k}': {field_name} looks up {target}, not {}",
                                t.name
                            )));
                        }
                        Json::String(id)
                    }
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "'{k}': '{s}' is not an entity reference like {}(<id>)",
                            entity.set_name
                        )));
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "'{k}' must be a string like accounts(<id>), got {other}"
                )));
            }
        };
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

/// The modern version's Append/AppendTo rule: setting a lookup needs Append on the
/// record's entity and AppendTo on the target.
async fn authorize_lookups(
    ctx: &DataCtx,
    entity: &Entity,
    lookups: &[String],
) -> Result<(), ApiError> {
    if ctx.version() != SchemaVersion::Modern || lookups.is_empty() {
        return Ok(());
    }
    ctx.authorize(&entity.name, "Append").await?;
    for l in lookups {
        if let Some(FieldType::Lookup { target }) = entity.field(ctx.version(), l).map(|f| &f.ty) {
            ctx.authorize(target, "AppendTo").await?;
        }
    }
    Ok(())
}

fn record_response(
    ctx: &DataCtx,
    entity: &Entity,
    row: &[uplift_model::Value],
    status: StatusCode,
    minimal: bool,
) -> Response {
    let version = ctx.version();
    let layout = ctx.db.layout(entity);
    let shape = RowShape::new(entity, version, &layout.columns);
    let mut obj = shape.to_json(row, None);
    obj.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#{}/$entity",
            ctx.base, entity.set_name
        )),
    );
    let location = format!(
        "{}/{}({})",
        ctx.base,
        entity.set_name,
        shape.id(row).unwrap_or_default()
    );
    let mut r = if minimal {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_response(status, Json::Object(obj))
    };
    let h = r.headers_mut();
    if let Some(e) = shape.etag(row).and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert(header::ETAG, e);
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert("OData-EntityId", v.clone());
        if status == StatusCode::CREATED {
            h.insert(header::LOCATION, v);
        }
    }
    r
}

async fn post_resource(
    axum::Extension(target): axum::Extension<Target>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = DataCtx::new(target, s, caller, &env, &headers).await?;
    let Resource::Set(set) = parse_resource(&resource)? else {
        return Err(ApiError::method_not_allowed("POST goes to an entity set"));
    };
    let entity = ctx.entity_by_set(&set)?;
    ctx.authorize(&entity.name, "Create").await?;
    let input: Map<String, Json> = parse_body(body)?;
    let (input, lookups) = normalise_payload(&ctx, entity, input)?;
    authorize_lookups(&ctx, entity, &lookups).await?;
    let actor = Actor::person(ctx.caller.0.email.clone());
    let row = records::insert(&ctx.db, entity, &input, &actor).await?;
    Ok(record_response(
        &ctx,
        entity,
        &row,
        StatusCode::CREATED,
        prefers_minimal(&headers),
    ))
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => parse_if_match(
            v.to_str()
                .map_err(|_| ApiError::bad_request("If-Match is not text"))?,
        )
        .map_err(ApiError::bad_request),
    }
}

async fn patch_resource(
    axum::Extension(target): axum::Extension<Target>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = DataCtx::new(target, s, caller, &env, &headers).await?;
    let Resource::Entity(set, id) = parse_resource(&resource)? else {
        return Err(ApiError::method_not_allowed(
            "PATCH goes to one entity, like accounts(<id>)",
        ));
    };
    let entity = ctx.entity_by_set(&set)?;
    ctx.authorize(&entity.name, ctx.version().update_privilege())
        .await?;
    let expected = if_match(&headers)?;
    let input: Map<String, Json> = parse_body(body)?;
    let (input, lookups) = normalise_payload(&ctx, entity, input)?;
    authorize_lookups(&ctx, entity, &lookups).await?;
    let actor = Actor::person(ctx.caller.0.email.clone());
    let row = records::update(&ctx.db, entity, &id, &input, expected, &actor).await?;
    Ok(record_response(
        &ctx,
        entity,
        &row,
        StatusCode::OK,
        prefers_minimal(&headers),
    ))
}

async fn delete_resource(
    axum::Extension(target): axum::Extension<Target>,
    State(s): State<AppState>,
    caller: Caller,
    Path((env, resource)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = DataCtx::new(target, s, caller, &env, &headers).await?;
    let Resource::Entity(set, id) = parse_resource(&resource)? else {
        return Err(ApiError::method_not_allowed(
            "DELETE goes to one entity, like accounts(<id>)",
        ));
    };
    let entity = ctx.entity_by_set(&set)?;
    ctx.authorize(&entity.name, "Delete").await?;
    let actor = Actor::person(ctx.caller.0.email.clone());
    records::delete(&ctx.db, entity, &id, if_match(&headers)?, &actor).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
