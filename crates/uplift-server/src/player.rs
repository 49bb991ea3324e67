//! The app player: runs an app's views and loads its forms on the database the app is
//! bound to, with the caller's own privileges. The published version plays by
//! default; `?draft=true` plays the draft, for those who may edit it.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value as Json_;
use uplift_store::control::Bound;

use crate::apps::{bound_database, find};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::odata::BoundData;
use crate::state::AppState;

/// The largest page body the player re-reads to rewrite its next link.
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/environments/{env}/apps/{app}/views/{view}",
            get(run_view),
        )
        .route(
            "/api/environments/{env}/apps/{app}/forms/{form}/{id}",
            get(load_form),
        )
        .route(
            "/api/environments/{env}/apps/{app}/commands/{command}/run",
            axum::routing::post(run_command),
        )
}

#[derive(Deserialize, Default)]
struct Play {
    #[serde(default)]
    draft: bool,
    #[serde(rename = "$top")]
    top: Option<u64>,
    #[serde(rename = "$skiptoken")]
    skiptoken: Option<String>,
    #[serde(rename = "$count")]
    count: Option<bool>,
}

/// The version of the app to play: the published one, or the draft for its editors.
async fn playing(
    s: &AppState,
    caller: &Caller,
    env: &str,
    app: &str,
    draft: bool,
) -> Result<Bound, ApiError> {
    let record = find(s, env, app).await?;
    if draft {
        if !caller.is_admin() && !record.editable_by(&caller.0.email) {
            return Err(ApiError::forbidden(format!(
                "only the owner, editors and administrators play the draft of app '{app}'"
            )));
        }
        return record
            .draft
            .ok_or_else(|| ApiError::not_found(format!("app '{app}' has no draft")));
    }
    record
        .published
        .map(|v| v.bound)
        .ok_or_else(|| ApiError::not_found(format!("app '{app}' has no published version")))
}

fn base_url(headers: &HeaderMap, env: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/api/environments/{env}/data")
}

async fn run_view(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, app, view)): Path<(String, String, String)>,
    Query(play): Query<Play>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bound = playing(&s, &caller, &env, &app, play.draft).await?;
    let v = bound
        .definition
        .views
        .iter()
        .find(|v| v.name == view)
        .ok_or_else(|| ApiError::not_found(format!("app '{app}' has no view '{view}'")))?
        .clone();
    let db = bound_database(&s, &env, &bound.database).await?;
    let data = BoundData::new(s, caller, &env, db, base_url(&headers, &env)).await?;
    let set = data
        .catalog()
        .entity(&v.entity)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "view '{view}' reads entity '{}', which its database no longer has",
                v.entity
            ))
        })?
        .set_name
        .clone();
    // The view's own query; the caller only pages it.
    let mut select: Vec<&str> = v
        .columns
        .iter()
        .map(|c| c.split('/').next().unwrap_or(c))
        .collect();
    select.dedup();
    // Built apart: the serializer may not be held across an await.
    let raw = {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("$select", &select.join(","));
        if let Some(f) = &v.filter {
            q.append_pair("$filter", f);
        }
        if let Some(o) = &v.orderby {
            q.append_pair("$orderby", o);
        }
        if let Some(t) = play.top {
            q.append_pair("$top", &t.to_string());
        }
        if let Some(t) = &play.skiptoken {
            q.append_pair("$skiptoken", t);
        }
        if play.count == Some(true) {
            q.append_pair("$count", "true");
        }
        q.finish()
    };
    let answer = data.list(&set, &raw, &headers).await?;
    let preference = answer.headers().get("Preference-Applied").cloned();
    let bytes = axum::body::to_bytes(answer.into_body(), MAX_PAGE_BYTES)
        .await
        .map_err(|e| ApiError::bad_request(format!("the page is too large: {e}")))?;
    let mut page: Json_ = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("unreadable page: {e}")))?;
    // The next page is the view's next page: only the paging options carry over.
    if let Some(next) = page.get("@odata.nextLink").and_then(Json_::as_str) {
        let next = url::Url::parse(next)
            .map_err(|e| ApiError::bad_request(format!("bad next link: {e}")))?;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if play.draft {
            q.append_pair("draft", "true");
        }
        for (k, v) in next.query_pairs() {
            if k == "$skiptoken" || k == "$top" {
                q.append_pair(&k, &v);
            }
        }
        page["@odata.nextLink"] = Json_::String(format!(
            "{}/apps/{app}/views/{view}?{}",
            base_url(&headers, &env).trim_end_matches("/data"),
            q.finish()
        ));
    }
    page["view"] = Json_::String(view);
    page["columns"] = serde_json::json!(v.columns);
    let mut r = Json(page).into_response();
    if let Some(p) = preference {
        r.headers_mut().insert("Preference-Applied", p);
    }
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    Ok(r)
}

