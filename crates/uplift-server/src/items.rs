//! Step 2's items: the apps and flows that follow the upgrade, with their copies and
//! findings.

use axum::Json;
use axum::extract::{Path, State};
use uplift_api::ErrorBody;
use uplift_api::items::{ItemDetail, ItemList};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items))
        .routes(routes!(show_item))
}

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
