//! Step 2's verification of an item: the static checks (the runner's) and the run
//! ones. An app's copy has every view run (first page) and every form loaded on a
//! sample record, on the test database, as its owner under the upgraded roles; a
//! flow's clone is dry-run on a sample trigger record of the test database (writes
//! rolled back, mail and HTTP captured). The original is run the same way on
//! production, so a problem it already had is told apart as `pre_existing`.

use serde_json::{Value as Json, json};
use uplift_model::app::AppDef;
use uplift_model::flow::Trigger;
use uplift_plan::rewrite::{Finding, Severity};
use uplift_store::control::{Bound, FlowRecord, RunRecord};
use uplift_upgrade::items::ItemKind;

use crate::auth::Actor;
use crate::data::query::Options;
use crate::error::{Result, ServiceError};
use crate::player::Play;
use crate::{Services, flows};
use uplift_api as api;

/// Where a definition runs: its own database, and the static findings that say which
/// of its parts cannot run at all.
struct Runs<'a> {
    env: &'a str,
    database: &'a str,
    broken: &'a [Finding],
}

impl Services {
    /// Verifies `item` of `env`'s upgrade now and logs what was seen, and how long
    /// it took.
    pub(crate) async fn verify_item(&self, env: &str, item: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let v = self.upgrades.to_verify(env, item).await?;
        let it = &v.item.item;
        let (mut copy, mut original) = (v.copy.clone(), v.original.clone());
        match self.owner(&it.owner).await? {
            Err(problem) => {
                copy.push(problem.clone());
                original.push(problem);
            }
            Ok(owner) => {
                let on_test = Runs {
                    env,
                    database: &v.test_database,
                    broken: &v.copy,
                };
                let on_production = Runs {
                    env,
                    database: &v.production,
                    broken: &v.original,
                };
                // The two databases are independent: the copy and the original run
                // side by side.
                let (c, o) = match it.kind {
                    ItemKind::App => tokio::try_join!(
                        self.run_app(&owner, &it.copy, &on_test),
                        self.run_app(&owner, &it.original, &on_production)
                    )?,
                    ItemKind::Flow => tokio::try_join!(
                        self.dry_run(&owner, &it.copy_id, &on_test),
                        self.dry_run(&owner, &it.source_id, &on_production)
                    )?,
                };
                copy.extend(c);
                original.extend(o);
            }
        }
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.upgrades
            .record_verified(env, item, copy, &original, took_ms)
            .await?;
        Ok(())
    }

    /// The owner as the actor the runs act for, or the finding that they cannot be.
    async fn owner(&self, email: &str) -> Result<Result<Actor, Finding>> {
        match self.store.control().get_user(email).await? {
            Some(u) if u.status == uplift_model::security::UserStatus::Active => Ok(Ok(Actor(u))),
            _ => Ok(Err(error(
                "owner",
                format!("'{email}' is not an active user: nothing can run as its owner"),
            ))),
        }
    }

    /// Runs every view and loads every form of `definition` (one not already broken).
    async fn run_app(
        &self,
        owner: &Actor,
        definition: &Json,
        at: &Runs<'_>,
    ) -> Result<Vec<Finding>> {
        let Ok(def) = serde_json::from_value::<AppDef>(definition.clone()) else {
            return Ok(Vec::new());
        };
        let bound = Bound {
            definition: def,
            database: at.database.to_string(),
        };
        let mut found = Vec::new();
        for v in &bound.definition.views {
            let place = format!("view '{}'", v.name);
            if at.broken(&place) {
                continue;
            }
            let ran = self
                .view_of(owner, at.env, &bound, &v.name, &Play::default())
                .await;
            found.extend(outcome(&place, ran)?);
        }
        for f in &bound.definition.forms {
            let place = format!("form '{}'", f.name);
            if at.broken(&place) {
                continue;
            }
            match self.form_of(owner, at.env, &bound, &f.name, None).await {
                Err(ServiceError::NotFound(crate::Missing::Record { entity, .. })) => {
                    found.push(info(
                        &place,
                        format!("no '{entity}' record the owner may read to load it with"),
                    ));
                }
                ran => found.extend(outcome(&place, ran)?),
            }
        }
        Ok(found)
    }

    /// Dry-runs flow `flow_id` on a sample trigger; a failed step is a finding at it.
    async fn dry_run(&self, owner: &Actor, flow_id: &str, at: &Runs<'_>) -> Result<Vec<Finding>> {
        let Some(flow) = self.store.control().flow(at.env, flow_id).await? else {
            return Ok(Vec::new());
        };
        if at.broken.iter().any(|f| f.severity == Severity::Error) {
            // A flow that does not validate would fail at its first broken step: the
            // static finding says why, without a run.
            return Ok(Vec::new());
        }
        let trigger = match self.sample_trigger(owner, &flow, None).await? {
            Ok(t) => t,
            Err(finding) => return Ok(vec![finding]),
        };
        let run = self.flows.dry_run(&flow, trigger).await?;
        Ok(run_findings(&run))
    }

