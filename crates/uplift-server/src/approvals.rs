//! The approvals system entity: requests that flow runs' `start_approval` steps make,
//! queried like any entity set (`$filter`, `$orderby`, `$top`, `$skip`, `$count`) by
//! the approvers they wait for (admins see all), and answered here, which lets the
//! waiting run continue.

use std::cmp::Ordering;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value as Json_, json};
use uplift_model::filter::{
    Expr, OrderItem, PropertyResolver, PropertyType, ScalarType, eval_filter, parse_orderby,
};
use uplift_store::control::Approval;

use crate::auth::Caller;
use crate::error::{ApiError, parse_body};
use crate::odata::query;
use crate::state::AppState;

type Body = Result<Bytes, BytesRejection>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/environments/{env}/approvals", get(list_approvals))
        .route(
            "/api/environments/{env}/approvals/{approval}",
            get(show_approval).post(answer_approval),
        )
}

/// The entity's properties and their types, for type-checking filters.
const PROPERTIES: &[(&str, ScalarType)] = &[
    ("id", ScalarType::Guid),
    ("run_id", ScalarType::Guid),
    ("step", ScalarType::String),
    ("title", ScalarType::String),
    ("details", ScalarType::String),
    ("status", ScalarType::String),
    ("outcome", ScalarType::String),
    ("responder", ScalarType::String),
    ("comment", ScalarType::String),
    ("created_at", ScalarType::DateTimeOffset),
    ("responded_at", ScalarType::DateTimeOffset),
];

struct ApprovalProperties;

impl PropertyResolver for ApprovalProperties {
    fn resolve(&self, path: &[String]) -> Option<PropertyType> {
        let [name] = path else { return None };
        PROPERTIES
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, t)| PropertyType::Scalar(*t))
    }
}

/// One request as the API shows it: the stored row plus `status`, which is
/// `pending` until answered and the outcome after.
fn record(a: &Approval) -> Json_ {
    let mut v = json!(a);
    v["status"] = json!(a.outcome.as_deref().unwrap_or("pending"));
    v
}

/// Parsed query options of a listing.
#[derive(Default)]
struct Query {
    filter: Option<Expr>,
    orderby: Vec<OrderItem>,
    top: Option<usize>,
    skip: usize,
    count: bool,
}

fn number(option: &str, v: &str) -> Result<usize, ApiError> {
    Ok(usize::try_from(query::number(option, v)?).unwrap_or(usize::MAX))
}

