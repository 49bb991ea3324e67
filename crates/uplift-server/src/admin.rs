//! The admin API: environments, their catalogs, users, tokens, security roles.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use uplift_model::entity::system_fields;
use uplift_model::input::{CatalogChange, EntityDef};
use uplift_model::security::{
    PlatformRole, Privileges, SecurityMode, UserStatus, check_privileges,
};
use uplift_model::{Entity, Field, FieldType, SchemaVersion};

use crate::auth::{Caller, hash_token, new_token};
use crate::error::{ApiError, parse_body};
use crate::state::AppState;

type Body = Result<Bytes, BytesRejection>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/me", get(me))
        .route("/api/environments", get(list_envs).post(create_env))
        .route("/api/environments/{env}", get(show_env).delete(delete_env))
        .route(
            "/api/environments/{env}/entities",
            get(list_entities).put(apply_entities),
        )
        .route(
            "/api/environments/{env}/entities/{entity}",
            get(show_entity).put(put_entity),
        )
        .route("/api/environments/{env}/roles", get(list_roles))
        .route(
            "/api/environments/{env}/roles/{role}",
            put(put_role).get(show_role),
        )
        .route(
            "/api/environments/{env}/roles/{role}/members",
            post(add_member),
        )
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/users/{email}", get(show_user).patch(update_user))
        .route("/api/tokens", post(create_token))
}

async fn health(State(s): State<AppState>) -> Json<Json_> {
    Json(json!({"status": "ok", "engine": s.store.engine_name()}))
}

async fn me(caller: Caller) -> Json<Json_> {
    Json(json!(caller.0))
}

// ---- environments

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEnv {
    name: String,
    #[serde(default = "default_version")]
    schema_version: String,
    #[serde(default = "default_mode")]
    security_mode: String,
}

fn default_version() -> String {
    "classic".into()
}
fn default_mode() -> String {
    "restricted".into()
}

async fn create_env(
    State(s): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let req: CreateEnv = parse_body(body)?;
    let version = SchemaVersion::parse(&req.schema_version).ok_or_else(|| {
        ApiError::bad_request(format!(
            "schema_version '{}' is not classic or modern",
            req.schema_version
        ))
    })?;
    let mode = SecurityMode::parse(&req.security_mode).ok_or_else(|| {
        ApiError::bad_request(format!(
            "security_mode '{}' is not open or restricted",
            req.security_mode
        ))
    })?;
    let rec = s.store.create_environment(&req.name, version, mode).await?;
    s.cache.clear();
    Ok((StatusCode::CREATED, Json(json!(rec))).into_response())
}

async fn list_envs(State(s): State<AppState>, _caller: Caller) -> Result<Json<Json_>, ApiError> {
    Ok(Json(json!(s.store.control().list_envs().await?)))
}

async fn show_env(
    State(s): State<AppState>,
    _caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let rec = s.env(&env).await?;
    let db = s.store.env_db(&env).await?;
    let catalog = db.catalog();
    let mut v = json!(rec);
    v["engine"] = json!(s.store.engine_name());
    v["entities"] = json!(catalog.entities.iter().map(|e| &e.name).collect::<Vec<_>>());
    Ok(Json(v))
}

async fn delete_env(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    s.store.delete_environment(&env).await?;
    s.cache.clear();
    Ok(StatusCode::NO_CONTENT)
}

// ---- catalog

/// A field as the API shows it: the definition format users write, plus its origin.
pub fn field_view(f: &Field) -> Json_ {
    let mut v = json!({"name": f.name, "type": f.ty.type_name(), "origin": f.origin, "required": f.required});
    if !f.display_name.is_empty() {
        v["display_name"] = json!(f.display_name);
    }
    if let Some(n) = f.ty.max_chars()
        && !matches!(f.ty, FieldType::LargeText | FieldType::UserOrGroup)
    {
        v["max_length"] = json!(n);
    }
    match &f.ty {
        FieldType::Picklist { options } => v["options"] = json!(options),
        FieldType::OptionSet { options } => v["options"] = json!(options),
        FieldType::Lookup { target } => v["target"] = json!(target),
        FieldType::SingleLineText { format, .. } => v["format"] = json!(format.as_str()),
        FieldType::ModernDateTime { date_only } => v["date_only"] = json!(date_only),
        _ => {}
    }
    v
}

