//! The environment upgrade: preview a plan, start step 1, follow it, read its report,
//! cancel or retry it. The runner (`uplift-upgrade`) does the work; this is where the
//! policy is asked and the answers are shaped.

use std::collections::BTreeMap;

use uplift_api as api;
use uplift_model::security::check_privileges;
use uplift_model::value::format_instant;
use uplift_plan::{ChangeList, Options, SecurityOutcome, apply};
use uplift_upgrade::events::{AppsFrom, EntityReport, KeptDatabase, Phase, StartOptions};
use uplift_upgrade::plans::{self, FoundPlan, PlanSource};
use uplift_upgrade::runner::janitor::{self, Retention};
use uplift_upgrade::runner::{UpgradeView, currencies_in, source_security};
use uplift_upgrade::state::{Status, UpgradeState};

use crate::auth::Actor;
use crate::error::{Missing, Result, ServiceError};
use crate::{Services, convert, policy};

/// How a report's entity lines read.
const REPORT_NOTES: &[&str] = &[
    "errors and warnings count rows: a row refused or changed by several rules counts once",
    "error_samples and warning_samples list one line per row and rule, at most 100 of each per entity, so they may outnumber or fall short of the counts",
    "imported + errors = exported, and checksum_match says the test database holds exactly the converted rows",
];

/// The plan a preview uses when none is named.
pub const DEFAULT_PLAN: &str = "classic-to-modern";

/// What a preview is asked for.
#[derive(Debug, Clone, Default)]
pub struct PreviewRequest {
    pub plan: Option<String>,
    pub language: Option<String>,
    pub currency: Option<String>,
}

impl Services {
    /// The target catalog and the change list, touching nothing.
    pub async fn preview_upgrade(
        &self,
        actor: &Actor,
        env: &str,
        req: PreviewRequest,
    ) -> Result<api::upgrade::Preview> {
        policy::admin(actor)?;
        self.env(env).await?;
        let plan_name = req.plan.unwrap_or_else(|| DEFAULT_PLAN.into());
        let options = Options {
            language: req.language.unwrap_or_else(|| "en".into()),
            currency: req.currency.unwrap_or_else(|| "USD".into()),
            exchange_rates: BTreeMap::new(),
        };
        let (upgrade, changes, security) = self.planned(env, &plan_name, &options).await?;
        let version = upgrade.target.version;
        Ok(api::upgrade::Preview {
            plan: plan_name,
            target: api::upgrade::TargetCatalog {
                schema_version: convert::schema_version(version),
                entities: upgrade
                    .target
                    .entities
                    .iter()
                    .map(|e| convert::entity(e, version))
                    .collect(),
            },
            changes: change_list(&changes),
            security,
        })
    }

    /// The plan applied to production now: the upgrade, its change list with the
    /// currencies found in the data, and the security mapping.
    async fn planned(
        &self,
        env: &str,
        plan_name: &str,
        options: &Options,
    ) -> Result<(
        uplift_plan::Upgrade,
        ChangeList,
        api::upgrade::SecurityMapping,
    )> {
        let plan = self.upgrades.find_plan(plan_name).await?.plan;
        let prod = self.store.env_db(env).await?;
        let (upgrade, changes) = changes_on(&prod, &plan, options).await?;
        let security = self.security_outcome(env, &plan, &upgrade).await?;
        Ok((upgrade, changes, security))
    }

    /// The change list as planned from the database production was on before the
    /// switch; empty once that database is deleted.
    async fn changes_from(
        &self,
        env: &str,
        old: &str,
        plan_name: &str,
        options: &Options,
    ) -> Result<ChangeList> {
        let Ok(db) = self.store.database(env, old).await else {
            return Ok(ChangeList::default());
        };
        let plan = self.upgrades.find_plan(plan_name).await?.plan;
        Ok(changes_on(&db, &plan, options).await?.1)
    }

    /// The environment's security as it is: after the switch, the mapping's outcome.
    async fn security_now(&self, env: &str) -> Result<api::upgrade::SecurityMapping> {
        let record = self.env(env).await?;
        let now = source_security(&self.store, env, record.security_mode).await?;
        Ok(security_mapping(SecurityOutcome {
            mode: now.mode,
            roles: now.roles,
            members: now.members,
            warnings: Vec::new(),
        }))
    }

