//! The app player's HTTP face: views, forms and commands of an app, played by the
//! services on the database the app is bound to, rendered as the data API renders.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uplift_api::ErrorBody;
use uplift_api::apps::{CommandRun, RunStarted};
use uplift_service::player::{Play, Version};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body, Params};
use crate::odata::render;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_view))
        .routes(routes!(load_form))
        .routes(routes!(run_command))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PlayQuery {
    /// Play the draft instead of the published version (owner, editors, admins).
    #[serde(default)]
    draft: bool,
    /// Play the app's copy in the environment's upgrade, on the test database (owner,
    /// editors, admins; during step 2).
    #[serde(default)]
    upgrade: bool,
    #[serde(rename = "$top")]
    #[param(rename = "$top")]
    top: Option<u64>,
    #[serde(rename = "$skiptoken")]
    #[param(rename = "$skiptoken")]
    skiptoken: Option<String>,
    #[serde(rename = "$count")]
    #[param(rename = "$count")]
    count: Option<bool>,
}

impl PlayQuery {
    fn version(&self) -> Result<Version, ApiError> {
        match (self.draft, self.upgrade) {
            (false, false) => Ok(Version::Published),
            (true, false) => Ok(Version::Draft),
            (false, true) => Ok(Version::Upgrade),
            (true, true) => Err(ApiError::bad_request(
                "draft and upgrade are two versions: ask for one",
            )),
        }
    }

    /// The version's query parameter, which the next page's link carries.
    fn carried(&self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        if self.draft {
            params.push(("draft".into(), "true".into()));
        }
        if self.upgrade {
            params.push(("upgrade".into(), "true".into()));
        }
        params
    }
}

/// A page of a view: its columns, filtered and ordered as the view says.
#[utoipa::path(get, path = "/api/environments/{env}/apps/{app}/views/{view}", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path), ("view" = String, Path), PlayQuery),
    responses((status = 200, description = "An OData page with `view` and `columns`", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_view(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, app, view)): Path<(String, String, String)>,
    Params(q): Params<PlayQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let play = Play {
        version: q.version()?,
        top: q.top,
        skiptoken: q.skiptoken.clone(),
        count: q.count == Some(true),
        max_page_size: render::max_page_size(&headers),
        orderby: None,
    };
    let page = s.services.play_view(&c, &env, &app, &view, &play).await?;
    Ok(render::view_page(
        &render::base(s.public_url.as_deref(), &headers, &env),
        &app,
        page,
        &q.carried(),
    ))
}

/// The form's fields of one record.
#[utoipa::path(get, path = "/api/environments/{env}/apps/{app}/forms/{form}/{id}", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path), ("form" = String, Path), ("id" = String, Path), PlayQuery),
    responses((status = 200, description = "The record's form fields, as OData JSON", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn load_form(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, app, form, id)): Path<(String, String, String, String)>,
    Params(q): Params<PlayQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = s
        .services
        .load_form(&c, &env, &app, &form, &id, q.version()?)
        .await?;
    Ok(render::record(
        &render::data_base(s.public_url.as_deref(), &headers, &env, "data"),
        record,
        StatusCode::OK,
        false,
    ))
}

/// Runs an app command's flow on a record: 202 with the run's id.
#[utoipa::path(post, path = "/api/environments/{env}/apps/{app}/commands/{command}/run", tag = "apps",
    params(("env" = String, Path), ("app" = String, Path), ("command" = String, Path), PlayQuery),
    request_body = CommandRun,
    responses((status = 202, body = RunStarted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn run_command(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, app, command)): Path<(String, String, String)>,
    Params(q): Params<PlayQuery>,
    Body(req): Body<CommandRun>,
) -> Result<Response, ApiError> {
    let started = s
        .services
        .run_command(&c, &env, &app, &command, q.version()?, req)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}
