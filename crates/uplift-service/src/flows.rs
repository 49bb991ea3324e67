//! Flows: makers create and change them (validated against the catalog of the
//! database they are bound to), turn them on and off, start manual ones and read
//! their runs. Every change refreshes the flow runtime, which decides from the flows
//! that are on which entities' writes go to the outbox.

use serde_json::json;
use uplift_api as api;
use uplift_model::flow::{FlowDef, FlowState, Trigger, validate};
use uplift_store::control::FlowRecord;

use crate::auth::Actor;
use crate::error::{ItemKind, Missing, Result, ServiceError, invalid};
use crate::policy::{self, Owned};
use crate::{Services, convert};

/// The newest runs a listing shows unless asked for more, and the most it shows.
pub const DEFAULT_RUNS_LISTED: u32 = 200;
pub const MAX_RUNS_LISTED: u32 = 100_000;

pub(crate) fn owned(f: &FlowRecord) -> Owned<'_> {
    Owned {
        kind: ItemKind::Flow,
        name: &f.definition.name,
        owner: &f.definition.owner,
        editors: &f.definition.editors,
    }
}

fn parse(definition: api::Document) -> Result<FlowDef> {
    serde_json::from_value(definition)
        .map_err(|e| ServiceError::Invalid(format!("request body: {e}")))
}

pub(crate) fn now() -> String {
    uplift_model::value::format_instant(time::OffsetDateTime::now_utc())
}

impl Services {
    pub(crate) async fn find_flow(&self, env: &str, id: &str) -> Result<FlowRecord> {
        self.store.env_db(env).await?;
        self.store.control().flow(env, id).await?.ok_or_else(|| {
            ServiceError::NotFound(Missing::Flow {
                env: env.into(),
                id: id.into(),
            })
        })
    }

    /// Validates `def` against the catalog of `database`, stores it under `id` and
    /// refreshes the runtime.
    async fn store_flow(
        &self,
        env: &str,
        id: &str,
        def: &FlowDef,
        database: &str,
    ) -> Result<api::flows::Flow> {
        let db = self.store.bound(env, database).await?;
        validate(def, &db.catalog()).map_err(|e| invalid(&e))?;
        self.check_people(&def.owner, &def.editors).await?;
        self.store
            .control()
            .save_flow(env, id, def, database)
            .await?;
        self.flows.refresh(env).await?;
        Ok(convert::flow(&self.find_flow(env, id).await?))
    }

    /// The flows the actor owns or edits (all, for an admin): a definition can hold
    /// secrets, such as an HTTP step's headers.
    pub async fn list_flows(&self, actor: &Actor, env: &str) -> Result<Vec<api::flows::Flow>> {
        self.store.env_db(env).await?;
        let flows = self.store.control().flows(env).await?;
        Ok(flows
            .iter()
            .filter(|f| policy::sees_inside(actor, owned(f)))
            .map(convert::flow)
            .collect())
    }

    pub async fn flow(&self, actor: &Actor, env: &str, id: &str) -> Result<api::flows::Flow> {
        let f = self.find_flow(env, id).await?;
        policy::edit(actor, owned(&f))?;
        Ok(convert::flow(&f))
    }

    /// Creates a flow bound to production.
    pub async fn create_flow(
        &self,
        actor: &Actor,
        env: &str,
        definition: api::Document,
    ) -> Result<api::flows::Flow> {
        policy::maker(actor)?;
        let def = parse(definition)?;
        policy::set_ownership(
            actor,
            None,
            ItemKind::Flow,
            &def.name,
            &def.owner,
            &def.editors,
        )?;
        let production = self.env(env).await?.database;
        let id = uuid::Uuid::now_v7().to_string();
        self.store_flow(env, &id, &def, &production).await
    }

    /// Replaces a flow's definition; its binding stays.
    pub async fn replace_flow(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        definition: api::Document,
    ) -> Result<api::flows::Flow> {
        policy::maker(actor)?;
        let def = parse(definition)?;
        let f = self.find_flow(env, id).await?;
        policy::edit(actor, owned(&f))?;
        let name = f.definition.name.clone();
        policy::set_ownership(
            actor,
            Some(owned(&f)),
            ItemKind::Flow,
            &name,
            &def.owner,
            &def.editors,
        )?;
        self.store_flow(env, id, &def, &f.database).await
    }

