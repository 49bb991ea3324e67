//! Security facts the services and the flow runtime share: environment records
//! (cached) and the test database's security, production's roles as the upgrade maps
//! them plus what admins grant for testing. Kept apart from [`crate::Services`] so the
//! flow runtime can hold it (runs on the test database act with the upgraded roles)
//! without holding the services that hold the runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uplift_flows::FlowError;
use uplift_flows::rights::{DatabaseRights, RightsFuture, TestRoles};
use uplift_model::security::{Privileges, SecurityMode};
use uplift_plan::{SecurityOutcome, apply, map_security};
use uplift_store::Store;
use uplift_store::control::EnvRecord;
use uplift_upgrade::runner::{Upgrades, plan_options, source_security};
use uplift_upgrade::state::{Status, UpgradeState};

use crate::cache::{SecurityCache, TestSecurity};
use crate::error::{Missing, Result, ServiceError};

pub(crate) struct Security {
    pub(crate) store: Arc<Store>,
    pub(crate) cache: Arc<SecurityCache>,
    pub(crate) upgrades: Arc<Upgrades>,
}

impl Security {
    /// An environment's record, from the cache when possible.
    pub(crate) async fn env(&self, name: &str) -> Result<EnvRecord> {
        if let Some(e) = self.cache.env(name) {
            return Ok(e);
        }
        let seen = self.cache.epoch();
        let e = self
            .store
            .control()
            .get_env(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(Missing::Environment(name.into())))?;
        self.cache.put_env(seen, e.clone());
        Ok(e)
    }

    /// Production's roles, members and mode as the plan maps them onto the target.
    pub(crate) async fn mapped(
        &self,
        env: &str,
        plan: &uplift_plan::Plan,
        upgrade: &uplift_plan::Upgrade,
    ) -> Result<SecurityOutcome> {
        let record = self.env(env).await?;
        let source = source_security(&self.store, env, record.security_mode).await?;
        Ok(map_security(plan, &source, upgrade))
    }

    /// The test database's security: production's, as the upgrade maps it (what
    /// production will be after the upgrade), computed once per upgrade and kept until
    /// roles or users change.
    pub(crate) async fn test_security(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
    ) -> Result<Arc<TestSecurity>> {
        if let Some(t) = self.cache.test_security(id) {
            return Ok(t);
        }
        let seen = self.cache.epoch();
        let plan = self.upgrades.plan_of(state).await?;
        let prod = self.store.env_db(env).await?;
        let upgrade = apply(&plan, &prod.catalog(), &plan_options(&state.options))
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let out = self.mapped(env, &plan, &upgrade).await?;
        let roles: BTreeMap<String, Privileges> = out.roles.into_iter().collect();
        let mut by_user: HashMap<String, Vec<Privileges>> = HashMap::new();
        for (role, user) in out.members {
            if let Some(p) = roles.get(&role) {
                by_user
                    .entry(user.to_lowercase())
                    .or_default()
                    .push(p.clone());
            }
        }
        let t = Arc::new(TestSecurity {
            mode: out.mode,
            by_user,
        });
        self.cache.put_test_security(seen, id, t.clone());
        Ok(t)
    }

    /// What `user` may do in the test database, as the data session applies it.
    pub(crate) async fn test_rights(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
        user: &str,
    ) -> Result<(SecurityMode, Vec<Privileges>)> {
        let security = self.test_security(env, id, state).await?;
        let user = user.to_lowercase();
        let mut grants = security.by_user.get(&user).cloned().unwrap_or_default();
        grants.extend(state.test_grants.get(&user).cloned());
        Ok((security.mode, grants))
    }

    /// `user`'s rights on `database` when it is the test database of the
    /// environment's upgrade in step 2.
    async fn rights_on_test(
        &self,
        env: &str,
        database: &str,
        user: &str,
    ) -> Result<Option<DatabaseRights>> {
        let serving = self
            .upgrades
            .latest(env)
            .await?
            .filter(|(_, s)| s.status == Status::Step2Verifying && s.test_database == database);
        let Some((id, state)) = serving else {
            return Ok(None);
        };
        let (mode, privileges) = self.test_rights(env, &id, &state, user).await?;
        Ok(Some(DatabaseRights { mode, privileges }))
    }
}

impl TestRoles for Security {
    fn rights<'a>(&'a self, env: &'a str, database: &'a str, owner: &'a str) -> RightsFuture<'a> {
        Box::pin(async move {
            self.rights_on_test(env, database, owner)
                .await
                .map_err(|e| FlowError::Invalid(e.to_string()))
        })
    }
}
