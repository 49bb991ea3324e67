//! The flows API: makers create and change flows (validated against the catalog of
//! the database they are bound to) and turn them on and off.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value as Json_, json};
use uplift_model::flow::{FlowDef, FlowState, validate};
use uplift_store::control::FlowRecord;

use crate::apps::bound_database;
use crate::auth::{Caller, Ownership};
use crate::error::{ApiError, parse_body};
use crate::state::AppState;

type Body = Result<Bytes, BytesRejection>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/environments/{env}/flows",
            get(list_flows).post(create_flow),
        )
        .route(
            "/api/environments/{env}/flows/{flow}",
            get(show_flow).put(put_flow),
        )
        .route("/api/environments/{env}/flows/{flow}/on", post(turn_on))
        .route("/api/environments/{env}/flows/{flow}/off", post(turn_off))
        .route(
            "/api/environments/{env}/flows/{flow}/run",
            post(run_by_hand),
        )
        .route("/api/environments/{env}/flows/{flow}/runs", get(list_runs))
        .route(
            "/api/environments/{env}/flows/{flow}/runs/{run}",
            get(show_run),
        )
}

fn view(f: &FlowRecord) -> Json_ {
    json!({
        "id": f.id,
        "name": f.definition.name,
        "owner": f.definition.owner,
        "editors": f.definition.editors,
        "state": f.definition.state,
        "database": f.database,
        "definition": f.definition,
        "updated_at": f.updated_at,
    })
}

pub(crate) async fn find_flow(s: &AppState, env: &str, id: &str) -> Result<FlowRecord, ApiError> {
    s.store.env_db(env).await?;
    s.store
        .control()
        .flow(env, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no flow '{id}' in '{env}'")))
}

fn may_edit(caller: &Caller, f: &FlowRecord) -> Result<(), ApiError> {
    if caller.is_admin() || f.editable_by(&caller.0.email) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} is neither the owner nor an editor of flow '{}'",
            caller.0.email, f.definition.name
        )))
    }
}

/// Validates `def` against the catalog of `database` and stores it under `id`.
async fn save(
    s: &AppState,
    env: &str,
    id: &str,
    def: &FlowDef,
    database: &str,
) -> Result<FlowRecord, ApiError> {
    let db = bound_database(s, env, database).await?;
    validate(def, &db.catalog()).map_err(|errors| {
        ApiError::bad_request(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    s.store.control().save_flow(env, id, def, database).await?;
    // Which entities' changes go to the outbox follows the flows that are on.
    s.flows
        .refresh(env)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    find_flow(s, env, id).await
}

/// The flows the caller owns or edits (all, for an admin): a definition can hold
/// secrets, such as an HTTP step's headers.
async fn list_flows(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    s.store.env_db(&env).await?;
    let flows = s.store.control().flows(&env).await?;
    Ok(Json(json!({
        "value": flows
            .iter()
            .filter(|f| may_edit(&caller, f).is_ok())
            .map(view)
            .collect::<Vec<_>>()
    })))
}

async fn show_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    let f = find_flow(&s, &env, &id).await?;
    may_edit(&caller, &f)?;
    Ok(Json(view(&f)))
}

/// Creates a flow bound to production; answers 201 with its id.
async fn create_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Json_>), ApiError> {
    caller.require_maker()?;
    let def: FlowDef = parse_body(body)?;
    caller.may_set_ownership(
        &format!("flow '{}'", def.name),
        None,
        Ownership {
            owner: &def.owner,
            editors: &def.editors,
        },
    )?;
    let production = s
        .store
        .control()
        .get_env(&env)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no environment '{env}'")))?
        .database;
    let id = uuid::Uuid::now_v7().to_string();
    let f = save(&s, &env, &id, &def, &production).await?;
    Ok((StatusCode::CREATED, Json(view(&f))))
}

/// Replaces a flow's definition; its binding stays.
async fn put_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    caller.require_maker()?;
    let def: FlowDef = parse_body(body)?;
    let f = find_flow(&s, &env, &id).await?;
    may_edit(&caller, &f)?;
    caller.may_set_ownership(
        &format!("flow '{}'", f.definition.name),
        Some(Ownership {
            owner: &f.definition.owner,
            editors: &f.definition.editors,
        }),
        Ownership {
            owner: &def.owner,
            editors: &def.editors,
        },
    )?;
    Ok(Json(view(&save(&s, &env, &id, &def, &f.database).await?)))
}

async fn set_state(
    s: AppState,
    caller: Caller,
    env: String,
    id: String,
    state: FlowState,
) -> Result<Json<Json_>, ApiError> {
    let f = find_flow(&s, &env, &id).await?;
    may_edit(&caller, &f)?;
    s.store.control().set_flow_state(&env, &id, state).await?;
    s.flows
        .refresh(&env)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(view(&find_flow(&s, &env, &id).await?)))
}

async fn turn_on(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    set_state(s, caller, env, id, FlowState::On).await
}

async fn turn_off(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    set_state(s, caller, env, id, FlowState::Off).await
}

/// Queues a run of a manually triggered flow: 202 with the run's id.
async fn run_by_hand(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Json_>), ApiError> {
    let f = find_flow(&s, &env, &id).await?;
    may_edit(&caller, &f)?;
    if !matches!(f.definition.trigger, uplift_model::flow::Trigger::Manual) {
        return Err(ApiError::conflict(format!(
            "flow '{}' is started by its trigger, not by hand",
            f.definition.name
        )));
    }
    if f.definition.state == FlowState::Off {
        return Err(ApiError::conflict(format!(
            "flow '{}' is off",
            f.definition.name
        )));
    }
    let trigger = json!({
        "kind": "manual",
        "user": caller.0.email,
        "time": uplift_model::value::format_instant(time::OffsetDateTime::now_utc()),
    });
    let run = s
        .flows
        .start_run(&f, trigger)
        .await
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(json!({"run": run}))))
}

/// Runs are shown to the flow's owner, editors and admins.
async fn list_runs(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<RunsQuery>,
) -> Result<Json<Json_>, ApiError> {
    let f = find_flow(&s, &env, &id).await?;
    may_edit(&caller, &f)?;
    let top = q
        .top
        .unwrap_or(DEFAULT_RUNS_LISTED)
        .clamp(1, MAX_RUNS_LISTED);
    let runs = s.store.control().runs(&env, &id, top).await?;
    Ok(Json(json!({"value": runs})))
}

async fn show_run(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id, run)): Path<(String, String, String)>,
) -> Result<Json<Json_>, ApiError> {
    let f = find_flow(&s, &env, &id).await?;
    may_edit(&caller, &f)?;
    let r = s
        .store
        .control()
        .run(&env, &run)
        .await?
        .filter(|r| r.flow_id == id)
        .ok_or_else(|| ApiError::not_found(format!("flow '{id}' has no run '{run}'")))?;
    Ok(Json(json!(r)))
}

/// The newest runs a listing shows, unless `?top=` asks for more (up to the max).
const DEFAULT_RUNS_LISTED: u32 = 200;
const MAX_RUNS_LISTED: u32 = 100_000;

#[derive(serde::Deserialize)]
struct RunsQuery {
    top: Option<u32>,
}
