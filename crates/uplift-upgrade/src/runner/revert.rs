//! A revert within the window: production goes back to the database it was on before
//! step 3, with every write made since the switch carried back through the inverse of
//! the plan's row transforms. The upgraded production has recorded its changes since
//! the switch (its capture went in with it), so the revert works like step 3 in
//! reverse: carry the changes back while production serves, then a bounded write
//! pause applies the last ones, checks them on both sides and switches back — apps,
//! flows and roles as the switch's undo record has them. A failure, or a stop, before
//! that switch leaves production on the upgraded database and the upgrade
//! `completed`; after it, the revert finishes.

use std::sync::Arc;
use std::time::Instant;

use uplift_model::flow::FlowDef;
use uplift_model::transform::EvalContext;
use uplift_plan::inverse;
use uplift_store::EnvDb;
use uplift_store::capture;
use uplift_store::control::Switch;
use uplift_store::copy::revert::{self, EntityPreview, Revert, RevertEntity};

use super::step3::{Carry, PauseJob, Successor, catch_up, flow_change, reverted_names};
use super::{Running, UpgradeError, UpgradeView, Upgrades, now, now_ms};
use crate::events::{CompleteOptions, Event};
use crate::items::ItemKind;
use crate::state::{Status, Step3State, UpgradeState};

/// What a revert would do now.
#[derive(Debug, Clone, PartialEq)]
pub struct RevertPlan {
    /// Whether a revert may start, and if not why.
    pub blocked: Option<String>,
    pub from_database: String,
    pub to_database: String,
    /// Per upgraded entity with changes since the switch: what goes back.
    pub entities: Vec<EntityPreview>,
    /// Per upgraded entity: the fields whose values cannot go back, and why.
    pub lost_fields: Vec<(String, String, String)>,
    /// Apps that go back to the version they had before the upgrade.
    pub apps: Vec<String>,
    /// Flows that go back to what they were (the originals on, the clones off).
    pub flows: Vec<String>,
}

