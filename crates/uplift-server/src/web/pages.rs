//! The pages: each handler extracts, calls one service method, renders a template.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uplift_service::session::WebSession;

use super::session::{Signed, clear_cookie, over_tls, set_cookie};
use super::{CsrfForm, WebError, render, safe_next, see_other};
use crate::state::AppState;

/// What every signed-in page's header shows.
pub struct Chrome {
    pub user: String,
    pub admin: bool,
    pub maker: bool,
    pub csrf: String,
    /// Which part of the site the page is in (`admin`, `maker`), for the navigation.
    pub section: &'static str,
}

pub(super) fn chrome(s: &WebSession, section: &'static str) -> Option<Chrome> {
    use uplift_model::security::PlatformRole;
    let role = s.actor.role();
    Some(Chrome {
        user: s.actor.email().to_string(),
        admin: role == PlatformRole::Admin,
        maker: role != PlatformRole::User,
        csrf: s.csrf.clone(),
        section,
    })
}

/// A value's serde name in words (`step2_verifying` → `step2 verifying`).
pub(super) fn words<T: serde::Serialize>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "web/error.html")]
pub struct ErrorPage {
    pub chrome: Option<Chrome>,
    pub heading: &'static str,
    pub message: String,
    pub request_id: String,
}

#[derive(Template)]
#[template(path = "web/signin.html")]
struct SignInPage {
    chrome: Option<Chrome>,
    error: Option<String>,
    next: String,
}

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// `GET /signin`.
pub async fn signin_page(Query(q): Query<Next>) -> Response {
    render(&SignInPage {
        chrome: None,
        error: None,
        next: safe_next(&q.next).to_string(),
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /signin`: a session for the token's user, then the page asked for.
pub async fn sign_in(
    State(s): State<AppState>,
    parts: Parts,
    Form(f): Form<SignInForm>,
) -> Response {
    let next = safe_next(&f.next).to_string();
    match s.services.sign_in(&f.token).await {
        Ok((id, _)) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, set_cookie(&id, over_tls(&parts, &s))),
                (header::LOCATION, next),
            ],
        )
            .into_response(),
        Err(e) => {
            let page = SignInPage {
                chrome: None,
                error: Some(e.to_string()),
                next,
            };
            (StatusCode::UNAUTHORIZED, render(&page)).into_response()
        }
    }
}

/// `POST /signout`: the session ends, its cookie is removed.
pub async fn sign_out(
    State(s): State<AppState>,
    signed: Signed,
    parts: Parts,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    signed.session.check_form(&f.csrf)?;
    s.services.sign_out(&signed.id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, clear_cookie(over_tls(&parts, &s))),
            (header::LOCATION, "/signin".to_string()),
        ],
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "web/start.html")]
struct StartPage {
    chrome: Option<Chrome>,
    user: String,
}

/// `GET /`: admins to the admin center, makers to their items, users to a start page.
pub async fn home(signed: Signed) -> Response {
    use uplift_model::security::PlatformRole;
    let to = match signed.session.actor.role() {
        PlatformRole::Admin => "/admin",
        PlatformRole::Maker => "/maker",
        PlatformRole::User => {
            return render(&StartPage {
                user: signed.session.actor.email().to_string(),
                chrome: chrome(&signed.session, ""),
            });
        }
    };
    see_other(to)
}

struct EnvRow {
    name: String,
    schema_version: String,
    engine: String,
    /// The production database's size, in MiB with one decimal.
    size: String,
    database: String,
    security: String,
    upgrade: String,
    upgradable: bool,
}

#[derive(Template)]
#[template(path = "web/environments.html")]
struct EnvironmentsPage {
    chrome: Option<Chrome>,
    envs: Vec<EnvRow>,
}

/// `GET /admin`: every environment and where its upgrade stands.
pub async fn environments(State(s): State<AppState>, signed: Signed) -> Result<Response, WebError> {
    let rows = s.services.environment_rows(&signed.session.actor).await?;
    let envs = rows
        .into_iter()
        .map(|r| EnvRow {
            schema_version: words(&r.environment.schema_version),
            security: words(&r.environment.security_mode),
            upgrade: r.upgrade.map_or("not started".into(), |u| words(&u)),
            upgradable: r.upgradable,
            size: format!("{:.1} MiB", r.size_bytes as f64 / (1024.0 * 1024.0)),
            engine: r.engine,
            database: r.environment.database,
            name: r.environment.name,
        })
        .collect();
    Ok(render(&EnvironmentsPage {
        chrome: chrome(&signed.session, "admin"),
        envs,
    }))
}

#[derive(Template)]
#[template(path = "web/environment.html")]
struct EnvironmentPage {
    chrome: Option<Chrome>,
    name: String,
    schema_version: String,
    engine: String,
    database: String,
    upgrade: String,
    entities: Vec<String>,
    roles: Vec<(String, String)>,
    apps: Vec<String>,
    flows: Vec<(String, String)>,
}

/// `GET /admin/environments/{env}`: its entities, roles, apps and flows.
pub async fn environment(
    State(s): State<AppState>,
    signed: Signed,
    Path(env): Path<String>,
) -> Result<Response, WebError> {
    let p = s
        .services
        .environment_page(&signed.session.actor, &env)
        .await?;
    let e = p.detail.environment;
    Ok(render(&EnvironmentPage {
        chrome: chrome(&signed.session, "admin"),
        schema_version: words(&e.schema_version),
        database: e.database,
        name: e.name,
        engine: p.detail.engine,
        upgrade: p.upgrade.map_or("not started".into(), |u| words(&u)),
        entities: p.detail.entities,
        roles: p
            .roles
            .into_iter()
            .map(|r| (r.name, r.members.unwrap_or_default().join(", ")))
            .collect(),
        apps: p.apps.into_iter().map(|a| a.name).collect(),
        flows: p
            .flows
            .into_iter()
            .map(|f| (f.name, words(&f.state)))
            .collect(),
    }))
}

struct ItemRow {
    id: String,
    name: String,
    kind: String,
    owner: String,
    errors: u32,
    warnings: u32,
    status: String,
}

struct ItemGroup {
    env: String,
    items: Vec<ItemRow>,
}

#[derive(Template)]
#[template(path = "web/items.html")]
struct ItemsPage {
    chrome: Option<Chrome>,
    groups: Vec<ItemGroup>,
}

/// `GET /maker`: the caller's own items in every upgrade under way.
pub async fn my_items(State(s): State<AppState>, signed: Signed) -> Result<Response, WebError> {
    let groups = s
        .services
        .my_items(&signed.session.actor)
        .await?
        .into_iter()
        .map(|g| ItemGroup {
            env: g.env,
            items: g
                .items
                .into_iter()
                .map(|i| ItemRow {
                    kind: words(&i.fields.kind),
                    status: words(&i.fields.status),
                    errors: i.findings.error,
                    warnings: i.findings.warning,
                    id: i.fields.id,
                    name: i.fields.name,
                    owner: i.fields.owner,
                })
                .collect(),
        })
        .collect();
    Ok(render(&ItemsPage {
        chrome: chrome(&signed.session, "maker"),
        groups,
    }))
}