    async fn security_outcome(
        &self,
        env: &str,
        plan: &uplift_plan::Plan,
        upgrade: &uplift_plan::Upgrade,
    ) -> Result<api::upgrade::SecurityMapping> {
        Ok(security_mapping(
            self.security.mapped(env, plan, upgrade).await?,
        ))
    }

    /// Starts step 1; it runs in the background.
    pub async fn start_upgrade(
        &self,
        actor: &Actor,
        env: &str,
        req: api::upgrade::StartUpgrade,
    ) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        if let Some((code, rate)) = req
            .exchange_rates
            .iter()
            .find(|(_, r)| r.is_sign_negative() || r.is_zero())
        {
            return Err(ServiceError::Invalid(format!(
                "exchange rate {code}={rate} must be a positive number"
            )));
        }
        let options = StartOptions {
            plan: req.plan,
            language: req.language,
            currency: req.currency.to_uppercase(),
            exchange_rates: req.exchange_rates,
            apps_from: match req.apps_from.unwrap_or_default() {
                api::upgrade::AppsFrom::Published => AppsFrom::Published,
                api::upgrade::AppsFrom::Draft => AppsFrom::Draft,
            },
            allow_http: req.allow_http.iter().map(|h| h.to_lowercase()).collect(),
        };
        let view = self.upgrades.start(env, options, actor.email()).await?;
        Ok(self.api_view(view))
    }

    pub async fn upgrade_status(&self, actor: &Actor, env: &str) -> Result<api::upgrade::Upgrade> {
        policy::maker(actor)?;
        Ok(self.api_view(self.latest_upgrade(env).await?))
    }

    async fn latest_upgrade(&self, env: &str) -> Result<UpgradeView> {
        self.env(env).await?;
        self.upgrades
            .view(env)
            .await?
            .ok_or_else(|| ServiceError::NotFound(Missing::Upgrade { env: env.into() }))
    }

    /// What flows bound to the test database sent (makers and admins).
    pub async fn upgrade_captured(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<api::upgrade::CapturedList> {
        policy::maker(actor)?;
        self.env(env).await?;
        let rec = self.env(env).await?;
        let (_, state) = self.serving_upgrade(env).await?;
        let control = self.store.control();
        let mut value = Vec::new();
        // The test database's, and those of the originals' dry runs on production.
        for (database, which) in [
            (&state.test_database, api::upgrade::CapturedFrom::Test),
            (&rec.database, api::upgrade::CapturedFrom::Production),
        ] {
            for c in control.captures(env, database).await? {
                value.push(api::upgrade::Captured {
                    id: c.id,
                    kind: c.kind,
                    flow_id: c.flow_id,
                    run_id: c.run_id,
                    database: which,
                    payload: c.payload,
                    at: c.at,
                });
            }
        }
        value.sort_by(|a, b| (&a.at, &a.id).cmp(&(&b.at, &b.id)));
        Ok(api::upgrade::CapturedList { value })
    }

    /// Cancels step 1: the test database is dropped, production is as before.
    pub async fn cancel_upgrade(&self, actor: &Actor, env: &str) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        self.env(env).await?;
        Ok(self.api_view(self.upgrades.cancel(env).await?))
    }

    pub async fn retry_upgrade(&self, actor: &Actor, env: &str) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        self.env(env).await?;
        Ok(self.api_view(self.upgrades.retry(env).await?))
    }

    /// Rebuilds the test database of an upgrade in step 2 from production as it is
    /// now, then verifies every item again (admins); copies and edits are kept.
    pub async fn refresh_upgrade(&self, actor: &Actor, env: &str) -> Result<api::upgrade::Upgrade> {
        policy::admin(actor)?;
        self.env(env).await?;
        Ok(self.api_view(self.upgrades.refresh(env, actor.email()).await?))
    }

    /// Step 1's report: per entity counts, checks and samples, the change list and
    /// the security mapping.
    pub async fn upgrade_report(&self, actor: &Actor, env: &str) -> Result<api::upgrade::Report> {
        policy::maker(actor)?;
        let view = self.latest_upgrade(env).await?;
        let o = &view.state.options;
        let options = Options {
            language: o.language.clone(),
            currency: o.currency.clone(),
            exchange_rates: o.exchange_rates.clone(),
        };
        // Once switched, production is the new schema: the change list is planned from
        // the old production, and the roles are the mapping's outcome.
        let (changes, security) = match view.state.step3.as_ref().filter(|t| t.switched) {
            None => {
                let (_, changes, security) = self.planned(env, &o.plan, &options).await?;
                (changes, security)
            }
            Some(t) => (
                self.changes_from(env, &t.from_database, &o.plan, &options)
                    .await?,
                self.security_now(env).await?,
            ),
        };
        Ok(api::upgrade::Report {
            id: view.id,
            status: status_of(view.state.status),
            step1_duration_ms: view.state.step1_duration_ms,
            estimated_step3_downtime_ms: view.state.step1_duration_ms,
            entities: view.state.entities.iter().map(entity_report).collect(),
            notes: REPORT_NOTES.iter().map(|n| n.to_string()).collect(),
            changes: change_list(&changes),
            security,
            pause: view.state.step3.as_ref().map(|t| pause_report(&t.pause)),
            step3_phases: view
                .state
                .phases
                .iter()
                .filter(|p| uplift_upgrade::events::Phase::STEP3.contains(&p.phase))
                .cloned()
                .map(phase_state)
                .collect(),
        })
    }
}

