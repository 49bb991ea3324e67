//! What the web UI's pages show, each gathered by one method under the same policy as
//! the API: the admin center's environments and an environment's page (admins), and a
//! maker's own items across the upgrades under way.

use uplift_api as api;
use uplift_model::SchemaVersion;
use uplift_upgrade::state::Status;

use crate::auth::Actor;
use crate::error::Result;
use crate::{Services, policy};

/// The newest runs a flow's row shows on a maker's flows page.
pub const RUNS_SHOWN: u32 = 10;

/// The answered approvals the inbox shows after the pending ones.
pub const ANSWERED_SHOWN: usize = 50;

/// A maker's flows of one environment, each with its newest runs.
#[derive(Debug, Clone)]
pub struct FlowsOfEnvironment {
    pub env: String,
    pub flows: Vec<(api::flows::Flow, Vec<api::flows::Run>)>,
}

/// The approvals of one environment the caller is asked to answer.
#[derive(Debug, Clone)]
pub struct ApprovalsOfEnvironment {
    pub env: String,
    pub approvals: Vec<api::flows::Approval>,
}

/// An environment as the admin center lists it.
#[derive(Debug, Clone)]
pub struct EnvironmentRow {
    pub environment: api::admin::Environment,
    /// Where its latest upgrade stands, if it had one.
    pub upgrade: Option<api::upgrade::UpgradeStatus>,
    /// On a schema version a shipped plan upgrades, with no upgrade under way.
    pub upgradable: bool,
    /// `sqlite` or `postgres`.
    pub engine: String,
    /// The production database's size on disk, in bytes (tables and indexes).
    pub size_bytes: u64,
}

/// An environment's page.
#[derive(Debug, Clone)]
pub struct EnvironmentPage {
    pub detail: api::admin::EnvironmentDetail,
    pub roles: Vec<api::admin::RoleWithMembers>,
    pub apps: Vec<api::apps::App>,
    pub flows: Vec<api::flows::Flow>,
    pub upgrade: Option<api::upgrade::UpgradeStatus>,
}

/// An environment's upgrade page: the upgrade under way (or last ended), and, when
/// none holds the environment, the plans to pick from and the preview asked for.
#[derive(Debug, Clone)]
pub struct UpgradePage {
    pub upgrade: Option<api::upgrade::Upgrade>,
    /// Step 1's copy report, once step 1 has finished.
    pub report: Option<api::upgrade::Report>,
    /// Step 2's items, once discovered.
    pub items: Option<Vec<api::items::Item>>,
    /// Step 3's checks, while the upgrade is in step 2.
    pub preflight: Option<api::upgrade::Preflight>,
    /// What a revert would carry back, once the upgrade is completed.
    pub revert: Option<api::upgrade::RevertPreview>,
    /// `None` while an upgrade holds the environment.
    pub plans: Option<Vec<String>>,
    pub preview: Option<api::upgrade::Preview>,
}

/// The caller's own items of one environment's upgrade.
#[derive(Debug, Clone)]
pub struct ItemsOfEnvironment {
    pub env: String,
    pub items: Vec<api::items::Item>,
}

impl Services {
    /// Every environment with where its upgrade stands (admins).
    pub async fn environment_rows(&self, actor: &Actor) -> Result<Vec<EnvironmentRow>> {
        policy::admin(actor)?;
        let mut rows = Vec::new();
        for environment in self.list_environments(actor).await? {
            let status = self
                .upgrades
                .latest(&environment.name)
                .await?
                .map(|(_, s)| s.status);
            let idle = status.is_none_or(|s| !s.is_active());
            let upgradable = idle
                && self
                    .store
                    .control()
                    .get_env(&environment.name)
                    .await?
                    .is_some_and(|e| {
                        e.schema_version == SchemaVersion::Classic
                            && status != Some(Status::Completed)
                    });
            let size_bytes = self.store.space_for_copy(&environment.name).await?;
            rows.push(EnvironmentRow {
                environment,
                upgrade: status.map(crate::upgrade::status_of),
                upgradable,
                engine: self.store.engine_name().into(),
                size_bytes: size_bytes.needed_bytes,
            });
        }
        Ok(rows)
    }

    /// One environment: entities, roles and members, apps and flows (admins).
    pub async fn environment_page(&self, actor: &Actor, env: &str) -> Result<EnvironmentPage> {
        policy::admin(actor)?;
        Ok(EnvironmentPage {
            detail: self.environment(actor, env).await?,
            roles: self.list_roles(actor, env).await?,
            apps: self.list_apps(actor, env).await?,
            flows: self.list_flows(actor, env).await?,
            upgrade: self
                .upgrades
                .latest(env)
                .await?
                .map(|(_, s)| crate::upgrade::status_of(s.status)),
        })
    }

