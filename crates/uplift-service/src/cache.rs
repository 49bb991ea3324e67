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
    /// By environment: the names its completed upgrade changed (old → new).
    renames: RwLock<HashMap<String, Renames>>,
    /// Counts clears: a value read before a clear is not put after it (see
    /// [`SecurityCache::epoch`]), so a slow reader cannot bring back what a change (a
    /// role, step 3's switch) just made stale.
    epoch: std::sync::atomic::AtomicU64,
}

/// Old entity set and property names and what they are called now.
pub(crate) type Renames = Arc<std::collections::BTreeMap<String, String>>;

fn read<K: std::hash::Hash + Eq, V: Clone>(m: &RwLock<HashMap<K, V>>, k: &K) -> Option<V> {
    m.read().ok().and_then(|m| m.get(k).cloned())
}

fn write<K: std::hash::Hash + Eq, V>(m: &RwLock<HashMap<K, V>>, k: K, v: V) {
    if let Ok(mut m) = m.write() {
        m.insert(k, v);
    }
}

impl SecurityCache {
    /// Taken before reading what is to be cached; every `put_*` given an epoch that a
    /// clear has passed since stores nothing.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn current(&self, seen: u64) -> bool {
        self.epoch() == seen
    }

    pub fn token(&self, hash: &str) -> Option<User> {
        read(&self.tokens, &hash.to_string())
    }
    pub fn put_token(&self, seen: u64, hash: String, user: User) {
        if !self.current(seen) {
            return;
        }
        write(&self.tokens, hash, user)
    }
    pub fn env(&self, name: &str) -> Option<EnvRecord> {
        read(&self.envs, &name.to_string())
    }
    pub fn put_env(&self, seen: u64, env: EnvRecord) {
        if !self.current(seen) {
            return;
        }
        write(&self.envs, env.name.clone(), env)
    }
    pub fn grants(&self, env: &str, email: &str) -> Option<Arc<Vec<Privileges>>> {
        read(&self.grants, &(env.to_string(), email.to_string()))
    }
    pub fn put_grants(&self, seen: u64, env: &str, email: &str, g: Arc<Vec<Privileges>>) {
        if !self.current(seen) {
            return;
        }
        write(&self.grants, (env.to_string(), email.to_string()), g)
    }

    pub fn renames(&self, env: &str) -> Option<Renames> {
        read(&self.renames, &env.to_string())
    }
    pub fn put_renames(&self, seen: u64, env: &str, r: Renames) {
        if !self.current(seen) {
            return;
        }
        write(&self.renames, env.to_string(), r)
    }

    pub fn test_security(&self, upgrade: &str) -> Option<Arc<TestSecurity>> {
        read(&self.tests, &upgrade.to_string())
    }
    pub fn put_test_security(&self, seen: u64, upgrade: &str, t: Arc<TestSecurity>) {
        if !self.current(seen) {
            return;
        }
        write(&self.tests, upgrade.to_string(), t)
    }

    pub fn clear(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
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
        if let Ok(mut m) = self.renames.write() {
            m.clear();
        }
    }
}