/// `plan` applied to `db`'s catalog, with the currencies found in its data.
async fn changes_on(
    db: &uplift_store::EnvDb,
    plan: &uplift_plan::Plan,
    options: &Options,
) -> Result<(uplift_plan::Upgrade, ChangeList)> {
    let upgrade =
        apply(plan, &db.catalog(), options).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let mut changes = upgrade.changes.clone();
    changes.currencies_found = currencies_in(db).await?.into_iter().collect();
    Ok((upgrade, changes))
}

fn security_mapping(out: SecurityOutcome) -> api::upgrade::SecurityMapping {
    api::upgrade::SecurityMapping {
        mode: convert::security_mode(out.mode),
        roles: out
            .roles
            .into_iter()
            .map(|(name, privileges)| api::upgrade::MappedRole { name, privileges })
            .collect(),
        members: out
            .members
            .into_iter()
            .map(|(role, user)| api::upgrade::MappedMember { role, user })
            .collect(),
        warnings: out
            .warnings
            .into_iter()
            .map(|w| api::upgrade::SecurityWarning {
                role: w.role,
                user: w.user,
                message: w.message,
            })
            .collect(),
    }
}

pub(crate) fn status_of(s: Status) -> api::upgrade::UpgradeStatus {
    match s {
        Status::Step1Running => api::upgrade::UpgradeStatus::Step1Running,
        Status::Step1Failed => api::upgrade::UpgradeStatus::Step1Failed,
        Status::Step2Verifying => api::upgrade::UpgradeStatus::Step2Verifying,
        Status::Step3Running => api::upgrade::UpgradeStatus::Step3Running,
        Status::Completed => api::upgrade::UpgradeStatus::Completed,
        Status::Cancelled => api::upgrade::UpgradeStatus::Cancelled,
        Status::RevertRunning => api::upgrade::UpgradeStatus::RevertRunning,
        Status::Reverted => api::upgrade::UpgradeStatus::Reverted,
    }
}

fn phase(p: Phase) -> api::upgrade::Phase {
    match p {
        Phase::LockSchema => api::upgrade::Phase::LockSchema,
        Phase::Plan => api::upgrade::Phase::Plan,
        Phase::CreateTestDatabase => api::upgrade::Phase::CreateTestDatabase,
        Phase::Copy => api::upgrade::Phase::Copy,
        Phase::Check => api::upgrade::Phase::Check,
        Phase::Done => api::upgrade::Phase::Done,
        Phase::Preflight => api::upgrade::Phase::Preflight,
        Phase::Capture => api::upgrade::Phase::Capture,
        Phase::Build => api::upgrade::Phase::Build,
        Phase::CatchUp => api::upgrade::Phase::CatchUp,
        Phase::Pause => api::upgrade::Phase::Pause,
        Phase::Publish => api::upgrade::Phase::Publish,
    }
}

