//! The domain services. Every operation of the admin, maker and upgrade API is a
//! method here that takes the acting user and typed input and returns an API type or
//! a [`ServiceError`]. The HTTP handlers, the CLI's server side and the web UI call
//! these and nothing below them, so the rules a caller must not forget live here once:
//! the authorization policy ([`policy`]), clearing the security cache after a change
//! to users, tokens, roles or environments, refreshing the flow runtime after a flow
//! changes, and waking a run when its approval is answered. Step 2's owed work
//! (verifications, notices) runs on a worker of its own ([`Services::start_step2_worker`]).

pub mod admin;
pub mod approvals;
pub mod apps;
pub mod auth;
mod cache;
mod complete;
mod completion;
mod convert;
pub mod data;
pub mod error;
pub mod flows;
pub mod form;
mod items;
pub mod overview;
pub mod player;
pub mod policy;
mod security;
pub mod session;
mod step2;
pub mod upgrade;
mod usage;
mod verify;

use std::sync::Arc;

use uplift_model::security::Privileges;
use uplift_store::Store;
use uplift_store::control::EnvRecord;
use uplift_upgrade::runner::Upgrades;

pub use auth::{Actor, Bootstrap, bootstrap, hash_token};
pub use error::{Missing, Result, ServiceError};
pub use policy::Database;
/// How long a completed upgrade keeps its databases (server settings).
pub use uplift_upgrade::runner::janitor::Retention;

/// The platform's services over one store. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    store: Arc<Store>,
    cache: Arc<cache::SecurityCache>,
    upgrades: Arc<Upgrades>,
    flows: Arc<uplift_flows::Runtime>,
    /// Where notices link to (see [`Services::set_public_url`]).
    public_url: Arc<std::sync::OnceLock<String>>,
    /// See [`Services::set_verify_pause_ms`].
    verify_pause_ms: Arc<std::sync::atomic::AtomicU64>,
    usage: Arc<usage::AppUsage>,
    security: Arc<security::Security>,
}

impl Services {
    pub fn new(store: Store) -> Self {
        let store = Arc::new(store);
        let upgrades = Upgrades::new(store.clone());
        let cache = Arc::new(cache::SecurityCache::default());
        let security = Arc::new(security::Security {
            store: store.clone(),
            cache: cache.clone(),
            upgrades: upgrades.clone(),
        });
        let flows = uplift_flows::Runtime::new(store.clone());
        flows.set_test_roles(security.clone());
        let services = Services {
            upgrades,
            flows,
            store,
            cache,
            security,
            public_url: Arc::default(),
            verify_pause_ms: Arc::default(),
            usage: Arc::default(),
        };
        services.upgrades.set_on_switch(services.on_switch());
        services
            .upgrades
            .set_before_switch(services.before_switch());
        services
    }

    /// The store, for what runs beside the services (bootstrap, benches, tests).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The upgrade runner (the server resumes it at start).
    pub fn upgrades(&self) -> &Arc<Upgrades> {
        &self.upgrades
    }

    /// The flow runtime (the server starts it).
    pub fn flows(&self) -> &Arc<uplift_flows::Runtime> {
        &self.flows
    }

    /// An environment's record, from the cache when possible.
    pub(crate) async fn env(&self, name: &str) -> Result<EnvRecord> {
        self.security.env(name).await
    }

    /// What `user` may do in the test database of upgrade `id`, as the data session
    /// applies it.
    pub(crate) async fn test_rights(
        &self,
        env: &str,
        id: &str,
        state: &uplift_upgrade::state::UpgradeState,
        user: &str,
    ) -> Result<(uplift_model::security::SecurityMode, Vec<Privileges>)> {
        self.security.test_rights(env, id, state, user).await
    }

    /// The privileges granted to `email` in `env` by all their roles.
    /// [`policy::reads_catalog`] for `actor` in `env`; the environment's record, read
    /// for it, is the caller's to use.
    pub(crate) async fn require_catalog(
        &self,
        actor: &auth::Actor,
        env: &str,
    ) -> Result<EnvRecord> {
        let rec = self.env(env).await?;
        let grants = self.grants(env, actor.email()).await?;
        policy::reads_catalog(actor, env, rec.security_mode, !grants.is_empty())?;
        Ok(rec)
    }

    pub(crate) async fn grants(&self, env: &str, email: &str) -> Result<Arc<Vec<Privileges>>> {
        if let Some(g) = self.cache.grants(env, email) {
            return Ok(g);
        }
        let seen = self.cache.epoch();
        let roles = self.store.control().roles_of(env, email).await?;
        let g = Arc::new(roles.into_iter().map(|r| r.privileges).collect::<Vec<_>>());
        self.cache.put_grants(seen, env, email, g.clone());
        Ok(g)
    }
}
