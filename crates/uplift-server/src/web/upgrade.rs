//! The upgrade wizard and its live page: pick the plan, the base language and currency,
//! preview the schema changes (filtered, with the plan's warnings), give a rate for each
//! currency found in the data, start step 1; then follow it live (Server-Sent Events
//! carrying the status the API serves) or cancel it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uplift_api::upgrade::{Preview, StartUpgrade, Upgrade, UpgradeStatus};
use uplift_service::overview::UpgradePage;
use uplift_service::upgrade::PreviewRequest;

use super::pages::{Chrome, chrome, words};
use super::session::Signed;
use super::{CsrfForm, ReasonForm, WebError, render, see_other};
use crate::state::AppState;

/// How often the live page's stream sends the status.
const EVENT_EVERY_MS: u64 = 500;
/// How long one stream lasts; the browser opens another after it.
const STREAM_MAX_EVENTS: u32 = 7_200;

#[derive(Deserialize, Default)]
pub struct WizardQuery {
    plan: Option<String>,
    language: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    q: String,
    /// How many makers the re-sent e-mails reached (shown once, after sending).
    notified: Option<usize>,
}

/// One phase on the page and in the stream.
#[derive(Serialize)]
struct PhaseView {
    key: String,
    name: String,
    done: u64,
    total: u64,
    eta: String,
}

struct StatusView {
    status: String,
    /// A step runs: the page follows it live.
    running: bool,
    failure: Option<String>,
    phases: Vec<PhaseView>,
    /// Each entity being copied, as a phase is shown.
    entities: Vec<PhaseView>,
    cancellable: bool,
}

struct ChangeRow {
    entity: String,
    field: String,
    target: String,
    action: String,
    reason: String,
}

struct PreviewView {
    changes: Vec<ChangeRow>,
    warnings: Vec<String>,
    currencies: Vec<String>,
}

struct WizardView {
    plans: Vec<String>,
    plan: String,
    language: String,
    currency: String,
    filter: String,
    preview: Option<PreviewView>,
}

struct EntityRow {
    source: String,
    target: String,
    exported: u64,
    imported: u64,
    errors: u64,
    warnings: u64,
    checksum: &'static str,
    summary: String,
    samples: Vec<String>,
}

struct ReportView {
    duration: String,
    entities: Vec<EntityRow>,
}

struct ItemRow {
    id: String,
    name: String,
    kind: String,
    owner: String,
    uses: String,
    last_used: String,
    findings: String,
    status: String,
    excludable: bool,
}

struct DashboardView {
    gate_ready: bool,
    blocking: Vec<String>,
    items: Vec<ItemRow>,
}

struct Step3View {
    production: String,
    budget_ms: u64,
    writes_held: u64,
    max_wait_ms: u64,
    duration: String,
    attempts: Vec<(u64, String)>,
    kept: Vec<String>,
}

struct CheckRow {
    name: String,
    ok: bool,
    detail: String,
}

struct PreflightView {
    checks: Vec<CheckRow>,
    gate_ready: bool,
}