pub fn entity_view(e: &Entity, version: SchemaVersion) -> Json_ {
    json!({
        "name": e.name,
        "display_name": e.display_name,
        "set_name": e.set_name,
        "business_key": e.business_key,
        "origin": e.origin,
        "fields": e.fields.iter().map(field_view).collect::<Vec<_>>(),
        "system_fields": system_fields(version).iter().map(field_view).collect::<Vec<_>>(),
    })
}

async fn list_entities(
    State(s): State<AppState>,
    _caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let catalog = s.store.env_db(&env).await?.catalog();
    Ok(Json(json!({
        "schema_version": catalog.version,
        "entities": catalog.entities.iter().map(|e| entity_view(e, catalog.version)).collect::<Vec<_>>(),
    })))
}

async fn show_entity(
    State(s): State<AppState>,
    _caller: Caller,
    Path((env, name)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    let catalog = s.store.env_db(&env).await?.catalog();
    let e = catalog
        .entity(&name)
        .ok_or_else(|| ApiError::not_found(format!("no entity '{name}' in environment '{env}'")))?;
    Ok(Json(entity_view(e, catalog.version)))
}

fn changes_view(changes: &[CatalogChange]) -> Json_ {
    json!({"changes": changes.iter().map(|c| match c {
        CatalogChange::CreateEntity { entity } => json!({"created_entity": entity}),
        CatalogChange::AddField { entity, field } => json!({"added_field": format!("{entity}.{field}")}),
    }).collect::<Vec<_>>()})
}

async fn put_entity(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, name)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_maker()?;
    let def: EntityDef = parse_body(body)?;
    refuse_when_locked(&s, &env).await?;
    let db = s.store.env_db(&env).await?;
    let changes = db.apply(&BTreeMap::from([(name, def)])).await?;
    Ok(Json(changes_view(&changes)))
}