impl Upgrades {
    /// What a revert of `env`'s completed upgrade would carry back, and what it cannot.
    pub async fn revert_preview(&self, env: &str) -> Result<RevertPlan, UpgradeError> {
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("'{env}' has no upgrade")))?;
        let t = switched(env, &state)?;
        let blocked = revertible(&state, t).err();
        if t.old_production_removed {
            return Ok(RevertPlan {
                blocked,
                from_database: t.new_database.clone(),
                to_database: t.from_database.clone(),
                entities: Vec::new(),
                lost_fields: Vec::new(),
                apps: Vec::new(),
                flows: Vec::new(),
            });
        }
        let (prod, old) = self.both_productions(env, t).await?;
        let upgrade = self.planned(&state, &old.catalog()).await?;
        let entities = revert_entities(&upgrade, &old);
        let undo = self.store.control().undo_of(env, &t.new_database).await?;
        let blocked = blocked.or_else(|| schema_changed(&upgrade.target, &prod));
        let blocked = blocked.or_else(|| {
            undo.is_none().then(|| {
                "the switch was made before switches recorded what they replaced".to_string()
            })
        });
        let (apps, flows) = undo.map(|u| (u.apps, u.flows)).unwrap_or_default();
        let lost_fields = entities
            .iter()
            .flat_map(|e| {
                e.1.iter()
                    .map(|(f, why)| (e.0.transform.source_entity.clone(), f.clone(), why.clone()))
            })
            .collect();
        let store_entities: Vec<RevertEntity> = entities.into_iter().map(|e| e.0).collect();
        Ok(RevertPlan {
            blocked,
            from_database: t.new_database.clone(),
            to_database: t.from_database.clone(),
            entities: revert::preview(&prod, &store_entities).await?,
            lost_fields,
            apps: apps.into_iter().map(|a| a.0).collect(),
            flows: flows
                .iter()
                .filter_map(|(_, def, _)| serde_json::from_str::<FlowDef>(def).ok())
                .map(|d| d.name)
                .collect(),
        })
    }

    /// Starts a revert of `env`'s completed upgrade in the background.
    pub async fn revert(
        self: &Arc<Self>,
        env: &str,
        reason: &str,
        options: CompleteOptions,
        by: &str,
    ) -> Result<UpgradeView, UpgradeError> {
        let (id, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("'{env}' has no upgrade")))?;
        let t = switched(env, &state)?;
        revertible(&state, t).map_err(UpgradeError::Conflict)?;
        let (prod, old) = self.both_productions(env, t).await?;
        let upgrade = self.planned(&state, &old.catalog()).await?;
        if let Some(why) = schema_changed(&upgrade.target, &prod) {
            return Err(UpgradeError::Conflict(why));
        }
        if reason.trim().is_empty() {
            return Err(UpgradeError::Invalid(
                "a revert needs a reason, which the upgrade's log keeps".into(),
            ));
        }
        if options.pause_budget_ms == 0 || options.max_attempts == 0 {
            return Err(UpgradeError::Invalid(
                "pause_budget_ms and max_attempts must be at least 1".into(),
            ));
        }
        if self
            .store
            .control()
            .undo_of(env, &t.new_database)
            .await?
            .is_none()
        {
            return Err(UpgradeError::Conflict(format!(
                "'{env}' was switched before switches recorded what they replaced; it cannot be reverted"
            )));
        }
        self.log(
            &id,
            &Event::RevertStarted {
                at: now(),
                reason: reason.to_string(),
                options,
                by: by.to_string(),
            },
        )
        .await?;
        self.spawn_revert(env, &id);
        self.view(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))
    }

    fn spawn_revert(self: &Arc<Self>, env: &str, id: &str) {
        let run = self.track(env);
        let (me, env, id) = (self.clone(), env.to_string(), id.to_string());
        tokio::spawn(async move {
            if let Err(e) = me.run_revert(&env, &id, &run).await {
                tracing::error!(env, error = %e, "the revert failed");
                if let Err(e) = me.end_revert(&env, &id, &e.for_the_log()).await {
                    tracing::error!(env, error = %e, "the revert did not end cleanly");
                }
            }
            me.untrack(&env, &run);
        });
    }

    /// After a failure or a restart: before the switch back, production stays on the
    /// upgraded database and the failure is logged; after it, the revert finishes.
    pub(super) async fn end_revert(
        &self,
        env: &str,
        id: &str,
        message: &str,
    ) -> Result<(), UpgradeError> {
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))?;
        let Some(t) = &state.step3 else {
            return Ok(());
        };
        let record = self.store.control().get_env(env).await?;
        if record.is_some_and(|r| r.database == t.from_database) {
            return self.finish_revert(env, id, &state, None).await;
        }
        self.store.control().end_pause(env).await?;
        self.log(
            id,
            &Event::RevertFailed {
                at: now(),
                message: message.to_string(),
            },
        )
        .await
    }

    /// Logs the switch back (if a restart found it committed but not logged) and the end.
    async fn finish_revert(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
        started: Option<Instant>,
    ) -> Result<(), UpgradeError> {
        let Some(t) = &state.step3 else {
            return Ok(());
        };
        if !t.revert.as_ref().is_some_and(|r| r.switched) {
            let old = self.store.database(env, &t.from_database).await?;
            let upgrade = self.planned(state, &old.catalog()).await?;
            self.log(
                id,
                &Event::RevertSwitched {
                    at: now(),
                    database: t.from_database.clone(),
                    renames: reverted_names(&old.catalog(), &upgrade),
                },
            )
            .await?;
        }
        if let Ok(upgraded) = self.store.database(env, &t.new_database).await
            && let Err(e) = capture::remove(&upgraded).await
        {
            tracing::warn!(env, error = %e, "capture stays on the upgraded database");
        }
        let duration_ms = started.map_or(0, |s| s.elapsed().as_millis() as u64);
        self.log(
            id,
            &Event::Reverted {
                at: now(),
                duration_ms,
            },
        )
        .await
    }

    async fn run_revert(
        &self,
        env: &str,
        id: &str,
        run: &Arc<Running>,
    ) -> Result<(), UpgradeError> {
        let started = Instant::now();
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("no upgrade".into()))?;
        let t = state
            .step3
            .clone()
            .ok_or_else(|| UpgradeError::Log("step 3 was not started".into()))?;
        let options = t
            .revert
            .as_ref()
            .map(|r| r.options.clone())
            .ok_or_else(|| UpgradeError::Log("the revert was not started".into()))?;
        let (prod, old) = self.both_productions(env, &t).await?;
        let upgrade = self.planned(&state, &old.catalog()).await?;
        let entities: Vec<RevertEntity> = revert_entities(&upgrade, &old)
            .into_iter()
            .map(|e| e.0)
            .collect();
        let ctx = EvalContext {
            upgrade_time: now_ms(),
            actor: t.revert.as_ref().map(|r| r.by.clone()).unwrap_or_default(),
        };
        let back = Revert::new(&prod, &old, &entities, &ctx)?;
        let carry = Carry::Back(&back);
        catch_up(&prod, &carry, run).await?;
        let (switch, successors) = self.switch_back(env, &state, &t).await?;
        let translator = uplift_plan::Translator::backward(&upgrade, &old.catalog());
        let job = PauseJob {
            source: &prod,
            carry,
            switch: &switch,
            renames: reverted_names(&old.catalog(), &upgrade),
            fresh_capture: None,
            successors,
            translate: Arc::new(move |e, r| translator.record(e, r)),
        };
        self.pauses(id, &options, &job, run).await?;
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))?;
        self.finish_revert(env, id, &state, Some(started)).await
    }

    /// The upgraded production (serving) and the old one.
    async fn both_productions(
        &self,
        env: &str,
        t: &Step3State,
    ) -> Result<(Arc<EnvDb>, Arc<EnvDb>), UpgradeError> {
        let prod = self.store.env_db(env).await?;
        let old = self.store.database(env, &t.from_database).await?;
        Ok((prod, old))
    }

    /// The switch back, from what the switch to the upgraded database replaced, and
    /// the flows it replaces: each promoted flow by the original it was cloned from.
    async fn switch_back(
        &self,
        env: &str,
        state: &UpgradeState,
        t: &Step3State,
    ) -> Result<(Switch, Vec<Successor>), UpgradeError> {
        let undo = self
            .store
            .control()
            .undo_of(env, &t.new_database)
            .await?
            .ok_or_else(|| UpgradeError::Conflict("the switch recorded no undo".into()))?;
        let mut flows = Vec::new();
        let mut restored = Vec::new();
        for (id, def, database) in &undo.flows {
            let def: FlowDef =
                serde_json::from_str(def).map_err(|e| UpgradeError::Log(e.to_string()))?;
            flows.push(flow_change(&def, id, database)?);
            restored.push((id.clone(), def));
        }
        let successors = state
            .items
            .iter()
            .flatten()
            .filter(|i| i.item.kind == ItemKind::Flow && i.excluded.is_none())
            .filter_map(|i| {
                let (_, def) = restored.iter().find(|(id, _)| *id == i.item.source_id)?;
                Some((
                    i.item.copy_id.clone(),
                    i.item.source_id.clone(),
                    def.clone(),
                ))
            })
            .collect();
        let by = t.revert.as_ref().map(|r| r.by.clone()).unwrap_or_default();
        let switch = Switch {
            env: env.to_string(),
            from_database: t.new_database.clone(),
            to_database: undo.from_database,
            schema_version: undo.schema_version,
            security_mode: undo.security_mode,
            apps: undo.apps.into_iter().map(|(n, d, _)| (n, d)).collect(),
            flows,
            roles: undo.roles,
            runs: Vec::new(),
            by,
        };
        Ok((switch, successors))
    }
}

