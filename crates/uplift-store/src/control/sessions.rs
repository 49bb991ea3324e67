//! Web UI sessions: the random id a browser holds in an `HttpOnly` cookie, stored here
//! only as its hash (like API tokens), with its user, the form token every state-changing
//! form of the session carries (CSRF), and when it ends. In the control plane, so a
//! restart keeps the sessions and every server sharing it honours them.

use uplift_model::{ColType, Value};

use super::Control;
use super::row::Cols;
use crate::Result;

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_email: String,
    pub csrf: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

impl Control {
    pub async fn insert_session(
        &self,
        id_hash: &str,
        session: &SessionRecord,
        created_at: &str,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO {s}web_sessions (id_hash, user_email, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            &[
                Value::Text(id_hash.into()),
                Value::Text(session.user_email.clone()),
                Value::Text(session.csrf.clone()),
                Value::Text(created_at.into()),
                Value::Text(session.expires_at.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    /// The session whose id hashes to `id_hash`, if there is one (expired or not).
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        const COLS: Cols = &[
            ("user_email", ColType::Text),
            ("csrf", ColType::Text),
            ("expires_at", ColType::Text),
        ];
        let rows = self
            .select(
                COLS,
                "FROM {s}web_sessions WHERE id_hash = ?",
                &[Value::Text(id_hash.into())],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(SessionRecord {
                    user_email: r.text("user_email")?,
                    csrf: r.text("csrf")?,
                    expires_at: r.text("expires_at")?,
                })
            })
            .transpose()
    }

    /// Ends a session (signing out); ending one that is gone is no error.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.execute(
            "DELETE FROM {s}web_sessions WHERE id_hash = ?",
            &[Value::Text(id_hash.into())],
        )
        .await?;
        Ok(())
    }

    /// Forgets the sessions that ended before `now` (RFC 3339, UTC).
    pub async fn delete_expired_sessions(&self, now: &str) -> Result<u64> {
        self.execute(
            "DELETE FROM {s}web_sessions WHERE expires_at < ?",
            &[Value::Text(now.into())],
        )
        .await
    }
}
