//! Authentication: bearer tokens (random, stored as SHA-256), the caller extractor,
//! and the first-start bootstrap of an admin.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use uplift_model::security::{PlatformRole, UserStatus};
use uplift_store::control::User;
use uplift_store::{Store, StoreError};

use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of every token, so a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "upl_";
/// The admin created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin@uplift.local";

/// A new random token: 32 bytes from the OS, URL-safe base64.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            e.to_string(),
        )
    })?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// What is stored for a token. A fast hash is right here: tokens carry 256 bits of
/// entropy, so there is nothing for a slow hash to protect against.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated, active caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.0.role == PlatformRole::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} is not an administrator",
                self.0.email
            )))
        }
    }

    pub fn require_maker(&self) -> Result<(), ApiError> {
        match self.0.role {
            PlatformRole::Admin | PlatformRole::Maker => Ok(()),
            PlatformRole::User => Err(ApiError::forbidden(format!(
                "{} is neither a maker nor an administrator",
                self.0.email
            ))),
        }
    }
}

/// Who owns and may edit an app or a flow.
pub struct Ownership<'a> {
    pub owner: &'a str,
    pub editors: &'a [String],
}

impl Caller {
    /// Checks that the caller may give `what` the ownership `new`, replacing `current`
    /// (`None` when creating it). A flow acts with its owner's privileges, so only an
    /// admin names someone else as owner; and only the owner (or an admin) changes
    /// who the editors are, so an editor cannot lock the owner out.
    pub fn may_set_ownership(
        &self,
        what: &str,
        current: Option<Ownership<'_>>,
        new: Ownership<'_>,
    ) -> Result<(), ApiError> {
        if self.is_admin() {
            return Ok(());
        }
        let me = self.0.email.as_str();
        match current {
            None if !new.owner.eq_ignore_ascii_case(me) => Err(ApiError::forbidden(format!(
                "{me} cannot make {what} owned by {}: makers own what they create, and only an admin names another owner",
                new.owner
            ))),
            None => Ok(()),
            Some(cur) if !cur.owner.eq_ignore_ascii_case(new.owner) => {
                Err(ApiError::forbidden(format!(
                    "only an admin changes the owner of {what} (from {} to {})",
                    cur.owner, new.owner
                )))
            }
            Some(cur)
                if !cur.owner.eq_ignore_ascii_case(me) && !same_set(cur.editors, new.editors) =>
            {
                Err(ApiError::forbidden(format!(
                    "only the owner ({}) or an admin changes the editors of {what}",
                    cur.owner
                )))
            }
            Some(_) => Ok(()),
        }
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        v.iter()
            .map(|e| e.to_lowercase())
            .collect::<std::collections::BTreeSet<_>>()
    };
    norm(a) == norm(b)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("no token: send 'Authorization: Bearer <token>'")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
            })?;
        let hash = hash_token(token);
        let cached = state
            .cache
            .tokens
            .read()
            .ok()
            .and_then(|m| m.get(&hash).cloned());
        let user = match cached {
            Some(u) => u,
            None => {
                let u = state
                    .store
                    .control()
                    .user_by_token_hash(&hash)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("the token is not valid"))?;
                if let Ok(mut m) = state.cache.tokens.write() {
                    m.insert(hash, u.clone());
                }
                u
            }
        };
        if user.status == UserStatus::Disabled {
            return Err(ApiError::forbidden(format!(
                "user {} is disabled",
                user.email
            )));
        }
        Ok(Caller(user))
    }
}

/// What the first start produced.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The admin token, when it was created by this start (it is shown only once).
    pub new_token: Option<String>,
    pub admin_email: String,
}

/// Makes sure an admin exists. On a fresh control plane it creates one with a token,
/// which is written to `DATA_DIR/admin.token` (mode 0600) so a script or the demo can
/// read it; `preset` (from `UPLIFT_BOOTSTRAP_TOKEN`) is used instead of a random one
/// and is registered again if it is not known yet.
pub async fn bootstrap(
    store: &Store,
    data_dir: &Path,
    preset: Option<&str>,
) -> Result<Bootstrap, StoreError> {
    let control = store.control();
    let admin = match control.get_user(BOOTSTRAP_ADMIN).await? {
        Some(u) => u,
        None if control.count_users().await? == 0 => {
            control
                .insert_user(BOOTSTRAP_ADMIN, "Administrator", PlatformRole::Admin)
                .await?
        }
        None => {
            return Ok(Bootstrap {
                new_token: None,
                admin_email: BOOTSTRAP_ADMIN.into(),
            });
        }
    };
    let token = match preset {
        Some(t) if control.user_by_token_hash(&hash_token(t)).await?.is_some() => None,
        Some(t) => Some(t.to_string()),
        None if !data_dir.join("admin.token").exists() => {
            Some(new_token().map_err(|e| StoreError::Invalid(e.message))?)
        }
        None => None,
    };
    if let Some(t) = &token {
        control
            .insert_token(&admin.email, &hash_token(t), "bootstrap")
            .await?;
        write_secret(&data_dir.join("admin.token"), t)?;
    }
    Ok(Bootstrap {
        new_token: token,
        admin_email: admin.email,
    })
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
}