fn parse_query(raw: Option<&str>) -> Result<Query, ApiError> {
    let mut q = Query::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "$filter" => q.filter = Some(query::filter(&v, &ApprovalProperties)?),
            "$orderby" => {
                let items = parse_orderby(&v)
                    .map_err(|e| ApiError::bad_request(format!("$orderby: {e}")))?;
                if let Some(bad) = items
                    .iter()
                    .find(|i| ApprovalProperties.resolve(&i.path).is_none())
                {
                    return Err(ApiError::bad_request(format!(
                        "$orderby: approvals have no property '{}'",
                        bad.path.join("/")
                    )));
                }
                q.orderby = items;
            }
            "$top" => q.top = Some(number("$top", &v)?),
            "$skip" => q.skip = number("$skip", &v)?,
            "$count" => q.count = query::flag("$count", &v)?,
            other if other.starts_with('$') => {
                return Err(ApiError::bad_request(format!(
                    "unknown or unsupported query option '{other}' on approvals (supported: $filter, $orderby, $top, $skip, $count)"
                )));
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Nulls first; text ignoring case, as the data API's SQL orders it.
fn order(a: &Json_, b: &Json_) -> Ordering {
    match (a, b) {
        (Json_::Null, Json_::Null) => Ordering::Equal,
        (Json_::Null, _) => Ordering::Less,
        (_, Json_::Null) => Ordering::Greater,
        (Json_::String(x), Json_::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Requests the caller may see: those waiting for them, or all for an admin.
async fn visible(s: &AppState, caller: &Caller, env: &str) -> Result<Vec<Approval>, ApiError> {
    s.store.env_db(env).await?;
    Ok(s.store
        .control()
        .approvals(env)
        .await?
        .into_iter()
        .filter(|a| caller.is_admin() || a.may_answer(&caller.0.email))
        .collect())
}

async fn list_approvals(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Json_>, ApiError> {
    let q = parse_query(raw.as_deref())?;
    let mut rows: Vec<Json_> = visible(&s, &caller, &env)
        .await?
        .iter()
        .map(record)
        .filter(|r| {
            q.filter
                .as_ref()
                .is_none_or(|f| eval_filter(f, &|path: &[String]| r.get(path.first()?).cloned()))
        })
        .collect();
    for item in q.orderby.iter().rev() {
        let key = &item.path[0];
        rows.sort_by(|a, b| {
            let o = order(&a[key], &b[key]);
            if item.descending { o.reverse() } else { o }
        });
    }
    let total = rows.len();
    let page: Vec<Json_> = rows
        .into_iter()
        .skip(q.skip)
        .take(q.top.unwrap_or(usize::MAX))
        .collect();
    let mut body = json!({"value": page});
    if q.count {
        body["@odata.count"] = json!(total);
    }
    Ok(Json(body))
}

async fn show_approval(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
) -> Result<Json<Json_>, ApiError> {
    Ok(Json(record(
        &find_as_approver(&s, &caller, &env, &id).await?,
    )))
}

/// A request the caller is an approver of (any, for an admin).
async fn find_as_approver(
    s: &AppState,
    caller: &Caller,
    env: &str,
    id: &str,
) -> Result<Approval, ApiError> {
    let a = find(s, env, id).await?;
    if !caller.is_admin() && !a.may_answer(&caller.0.email) {
        return Err(ApiError::forbidden(format!(
            "{} is not an approver of '{}'",
            caller.0.email, a.title
        )));
    }
    Ok(a)
}

async fn find(s: &AppState, env: &str, id: &str) -> Result<Approval, ApiError> {
    s.store.env_db(env).await?;
    s.store
        .control()
        .approval(env, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no approval '{id}' in '{env}'")))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    outcome: String,
    #[serde(default)]
    comment: String,
}

/// Answers a request as one of its approvers; the waiting run continues.
async fn answer_approval(
    State(s): State<AppState>,
    caller: Caller,
    Path((env, id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Json_>, ApiError> {
    let answer: Answer = parse_body(body)?;
    if answer.outcome != "approved" && answer.outcome != "rejected" {
        return Err(ApiError::bad_request(format!(
            "outcome is 'approved' or 'rejected', not '{}'",
            answer.outcome
        )));
    }
    let a = find_as_approver(&s, &caller, &env, &id).await?;
    let control = s.store.control();
    control
        .answer_approval(&env, &id, &answer.outcome, &caller.0.email, &answer.comment)
        .await?;
    control.requeue_run(&a.run_id).await?;
    s.flows.wake();
    let answered = find(&s, &env, &id).await?;
    Ok(Json(record(&answered)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_against_the_approval_properties() {
        assert!(parse_query(Some("$filter=status eq 'pending'")).is_ok());
        assert!(parse_query(Some("$filter=created_at gt 2026-01-01T00:00:00Z")).is_ok());
        let e = parse_query(Some("$filter=colour eq 'red'")).err().unwrap();
        assert!(e.message.contains("colour"), "{}", e.message);
        let e = parse_query(Some("$filter=created_at eq 'soon'"))
            .err()
            .unwrap();
        assert!(e.message.contains("$filter"), "{}", e.message);
        let e = parse_query(Some("$orderby=colour")).err().unwrap();
        assert!(e.message.contains("colour"), "{}", e.message);
        let e = parse_query(Some("$expand=run")).err().unwrap();
        assert!(e.message.contains("$expand"), "{}", e.message);
        let e = parse_query(Some("$top=-1")).err().unwrap();
        assert!(e.message.contains("$top"), "{}", e.message);
    }
}
