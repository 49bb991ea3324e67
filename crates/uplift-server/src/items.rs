//! Step 2's items: the apps and flows that follow the upgrade, with their copies and
//! findings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use uplift_api::ErrorBody;
use uplift_api::items::{
    Finding, ItemDetail, ItemList, ItemReport, Notified, Reason, VerificationQueued,
};
use uplift_api::upgrade::CapturedList;
use uplift_upgrade::runner::ItemChange;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, Body, Params};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items))
        .routes(routes!(show_item))
        .routes(routes!(item_report))
        .routes(routes!(edit_copy))
        .routes(routes!(verify))
        .routes(routes!(accept))
        .routes(routes!(sign_off))
        .routes(routes!(exclude))
        .routes(routes!(captured))
        .routes(routes!(verify_all))
        .routes(routes!(notify))
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

/// Verifies the item now: its copy is checked against the target catalog and run on
/// the test database (views, forms, a dry run), its original the same way on
/// production; a finding no longer seen is fixed.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/items/{item}/verify", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path)),
    responses((status = 200, body = ItemDetail), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
) -> Answer {
    Ok(Json(s.services.verify_upgrade_item(&c, &env, &item).await?))
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

#[derive(Debug, Clone, Copy, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Csv,
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// `json` (the default) or `csv`, a row per finding.
    #[param(inline)]
    format: Option<Format>,
}

/// An item's report: the item and every finding, as JSON or as CSV (a header, then a
/// row per finding).
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/items/{item}/report", tag = "upgrade",
    params(("env" = String, Path), ("item" = String, Path), ReportQuery),
    responses((status = 200, description = "The report", content((ItemReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn item_report(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((env, item)): Path<(String, String)>,
    Params(q): Params<ReportQuery>,
) -> Result<Response, ApiError> {
    let r = s.services.upgrade_item_report(&c, &env, &item).await?;
    Ok(match q.format.unwrap_or_default() {
        Format::Json => Json(r).into_response(),
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv(&r.findings),
        )
            .into_response(),
    })
}

/// An enum as its JSON spells it (`error`, `accepted`).
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

const CSV_HEADER: &str = "id,severity,location,message,suggestion,pre_existing,resolution,reason";

/// The findings as CSV (RFC 4180: a field with a comma, a quote or a line break is
/// quoted, its quotes doubled).
fn csv(findings: &[Finding]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for f in findings {
        let cells = [
            f.id.clone(),
            word(&f.severity),
            f.location.clone(),
            f.message.clone(),
            f.suggestion.clone().unwrap_or_default(),
            f.pre_existing.to_string(),
            word(&f.resolution),
            f.reason.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// What flows bound to the test database sent: every e-mail, and every HTTP call to a
/// host the upgrade's `allow_http` does not name, oldest first (makers and admins).
#[utoipa::path(get, path = "/api/environments/{env}/upgrade/captured", tag = "upgrade",
    params(("env" = String, Path)),
    responses((status = 200, body = CapturedList), (status = 404, body = ErrorBody)))]
async fn captured(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Result<Json<CapturedList>, ApiError> {
    Ok(Json(s.services.upgrade_captured(&c, &env).await?))
}

/// Queues the verification of every item the caller sees (202); the server works
/// through them in the background, and each item's `verifying` says which are owed.
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/verify", tag = "upgrade",
    params(("env" = String, Path)),
    responses((status = 202, body = VerificationQueued), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify_all(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Result<Response, ApiError> {
    let queued = s.services.verify_upgrade(&c, &env).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(queued)).into_response())
}

/// Mails each maker the list of their items still open (admins).
#[utoipa::path(post, path = "/api/environments/{env}/upgrade/notify", tag = "upgrade",
    params(("env" = String, Path)),
    responses((status = 200, body = Notified), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn notify(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(env): Path<String>,
) -> Result<Json<Notified>, ApiError> {
    Ok(Json(s.services.upgrade_notify(&c, &env).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uplift_api::items::{Resolution, Severity};

    #[test]
    fn findings_are_csv_rows_with_fields_quoted_as_needed() {
        let f = Finding {
            id: "a1".into(),
            severity: Severity::Error,
            location: "view 'Open, late' filter".into(),
            message: "say \"hi\"".into(),
            suggestion: None,
            pre_existing: true,
            resolution: Resolution::Accepted,
            reason: Some("line\nbreak".into()),
        };
        assert_eq!(
            csv(&[f]),
            "id,severity,location,message,suggestion,pre_existing,resolution,reason\r\n\
             a1,error,\"view 'Open, late' filter\",\"say \"\"hi\"\"\",,true,accepted,\"line\nbreak\"\r\n"
        );
    }
}
