//! The upgrade API: preview a plan, start step 1, follow it, read its report, cancel
//! or retry it, complete it (step 3).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uplift_api::ErrorBody;
use uplift_api::upgrade::{
    AuditLog, CompleteUpgrade, Preflight, Preview, Report, RevertPreview, StartRevert,
    StartUpgrade, TestAccess, TestAccessGrant, Upgrade,
};
use uplift_service::upgrade::PreviewRequest;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body, Params};
use crate::state::AppState;

type Answer<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status, start))
        .routes(routes!(preview))
        .routes(routes!(report))
        .routes(routes!(cancel))
        .routes(routes!(complete))
        .routes(routes!(preflight))
        .routes(routes!(cleanup))
        .routes(routes!(revert))
        .routes(routes!(audit_log))
        .routes(routes!(revert_preview))
        .routes(routes!(retry))
        .routes(routes!(refresh))
        .routes(routes!(list_test_access))
        .routes(routes!(grant_test_access))
}

/// Who may do what in the test database (admins): the upgraded roles of each user and
/// what admins granted for testing.
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/test/access", tag = "upgrade",
    params(("env" = String, Path)),
    responses((status = 200, body = Vec<TestAccess>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_test_access(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Vec<TestAccess>> {
    Ok(Json(s.services.test_access(&c, &env).await?))
}

/// Grants a user privileges in the test database beyond their upgraded roles (admins),
/// replacing an earlier grant; empty privileges withdraw it. Only while step 2 runs.
#[utoipa::path(put, path = "/api/environments/{env}/upgrade/test/access/{user}", tag = "upgrade",
    params(("env" = String, Path), ("user" = String, Path)), request_body = TestAccessGrant,
    responses((status = 200, body = TestAccess), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn grant_test_access(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, user)): Path<(String, String)>,
    Body(req): Body<TestAccessGrant>,
) -> Answer<TestAccess> {
    Ok(Json(
        s.services.grant_test_access(&c, &env, &user, req).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    /// The plan (`classic-to-modern` unless given).
    plan: Option<String>,
    /// The base language (`en` unless given).
    language: Option<String>,
    /// The base currency (`USD` unless given).
    currency: Option<String>,
}

/// The target catalog, the change list and the security mapping, touching nothing.
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/preview", tag = "upgrade",
    params(("env" = String, Path), PreviewQuery),
    responses((status = 200, body = Preview), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn preview(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    Params(q): Params<PreviewQuery>,
) -> Answer<Preview> {
    let req = PreviewRequest {
        plan: q.plan,
        language: q.language,
        currency: q.currency,
    };
    Ok(Json(s.services.preview_upgrade(&c, &env, req).await?))
}

/// Starts step 1 (admins): 202, then follow it with `GET …/upgrade`.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade", tag = "upgrade",
    params(("env" = String, Path)), request_body = StartUpgrade,
    responses((status = 202, body = Upgrade), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn start(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    Body(req): Body<StartUpgrade>,
) -> Result<(StatusCode, Json<Upgrade>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(s.services.start_upgrade(&c, &env, req).await?),
    ))
}

/// The latest upgrade, with live progress while step 1 runs.
#[utoipa::path(get, path = "/api/environments/{env}/upgrade", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = Upgrade), (status = 404, body = ErrorBody)))]
async fn status(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Upgrade> {
    Ok(Json(s.services.upgrade_status(&c, &env).await?))
}

/// Starts step 3 (admins): production is rebuilt on the new schema while it serves,
/// then switched over in a write pause of at most `pause_budget_ms`.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/complete", tag = "upgrade", params(("env" = String, Path)),
    request_body = CompleteUpgrade,
    responses((status = 202, body = Upgrade), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn complete(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    Body(req): Body<CompleteUpgrade>,
) -> Result<(StatusCode, Json<Upgrade>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(s.services.complete_upgrade(&c, &env, req).await?),
    ))
}

/// What step 3 checks before it starts, without starting it (admins).
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/complete/preflight", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = Preflight), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn preflight(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Preflight> {
    Ok(Json(s.services.upgrade_preflight(&c, &env).await?))
}

/// Cancels the upgrade (admins): the test database is dropped.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/cancel", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = Upgrade), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Upgrade> {
    Ok(Json(s.services.cancel_upgrade(&c, &env).await?))
}

/// Runs step 1 again after a failure (admins).
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/retry", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = Upgrade), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Upgrade> {
    Ok(Json(s.services.retry_upgrade(&c, &env).await?))
}

/// Rebuilds the test database from production as it is now (after a forced schema
/// change) with step 1's copy and check, then verifies every item again; copies and
/// makers' edits are kept (admins). 202: it runs in the background, as step 1 does.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/refresh", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 202, body = Upgrade), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn refresh(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    let v = s.services.refresh_upgrade(&c, &env).await?;
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

/// Step 1's report: per entity counts, checks and samples, the change list, security.
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/report", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = Report), (status = 404, body = ErrorBody)))]
async fn report(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Report> {
    Ok(Json(s.services.upgrade_report(&c, &env).await?))
}

/// Deletes what a completed upgrade kept — the test database and the old production —
/// now, instead of when their time is up (admins). No revert is possible after it.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/cleanup", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = Upgrade), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cleanup(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Upgrade> {
    Ok(Json(s.services.cleanup_upgrade(&c, &env).await?))
}

/// What a revert would carry back to the old production now, and what it cannot
/// (admins).
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/revert/preview", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = RevertPreview), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revert_preview(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<RevertPreview> {
    Ok(Json(s.services.revert_preview(&c, &env).await?))
}

/// Reverts a completed upgrade within its window (admins): production goes back to
/// the database it was on, every write made since carried back, in a write pause of at
/// most `pause_budget_ms`; apps and flows go back to what they were. 202: it runs in
/// the background.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/revert", tag = "upgrade", params(("env" = String, Path)),
    request_body = StartRevert,
    responses((status = 202, body = Upgrade), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revert(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    Body(req): Body<StartRevert>,
) -> Result<(StatusCode, Json<Upgrade>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(s.services.revert_upgrade(&c, &env, req).await?),
    ))
}

/// The upgrade's events as they were logged, oldest first: who did what, when (admins).
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/log", tag = "upgrade", params(("env" = String, Path)),
    responses((status = 200, body = AuditLog), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn audit_log(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<AuditLog> {
    Ok(Json(s.services.upgrade_log(&c, &env).await?))
}
