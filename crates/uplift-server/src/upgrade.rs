//! The upgrade API: preview a plan, start step 1, follow it, read its report, cancel
//! or retry it.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uplift_model::security::UserStatus;
use uplift_plan::{ChangeList, Options, SourceSecurity, apply, map_security};
use uplift_upgrade::events::StartOptions;
use uplift_upgrade::runner::{UpgradeError, currencies_found, load_plan};

use crate::admin::entity_view;
use crate::auth::Caller;
use crate::error::{ApiError, parse_body};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/environments/{env}/upgrade", get(status).post(start))
        .route("/api/environments/{env}/upgrade/preview", get(preview))
        .route("/api/environments/{env}/upgrade/report", get(report))
        .route("/api/environments/{env}/upgrade/cancel", post(cancel))
        .route("/api/environments/{env}/upgrade/retry", post(retry))
}

impl From<UpgradeError> for ApiError {
    fn from(e: UpgradeError) -> Self {
        match e {
            UpgradeError::NotFound(m) => ApiError::not_found(m),
            UpgradeError::Invalid(m) => ApiError::bad_request(m),
            UpgradeError::Conflict(m) => ApiError::conflict(m),
            UpgradeError::Store(s) => s.into(),
            e @ UpgradeError::Log(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                e.to_string(),
            ),
        }
    }
}

#[derive(Deserialize)]
struct PreviewQuery {
    plan: Option<String>,
    language: Option<String>,
    currency: Option<String>,
}

/// The target catalog and the change list, touching nothing.
async fn preview(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    s.env(&env).await?;
    let plan_name = q.plan.unwrap_or_else(|| "classic-to-modern".into());
    let options = Options {
        language: q.language.unwrap_or_else(|| "en".into()),
        currency: q.currency.unwrap_or_else(|| "USD".into()),
        exchange_rates: BTreeMap::new(),
    };
    let (upgrade, changes, security) = planned(&s, &env, &plan_name, &options).await?;
    Ok(Json(json!({
        "plan": plan_name,
        "target": {
            "schema_version": upgrade.target.version,
            "entities": upgrade.target.entities.iter().map(|e| entity_view(e, upgrade.target.version)).collect::<Vec<_>>(),
        },
        "changes": changes,
        "security": security,
    })))
}

/// The plan applied to production now: the upgrade, its change list with the
/// currencies found in the data, and the security mapping. Preview and report share it.
async fn planned(
    s: &AppState,
    env: &str,
    plan_name: &str,
    options: &Options,
) -> Result<(uplift_plan::Upgrade, ChangeList, Value), ApiError> {
    let (_, plan) = load_plan(plan_name)?;
    let prod = s.store.env_db(env).await?;
    let upgrade =
        apply(&plan, &prod.catalog(), options).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut changes = upgrade.changes.clone();
    changes.currencies_found = currencies_found(&s.store, env).await?.into_iter().collect();
    let security = security_outcome(s, env, &plan, &upgrade).await?;
    Ok((upgrade, changes, security))
}

async fn security_outcome(
    s: &AppState,
    env: &str,
    plan: &uplift_plan::Plan,
    upgrade: &uplift_plan::Upgrade,
) -> Result<Value, ApiError> {
    let control = s.store.control();
    let record = s.env(env).await?;
    let roles = control
        .list_roles(env)
        .await?
        .into_iter()
        .map(|r| (r.name, r.privileges))
        .collect();
    let members = control
        .list_members(env)
        .await?
        .into_iter()
        .map(|m| (m.role, m.user))
        .collect();
    let users: Vec<(String, UserStatus)> = control
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.email, u.status))
        .collect();
    let out = map_security(
        plan,
        &SourceSecurity {
            mode: record.security_mode,
            roles,
            members,
            users,
        },
        upgrade,
    );
    Ok(json!({
        "mode": out.mode,
        "roles": out.roles.iter().map(|(n, p)| json!({"name": n, "privileges": p})).collect::<Vec<_>>(),
        "members": out.members.iter().map(|(r, u)| json!({"role": r, "user": u})).collect::<Vec<_>>(),
        "warnings": out.warnings,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    plan: String,
    language: String,
    currency: String,
    #[serde(default)]
    exchange_rates: BTreeMap<String, f64>,
}

async fn start(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let b: StartBody = parse_body(body)?;
    for (code, rate) in &b.exchange_rates {
        if !(rate.is_finite() && *rate > 0.0) {
            return Err(ApiError::bad_request(format!(
                "exchange rate {code}={rate} must be a positive number"
            )));
        }
    }
    let options = StartOptions {
        plan: b.plan,
        language: b.language,
        currency: b.currency.to_uppercase(),
        exchange_rates: b.exchange_rates,
    };
    let view = s.upgrades.start(&env, options, &caller.0.email).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(view))).into_response())
}

async fn status(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_maker()?;
    s.env(&env).await?;
    let view = view_or_404(&s, &env).await?;
    Ok(Json(json!(view)))
}

async fn cancel(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    s.env(&env).await?;
    Ok(Json(json!(s.upgrades.cancel(&env).await?)))
}

async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    s.env(&env).await?;
    Ok(Json(json!(s.upgrades.retry(&env).await?)))
}

async fn view_or_404(
    s: &AppState,
    env: &str,
) -> Result<uplift_upgrade::runner::UpgradeView, ApiError> {
    s.upgrades
        .view(env)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("'{env}' has never been upgraded")))
}

/// Step 1's report: per entity counts, checks and samples, the change list and the
/// security mapping.
async fn report(
    State(s): State<AppState>,
    caller: Caller,
    Path(env): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_maker()?;
    s.env(&env).await?;
    let view = view_or_404(&s, &env).await?;
    let o = &view.state.options;
    let options = Options {
        language: o.language.clone(),
        currency: o.currency.clone(),
        exchange_rates: o.exchange_rates.clone(),
    };
    let (_, changes, security) = planned(&s, &env, &o.plan, &options).await?;
    let entities: Vec<Value> = view
        .state
        .entities
        .iter()
        .map(|e| {
            let mut v = json!(e);
            if let Some(line) = e.summary() {
                v["summary"] = json!(line);
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "id": view.id,
        "status": view.state.status,
        "step1_duration_ms": view.state.step1_duration_ms,
        "estimated_step3_downtime_ms": view.state.step1_duration_ms,
        "entities": entities,
        "changes": changes,
        "security": security,
    })))
}