    pub async fn set_flow_state(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        on: bool,
    ) -> Result<api::flows::Flow> {
        let f = self.find_flow(env, id).await?;
        policy::edit(actor, owned(&f))?;
        let state = if on { FlowState::On } else { FlowState::Off };
        self.store.control().set_flow_state(env, id, state).await?;
        self.flows.refresh(env).await?;
        Ok(convert::flow(&self.find_flow(env, id).await?))
    }

    /// Queues a run of a manually triggered flow.
    pub async fn run_flow(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
    ) -> Result<api::apps::RunStarted> {
        let f = self.find_flow(env, id).await?;
        policy::edit(actor, owned(&f))?;
        if !matches!(f.definition.trigger, Trigger::Manual) {
            return Err(ServiceError::Conflict(format!(
                "flow '{}' is started by its trigger, not by hand",
                f.definition.name
            )));
        }
        refuse_off(&f)?;
        let trigger = json!({"kind": "manual", "user": actor.email(), "time": now()});
        let run = self.flows.start_run(&f, trigger).await?;
        Ok(api::apps::RunStarted { run, flow: None })
    }

    /// The newest runs of a flow, `top` of them (within bounds).
    pub async fn runs(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        top: Option<u32>,
    ) -> Result<Vec<api::flows::Run>> {
        let f = self.find_flow(env, id).await?;
        policy::edit(actor, owned(&f))?;
        let top = top.unwrap_or(DEFAULT_RUNS_LISTED).clamp(1, MAX_RUNS_LISTED);
        let runs = self.store.control().runs(env, id, top).await?;
        Ok(runs.iter().map(convert::run).collect())
    }

    pub async fn run(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        run: &str,
    ) -> Result<api::flows::Run> {
        let f = self.find_flow(env, id).await?;
        policy::edit(actor, owned(&f))?;
        let r = self
            .store
            .control()
            .run(env, run)
            .await?
            .filter(|r| r.flow_id == id)
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Run {
                    flow: id.into(),
                    run: run.into(),
                })
            })?;
        Ok(convert::run(&r))
    }
}

impl Services {
    /// A run as its starter sees it: the user who ran an app's command reads the run
    /// it started (its outcome and steps), as do the flow's owner, editors and admins.
    pub async fn started_run(
        &self,
        actor: &Actor,
        env: &str,
        run: &str,
    ) -> Result<api::flows::Run> {
        let missing = || {
            ServiceError::NotFound(Missing::Run {
                flow: "(any)".into(),
                run: run.into(),
            })
        };
        let r = self
            .store
            .control()
            .run(env, run)
            .await?
            .ok_or_else(missing)?;
        let f = self.find_flow(env, &r.flow_id).await?;
        let edits = policy::edit(actor, owned(&f));
        let starter =
            r.trigger["kind"] == "app_command" && r.trigger["user"].as_str() == Some(actor.email());
        match (edits, starter) {
            (Ok(()), _) => Ok(convert::run(&r)),
            // A step's inputs can hold the flow's secrets (an HTTP step's headers):
            // the starter sees each step's name, status and error only.
            (Err(_), true) => {
                let mut out = convert::run(&r);
                out.steps = outcome_only(&out.steps);
                Ok(out)
            }
            // Not even whether the run exists, to whoever neither started nor makes it.
            (Err(_), false) => Err(missing()),
        }
    }
}

/// Each step's name, status and error.
fn outcome_only(steps: &serde_json::Value) -> serde_json::Value {
    let keep = |s: &serde_json::Value| json!({"name": s["name"], "status": s["status"], "error": s["error"]});
    serde_json::Value::Array(steps.as_array().into_iter().flatten().map(keep).collect())
}

/// A flow that is off starts no run.
pub(crate) fn refuse_off(f: &FlowRecord) -> Result<()> {
    if f.definition.state == FlowState::Off {
        return Err(ServiceError::Conflict(format!(
            "flow '{}' is off",
            f.definition.name
        )));
    }
    Ok(())
}
