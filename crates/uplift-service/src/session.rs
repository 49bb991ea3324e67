//! Web UI sign-in: an API token exchanged for a session — a random id the browser keeps
//! in an `HttpOnly` cookie, stored only hashed — with a form token that every form that
//! changes something carries (CSRF), checked here against the session's.

use time::{Duration, OffsetDateTime};
use uplift_model::value::format_instant;
use uplift_store::control::SessionRecord;

use crate::Services;
use crate::auth::{Actor, hash_token, new_token};
use crate::error::{AuthFailure, Denial, Result, ServiceError};

/// How long a session lasts from sign-in.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub actor: Actor,
    /// The form token of this session: every form that changes something carries it.
    pub csrf: String,
}

impl WebSession {
    /// Refuses a form whose token is not this session's (compared in constant time).
    pub fn check_form(&self, token: &str) -> Result<()> {
        let (a, b) = (self.csrf.as_bytes(), token.as_bytes());
        let differ =
            a.len() != b.len() || a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) != 0;
        match differ {
            true => Err(ServiceError::Forbidden(Denial::FormToken)),
            false => Ok(()),
        }
    }
}

impl Services {
    /// Signs in with an API token: a new session. Returns its id, for the cookie (it
    /// is stored only hashed, like a token), and the session.
    pub async fn sign_in(&self, token: &str) -> Result<(String, WebSession)> {
        let actor = self
            .authenticate(Some(&format!("Bearer {}", token.trim())))
            .await?;
        let (id, csrf) = (new_token()?, new_token()?);
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord {
            user_email: actor.email().to_string(),
            csrf: csrf.clone(),
            expires_at: format_instant(now + Duration::hours(SESSION_HOURS)),
        };
        let control = self.store.control();
        control
            .delete_expired_sessions(&format_instant(now))
            .await?;
        control
            .insert_session(&hash_token(&id), &record, &format_instant(now))
            .await?;
        Ok((id, WebSession { actor, csrf }))
    }

    /// The session a cookie names, with its user as the user is now; an unknown or
    /// ended session asks for a sign-in.
    pub async fn web_session(&self, id: &str) -> Result<WebSession> {
        let control = self.store.control();
        let record = control
            .session(&hash_token(id))
            .await?
            .ok_or(ServiceError::Unauthenticated(AuthFailure::NoSession))?;
        if record.expires_at < format_instant(OffsetDateTime::now_utc()) {
            return Err(ServiceError::Unauthenticated(AuthFailure::SessionEnded));
        }
        let user = control
            .get_user(&record.user_email)
            .await?
            .ok_or(ServiceError::Unauthenticated(AuthFailure::NoSession))?;
        if user.status == uplift_model::security::UserStatus::Disabled {
            return Err(ServiceError::Disabled(user.email));
        }
        Ok(WebSession {
            actor: Actor(user),
            csrf: record.csrf,
        })
    }

    /// Ends the session a cookie names.
    pub async fn sign_out(&self, id: &str) -> Result<()> {
        Ok(self.store.control().delete_session(&hash_token(id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uplift_store::control::User;

    fn session(csrf: &str) -> WebSession {
        WebSession {
            actor: Actor(User {
                email: "a@b.org".into(),
                display_name: "A".into(),
                role: uplift_model::security::PlatformRole::Admin,
                status: uplift_model::security::UserStatus::Active,
                created_at: String::new(),
            }),
            csrf: csrf.into(),
        }
    }

    #[test]
    fn only_the_sessions_own_form_token_passes() {
        let s = session("upl_abc");
        for (token, ok) in [
            ("upl_abc", true),
            ("upl_abd", false),
            ("upl_ab", false),
            ("", false),
        ] {
            assert_eq!(s.check_form(token).is_ok(), ok, "{token:?}");
        }
    }
}
