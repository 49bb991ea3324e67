//! The apps API: makers save drafts, publish immutable versions, and everyone who
//! may use the environment reads the published version.

use axum::Json;
use axum::extract::{Path, State};
use uplift_api::apps::{App, AppVersion, Published};
use uplift_api::{ErrorBody, Listing};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body};
use crate::state::AppState;

type Answer<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps))
        .routes(routes!(show_app, put_app))
        .routes(routes!(publish))
        .routes(routes!(show_version))
}

/// The environment's apps; drafts only for their owners, editors and admins.
#[utoipa::path(get, path = "/api/environments/{env}/apps", tag = "apps", params(("env" = String, Path)),
    responses((status = 200, body = Listing<App>), (status = 404, body = ErrorBody)))]
async fn list_apps(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Answer<Listing<App>> {
    Ok(Json(Listing {
        value: s.services.list_apps(&c, &env).await?,
    }))
}

#[utoipa::path(get, path = "/api/environments/{env}/apps/{app}", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = App), (status = 404, body = ErrorBody)))]
async fn show_app(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, name)): Path<(String, String)>,
) -> Answer<App> {
    Ok(Json(s.services.app(&c, &env, &name).await?))
}

/// Saves the app's draft, checked against the catalog of the database it is bound to.
#[utoipa::path(put, path = "/api/environments/{env}/apps/{app}", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path)), request_body = Object,
    responses((status = 200, body = App), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn put_app(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, name)): Path<(String, String)>,
    Body(def): Body<uplift_api::Document>,
) -> Answer<App> {
    Ok(Json(s.services.save_app_draft(&c, &env, &name, def).await?))
}

/// Publishes the draft as the next immutable version.
#[utoipa::path(post, path = "/api/environments/{env}/apps/{app}/publish", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = Published), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn publish(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, name)): Path<(String, String)>,
) -> Answer<Published> {
    Ok(Json(s.services.publish_app(&c, &env, &name).await?))
}

#[utoipa::path(get, path = "/api/environments/{env}/apps/{app}/versions/{version}", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = AppVersion), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_version(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, name, version)): Path<(String, String, String)>,
) -> Answer<AppVersion> {
    let n: i64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{version}' is not a version number")))?;
    Ok(Json(s.services.app_version(&c, &env, &name, n).await?))
}
