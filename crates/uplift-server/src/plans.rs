//! Upgrade plans: the shipped ones, and the ones admins upload. An upgrade names its
//! plan; it never hands the server a path.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uplift_api::ErrorBody;
use uplift_api::upgrade::{PlanDetail, PlanSummary};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, TextBody};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans))
        .routes(routes!(show_plan, put_plan))
}

/// Every plan an upgrade can name (admins).
#[utoipa::path(get, path = "/api/plans", tag = "upgrade",
    responses((status = 200, body = Vec<PlanSummary>), (status = 403, body = ErrorBody)))]
async fn list_plans(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> Result<Json<Vec<PlanSummary>>, ApiError> {
    Ok(Json(s.services.list_plans(&c).await?))
}

/// One plan with its text (admins).
#[utoipa::path(get, path = "/api/plans/{name}", tag = "upgrade", params(("name" = String, Path)),
    responses((status = 200, body = PlanDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_plan(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> Result<Json<PlanDetail>, ApiError> {
    Ok(Json(s.services.show_plan(&c, &name).await?))
}

/// Uploads a plan (admins): the body is the plan's TOML, validated before it is kept;
/// one over 256 KiB is a 400 (413 past the server's body limit). 201 for a new name,
/// 200 when it replaces one; a shipped plan's name is refused (409). Documented as
/// `text/plain` (what generic clients can send); the content type is not checked, so
/// `application/toml`, as the CLI sends, is the same request.
#[utoipa::path(put, path = "/api/plans/{name}", tag = "upgrade", params(("name" = String, Path)),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = PlanDetail), (status = 201, body = PlanDetail),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn put_plan(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    TextBody(text): TextBody,
) -> Result<(StatusCode, Json<PlanDetail>), ApiError> {
    let (created, plan) = s.services.put_plan(&c, &name, &text).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(plan)))
}
