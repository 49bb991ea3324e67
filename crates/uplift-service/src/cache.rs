//! Security facts read on every request (token owner, environment record, role
//! grants). Any change to users, tokens, roles or environments clears it all: changes
//! are rare, and a whole clear cannot miss a dependent entry. Only the services write
//! it, so no caller can forget to clear it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use uplift_model::security::{Privileges, SecurityMode};
use uplift_store::control::{EnvRecord, User};

/// (environment, user e-mail).
type GrantKey = (String, String);

/// The test database's security as the upgrade maps production's: its mode, and the
/// upgraded roles' privileges of each user (by lower-case e-mail).
pub(crate) struct TestSecurity {
    pub mode: SecurityMode,
    pub by_user: HashMap<String, Vec<Privileges>>,
}

#[derive(Default)]
pub(crate) struct SecurityCache {
    /// By upgrade id: a new upgrade never sees an old one's mapping.
    tests: RwLock<HashMap<String, Arc<TestSecurity>>>,
    tokens: RwLock<HashMap<String, User>>,
    envs: RwLock<HashMap<String, EnvRecord>>,
    grants: RwLock<HashMap<GrantKey, Arc<Vec<Privileges>>>>,
}

fn read<K: std::hash::Hash + Eq, V: Clone>(m: &RwLock<HashMap<K, V>>, k: &K) -> Option<V> {
    m.read().ok().and_then(|m| m.get(k).cloned())
}

fn write<K: std::hash::Hash + Eq, V>(m: &RwLock<HashMap<K, V>>, k: K, v: V) {
    if let Ok(mut m) = m.write() {
        m.insert(k, v);
    }
}

impl SecurityCache {
    pub fn token(&self, hash: &str) -> Option<User> {
        read(&self.tokens, &hash.to_string())
    }
    pub fn put_token(&self, hash: String, user: User) {
        write(&self.tokens, hash, user)
    }
    pub fn env(&self, name: &str) -> Option<EnvRecord> {
        read(&self.envs, &name.to_string())
    }
    pub fn put_env(&self, env: EnvRecord) {
        write(&self.envs, env.name.clone(), env)
    }
    pub fn grants(&self, env: &str, email: &str) -> Option<Arc<Vec<Privileges>>> {
        read(&self.grants, &(env.to_string(), email.to_string()))
    }
    pub fn put_grants(&self, env: &str, email: &str, g: Arc<Vec<Privileges>>) {
        write(&self.grants, (env.to_string(), email.to_string()), g)
    }

    pub fn test_security(&self, upgrade: &str) -> Option<Arc<TestSecurity>> {
        read(&self.tests, &upgrade.to_string())
    }
    pub fn put_test_security(&self, upgrade: &str, t: Arc<TestSecurity>) {
        write(&self.tests, upgrade.to_string(), t)
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.tests.write() {
            m.clear();
        }
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