async fn load_form(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, app, form, id)): Path<(String, String, String, String)>,
    Query(play): Query<Play>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bound = playing(&s, &caller, &env, &app, play.draft).await?;
    let f = bound
        .definition
        .forms
        .iter()
        .find(|f| f.name == form)
        .ok_or_else(|| ApiError::not_found(format!("app '{app}' has no form '{form}'")))?
        .clone();
    let db = bound_database(&s, &env, &bound.database).await?;
    let data = BoundData::new(s, caller, &env, db, base_url(&headers, &env)).await?;
    let set = data
        .catalog()
        .entity(&f.entity)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "form '{form}' shows entity '{}', which its database no longer has",
                f.entity
            ))
        })?
        .set_name
        .clone();
    let raw = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("$select", &f.fields.join(","))
        .finish();
    let mut r = data.get(&set, &id, &raw).await?;
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandRun {
    /// The id of the record the command runs on.
    record: String,
}

/// Runs an app command on a record: the record is read with the caller's privileges
/// and handed to the command's flow as `trigger.record`; 202 with the run's id.
async fn run_command(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, app, command)): Path<(String, String, String)>,
    Query(play): Query<Play>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: CommandRun = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let bound = playing(&s, &caller, &env, &app, play.draft).await?;
    let c = bound
        .definition
        .commands
        .iter()
        .find(|c| c.label == command)
        .ok_or_else(|| ApiError::not_found(format!("app '{app}' has no command '{command}'")))?
        .clone();
    let flow = crate::flows::find_flow(&s, &env, &c.flow).await?;
    let fits = matches!(
        &flow.definition.trigger,
        uplift_model::flow::Trigger::AppCommand { entity } if *entity == c.entity
    );
    if !fits {
        return Err(ApiError::conflict(format!(
            "flow '{}' is not started by commands on '{}'",
            flow.definition.name, c.entity
        )));
    }
    if flow.definition.state == uplift_model::flow::FlowState::Off {
        return Err(ApiError::conflict(format!(
            "flow '{}' is off",
            flow.definition.name
        )));
    }
    let db = bound_database(&s, &env, &bound.database).await?;
    let flows = s.flows.clone();
    let user = caller.0.email.clone();
    let data = BoundData::new(s, caller, &env, db, base_url(&headers, &env)).await?;
    let set = data
        .catalog()
        .entity(&c.entity)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "command '{command}' works on entity '{}', which its database no longer has",
                c.entity
            ))
        })?
        .set_name
        .clone();
    let answer = data.get(&set, &req.record, "").await?;
    let bytes = axum::body::to_bytes(answer.into_body(), MAX_PAGE_BYTES)
        .await
        .map_err(|e| ApiError::bad_request(format!("the record is too large: {e}")))?;
    let mut record: serde_json::Map<String, Json_> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("unreadable record: {e}")))?;
    record.retain(|k, _| !k.starts_with('@'));
    let trigger = serde_json::json!({
        "kind": "app_command",
        "app": app,
        "command": command,
        "entity": c.entity,
        "record": record,
        "user": user,
        "time": uplift_model::value::format_instant(time::OffsetDateTime::now_utc()),
    });
    let run = flows
        .start_run(&flow, trigger)
        .await
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"run": run, "flow": flow.id})),
    )
        .into_response())
}