/// Why production's schema is no longer `target`, the one step 3 built, if it changed
/// after the switch: a revert would lose what the change added (the inverse transforms
/// and the capture know the schema of the switch).
fn schema_changed(target: &uplift_model::Catalog, prod: &EnvDb) -> Option<String> {
    let now = prod.catalog();
    let shape = |e: &uplift_model::Entity| -> Vec<(String, String)> {
        e.fields
            .iter()
            .map(|f| (f.name.clone(), f.ty.type_label()))
            .collect()
    };
    for e in &now.entities {
        match target.entity(&e.name) {
            None => {
                return Some(format!(
                    "entity '{}' was added after the switch; a revert would lose it",
                    e.name
                ));
            }
            Some(t) if shape(t) != shape(e) => {
                return Some(format!(
                    "the fields of '{}' changed after the switch; a revert would lose them",
                    e.name
                ));
            }
            _ => {}
        }
    }
    target
        .entities
        .iter()
        .find(|t| now.entity(&t.name).is_none())
        .map(|t| format!("entity '{}' was removed after the switch", t.name))
}

/// Each upgraded entity's inverse (of `upgrade`, planned from the old production's
/// catalog), with the fields it cannot carry back and why.
fn revert_entities(
    upgrade: &uplift_plan::Upgrade,
    old: &EnvDb,
) -> Vec<(RevertEntity, Vec<(String, String)>)> {
    inverse(upgrade, &old.catalog())
        .into_iter()
        .map(|i| {
            let why = i
                .lost
                .iter()
                .map(|l| (l.field.clone(), l.reason.clone()))
                .collect();
            let entity = RevertEntity {
                transform: i.transform,
                lost: i.lost.into_iter().map(|l| (l.field, l.columns)).collect(),
                numbered: i.numbered,
            };
            (entity, why)
        })
        .collect()
}

/// Step 3's record of a completed (switched) upgrade.
fn switched<'a>(env: &str, state: &'a UpgradeState) -> Result<&'a Step3State, UpgradeError> {
    state.step3.as_ref().filter(|t| t.switched).ok_or_else(|| {
        UpgradeError::Conflict(format!("'{env}' has no completed upgrade to revert"))
    })
}

/// Why a revert may not start now, if it may not.
fn revertible(state: &UpgradeState, t: &Step3State) -> Result<(), String> {
    match state.status {
        Status::Completed if t.old_production_removed => {
            Err("the revert window is over: the old production database was deleted".into())
        }
        Status::Completed => Ok(()),
        Status::RevertRunning => Err("a revert is under way".into()),
        Status::Reverted => Err("the upgrade is already reverted".into()),
        _ => Err("the upgrade is not completed".into()),
    }
}