fn phase_state(p: uplift_upgrade::state::PhaseState) -> api::upgrade::PhaseState {
    api::upgrade::PhaseState {
        phase: phase(p.phase),
        started_at: p.started_at,
        finished_at: p.finished_at,
        done: p.done,
        total: p.total,
        eta_seconds: p.eta_seconds,
    }
}

fn pause_report(p: &uplift_upgrade::state::PauseReport) -> api::upgrade::PauseReport {
    use uplift_upgrade::events::PauseOutcome;
    api::upgrade::PauseReport {
        attempts: p
            .attempts
            .iter()
            .map(|a| api::upgrade::PauseAttempt {
                ms: a.ms,
                outcome: match a.outcome {
                    PauseOutcome::Switched => api::upgrade::PauseOutcome::Switched,
                    PauseOutcome::Aborted => api::upgrade::PauseOutcome::Aborted,
                },
                reason: a.reason.clone(),
            })
            .collect(),
        writes_held: p.writes_held,
        max_write_wait_ms: p.max_write_wait_ms,
    }
}

fn step3(
    t: uplift_upgrade::state::Step3State,
    test_database: &str,
    retention: Retention,
    catchup_lag: Option<u64>,
) -> api::upgrade::Step3 {
    let reverting = t.revert.as_ref().is_some_and(|r| r.reverted_at.is_none());
    api::upgrade::Step3 {
        catchup_lag: catchup_lag.filter(|_| !reverting),
        kept: kept(&t, test_database, retention),
        revert: t.revert.as_ref().map(|r| api::upgrade::Revert {
            reason: r.reason.clone(),
            by: r.by.clone(),
            started_at: r.started_at.clone(),
            pause_budget_ms: r.options.pause_budget_ms,
            max_attempts: r.options.max_attempts,
            switched: r.switched,
            lag: catchup_lag.filter(|_| reverting),
            pause: pause_report(&r.pause),
            failure: r.failure.clone(),
            duration_ms: r.duration_ms,
            reverted_at: r.reverted_at.clone(),
        }),
        completed_at: t.completed_at.clone(),
        pause_budget_ms: t.options.pause_budget_ms,
        max_attempts: t.options.max_attempts,
        override_reason: t.options.override_reason,
        from_database: t.from_database,
        new_database: t.new_database,
        by: t.by,
        started_at: t.started_at,
        switched: t.switched,
        pause: pause_report(&t.pause),
        failure: t.failure.map(|f| api::upgrade::Failure {
            phase: phase(f.phase),
            message: f.message,
        }),
        duration_ms: t.duration_ms,
    }
}

/// The databases a completed upgrade keeps, with when each goes.
fn kept(
    t: &uplift_upgrade::state::Step3State,
    test_database: &str,
    retention: Retention,
) -> Vec<api::upgrade::KeptDatabase> {
    let Some(deadlines) = janitor::deadlines(t, retention) else {
        return Vec::new();
    };
    deadlines
        .into_iter()
        .map(|(which, until)| {
            let (kind, database, removed) = match which {
                KeptDatabase::Test => (
                    api::upgrade::KeptKind::Test,
                    test_database,
                    t.test_database_removed,
                ),
                KeptDatabase::OldProduction => (
                    api::upgrade::KeptKind::OldProduction,
                    t.from_database.as_str(),
                    t.old_production_removed,
                ),
                KeptDatabase::UpgradedProduction => (
                    api::upgrade::KeptKind::UpgradedProduction,
                    t.new_database.as_str(),
                    t.upgraded_production_removed,
                ),
            };
            api::upgrade::KeptDatabase {
                kind,
                database: database.to_string(),
                until: format_instant(until),
                removed,
            }
        })
        .collect()
}

fn progress(p: &uplift_upgrade::progress::Progress) -> api::upgrade::Progress {
    api::upgrade::Progress {
        done: p.done,
        total: p.total,
        eta_seconds: p.eta_seconds,
    }
}