    /// The upgrade page of `env` (admins): its latest upgrade; the wizard's plans and
    /// the preview of `request` when no upgrade holds the environment.
    pub async fn upgrade_page(
        &self,
        actor: &Actor,
        env: &str,
        request: Option<crate::upgrade::PreviewRequest>,
    ) -> Result<UpgradePage> {
        policy::admin(actor)?;
        self.env(env).await?;
        let latest = self.upgrades.latest(env).await?;
        let held = latest.as_ref().is_some_and(|(_, s)| s.status.is_active());
        let copied = latest
            .as_ref()
            .is_some_and(|(_, s)| s.step1_duration_ms.is_some());
        // Step 2's items are served while step 2 runs (they are read with the test
        // database's access rules).
        let discovered = latest
            .as_ref()
            .is_some_and(|(_, s)| s.items.is_some() && s.status == Status::Step2Verifying);
        let upgrade = match latest {
            Some(_) => Some(self.upgrade_status(actor, env).await?),
            None => None,
        };
        let report = match copied {
            true => Some(self.upgrade_report(actor, env).await?),
            false => None,
        };
        let items = match discovered {
            true => Some(self.upgrade_items(actor, env).await?.value),
            false => None,
        };
        let status = upgrade.as_ref().map(|u| u.status);
        let preflight = match status {
            Some(api::upgrade::UpgradeStatus::Step2Verifying) => {
                Some(self.upgrade_preflight(actor, env).await?)
            }
            _ => None,
        };
        let revert = match status {
            Some(api::upgrade::UpgradeStatus::Completed) => {
                Some(self.revert_preview(actor, env).await?)
            }
            _ => None,
        };
        // The wizard (and its preview) only while no upgrade holds the environment.
        let (plans, preview) = match held {
            true => (None, None),
            false => self.wizard(actor, env, request).await?,
        };
        Ok(UpgradePage {
            upgrade,
            report,
            items,
            preflight,
            revert,
            plans,
            preview,
        })
    }

    /// The wizard's plans, and its preview once a plan, language and currency are given.
    async fn wizard(
        &self,
        actor: &Actor,
        env: &str,
        request: Option<crate::upgrade::PreviewRequest>,
    ) -> Result<(Option<Vec<String>>, Option<api::upgrade::Preview>)> {
        let plans = self.list_plans(actor).await?;
        let preview = match request {
            Some(r) => Some(self.preview_upgrade(actor, env, r).await?),
            None => None,
        };
        Ok((Some(plans.into_iter().map(|p| p.name).collect()), preview))
    }

    /// The latest upgrade's events, oldest first, with who caused each (admins).
    pub async fn upgrade_log(&self, actor: &Actor, env: &str) -> Result<api::upgrade::AuditLog> {
        policy::admin(actor)?;
        self.env(env).await?;
        let value = self
            .upgrades
            .log_of(env)
            .await?
            .iter()
            .map(audit_entry)
            .collect();
        Ok(api::upgrade::AuditLog { value })
    }

    /// The items the caller owns or edits, in every upgrade with items (makers and
    /// admins; an admin's page too lists only their own).
    pub async fn my_items(&self, actor: &Actor) -> Result<Vec<ItemsOfEnvironment>> {
        policy::maker(actor)?;
        let mut out = Vec::new();
        for env in self.store.control().list_envs().await? {
            let Some((_, state)) = self.upgrades.latest(&env.name).await? else {
                continue;
            };
            if state.items.is_none() || !state.status.is_active() {
                continue;
            }
            let items: Vec<api::items::Item> = self
                .upgrade_items(actor, &env.name)
                .await?
                .value
                .into_iter()
                .filter(|i| {
                    actor.is(&i.fields.owner) || i.fields.editors.iter().any(|e| actor.is(e))
                })
                .collect();
            if !items.is_empty() {
                out.push(ItemsOfEnvironment {
                    env: env.name,
                    items,
                });
            }
        }
        Ok(out)
    }

    /// The flows the caller owns or edits (every flow, for an admin), per environment,
    /// each with its newest runs.
    pub async fn my_flows(&self, actor: &Actor) -> Result<Vec<FlowsOfEnvironment>> {
        policy::maker(actor)?;
        let mut out = Vec::new();
        for env in self.store.control().list_envs().await? {
            let mut flows = Vec::new();
            for flow in self.list_flows(actor, &env.name).await? {
                let runs = self
                    .runs(actor, &env.name, &flow.id, Some(RUNS_SHOWN))
                    .await?;
                flows.push((flow, runs));
            }
            if !flows.is_empty() {
                out.push(FlowsOfEnvironment {
                    env: env.name,
                    flows,
                });
            }
        }
        Ok(out)
    }

    /// The approvals the caller is asked to answer, per environment: the pending ones,
    /// then the newest `ANSWERED_SHOWN` answered, newest first.
    pub async fn my_approvals(&self, actor: &Actor) -> Result<Vec<ApprovalsOfEnvironment>> {
        let mut out = Vec::new();
        for env in self.store.control().list_envs().await? {
            let mut mine: Vec<api::flows::Approval> = self
                .approvals_to_answer(actor, &env.name)
                .await?
                .iter()
                .map(crate::convert::approval)
                .collect();
            mine.sort_by(|a, b| b.created_at.cmp(&a.created_at));
            let (mut approvals, answered): (Vec<_>, Vec<_>) = mine
                .into_iter()
                .partition(|a| a.status == api::flows::ApprovalStatus::Pending);
            approvals.extend(answered.into_iter().take(ANSWERED_SHOWN));
            if !approvals.is_empty() {
                out.push(ApprovalsOfEnvironment {
                    env: env.name,
                    approvals,
                });
            }
        }
        Ok(out)
    }
}

/// One logged event as the audit trail shows it: its name, time and actor taken out,
/// the rest as it was logged.
fn audit_entry(e: &uplift_upgrade::events::Event) -> api::upgrade::AuditEntry {
    let mut detail = serde_json::to_value(e).unwrap_or_default();
    let mut take = |k: &str| {
        detail
            .as_object_mut()
            .and_then(|m| m.remove(k))
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let event = take("event").unwrap_or_default();
    let at = take("at").unwrap_or_default();
    let by = take("by").or_else(|| take("actor"));
    api::upgrade::AuditEntry {
        at,
        event,
        by,
        detail,
    }
}
