//! Step 2's items: the apps and flows that follow the upgrade, with their copies and
//! findings.

use axum::Json;
use axum::extract::{Path, State};
use uplift_api::ErrorBody;
use uplift_api::items::{ItemDetail, ItemList, Reason};
use uplift_upgrade::runner::ItemChange;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items))
        .routes(routes!(show_item))
        .routes(routes!(edit_copy))
        .routes(routes!(verify))
        .routes(routes!(accept))
        .routes(routes!(sign_off))
        .routes(routes!(exclude))
}

type Answer = Result<Json<ItemDetail>, ApiError>;

/// The items of the upgrade the caller may see: a maker the apps and flows they own or
/// edit, an admin all of them. Only while step 2 runs.
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/items", tag = "upgrade",
    params(("env" = String, Path)),
    responses((status = 200, body = ItemList), (status = 404, body = ErrorBody)))]
async fn list_items(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Result<Json<ItemList>, ApiError> {
    Ok(Json(s.services.upgrade_items(&c, &env).await?))
}

/// One item with its findings, its rewritten copy and the original.
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/items/{item}", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path)),
    responses((status = 200, body = ItemDetail), (status = 404, body = ErrorBody)))]
async fn show_item(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
) -> Result<Json<ItemDetail>, ApiError> {
    Ok(Json(s.services.upgrade_item(&c, &env, &item).await?))
}

/// Replaces an item's copy with a definition (an app's or a flow's, as the item is),
/// refused with a 400 naming every problem unless it is valid for the target catalog,
/// then checks it. A flow's copy is its `[Upgraded]` clone, which stays off.
#[utoipa::path(put, path = "/api/environments/{env}/upgrade/items/{item}/copy", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path)), request_body = Object,
    responses((status = 200, body = ItemDetail), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn edit_copy(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
    Body(copy): Body<serde_json::Value>,
) -> Answer {
    Ok(Json(
        s.services.edit_upgrade_copy(&c, &env, &item, copy).await?,
    ))
}

/// Checks the item's copy again: an error no longer seen is fixed.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/items/{item}/verify", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path)),
    responses((status = 200, body = ItemDetail), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
) -> Answer {
    Ok(Json(
        s.services
            .change_upgrade_item(&c, &env, &item, ItemChange::Verify)
            .await?,
    ))
}

/// Accepts a finding with a reason: it no longer stops a sign-off.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/items/{item}/findings/{finding}/accept", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path), ("finding" = String, Path)), request_body = Reason,
    responses((status = 200, body = ItemDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn accept(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item, finding)): Path<(String, String, String)>,
    Body(r): Body<Reason>,
) -> Answer {
    let change = ItemChange::Accept {
        finding,
        reason: r.reason,
    };
    Ok(Json(
        s.services
            .change_upgrade_item(&c, &env, &item, change)
            .await?,
    ))
}

/// The item is ready for step 3: a 409 names the errors still open.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/items/{item}/signoff", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path)),
    responses((status = 200, body = ItemDetail), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn sign_off(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
) -> Answer {
    Ok(Json(
        s.services
            .change_upgrade_item(&c, &env, &item, ItemChange::SignOff)
            .await?,
    ))
}

/// Leaves the item out of the upgrade (admins), with a reason.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/items/{item}/exclude", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path)), request_body = Reason,
    responses((status = 200, body = ItemDetail), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn exclude(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
    Body(r): Body<Reason>,
) -> Answer {
    let change = ItemChange::Exclude { reason: r.reason };
    Ok(Json(
        s.services
            .change_upgrade_item(&c, &env, &item, change)
            .await?,
    ))
}
