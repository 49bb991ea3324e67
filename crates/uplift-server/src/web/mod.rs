//! The web UI, served by the same binary at `/` (the API stays under `/api`): pages
//! rendered on the server from compiled templates (askama), over the same services and
//! the same policy as the API; every asset embedded in the binary. A browser signs in
//! with an API token and keeps a session cookie; every form that changes something
//! carries the session's form token.

mod assets;
mod flows;
mod item;
mod pages;
mod player;
pub mod session;
mod upgrade;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The web UI's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin_page).post(pages::sign_in))
        .route("/signout", post(pages::sign_out))
        .route("/admin", get(pages::environments))
        .route("/admin/environments/{env}", get(pages::environment))
        .route(
            "/admin/environments/{env}/upgrade",
            get(upgrade::page).post(upgrade::start),
        )
        .route(
            "/admin/environments/{env}/upgrade/cancel",
            post(upgrade::cancel),
        )
        .route("/admin/environments/{env}/upgrade/log", get(upgrade::log))
        .route(
            "/admin/environments/{env}/upgrade/complete",
            post(upgrade::complete),
        )
        .route(
            "/admin/environments/{env}/upgrade/revert",
            post(upgrade::revert),
        )
        .route(
            "/admin/environments/{env}/upgrade/events",
            get(upgrade::events),
        )
        .route(
            "/admin/environments/{env}/upgrade/items/{item}/exclude",
            post(upgrade::exclude),
        )
        .route("/maker", get(pages::my_items))
        .route("/maker/environments/{env}/items/{item}", get(item::page))
        .route(
            "/maker/environments/{env}/items/{item}/copy",
            post(item::save_copy),
        )
        .route(
            "/maker/environments/{env}/items/{item}/verify",
            post(item::verify),
        )
        .route(
            "/maker/environments/{env}/items/{item}/signoff",
            post(item::sign_off),
        )
        .route(
            "/maker/environments/{env}/items/{item}/findings/{finding}/accept",
            post(item::accept),
        )
        .route(
            "/maker/environments/{env}/items/{item}/try",
            post(item::try_copy),
        )
        .route(
            "/admin/environments/{env}/upgrade/notify",
            post(upgrade::notify),
        )
        .route("/maker/flows", get(flows::flows))
        .route(
            "/maker/environments/{env}/flows/{flow}/runs/{run}",
            get(flows::run),
        )
        .route("/approvals", get(flows::approvals))
        .route("/approvals/{env}/{id}", post(flows::answer))
        .route("/apps", get(player::apps))
        .route("/apps/{env}/{app}", get(player::app))
        .route("/apps/{env}/{app}/views/{view}", get(player::view))
        .route(
            "/apps/{env}/{app}/forms/{form}/{id}",
            get(player::form).post(player::save),
        )
        .route(
            "/apps/{env}/{app}/commands/{command}",
            post(player::command),
        )
        .route("/runs/{env}/{run}", get(player::run))
        .route("/static/{name}", get(assets::asset))
}

/// Why a page did not render.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in, or the session ended: the sign-in page, then back here.
    SignIn { back_to: String },
    /// A page the caller may not see, that does not exist, or that failed.
    Page { status: StatusCode, message: String },
}

impl From<uplift_service::ServiceError> for WebError {
    fn from(e: uplift_service::ServiceError) -> Self {
        let api = ApiError::from(e);
        WebError::Page {
            status: api.status,
            message: api.message,
        }
    }
}

/// A form that changes something and carries nothing but the session's form token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// A form with the session's form token and a reason (accept, exclude, revert).
#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub reason: String,
}

/// After a form: the browser goes to `to` (303, so a reload does not post again).
pub fn see_other(to: impl Into<String>) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.into())]).into_response()
}

/// Where a sign-in may send the browser back to: a path of this site only.
pub fn safe_next(next: &str) -> &str {
    match next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        true => next,
        false => "/",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { back_to } => {
                let next: String =
                    url::form_urlencoded::byte_serialize(safe_next(&back_to).as_bytes()).collect();
                (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, format!("/signin?next={next}"))],
                )
                    .into_response()
            }
            WebError::Page { status, message } => {
                let heading = match status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    s if s.is_client_error() => "Not accepted",
                    _ => "Something went wrong",
                };
                let page = pages::ErrorPage {
                    chrome: None,
                    heading,
                    message,
                    request_id: crate::request_id::current(),
                };
                (status, render(&page)).into_response()
            }
        }
    }
}

/// A template rendered, or a plain 500 if it could not be (a bug, logged).
pub fn render(t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

/// The HTML 404 of a path outside `/api`.
pub fn not_found(path: &str) -> Response {
    WebError::Page {
        status: StatusCode::NOT_FOUND,
        message: format!("there is no page at {path}"),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_goes_back_only_to_a_path_of_this_site() {
        let cases = [
            ("/admin", "/admin"),
            ("/maker?x=1", "/maker?x=1"),
            ("//evil.example", "/"),
            ("https://evil.example", "/"),
            ("/\\evil.example", "/"),
            ("", "/"),
        ];
        for (next, expect) in cases {
            assert_eq!(safe_next(next), expect, "{next}");
        }
    }
}
