//! Who is calling: bearer tokens (random, stored as SHA-256), the authenticated actor,
//! and the first-start bootstrap of an admin.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use uplift_model::security::{PlatformRole, UserStatus};
use uplift_store::control::User;
use uplift_store::{Store, StoreError};

use crate::Services;
use crate::error::{AuthFailure, Result, ServiceError};

/// Prefix of every token, so a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "upl_";
/// The admin created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin@uplift.local";

/// The authenticated, active user a service call acts for.
#[derive(Debug, Clone)]
pub struct Actor(pub User);

impl Actor {
    pub fn email(&self) -> &str {
        &self.0.email
    }

    pub fn role(&self) -> PlatformRole {
        self.0.role
    }

    pub fn is_admin(&self) -> bool {
        self.0.role == PlatformRole::Admin
    }

    /// Whether this is `email` (e-mails compare without regard to case).
    pub fn is(&self, email: &str) -> bool {
        self.0.email.eq_ignore_ascii_case(email)
    }
}

/// A new random token: 32 bytes from the OS, URL-safe base64.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServiceError::Internal {
        what: "making a token",
        detail: e.to_string(),
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

impl Services {
    /// The active user an `Authorization` header value names.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Actor> {
        let header = authorization.ok_or(ServiceError::Unauthenticated(AuthFailure::NoToken))?;
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, t)| t.trim())
            .ok_or(ServiceError::Unauthenticated(AuthFailure::NotBearer))?;
        let hash = hash_token(token);
        let user = match self.cache.token(&hash) {
            Some(u) => u,
            None => {
                let seen = self.cache.epoch();
                let u = self
                    .store
                    .control()
                    .user_by_token_hash(&hash)
                    .await?
                    .ok_or(ServiceError::Unauthenticated(AuthFailure::UnknownToken))?;
                self.cache.put_token(seen, hash, u.clone());
                u
            }
        };
        if user.status == UserStatus::Disabled {
            return Err(ServiceError::Disabled(user.email));
        }
        Ok(Actor(user))
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
            Some(new_token().map_err(|e| StoreError::Invalid(e.to_string()))?)
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
