//! The browser's session: its cookie (`uplift_session`, `HttpOnly`, `SameSite=Lax`,
//! `Secure` when the server is reached over TLS), read into the signed-in session by
//! the services, and the form token a form that changes something must carry.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use uplift_service::session::{SESSION_HOURS, WebSession};

use super::WebError;
use crate::state::AppState;

/// The cookie holding the session id.
pub const COOKIE: &str = "uplift_session";

/// A request from a signed-in browser.
pub struct Signed {
    pub session: WebSession,
    /// The session id, as the cookie holds it.
    pub id: String,
}

/// The session id a request's `Cookie` header carries, if any.
pub fn cookie_value(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let back_to = parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        let Some(id) = cookie_value(parts) else {
            return Err(WebError::SignIn { back_to });
        };
        match state.services.web_session(&id).await {
            Ok(session) => Ok(Signed { session, id }),
            Err(uplift_service::ServiceError::Unauthenticated(_)) => {
                Err(WebError::SignIn { back_to })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The `Set-Cookie` value that keeps `id` for the session's life.
pub fn set_cookie(id: &str, secure: bool) -> String {
    let max_age = SESSION_HOURS * 3600;
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that removes the session's cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}

/// Whether the browser reached the server over TLS: the public URL says `https`, or a
/// proxy in front said so (`X-Forwarded-Proto: https`).
pub fn over_tls(parts: &Parts, state: &AppState) -> bool {
    state
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_over_tls() {
        for (secure, expect_secure) in [(false, false), (true, true)] {
            let c = set_cookie("abc", secure);
            assert!(c.starts_with("uplift_session=abc;"), "{c}");
            assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
            assert_eq!(c.contains("Secure"), expect_secure, "{c}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let cases = [
            ("a=1; uplift_session=xyz; b=2", Some("xyz")),
            ("uplift_session=xyz", Some("xyz")),
            ("a=1", None),
            ("uplift_sessionx=1", None),
        ];
        for (header, expect) in cases {
            let req = axum::http::Request::builder()
                .header(header::COOKIE, header)
                .body(())
                .unwrap();
            let (parts, ()) = req.into_parts();
            assert_eq!(cookie_value(&parts).as_deref(), expect, "{header}");
        }
    }
}