fn entity_report(e: &EntityReport) -> api::upgrade::EntityReport {
    let sample = |s: &uplift_upgrade::events::Sample| api::upgrade::Sample {
        id: s.id.clone(),
        reason: s.reason.clone(),
    };
    api::upgrade::EntityReport {
        source: e.source.clone(),
        target: e.target.clone(),
        exported: e.exported,
        imported: e.imported,
        errors: e.errors,
        warnings: e.warnings,
        checksum_match: e.checksum_match,
        error_samples: e.error_samples.iter().map(sample).collect(),
        warning_samples: e.warning_samples.iter().map(sample).collect(),
        summary: e.summary(),
    }
}

impl Services {
    /// An upgrade as the API shows it.
    pub(crate) fn api_view(&self, v: UpgradeView) -> api::upgrade::Upgrade {
        upgrade_view(v, self.upgrades.retention())
    }
}

fn upgrade_view(v: UpgradeView, retention: Retention) -> api::upgrade::Upgrade {
    let s = v.state;
    let test_database = s.test_database.clone();
    api::upgrade::Upgrade {
        id: v.id,
        env: v.env,
        status: status_of(s.status),
        options: api::upgrade::UpgradeOptions {
            plan: s.options.plan,
            language: s.options.language,
            currency: s.options.currency,
            exchange_rates: s.options.exchange_rates,
            apps_from: match s.options.apps_from {
                AppsFrom::Published => api::upgrade::AppsFrom::Published,
                AppsFrom::Draft => api::upgrade::AppsFrom::Draft,
            },
            allow_http: s.options.allow_http,
        },
        test_database: s.test_database,
        actor: s.actor,
        started_at: s.started_at,
        phases: s.phases.into_iter().map(phase_state).collect(),
        entities: s.entities.iter().map(entity_report).collect(),
        failure: s.failure.map(|f| api::upgrade::Failure {
            phase: phase(f.phase),
            message: f.message,
        }),
        step1_duration_ms: s.step1_duration_ms,
        progress: v.progress.as_ref().map(progress),
        live_entities: v
            .live_entities
            .iter()
            .map(|(k, p)| (k.clone(), progress(p)))
            .collect(),
        test_database_stale: s.test_database_stale,
        items: s.items.as_deref().map(crate::items::counts_of),
        gate: s.items.as_deref().map(crate::items::gate_of),
        step3: s
            .step3
            .map(|t| step3(t, &test_database, retention, v.catchup_lag)),
    }
}

fn action(a: uplift_plan::changes::Action) -> api::upgrade::Action {
    use uplift_plan::changes::Action as A;
    match a {
        A::Kept => api::upgrade::Action::Kept,
        A::Renamed => api::upgrade::Action::Renamed,
        A::Retyped => api::upgrade::Action::Retyped,
        A::Flattened => api::upgrade::Action::Flattened,
        A::Dropped => api::upgrade::Action::Dropped,
        A::Added => api::upgrade::Action::Added,
    }
}

fn change_list(c: &ChangeList) -> api::upgrade::ChangeList {
    api::upgrade::ChangeList {
        entities: c
            .entities
            .iter()
            .map(|e| api::upgrade::EntityChange {
                source: e.source.clone(),
                target: e.target.clone(),
                action: action(e.action),
                reason: e.reason.clone(),
                fields: e
                    .fields
                    .iter()
                    .map(|f| api::upgrade::FieldChange {
                        source: f.source.clone(),
                        targets: f.targets.clone(),
                        action: action(f.action),
                        source_type: f.source_type.clone(),
                        target_types: f.target_types.clone(),
                        reason: f.reason.clone(),
                    })
                    .collect(),
            })
            .collect(),
        currencies_found: c.currencies_found.clone(),
        warnings: c
            .warnings
            .iter()
            .map(|w| api::upgrade::SchemaWarning {
                entity: w.entity.clone(),
                field: w.field.clone(),
                message: w.message.clone(),
            })
            .collect(),
    }
}

fn plan_source(s: PlanSource) -> api::upgrade::PlanSource {
    match s {
        PlanSource::Shipped => api::upgrade::PlanSource::Shipped,
        PlanSource::Uploaded => api::upgrade::PlanSource::Uploaded,
        PlanSource::File => api::upgrade::PlanSource::File,
    }
}