struct RevertView {
    blocked: Option<String>,
    to: String,
    entities: Vec<String>,
    cannot: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/upgrade.html")]
struct UpgradeTemplate {
    chrome: Option<Chrome>,
    env: String,
    csrf: String,
    error: Option<String>,
    notified: Option<usize>,
    upgrade: Option<StatusView>,
    report: Option<ReportView>,
    dashboard: Option<DashboardView>,
    step3: Option<Step3View>,
    preflight: Option<PreflightView>,
    revert: Option<RevertView>,
    wizard: Option<WizardView>,
}

fn step3_view(t: &uplift_api::upgrade::Step3) -> Step3View {
    let on = match (&t.revert, t.switched) {
        (Some(r), _) if r.switched => format!("{} again (reverted)", t.from_database),
        (_, true) => format!("{} (was {})", t.new_database, t.from_database),
        _ => t.from_database.clone(),
    };
    Step3View {
        production: on,
        budget_ms: t.pause_budget_ms,
        writes_held: t.pause.writes_held,
        max_wait_ms: t.pause.max_write_wait_ms,
        duration: t.duration_ms.map_or("still running".into(), |ms| {
            format!("{:.1} s", ms as f64 / 1000.0)
        }),
        attempts: t
            .pause
            .attempts
            .iter()
            .map(|a| (a.ms, words(&a.outcome)))
            .collect(),
        kept: t
            .kept
            .iter()
            .map(|k| {
                let state = if k.removed { "deleted" } else { "kept until" };
                format!("{} ({}): {state} {}", k.database, words(&k.kind), k.until)
            })
            .collect(),
    }
}

fn preflight_view(p: &uplift_api::upgrade::Preflight) -> PreflightView {
    PreflightView {
        gate_ready: p.checks.iter().any(|c| c.name == "gate" && c.ok),
        checks: p
            .checks
            .iter()
            .map(|c| CheckRow {
                name: c.name.replace('_', " "),
                ok: c.ok,
                detail: c.detail.clone(),
            })
            .collect(),
    }
}

fn revert_view(r: &uplift_api::upgrade::RevertPreview) -> RevertView {
    RevertView {
        blocked: r.blocked.clone(),
        to: r.to_database.clone(),
        entities: r
            .entities
            .iter()
            .map(|e| {
                format!(
                    "{} → {}: {} written, {} deleted",
                    e.entity, e.target_entity, e.upserts, e.deletes
                )
            })
            .collect(),
        cannot: r
            .cannot_carry
            .iter()
            .map(|l| format!("{}.{}: {}", l.entity, l.field, l.reason))
            .collect(),
    }
}

/// Samples shown per entity and severity.
const SAMPLES_SHOWN: usize = 5;

fn report_view(r: &uplift_api::upgrade::Report) -> ReportView {
    ReportView {
        duration: match r.step1_duration_ms {
            Some(ms) if ms < 1000 => format!("{ms} ms"),
            Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
            None => "?".into(),
        },
        entities: r
            .entities
            .iter()
            .map(|e| EntityRow {
                source: e.source.clone(),
                target: e.target.clone().unwrap_or_else(|| "(not upgraded)".into()),
                exported: e.exported,
                imported: e.imported,
                errors: e.errors,
                warnings: e.warnings,
                checksum: match e.checksum_match {
                    Some(true) => "matches",
                    Some(false) => "DIFFERS",
                    None => "not checked",
                },
                summary: e.summary.clone().unwrap_or_default(),
                samples: e
                    .error_samples
                    .iter()
                    .take(SAMPLES_SHOWN)
                    .chain(e.warning_samples.iter().take(SAMPLES_SHOWN))
                    .map(|s| format!("{}: {}", s.id, s.reason))
                    .collect(),
            })
            .collect(),
    }
}

fn dashboard_view(u: &Upgrade, items: &[uplift_api::items::Item]) -> DashboardView {
    let step2 = u.status == UpgradeStatus::Step2Verifying;
    DashboardView {
        gate_ready: u.gate.as_ref().is_some_and(|g| g.ready),
        blocking: u
            .gate
            .as_ref()
            .map(|g| g.blocking.clone())
            .unwrap_or_default(),
        items: items
            .iter()
            .map(|i| {
                let f = &i.fields;
                ItemRow {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    kind: words(&f.kind),
                    owner: f.owner.clone(),
                    uses: f.uses.join(", "),
                    last_used: f.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    findings: format!(
                        "{} errors, {} warnings, {} open",
                        i.findings.error, i.findings.warning, i.findings.open
                    ),
                    status: words(&f.status),
                    excludable: step2 && f.status != uplift_api::items::ItemStatus::Excluded,
                }
            })
            .collect(),
    }
}

fn eta(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s > 0.0 => format!("{s:.0} s"),
        Some(_) => "done".into(),
        None => String::new(),
    }
}

fn phases(u: &Upgrade) -> Vec<PhaseView> {
    u.phases
        .iter()
        .map(|p| PhaseView {
            key: serde_json::to_value(p.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            name: words(&p.phase),
            done: p.done,
            total: p.total,
            eta: eta(p.eta_seconds),
        })
        .collect()
}

/// The entities being copied, each with its rows done, in all, and its ETA.
fn entities(u: &Upgrade) -> Vec<PhaseView> {
    (u.live_entities.iter())
        .map(|(name, p)| PhaseView {
            key: format!("entity-{name}"),
            name: name.clone(),
            done: p.done,
            total: p.total,
            eta: eta(p.eta_seconds),
        })
        .collect()
}

fn status_view(u: &Upgrade) -> StatusView {
    StatusView {
        status: words(&u.status),
        running: matches!(
            u.status,
            UpgradeStatus::Step1Running
                | UpgradeStatus::Step3Running
                | UpgradeStatus::RevertRunning
        ),
        failure: u.failure.as_ref().map(|f| f.message.clone()),
        phases: phases(u),
        entities: entities(u),
        cancellable: matches!(
            u.status,
            UpgradeStatus::Step1Running | UpgradeStatus::Step2Verifying
        ),
    }
}

fn preview_view(p: &Preview, filter: &str) -> PreviewView {
    let needle = filter.to_lowercase();
    let mut changes = Vec::new();
    for e in &p.changes.entities {
        let entity = e.source.clone().or(e.target.clone()).unwrap_or_default();
        for f in &e.fields {
            let row = ChangeRow {
                entity: entity.clone(),
                field: f.source.clone().unwrap_or_default(),
                target: f.targets.join(", "),
                action: words(&f.action),
                reason: f.reason.clone().unwrap_or_default(),
            };
            let text = format!("{} {} {} {}", row.entity, row.field, row.target, row.action);
            if needle.is_empty() || text.to_lowercase().contains(&needle) {
                changes.push(row);
            }
        }
    }
    PreviewView {
        changes,
        warnings: p
            .changes
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.entity, w.message))
            .collect(),
        currencies: p.changes.currencies_found.clone(),
    }
}