    /// A maker's trial of a flow's upgrade copy: a dry run on the test database (writes
    /// rolled back, mail and HTTP captured), on record `record` of its trigger's entity,
    /// or on the first one the maker may read; the finished run, with its steps.
    pub async fn try_flow_copy(
        &self,
        actor: &Actor,
        env: &str,
        item: &str,
        record: Option<&str>,
    ) -> Result<api::flows::Run> {
        let detail = self.upgrade_item(actor, env, item).await?;
        if detail.fields.kind != api::items::ItemKind::Flow {
            return Err(ServiceError::Invalid(format!(
                "'{}' is an app: open its copy in the player instead",
                detail.fields.name
            )));
        }
        let flow = self.find_flow(env, &detail.fields.copy_id).await?;
        let trigger = match self.sample_trigger(actor, &flow, record).await? {
            Ok(t) => t,
            Err(finding) => return Err(ServiceError::Conflict(finding.message)),
        };
        let run = self.flows.dry_run(&flow, trigger).await?;
        Ok(crate::convert::run(&run))
    }

    /// A trigger like the flow's real ones, on record `record` of its entity, or else
    /// the first one `owner` may read (matching its filter), or the finding that there
    /// is none.
    async fn sample_trigger(
        &self,
        owner: &Actor,
        flow: &FlowRecord,
        record: Option<&str>,
    ) -> Result<Result<Json, Finding>> {
        let now = flows::now();
        let (kind, entity, filter) = match &flow.definition.trigger {
            Trigger::Manual => return Ok(Ok(json!({"kind": "manual", "time": now}))),
            Trigger::Schedule { .. } => {
                return Ok(Ok(json!({"kind": "schedule", "time": now})));
            }
            Trigger::AppCommand { entity } => ("app_command", entity, None),
            Trigger::RecordCreated { entity, filter } => {
                ("record_created", entity, filter.as_ref())
            }
            Trigger::RecordUpdated { entity, filter } => {
                ("record_updated", entity, filter.as_ref())
            }
            Trigger::RecordDeleted { entity, filter } => {
                ("record_deleted", entity, filter.as_ref())
            }
        };
        let data = match self.open_bound(owner, &flow.env, &flow.database).await {
            Ok(d) => d,
            Err(e) => return Ok(Err(failure("trigger", e)?)),
        };
        let Some(e) = data.catalog().entity(entity) else {
            return Ok(Err(error("trigger", format!("no entity '{entity}'"))));
        };
        let set = e.set_name.clone();
        if let Some(id) = record {
            let got = data.get(&set, id, &Options::default()).await;
            let mut r = match got {
                Ok(r) => r.value,
                // Said on the maker's page, next to the id they typed.
                Err(ServiceError::NotFound(_)) => {
                    return Err(ServiceError::Conflict(format!(
                        "the test database has no '{entity}' record with id '{id}' that you may read"
                    )));
                }
                Err(e) => return Err(e),
            };
            r.retain(|k, _| !k.starts_with('@'));
            return Ok(Ok(json!({
                "kind": kind, "entity": entity, "record": r,
                "user": owner.email(), "time": now, "depth": 0,
            })));
        }
        let mut opts = Options::default();
        if let Some(f) = filter {
            // A filter the data API cannot take is a static finding already.
            let _ = opts.set("$filter", f, e, data.catalog());
        }
        opts.top = Some(1);
        let page = match data.list(&set, &opts, None).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(failure("trigger", e)?)),
        };
        let Some(mut record) = page.values.into_iter().next() else {
            return Ok(Err(info(
                "trigger",
                format!("no '{entity}' record to dry-run it on: its steps were not run"),
            )));
        };
        record.retain(|k, _| !k.starts_with('@'));
        Ok(Ok(json!({
            "kind": kind, "entity": entity, "record": record,
            "user": owner.email(), "time": now, "depth": 0,
        })))
    }
}

impl Runs<'_> {
    /// Whether a static error is in `part` (`view 'Open orders'`): it cannot run.
    fn broken(&self, part: &str) -> bool {
        self.broken
            .iter()
            .any(|f| f.severity == Severity::Error && f.location.starts_with(part))
    }
}

/// A failed step of a dry run as a finding at the step; a run that failed before any
/// step, at its trigger.
fn run_findings(run: &RunRecord) -> Vec<Finding> {
    let failed: Vec<Finding> = run
        .steps
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"] == "failed")
        .map(|s| {
            let name = s["name"].as_str().unwrap_or_default();
            let message = s["error"].as_str().unwrap_or("failed");
            error(&format!("step '{name}'"), format!("dry run: {message}"))
        })
        .collect();
    match (&run.error, failed.is_empty()) {
        (Some(e), true) => vec![error("trigger", format!("dry run: {e}"))],
        _ => failed,
    }
}

/// What running a part gave: nothing, a finding, or a fault of ours to retry later.
fn outcome<T>(place: &str, ran: Result<T>) -> Result<Option<Finding>> {
    match ran {
        Ok(_) => Ok(None),
        Err(e) => failure(place, e).map(Some),
    }
}

fn failure(place: &str, e: ServiceError) -> Result<Finding> {
    match e {
        ServiceError::Internal { .. } | ServiceError::Unavailable { .. } => Err(e),
        ServiceError::Forbidden(_) => Ok(Finding {
            suggestion: Some(
                "give the owner the privilege in the upgraded roles, or for testing with PUT …/upgrade/test/access/{user}".into(),
            ),
            ..error(place, format!("running it as its owner: {e}"))
        }),
        e => Ok(error(place, format!("running it: {e}"))),
    }
}

fn error(place: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        location: place.to_string(),
        message,
        suggestion: None,
    }
}

fn info(place: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Info,
        ..error(place, message)
    }
}
