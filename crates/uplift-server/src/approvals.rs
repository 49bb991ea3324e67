//! The approvals system entity: requests that flow runs wait on, listed with OData
//! query options for their approvers, and answered here.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use uplift_api::ErrorBody;
use uplift_api::flows::{Answer as AnswerBody, Approval, ApprovalPage};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_approvals))
        .routes(routes!(show_approval, answer_approval))
}

/// The requests the caller is an approver of (all, for an admin), with `$filter`,
/// `$orderby`, `$top`, `$skip` and `$count`.
#[utoipa::path(get, path = "/api/environments/{env}/approvals", tag = "flows",
    params(("env" = String, Path),
        ("$filter" = Option<String>, Query), ("$orderby" = Option<String>, Query),
        ("$top" = Option<u64>, Query), ("$skip" = Option<u64>, Query), ("$count" = Option<bool>, Query)),
    responses((status = 200, body = ApprovalPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_approvals(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ApprovalPage>, ApiError> {
    Ok(Json(
        s.services.list_approvals(&c, &env, raw.as_deref()).await?,
    ))
}

#[utoipa::path(get, path = "/api/environments/{env}/approvals/{approval}", tag = "flows",
    params(("env" = String, Path), ("approval" = String, Path)),
    responses((status = 200, body = Approval), (status = 404, body = ErrorBody)))]
async fn show_approval(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(s.services.approval(&c, &env, &id).await?))
}

/// Answers a request as one of its approvers; the waiting run continues.
#[utoipa::path(post, path = "/api/environments/{env}/approvals/{approval}", tag = "flows",
    params(("env" = String, Path), ("approval" = String, Path)), request_body = AnswerBody,
    responses((status = 200, body = Approval), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn answer_approval(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, id)): Path<(String, String)>,
    Body(answer): Body<AnswerBody>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(
        s.services.answer_approval(&c, &env, &id, answer).await?,
    ))
}