/// `GET /admin/environments/{env}/upgrade`: the upgrade under way, or the wizard (with
/// the preview once a plan, language and currency are given).
pub async fn page(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
    Query(q): Query<WizardQuery>,
) -> Result<Response, WebError> {
    let request = q.plan.as_ref().map(|_| PreviewRequest {
        plan: q.plan.clone(),
        language: q.language.clone(),
        currency: q.currency.clone(),
    });
    let p = s
        .services
        .upgrade_page(&signed.session.actor, &env, request)
        .await?;
    Ok(render(&template(&signed, env, p, &q, None)))
}

fn template(
    signed: &Signed,
    env: String,
    p: UpgradePage,
    q: &WizardQuery,
    error: Option<String>,
) -> UpgradeTemplate {
    let wizard = p.plans.map(|plans| WizardView {
        plan: q
            .plan
            .clone()
            .or_else(|| plans.first().cloned())
            .unwrap_or_default(),
        language: q.language.clone().unwrap_or_else(|| "en".into()),
        currency: q.currency.clone().unwrap_or_else(|| "USD".into()),
        filter: q.q.clone(),
        preview: p.preview.as_ref().map(|pv| preview_view(pv, &q.q)),
        plans,
    });
    let dashboard = match (&p.upgrade, &p.items) {
        (Some(u), Some(items)) => Some(dashboard_view(u, items)),
        _ => None,
    };
    UpgradeTemplate {
        notified: q.notified,
        chrome: chrome(&signed.session, "admin"),
        csrf: signed.session.csrf.clone(),
        upgrade: p.upgrade.as_ref().map(status_view),
        report: p.report.as_ref().map(report_view),
        dashboard,
        step3: p
            .upgrade
            .as_ref()
            .and_then(|u| u.step3.as_ref())
            .map(step3_view),
        preflight: p.preflight.as_ref().map(preflight_view),
        revert: p.revert.as_ref().map(revert_view),
        wizard,
        error,
        env,
    }
}

/// The start form's fields: the options and `rate_<CODE>` for each currency.
fn start_request(form: &BTreeMap<String, String>) -> Result<StartUpgrade, String> {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut exchange_rates = BTreeMap::new();
    for (name, value) in form {
        let Some(code) = name.strip_prefix("rate_") else {
            continue;
        };
        let rate = uplift_model::Decimal::from_str_exact(value.trim())
            .map_err(|_| format!("the exchange rate of {code} ('{value}') is not a number"))?;
        exchange_rates.insert(code.to_string(), rate);
    }
    Ok(StartUpgrade {
        plan: field("plan"),
        language: field("language"),
        currency: field("currency"),
        exchange_rates,
        apps_from: None,
        allow_http: Vec::new(),
    })
}

/// `POST /admin/environments/{env}/upgrade`: starts step 1, then its live page.
pub async fn start(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    signed
        .session
        .check_form(form.get("csrf").map_or("", String::as_str))?;
    let request = start_request(&form).map_err(|message| WebError::Page {
        status: StatusCode::BAD_REQUEST,
        message,
    })?;
    s.services
        .start_upgrade(&signed.session.actor, &env, request)
        .await?;
    Ok(see_other(format!("/admin/environments/{env}/upgrade")))
}

#[derive(Deserialize)]
pub struct CompleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pause_budget_ms: String,
    #[serde(default, rename = "override")]
    override_reason: String,
}

/// `POST /admin/environments/{env}/upgrade/complete`: starts step 3.
pub async fn complete(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
    Form(f): Form<CompleteForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let budget = f
        .pause_budget_ms
        .trim()
        .parse::<u64>()
        .map_err(|_| WebError::Page {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "the pause budget ('{}') is not a whole number of milliseconds",
                f.pause_budget_ms
            ),
        })?;
    let reason = f.override_reason.trim();
    let request = uplift_api::upgrade::CompleteUpgrade {
        pause_budget_ms: Some(budget),
        max_attempts: None,
        override_gate: (!reason.is_empty()).then(|| uplift_api::upgrade::Override {
            reason: reason.to_string(),
        }),
    };
    s.services
        .complete_upgrade(&signed.session.actor, &env, request)
        .await?;
    Ok(see_other(format!("/admin/environments/{env}/upgrade")))
}

