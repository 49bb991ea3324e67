//! The flows API: makers create and change flows and turn them on and off, start
//! manual ones and read their runs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uplift_api::apps::RunStarted;
use uplift_api::flows::{Flow, Run};
use uplift_api::{ErrorBody, Listing};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body, Params};
use crate::state::AppState;

type Answer<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flows, create_flow))
        .routes(routes!(show_flow, put_flow))
        .routes(routes!(turn_on))
        .routes(routes!(turn_off))
        .routes(routes!(run_by_hand))
        .routes(routes!(list_runs))
        .routes(routes!(show_run))
}

/// The flows the caller owns or edits (all, for an admin).
#[utoipa::path(get, path = "/api/environments/{env}/flows", tag = "flows", params(("env" = String, Path)),
    responses((status = 200, body = Listing<Flow>), (status = 404, body = ErrorBody)))]
async fn list_flows(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Listing<Flow>> {
    Ok(Json(Listing {
        value: s.services.list_flows(&c, &env).await?,
    }))
}

#[utoipa::path(get, path = "/api/environments/{env}/flows/{flow}", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path)),
    responses((status = 200, body = Flow), (status = 404, body = ErrorBody)))]
async fn show_flow(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
) -> Answer<Flow> {
    Ok(Json(s.services.flow(&c, &env, &id).await?))
}

/// Creates a flow bound to production; 201 with its id.
#[utoipa::path(post, path = "/api/environments/{env}/flows", tag = "flows", params(("env" = String, Path)),
    request_body = Object,
    responses((status = 201, body = Flow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_flow(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    Body(def): Body<uplift_api::Document>,
) -> Result<(StatusCode, Json<Flow>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.create_flow(&c, &env, def).await?),
    ))
}

/// Replaces a flow's definition; its binding stays.
#[utoipa::path(put, path = "/api/environments/{env}/flows/{flow}", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path)), request_body = Object,
    responses((status = 200, body = Flow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn put_flow(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
    Body(def): Body<uplift_api::Document>,
) -> Answer<Flow> {
    Ok(Json(s.services.replace_flow(&c, &env, &id, def).await?))
}

#[utoipa::path(post, path = "/api/environments/{env}/flows/{flow}/on", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path)),
    responses((status = 200, body = Flow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn turn_on(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
) -> Answer<Flow> {
    Ok(Json(s.services.set_flow_state(&c, &env, &id, true).await?))
}

#[utoipa::path(post, path = "/api/environments/{env}/flows/{flow}/off", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path)),
    responses((status = 200, body = Flow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn turn_off(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
) -> Answer<Flow> {
    Ok(Json(s.services.set_flow_state(&c, &env, &id, false).await?))
}

/// Queues a run of a manually triggered flow: 202 with the run's id.
#[utoipa::path(post, path = "/api/environments/{env}/flows/{flow}/run", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path)),
    responses((status = 202, body = RunStarted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_by_hand(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(s.services.run_flow(&c, &env, &id).await?),
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// How many of the newest runs (200 unless given, at most 100000).
    top: Option<u32>,
}

/// The flow's runs, newest first, with every step.
#[utoipa::path(get, path = "/api/environments/{env}/flows/{flow}/runs", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path), RunsQuery),
    responses((status = 200, body = Listing<Run>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_runs(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
    Params(q): Params<RunsQuery>,
) -> Answer<Listing<Run>> {
    Ok(Json(Listing {
        value: s.services.runs(&c, &env, &id, q.top).await?,
    }))
}

#[utoipa::path(get, path = "/api/environments/{env}/flows/{flow}/runs/{run}", tag = "flows",
    params(("env" = String, Path), ("flow" = String, Path), ("run" = String, Path)),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody)))]
async fn show_run(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id, run)): Path<(String, String, String)>,
) -> Answer<Run> {
    Ok(Json(s.services.run(&c, &env, &id, &run).await?))
}
