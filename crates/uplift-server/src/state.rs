//! Shared server state: the store and caches of security facts that every request
//! reads (token owner, environment mode, role grants).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use uplift_model::security::Privileges;
use uplift_store::Store;
use uplift_store::control::{EnvRecord, User};
use uplift_upgrade::runner::Upgrades;

use crate::error::ApiError;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub cache: Arc<SecurityCache>,
    pub upgrades: Arc<Upgrades>,
    pub flows: Arc<uplift_flows::Runtime>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        let store = Arc::new(store);
        AppState {
            upgrades: Upgrades::new(store.clone()),
            flows: uplift_flows::Runtime::new(store.clone()),
            store,
            cache: Arc::new(SecurityCache::default()),
        }
    }

    /// An environment's record, from the cache when possible.
    pub async fn env(&self, name: &str) -> Result<EnvRecord, ApiError> {
        if let Some(e) = self
            .cache
            .envs
            .read()
            .ok()
            .and_then(|m| m.get(name).cloned())
        {
            return Ok(e);
        }
        let e = self
            .store
            .control()
            .get_env(name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no environment '{name}'")))?;
        if let Ok(mut m) = self.cache.envs.write() {
            m.insert(name.to_string(), e.clone());
        }
        Ok(e)
    }

    /// The privileges granted to `email` in `env` by all their roles.
    pub async fn grants(&self, env: &str, email: &str) -> Result<Arc<Vec<Privileges>>, ApiError> {
        let key = (env.to_string(), email.to_string());
        if let Some(g) = self
            .cache
            .grants
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(g);
        }
        let roles = self.store.control().roles_of(env, email).await?;
        let g = Arc::new(roles.into_iter().map(|r| r.privileges).collect::<Vec<_>>());
        if let Ok(mut m) = self.cache.grants.write() {
            m.insert(key, g.clone());
        }
        Ok(g)
    }
}

/// (environment, user e-mail).
type GrantKey = (String, String);

/// Security facts read on every request. Any change to users, tokens, roles or
/// environments clears it all: changes are rare, and a whole clear cannot miss a
/// dependent entry.
#[derive(Default)]
pub struct SecurityCache {
    pub(crate) tokens: RwLock<HashMap<String, User>>,
    pub(crate) envs: RwLock<HashMap<String, EnvRecord>>,
    pub(crate) grants: RwLock<HashMap<GrantKey, Arc<Vec<Privileges>>>>,
}

impl SecurityCache {
    pub fn clear(&self) {
        if let Ok(mut m) = self.tokens.write() {
            m.clear();
        }
        if let Ok(mut m) = self.envs.write() {
            m.clear();
        }
        if let Ok(mut m) = self.grants.write() {
            m.clear();
        }
    }
}
