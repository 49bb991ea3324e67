//! The apps API: makers save drafts, publish immutable versions, and everyone who
//! may use the environment reads the published version.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value as Json_, json};
use uplift_model::app::{AppDef, validate};
use uplift_store::EnvDb;
use uplift_store::control::AppRecord;

use crate::auth::{Caller, Ownership};
use crate::error::{ApiError, parse_body};
use crate::state::AppState;

type Body = Result<Bytes, BytesRejection>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/environments/{env}/apps", get(list_apps))
        .route(
            "/api/environments/{env}/apps/{app}",
            get(show_app).put(put_app),
        )
        .route("/api/environments/{env}/apps/{app}/publish", post(publish))
        .route(
            "/api/environments/{env}/apps/{app}/versions/{version}",
            get(show_version),
        )
}

/// The database a draft, version or flow is bound to. A binding to a database the
/// environment does not have is an error: an app never silently falls back to
/// production.
pub async fn bound_database(
    s: &AppState,
    env: &str,
    database: &str,
) -> Result<Arc<EnvDb>, ApiError> {
    Ok(s.store.bound(env, database).await?)
}

/// The app as `caller` may see it: the draft only for its owner, editors and admins.
fn view(app: &AppRecord, caller: &Caller) -> Json_ {
    let mut v = json!({
        "name": app.name,
        "owner": app.owner,
        "editors": app.editors,
        "published": app.published,
    });
    if caller.is_admin() || app.editable_by(&caller.0.email) {
        v["draft"] = json!(app.draft);
    }
    v
}

async fn list_apps(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    s.store.env_db(&env).await?;
    let apps = s.store.control().apps(&env).await?;
    Ok(Json(json!({
        "value": apps.iter().map(|a| view(a, &caller)).collect::<Vec<_>>()
    })))
}

async fn show_app(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, name)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    let app = find(&s, &env, &name).await?;
    Ok(Json(view(&app, &caller)))
}

pub(crate) async fn find(s: &AppState, env: &str, name: &str) -> Result<AppRecord, ApiError> {
    s.store.env_db(env).await?;
    s.store
        .control()
        .app(env, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no app '{name}' in '{env}'")))
}

/// Saves a draft. Creating an app takes a maker or an admin; changing one takes its
/// owner, an editor or an admin.
async fn put_app(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, name)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_maker()?;
    let def: AppDef = parse_body(body)?;
    if def.name != name {
        return Err(ApiError::bad_request(format!(
            "the definition is named '{}' but was sent to '{name}'",
            def.name
        )));
    }
    s.store.env_db(&env).await?;
    let existing = s.store.control().app(&env, &name).await?;
    if let Some(app) = &existing
        && !caller.is_admin()
        && !app.editable_by(&caller.0.email)
    {
        return Err(ApiError::forbidden(format!(
            "{} is neither the owner nor an editor of app '{name}'",
            caller.0.email
        )));
    }
    caller.may_set_ownership(
        &format!("app '{name}'"),
        existing.as_ref().map(|a| Ownership {
            owner: &a.owner,
            editors: &a.editors,
        }),
        Ownership {
            owner: &def.owner,
            editors: &def.editors,
        },
    )?;
    // A new draft keeps the binding of the one before it; a new app is bound to
    // production.
    let database = match existing
        .as_ref()
        .and_then(|a| a.draft.as_ref().or(a.published.as_ref().map(|p| &p.bound)))
    {
        Some(b) => b.database.clone(),
        None => s
            .store
            .control()
            .get_env(&env)
            .await?
            .map(|e| e.database)
            .unwrap_or_default(),
    };
    let db = bound_database(&s, &env, &database).await?;
    let flows: std::collections::BTreeMap<String, uplift_model::flow::Trigger> = s
        .store
        .control()
        .flows(&env)
        .await?
        .into_iter()
        .map(|f| (f.id, f.definition.trigger))
        .collect();
    validate(&def, &db.catalog(), &|id| flows.get(id).cloned()).map_err(|errors| {
        ApiError::bad_request(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    s.store
        .control()
        .save_app_draft(&env, &def, &database)
        .await?;
    let app = find(&s, &env, &name).await?;
    Ok(Json(view(&app, &caller)))
}

async fn publish(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, name)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    let app = find(&s, &env, &name).await?;
    if !caller.is_admin() && !app.editable_by(&caller.0.email) {
        return Err(ApiError::forbidden(format!(
            "{} is neither the owner nor an editor of app '{name}'",
            caller.0.email
        )));
    }
    let version = s
        .store
        .control()
        .publish_app(&env, &name, &caller.0.email)
        .await?;
    let app = find(&s, &env, &name).await?;
    Ok(Json(
        json!({"version": version, "app": view(&app, &caller)}),
    ))
}

async fn show_version(
    State(s): State<AppState>,
    _caller: Caller,
    Path((env, name, version)): Path<(String, String, String)>,
) -> Result<Json<Json_>, ApiError> {
    let n: i64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{version}' is not a version number")))?;
    find(&s, &env, &name).await?;
    let v = s
        .store
        .control()
        .app_version(&env, &name, Some(n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("app '{name}' has no version {n}")))?;
    Ok(Json(json!(v)))
}