fn plan_detail(p: FoundPlan) -> api::upgrade::PlanDetail {
    api::upgrade::PlanDetail {
        from: convert::schema_version(p.plan.from()),
        to: convert::schema_version(p.plan.to()),
        name: p.name,
        source: plan_source(p.source),
        text: p.text,
    }
}

/// Upgrade plans: listed, read and uploaded by admins.
impl Services {
    pub async fn list_plans(&self, actor: &Actor) -> Result<Vec<api::upgrade::PlanSummary>> {
        policy::admin(actor)?;
        Ok(self
            .upgrades
            .plan_names()
            .await?
            .into_iter()
            .map(|(name, source)| api::upgrade::PlanSummary {
                name,
                source: plan_source(source),
            })
            .collect())
    }

    pub async fn show_plan(&self, actor: &Actor, name: &str) -> Result<api::upgrade::PlanDetail> {
        policy::admin(actor)?;
        Ok(plan_detail(self.upgrades.lookup_plan(name).await?))
    }

    /// Validates and stores a plan; true when the name is new.
    pub async fn put_plan(
        &self,
        actor: &Actor,
        name: &str,
        text: &str,
    ) -> Result<(bool, api::upgrade::PlanDetail)> {
        policy::admin(actor)?;
        let (created, plan) = plans::upload(self.store(), name, text, actor.email()).await?;
        let found = FoundPlan {
            name: name.to_string(),
            source: PlanSource::Uploaded,
            text: text.to_string(),
            plan,
        };
        Ok((created, plan_detail(found)))
    }
}

/// Access to the test database: the upgraded roles, and what admins grant for testing.
impl Services {
    /// The upgrade whose test database is served: step 1 done, step 2 under way.
    pub(crate) async fn serving_upgrade(&self, env: &str) -> Result<(String, UpgradeState)> {
        self.upgrades
            .latest(env)
            .await?
            .filter(|(_, s)| s.status == Status::Step2Verifying)
            .ok_or_else(|| ServiceError::NotFound(Missing::TestDatabase { env: env.into() }))
    }

    async fn test_access_of(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
        user: &str,
    ) -> Result<api::upgrade::TestAccess> {
        let security = self.security.test_security(env, id, state).await?;
        let user = user.to_lowercase();
        Ok(api::upgrade::TestAccess {
            from_roles: security.by_user.get(&user).cloned().unwrap_or_default(),
            granted: state.test_grants.get(&user).cloned().unwrap_or_default(),
            user,
        })
    }

    /// Grants (or, with no privileges, withdraws) test access beyond the upgraded
    /// roles (admins), checked against the test database's catalog.
    pub async fn grant_test_access(
        &self,
        actor: &Actor,
        env: &str,
        user: &str,
        req: api::upgrade::TestAccessGrant,
    ) -> Result<api::upgrade::TestAccess> {
        policy::admin(actor)?;
        let (_, state) = self.serving_upgrade(env).await?;
        if self.store.control().get_user(user).await?.is_none() {
            return Err(ServiceError::Invalid(format!("there is no user '{user}'")));
        }
        let catalog = self
            .store
            .database(env, &state.test_database)
            .await?
            .catalog();
        if let Some(entity) = req.privileges.keys().find(|e| catalog.entity(e).is_none()) {
            return Err(ServiceError::Invalid(format!(
                "there is no entity '{entity}' in the test database of '{env}'"
            )));
        }
        check_privileges(catalog.version, &req.privileges).map_err(ServiceError::Invalid)?;
        let state = self
            .upgrades
            .grant_test_access(env, user, req.privileges, actor.email())
            .await?;
        let (id, _) = self.serving_upgrade(env).await?;
        self.test_access_of(env, &id, &state, user).await
    }

    /// Every user with an upgraded role or a grant in the test database (admins).
    pub async fn test_access(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<Vec<api::upgrade::TestAccess>> {
        policy::admin(actor)?;
        let (id, state) = self.serving_upgrade(env).await?;
        let security = self.security.test_security(env, &id, &state).await?;
        let mut users: Vec<&String> = security
            .by_user
            .keys()
            .chain(state.test_grants.keys())
            .collect();
        users.sort();
        users.dedup();
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(self.test_access_of(env, &id, &state, u).await?);
        }
        Ok(out)
    }
}
