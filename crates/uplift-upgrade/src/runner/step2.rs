//! Step 2 as the runner drives it: discovering the items when step 1 ends (again on
//! restart, should the server stop in between), and removing the upgraded clones when
//! the upgrade is cancelled.

use uplift_model::app::AppDef;
use uplift_plan::apply;
use uplift_plan::rewrite::NameMap;

use super::{UpgradeError, Upgrades, now, plan_options};
use crate::events::Event;
use crate::items::{self, ItemKind, SourceFlow};
use crate::state::UpgradeState;

impl Upgrades {
    /// Finds every app and flow bound to production, stores the upgraded flow clones
    /// (bound to the test database) and logs the items. Running it again gives the same
    /// items and overwrites the same clones.
    pub(super) async fn discover_items(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
    ) -> Result<(), UpgradeError> {
        let control = self.store.control();
        let production = control
            .get_env(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("no environment '{env}'")))?
            .database;
        let plan = self.plan_of(state).await?;
        let source = self.store.env_db(env).await?.catalog();
        let upgrade = apply(&plan, &source, &plan_options(&state.options))
            .map_err(|e| UpgradeError::Invalid(e.to_string()))?;
        let apps: Vec<AppDef> = control
            .apps(env)
            .await?
            .into_iter()
            .filter_map(|a| a.published.map(|v| v.bound).or(a.draft))
            .filter(|b| b.database == production)
            .map(|b| b.definition)
            .collect();
        let mut flows = Vec::new();
        for f in control.flows(env).await? {
            if f.database != production {
                continue;
            }
            let last_run_at = control
                .runs(env, &f.id, 1)
                .await?
                .first()
                .map(|r| r.created_at.clone());
            flows.push(SourceFlow {
                id: f.id,
                definition: f.definition,
                last_run_at,
            });
        }
        let map = NameMap::new(&source, &upgrade.target, &upgrade.changes);
        let found = items::discover(id, &apps, &flows, &map, &upgrade.target);
        for c in &found.clones {
            control
                .save_flow(env, &c.id, &c.definition, &state.test_database)
                .await?;
        }
        self.log(
            id,
            &Event::ItemsDiscovered {
                at: now(),
                items: found.items,
            },
        )
        .await
    }

    /// Removes the upgraded clones of a cancelled upgrade: they are bound to the test
    /// database, which goes with it.
    pub(super) async fn remove_clones(
        &self,
        env: &str,
        state: &UpgradeState,
    ) -> Result<(), UpgradeError> {
        for item in state.items.iter().flatten() {
            if item.kind == ItemKind::Flow {
                self.store.control().delete_flow(env, &item.copy_id).await?;
            }
        }
        Ok(())
    }
}