/// Schema edits wait while an upgrade copies the catalog (423 Locked).
async fn refuse_when_locked(s: &AppState, env: &str) -> Result<(), ApiError> {
    if s.upgrades.schema_locked(env).await? {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "Locked",
            format!(
                "the schema of '{env}' is locked: an upgrade's step 1 is running; entity definitions can change again when it ends or is cancelled"
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesDoc {
    entities: BTreeMap<String, EntityDef>,
}

async fn apply_entities(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_maker()?;
    let doc: EntitiesDoc = parse_body(body)?;
    refuse_when_locked(&s, &env).await?;
    let db = s.store.env_db(&env).await?;
    let changes = db.apply(&doc.entities).await?;
    Ok(Json(changes_view(&changes)))
}

// ---- users and tokens

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    email: String,
    display_name: String,
    #[serde(default = "default_role")]
    role: String,
}

fn default_role() -> String {
    "user".into()
}

fn parse_role(r: &str) -> Result<PlatformRole, ApiError> {
    PlatformRole::parse(r)
        .ok_or_else(|| ApiError::bad_request(format!("role '{r}' is not admin, maker or user")))
}

async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let req: CreateUser = parse_body(body)?;
    if !uplift_model::codec::is_email(&req.email) {
        return Err(ApiError::bad_request(format!(
            "email '{}' is not an e-mail address",
            req.email
        )));
    }
    let u = s
        .store
        .control()
        .insert_user(&req.email, &req.display_name, parse_role(&req.role)?)
        .await?;
    s.cache.clear();
    Ok((StatusCode::CREATED, Json(json!(u))).into_response())
}

async fn list_users(State(s): State<AppState>, caller: Caller) -> Result<Json<Json_>, ApiError> {
    caller.require_admin()?;
    Ok(Json(json!(s.store.control().list_users().await?)))
}

async fn show_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    if !caller.is_admin() && !caller.0.email.eq_ignore_ascii_case(&email) {
        return Err(ApiError::forbidden(
            "only administrators can see other users",
        ));
    }
    let u = s
        .store
        .control()
        .get_user(&email)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {email}")))?;
    Ok(Json(json!(u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    status: Option<String>,
    role: Option<String>,
    display_name: Option<String>,
}

async fn update_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_admin()?;
    let req: UpdateUser = parse_body(body)?;
    let status = req
        .status
        .as_deref()
        .map(|st| {
            UserStatus::parse(st).ok_or_else(|| {
                ApiError::bad_request(format!("status '{st}' is not active or disabled"))
            })
        })
        .transpose()?;
    let role = req.role.as_deref().map(parse_role).transpose()?;
    if s.store.control().get_user(&email).await?.is_none() {
        return Err(ApiError::not_found(format!("no user {email}")));
    }
    if caller.0.email.eq_ignore_ascii_case(&email)
        && (status == Some(UserStatus::Disabled) || role.is_some_and(|r| r != PlatformRole::Admin))
    {
        return Err(ApiError::bad_request(
            "administrators cannot disable or demote themselves",
        ));
    }
    let u = s
        .store
        .control()
        .update_user(&email, status, role, req.display_name.as_deref())
        .await?;
    s.cache.clear();
    Ok(Json(json!(u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    user: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let req: CreateToken = parse_body(body)?;
    let email = req.user.unwrap_or_else(|| caller.0.email.clone());
    if !caller.is_admin() && !caller.0.email.eq_ignore_ascii_case(&email) {
        return Err(ApiError::forbidden(
            "only administrators can create tokens for other users",
        ));
    }
    let user = s
        .store
        .control()
        .get_user(&email)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {email}")))?;
    let token = new_token()?;
    s.store
        .control()
        .insert_token(
            &user.email,
            &hash_token(&token),
            req.label.as_deref().unwrap_or(""),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": user.email, "token": token})),
    )
        .into_response())
}

// ---- roles

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRole {
    privileges: BTreeMap<String, BTreeSet<String>>,
}

async fn put_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, role)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_admin()?;
    let req: PutRole = parse_body(body)?;
    let privileges: Privileges = req.privileges;
    if role.trim().is_empty() || role.len() > 100 {
        return Err(ApiError::bad_request(
            "a role name must have 1 to 100 characters",
        ));
    }
    let catalog = s.store.env_db(&env).await?.catalog();
    for entity in privileges.keys() {
        if catalog.entity(entity).is_none() {
            return Err(ApiError::bad_request(format!(
                "role '{role}': there is no entity '{entity}' in environment '{env}'"
            )));
        }
    }
    check_privileges(catalog.version, &privileges)
        .map_err(|m| ApiError::bad_request(format!("role '{role}': {m}")))?;
    s.store.control().put_role(&env, &role, &privileges).await?;
    s.cache.clear();
    Ok(Json(
        json!({"env": env, "name": role, "privileges": privileges}),
    ))
}

async fn show_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, role)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    caller.require_admin()?;
    let r = s
        .store
        .control()
        .get_role(&env, &role)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no role '{role}' in '{env}'")))?;
    Ok(Json(json!(r)))
}

async fn list_roles(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    caller.require_admin()?;
    s.env(&env).await?;
    let members = s.store.control().roles_with_members(&env).await?;
    let roles = s.store.control().list_roles(&env).await?;
    Ok(Json(json!(roles
        .into_iter()
        .map(|r| json!({"name": r.name, "privileges": r.privileges, "members": members.get(&r.name)}))
        .collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    user: String,
}

async fn add_member(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, role)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_admin()?;
    let req: AddMember = parse_body(body)?;
    s.env(&env).await?;
    if s.store.control().get_role(&env, &role).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "no role '{role}' in environment '{env}'"
        )));
    }
    if s.store.control().get_user(&req.user).await?.is_none() {
        return Err(ApiError::not_found(format!("no user {}", req.user)));
    }
    s.store.control().add_member(&env, &role, &req.user).await?;
    s.cache.clear();
    Ok(Json(
        json!({"env": env, "role": role, "user": req.user.to_lowercase()}),
    ))
}