/// `POST /admin/environments/{env}/upgrade/revert`: starts a revert.
pub async fn revert(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let request = uplift_api::upgrade::StartRevert {
        reason: f.reason,
        pause_budget_ms: None,
        max_attempts: None,
    };
    s.services
        .revert_upgrade(&signed.session.actor, &env, request)
        .await?;
    Ok(see_other(format!("/admin/environments/{env}/upgrade")))
}

/// `POST /admin/environments/{env}/upgrade/items/{item}/exclude`: an admin leaves an
/// item out of the upgrade, with a reason.
pub async fn exclude(
    State(s): State<AppState>,
    signed: Signed,
    Path((env, item)): Path<(String, String)>,
    Form(f): Form<ReasonForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let change = uplift_upgrade::runner::ItemChange::Exclude { reason: f.reason };
    s.services
        .change_upgrade_item(&signed.session.actor, &env, &item, change)
        .await?;
    Ok(see_other(format!("/admin/environments/{env}/upgrade")))
}

/// `POST /admin/environments/{env}/upgrade/notify`: every maker with an item still
/// to verify is mailed again.
pub async fn notify(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    let sent = s
        .services
        .upgrade_notify(&signed.session.actor, &env)
        .await?;
    let to = format!(
        "/admin/environments/{env}/upgrade?notified={}",
        sent.value.len()
    );
    Ok(see_other(to))
}

/// `POST /admin/environments/{env}/upgrade/cancel`.
pub async fn cancel(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    s.services
        .cancel_upgrade(&signed.session.actor, &env)
        .await?;
    Ok(see_other(format!("/admin/environments/{env}/upgrade")))
}

/// What the live page's stream carries.
#[derive(Serialize)]
struct Live {
    status: String,
    phases: Vec<PhaseView>,
    entities: Vec<PhaseView>,
}

/// `GET /admin/environments/{env}/upgrade/events`: the status every half second while
/// the stream lasts (the browser reconnects after it ends).
pub async fn events(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
) -> Result<Response, WebError> {
    let actor = signed.session.actor;
    // The first answer is checked now, so a caller who may not see it gets the page's
    // error rather than an empty stream.
    s.services.upgrade_status(&actor, &env).await?;
    let stream = futures_util::stream::unfold(0u32, move |n| {
        let (s, actor, env) = (s.clone(), actor.clone(), env.clone());
        async move {
            if n >= STREAM_MAX_EVENTS {
                return None;
            }
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(EVENT_EVERY_MS)).await;
            }
            let u = s.services.upgrade_status(&actor, &env).await.ok()?;
            let live = Live {
                status: words(&u.status),
                phases: phases(&u),
                entities: entities(&u),
            };
            let event = Event::default().json_data(&live).ok()?;
            Some((Ok::<_, Infallible>(event), n + 1))
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_start_form_gives_each_currency_its_rate() {
        let f = form(&[
            ("plan", "classic-to-modern"),
            ("language", "en"),
            ("currency", "USD"),
            ("rate_EUR", "1.08"),
            ("rate_USD", "1"),
            ("csrf", "x"),
        ]);
        let r = start_request(&f).unwrap();
        assert_eq!(r.exchange_rates.len(), 2);
        assert_eq!(r.exchange_rates["EUR"].to_string(), "1.08");
        let bad = form(&[("rate_EUR", "1,08")]);
        assert!(start_request(&bad).unwrap_err().contains("EUR"));
    }
}

struct LogRow {
    at: String,
    event: String,
    by: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "web/log.html")]
struct LogPage {
    chrome: Option<Chrome>,
    env: String,
    entries: Vec<LogRow>,
}

/// The longest detail shown for one event (a discovery lists every item).
const DETAIL_MAX_CHARS: usize = 300;

/// `GET /admin/environments/{env}/upgrade/log`: the audit trail.
pub async fn log(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
) -> Result<Response, WebError> {
    let log = s.services.upgrade_log(&signed.session.actor, &env).await?;
    let entries = log
        .value
        .into_iter()
        .map(|e| {
            let detail = e.detail.to_string();
            LogRow {
                at: e.at,
                event: e.event.replace('_', " "),
                by: e.by.unwrap_or_default(),
                detail: match detail.char_indices().nth(DETAIL_MAX_CHARS) {
                    Some((i, _)) => format!("{}…", &detail[..i]),
                    None => detail,
                },
            }
        })
        .collect();
    Ok(render(&LogPage {
        chrome: chrome(&signed.session, "admin"),
        env,
        entries,
    }))
}
