//! Step 3 as the API offers it: the preflight, the start (admins; a gate that is not
//! ready needs an override with a reason, which the log keeps), and what the services
//! do at the switch (forget the cached environment record, refresh the flow runtime).

use std::sync::Arc;

use uplift_api as api;
use uplift_upgrade::events::CompleteOptions;
use uplift_upgrade::runner::Check;

use crate::Services;
use crate::auth::Actor;
use crate::error::{Result, ServiceError};
use crate::policy;

/// The pause budget when the request names none.
const DEFAULT_PAUSE_BUDGET_MS: u64 = 2_000;
/// Pauses tried when the request names no number.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

impl Services {
    /// What step 3 would check before starting, without starting it.
    pub async fn upgrade_preflight(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<api::upgrade::Preflight> {
        policy::admin(actor)?;
        let checks = self.step3_checks(env).await?;
        Ok(api::upgrade::Preflight {
            ready: checks.iter().all(|c| c.ok),
            checks: checks
                .into_iter()
                .map(|c| api::upgrade::PreflightCheck {
                    name: c.name.to_string(),
                    ok: c.ok,
                    detail: c.detail,
                    overridable: c.overridable,
                })
                .collect(),
        })
    }

    /// Starts step 3 in the background.
    pub async fn complete_upgrade(
        &self,
        actor: &Actor,
        env: &str,
        req: api::upgrade::CompleteUpgrade,
    ) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        let override_reason = match req.override_gate {
            Some(o) if o.reason.trim().is_empty() => {
                return Err(ServiceError::Invalid(
                    "override needs a reason, which the upgrade's log keeps".into(),
                ));
            }
            o => o.map(|o| o.reason),
        };
        let options = CompleteOptions {
            pause_budget_ms: req.pause_budget_ms.unwrap_or(DEFAULT_PAUSE_BUDGET_MS),
            max_attempts: req.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            override_reason,
        };
        let checks = self.step3_checks(env).await?;
        self.upgrades
            .complete(env, options, &checks, actor.email())
            .await?;
        self.upgrade_status(actor, env).await
    }

    /// Deletes the test database and the old production now (admins): the revert
    /// window ends early.
    pub async fn cleanup_upgrade(&self, actor: &Actor, env: &str) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        self.env(env).await?;
        self.upgrades.cleanup(env, actor.email()).await?;
        self.upgrade_status(actor, env).await
    }

    /// What a revert of `env`'s completed upgrade would carry back, and what it cannot.
    pub async fn revert_preview(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<api::upgrade::RevertPreview> {
        policy::admin(actor)?;
        self.env(env).await?;
        let p = self.upgrades.revert_preview(env).await?;
        Ok(api::upgrade::RevertPreview {
            possible: p.blocked.is_none(),
            blocked: p.blocked,
            from_database: p.from_database,
            to_database: p.to_database,
            entities: p
                .entities
                .into_iter()
                .map(|e| api::upgrade::RevertEntity {
                    entity: e.entity,
                    target_entity: e.target_entity,
                    upserts: e.upserts,
                    deletes: e.deletes,
                    lost: e
                        .lost
                        .into_iter()
                        .map(|(field, records)| api::upgrade::LostValues { field, records })
                        .collect(),
                })
                .collect(),
            cannot_carry: p
                .lost_fields
                .into_iter()
                .map(|(entity, field, reason)| api::upgrade::LostField {
                    entity,
                    field,
                    reason,
                })
                .collect(),
            apps: p.apps,
            flows: p.flows,
        })
    }

    /// Starts a revert of `env`'s completed upgrade in the background (admins).
    pub async fn revert_upgrade(
        &self,
        actor: &Actor,
        env: &str,
        req: api::upgrade::StartRevert,
    ) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        self.env(env).await?;
        let options = CompleteOptions {
            pause_budget_ms: req.pause_budget_ms.unwrap_or(DEFAULT_PAUSE_BUDGET_MS),
            max_attempts: req.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            override_reason: None,
        };
        self.upgrades
            .revert(env, &req.reason, options, actor.email())
            .await?;
        self.upgrade_status(actor, env).await
    }

    /// The runner's checks, with step 2's gate first.
    async fn step3_checks(&self, env: &str) -> Result<Vec<Check>> {
        self.env(env).await?;
        let (_, state) = self
            .upgrades
            .latest(env)
            .await?
            .filter(|(_, s)| s.status == uplift_upgrade::state::Status::Step2Verifying)
            .ok_or_else(|| ServiceError::Conflict(format!("'{env}' has no upgrade in step 2")))?;
        let gate = crate::items::gate_of(state.items.as_deref().unwrap_or_default());
        let mut checks = vec![Check {
            name: "gate",
            ok: gate.ready,
            detail: match gate.ready {
                true => "every item is verified or excluded".into(),
                false => gate.blocking.join("; "),
            },
            overridable: true,
        }];
        checks.extend(self.upgrades.preflight_checks(env).await?);
        checks.push(flow_runtime_check(self.flows.health()));
        Ok(checks)
    }

    /// Called by the runner inside the pause, just before the switch: every outbox entry
    /// of the retired database becomes runs of the flows that were on, and the runs
    /// still queued for a flow the switch replaces go to its successor, their records
    /// in the new schema (the runner's switch applies them).
    pub(crate) fn before_switch(&self) -> uplift_upgrade::runner::BeforeSwitch {
        let flows = self.flows.clone();
        Arc::new(move |env, successors, translate| {
            let flows = flows.clone();
            Box::pin(async move {
                flows
                    .hand_over(&env, &successors, &translate)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
    }

    /// Called by the runner once the switch is committed, before held writes go on.
    pub(crate) fn on_switch(&self) -> uplift_upgrade::runner::OnSwitch {
        let (cache, flows) = (self.cache.clone(), self.flows.clone());
        Arc::new(move |env: &str| {
            cache.clear();
            let (flows, env) = (flows.clone(), env.to_string());
            tokio::spawn(async move {
                if let Err(e) = flows.refresh(&env).await {
                    tracing::warn!(env, error = %e, "the flow runtime did not refresh after the switch");
                }
            });
        })
    }
}

/// The switch hands the outbox from the original flows to the promoted ones: only a
/// running flow runtime drains it.
fn flow_runtime_check(health: uplift_flows::Health) -> Check {
    use uplift_flows::Health;
    let (ok, detail) = match health {
        Health::Running => (true, "the flow runtime is running".to_string()),
        Health::NotStarted => (false, "the flow runtime is not started".to_string()),
        Health::Failing(e) => (false, format!("the flow runtime is failing: {e}")),
        Health::Stalled { ms } => (
            false,
            format!(
                "the flow runtime has not finished a round for {} s",
                ms / 1000
            ),
        ),
    };
    Check {
        name: "flow_runtime",
        ok,
        detail,
        overridable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uplift_flows::Health;

    #[test]
    fn only_a_running_flow_runtime_passes() {
        let cases = [
            (Health::Running, true),
            (Health::NotStarted, false),
            (Health::Failing("boom".into()), false),
            (Health::Stalled { ms: 45_000 }, false),
        ];
        for (health, ok) in cases {
            let check = flow_runtime_check(health.clone());
            assert_eq!(check.ok, ok, "{health:?}");
            assert!(!check.overridable, "{health:?}");
        }
    }
}
