//! Step 3 online: production keeps serving while a new production database is built
//! from it on the new schema; changes made meanwhile are captured (triggers) and
//! applied by id; then writes are held at the environment's gate for a bounded pause
//! in which the last changes are applied, the counts compared and the environment
//! switched, apps and flows published, in one control-plane transaction. A pause that
//! would pass its budget is aborted (writes go on against the old database) and tried
//! again. Before the switch every failure, and a restart, rolls back: capture removed,
//! new database dropped, the upgrade back in step 2. After it, a restart rolls forward.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use uplift_model::flow::{FlowDef, FlowState};
use uplift_model::transform::EvalContext;
use uplift_plan::{SourceSecurity, map_security};
use uplift_store::capture;
use uplift_store::control::{FlowChange, PauseRecord, RunChange, Switch};
use uplift_store::copy::catchup::CatchUp;
use uplift_store::copy::revert::Revert;
use uplift_store::copy::{self, CopyLimits, CopyObserver};
use uplift_store::ddl::Keys;
use uplift_store::{EnvDb, Store};

use super::{Running, UpgradeError, UpgradeView, Upgrades, now, now_ms};
use crate::events::{CompleteOptions, Event, PauseOutcome, Phase};
use crate::items::ItemKind;
use crate::state::UpgradeState;

/// Captured changes applied per catch-up statement batch.
const CATCHUP_BATCH: u32 = 2_000;
/// The pause is tried once fewer changes than this wait: what is left to apply inside
/// it is small, whatever the database's size.
const CATCHUP_LAG_BOUND: usize = 200;
/// Rounds of catch-up before a pause is tried even if writes keep the lag above the
/// bound.
const CATCHUP_MAX_ROUNDS: u32 = 1_000;
/// What a held write's wait is measured after the gate opens.
const HELD_SETTLE_MS: u64 = 20;
/// The name upgraded flow clones carry during step 2.
const UPGRADED_PREFIX: &str = "[Upgraded] ";
/// The name an original flow is archived under.
const ARCHIVED_PREFIX: &str = "[Archived] ";

/// One preflight check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// An admin may start step 3 with this check failing, giving a reason (the gate).
    pub overridable: bool,
}

/// A point where step 3 waits, for a test that kills the server there
/// (`UPLIFT_TEST_STEP3_STALL`): at the start of a phase, inside the pause with writes
/// held just before the switch, or just after the switch is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    Phase(Phase),
    BeforeSwitch,
    AfterSwitch,
}

impl std::str::FromStr for Stall {
    type Err = String;

    /// A phase's name (`build`, `catch_up`, …), `before_switch` or `after_switch`.
    fn from_str(s: &str) -> Result<Stall, String> {
        match s {
            "before_switch" => Ok(Stall::BeforeSwitch),
            "after_switch" => Ok(Stall::AfterSwitch),
            _ => serde_json::from_value(serde_json::Value::String(s.to_string()))
                .map(Stall::Phase)
                .map_err(|_| format!("'{s}' is not a phase, before_switch or after_switch")),
        }
    }
}

/// How long a stall lasts: longer than any test waits before killing the server.
const STALL_S: u64 = 600;

/// How step 3 ended a pause.
enum Paused {
    Switched,
    Aborted(String),
}

/// Called once the switch is committed, before held writes go on: the services clear
/// what they cache about the environment and refresh the flow runtime.
pub type OnSwitch = Arc<dyn Fn(&str) + Send + Sync>;

/// A record of the retired side (entity, record) as one of the new side, if it crosses
/// (the flow runtime's `Translate`).
pub type Translate = Arc<
    dyn Fn(
            &str,
            &serde_json::Map<String, serde_json::Value>,
        ) -> Option<(String, serde_json::Map<String, serde_json::Value>)>
        + Send
        + Sync,
>;

/// A flow the switch replaces: (its id, its successor's id, the successor's definition).
pub type Successor = (String, String, FlowDef);

/// Called inside the pause, with writes held, just before the switch: the services
/// hand the outbox over — entries still on the retired database become runs of the
/// flows that were on, and the runs still queued for a replaced flow go to its
/// successor (returned, for the switch to apply in its transaction).
pub type BeforeSwitch = Arc<
    dyn Fn(
            String,
            Vec<Successor>,
            Translate,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<RunChange>, String>> + Send>,
        > + Send
        + Sync,
>;

impl Upgrades {
    /// Makes step 3 wait at `at` (tests that kill the server there).
    pub fn set_stall(&self, at: Option<Stall>) {
        if let Ok(mut s) = self.stall.lock() {
            *s = at;
        }
    }

    pub(super) async fn stall(&self, at: Stall) {
        if self.stall.lock().is_ok_and(|s| *s == Some(at)) {
            tracing::warn!(?at, "step 3 held for a test");
            tokio::time::sleep(Duration::from_secs(STALL_S)).await;
        }
    }

    /// Sets what runs just before a switch (see [`BeforeSwitch`]).
    pub fn set_before_switch(&self, hook: BeforeSwitch) {
        let _ = self.before_switch.set(hook);
    }

    /// Sets what runs right after a switch (see [`OnSwitch`]).
    pub fn set_on_switch(&self, hook: OnSwitch) {
        let _ = self.on_switch.set(hook);
    }

    /// Step 3's checks that the runner can make itself: the test database is current,
    /// space for a second copy of production, no long transaction on production. The
    /// services add step 2's gate and the flow runtime's health.
    pub async fn preflight_checks(&self, env: &str) -> Result<Vec<Check>, UpgradeError> {
        let (_, state) = self.step2(env).await?;
        let mut checks = vec![Check {
            name: "test_database_current",
            ok: !state.test_database_stale,
            detail: match state.test_database_stale {
                true => "production's schema changed after the test database was built: refresh it first".into(),
                false => "the test database was built from production's current schema".into(),
            },
            overridable: false,
        }];
        let space = self.store.space_for_copy(env).await?;
        checks.push(Check {
            name: "disk_space",
            ok: space
                .available_bytes
                .is_none_or(|a| a >= space.needed_bytes),
            detail: match space.available_bytes {
                Some(a) => format!(
                    "a second copy of production needs about {} bytes; {a} are free",
                    space.needed_bytes
                ),
                None => format!(
                    "a second copy of production needs about {} bytes in the server's tablespace",
                    space.needed_bytes
                ),
            },
            overridable: false,
        });
        let oldest = self.store.oldest_transaction_s(env).await?;
        checks.push(Check {
            name: "no_long_transaction",
            ok: oldest.is_none_or(|s| s < LONG_TRANSACTION_S),
            detail: match oldest {
                Some(s) => format!("the oldest open transaction on production is {s} s old (bound {LONG_TRANSACTION_S} s)"),
                None => "no transaction is open on production".into(),
            },
            overridable: false,
        });
        Ok(checks)
    }

    /// Starts step 3 in the background once `checks` pass (a failing overridable one
    /// needs `options.override_reason`).
    pub async fn complete(
        self: &Arc<Self>,
        env: &str,
        options: CompleteOptions,
        checks: &[Check],
        by: &str,
    ) -> Result<UpgradeView, UpgradeError> {
        let (id, state) = self.step2(env).await?;
        if options.pause_budget_ms == 0 || options.max_attempts == 0 {
            return Err(UpgradeError::Invalid(
                "pause_budget_ms and max_attempts must be at least 1".into(),
            ));
        }
        let failing: Vec<String> = checks
            .iter()
            .filter(|c| !c.ok && (!c.overridable || options.override_reason.is_none()))
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        if !failing.is_empty() {
            return Err(UpgradeError::Conflict(format!(
                "step 3 cannot start: {}",
                failing.join("; ")
            )));
        }
        let new_database = state.test_database.replacen("test", "prod", 1);
        let from_database = self
            .store
            .control()
            .get_env(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("no environment '{env}'")))?
            .database;
        self.log(
            &id,
            &Event::Step3Started {
                at: now(),
                options,
                from_database,
                new_database,
                by: by.to_string(),
            },
        )
        .await?;
        self.spawn_step3(env, &id);
        self.view(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))
    }

    pub(super) fn spawn_step3(self: &Arc<Self>, env: &str, id: &str) {
        let run = self.track(env);
        let (me, env, id) = (self.clone(), env.to_string(), id.to_string());
        tokio::spawn(async move {
            if let Err(e) = me.step3(&env, &id, &run).await {
                let phase = run
                    .live
                    .lock()
                    .ok()
                    .and_then(|l| l.phase)
                    .unwrap_or(Phase::Preflight);
                tracing::error!(env, error = %e, ?phase, "step 3 failed");
                if let Err(e) = me.end_step3(&env, &id, phase, &e.for_the_log()).await {
                    tracing::error!(env, error = %e, "step 3 did not roll back or forward");
                }
            }
            me.untrack(&env, &run);
        });
    }

    /// After a failure or a restart: before the switch, roll back and log the failure;
    /// after it, finish.
    pub(super) async fn end_step3(
        &self,
        env: &str,
        id: &str,
        phase: Phase,
        message: &str,
    ) -> Result<(), UpgradeError> {
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))?;
        let Some(t) = state.step3.clone() else {
            return Ok(());
        };
        let record = self.store.control().get_env(env).await?;
        let switched = record.is_some_and(|r| r.database == t.new_database);
        if switched {
            return self.finish_step3(env, id, &state, None).await;
        }
        self.store.control().end_pause(env).await?;
        let prod = self.store.env_db(env).await?;
        capture::remove(&prod).await?;
        self.store.remove_database(env, &t.new_database).await?;
        self.log(
            id,
            &Event::Step3Failed {
                at: now(),
                phase,
                message: message.to_string(),
            },
        )
        .await
    }

    /// Logs the switch (if a restart found it committed but not logged) and the end.
    async fn finish_step3(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
        started: Option<Instant>,
    ) -> Result<(), UpgradeError> {
        let Some(t) = &state.step3 else {
            return Ok(());
        };
        if !t.switched {
            let renames = self.renames_of(env, state).await.unwrap_or_default();
            self.log(
                id,
                &Event::Switched {
                    at: now(),
                    database: t.new_database.clone(),
                    renames,
                },
            )
            .await?;
        }
        if let Some(old) = self.old_production(env, state).await
            && let Err(e) = capture::remove(&old).await
        {
            tracing::warn!(env, error = %e, "capture stays on the old production");
        }
        let duration_ms = started.map_or(0, |s| s.elapsed().as_millis() as u64);
        self.log(
            id,
            &Event::Completed {
                at: now(),
                duration_ms,
            },
        )
        .await?;
        // The worker that sends notices mails the admins and makers now.
        self.step2_work.notify_one();
        Ok(())
    }

    /// The database production was on before step 3 switched it.
    async fn old_production(&self, env: &str, state: &UpgradeState) -> Option<Arc<EnvDb>> {
        let old = &state.step3.as_ref()?.from_database;
        self.store.database(env, old).await.ok()
    }

    async fn step3(&self, env: &str, id: &str, run: &Arc<Running>) -> Result<(), UpgradeError> {
        let started = Instant::now();
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("no upgrade".into()))?;
        let t = state
            .step3
            .clone()
            .ok_or_else(|| UpgradeError::Log("step 3 was not started".into()))?;
        self.phase(id, run, Phase::Preflight, 1, async { Ok(()) })
            .await?;
        let prod = self.store.env_db(env).await?;
        self.phase(id, run, Phase::Capture, 1, async {
            Ok(capture::install(&prod).await?)
        })
        .await?;
        let upgrade = self.planned(&state, &prod.catalog()).await?;
        let new = self
            .store
            .create_database_with(
                env,
                &t.new_database,
                upgrade.target.clone(),
                Keys::AfterLoad,
            )
            .await?;
        let transforms = super::transforms_of(&prod, &upgrade);
        let ctx = EvalContext {
            upgrade_time: now_ms(),
            actor: state.actor.clone(),
        };
        let counts = copy::estimated_rows(&prod, &transforms).await?;
        for ((t, _), n) in transforms.iter().zip(&counts) {
            run.progress(&t.source_entity, 0, *n);
        }
        if let Ok(mut l) = run.live.lock() {
            l.copy_started = Some(Instant::now());
        }
        let observer: Arc<dyn CopyObserver> = run.clone();
        self.phase(id, run, Phase::Build, counts.iter().sum(), async {
            let limits = CopyLimits {
                chunk_rows: self.chunk_rows.load(Ordering::Relaxed),
                chunk_pause_ms: self.chunk_pause_ms.load(Ordering::Relaxed),
            };
            let copies = copy::copy(&prod, &new, &transforms, &ctx, limits, observer).await?;
            match copies.iter().find(|c| !c.matches()) {
                Some(c) => Err(UpgradeError::Invalid(format!(
                    "the new production's check found '{}' differing from production",
                    c.source_entity
                ))),
                None => Ok(()),
            }
        })
        .await?;
        let catchup = CatchUp::new(&prod, &new, &transforms, &ctx)?;
        let carry = Carry::CatchUp(&catchup);
        let lag = capture::lag(&prod).await?;
        run.lag(lag, 0);
        self.phase(id, run, Phase::CatchUp, lag, catch_up(&prod, &carry, run))
            .await?;
        // From the switch on, the new production records its changes for a revert: in
        // before the pause, so the pause only forgets what the catch-up wrote.
        capture::install(&new).await?;
        let (switch, successors) = self.publication(env, &state, &upgrade).await?;
        let renamed = renames(&prod.catalog(), &upgrade);
        let translator = uplift_plan::Translator::forward(&upgrade, &prod.catalog());
        let job = PauseJob {
            source: &prod,
            carry,
            switch: &switch,
            renames: renamed,
            fresh_capture: Some(&new),
            successors,
            translate: Arc::new(move |e, r| translator.record(e, r)),
        };
        let pause = self.phase(id, run, Phase::Pause, 1, async {
            self.pauses(id, &t.options, &job, run).await
        });
        pause.await?;
        self.phase(id, run, Phase::Publish, 1, async { Ok(()) })
            .await?;
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))?;
        self.finish_step3(env, id, &state, Some(started)).await
    }

    /// Tries the pause up to `max_attempts` times, catching up between attempts.
    pub(super) async fn pauses(
        &self,
        id: &str,
        options: &CompleteOptions,
        job: &PauseJob<'_>,
        run: &Running,
    ) -> Result<(), UpgradeError> {
        let env = job.switch.env.as_str();
        let budget = Duration::from_millis(options.pause_budget_ms);
        let mut last = String::new();
        for attempt in 1..=options.max_attempts {
            let record = PauseRecord {
                env: env.to_string(),
                upgrade: id.to_string(),
                attempt: i64::from(attempt),
                started_at: now(),
            };
            self.store.control().begin_pause(&record).await?;
            let gate = self.store.gate(env);
            let t0 = Instant::now();
            let outcome = self.pause_once(id, &gate, budget, job).await;
            let ms = t0.elapsed().as_millis() as u64;
            self.store.control().end_pause(env).await?;
            tokio::time::sleep(Duration::from_millis(HELD_SETTLE_MS)).await;
            let held = gate.held();
            let outcome = outcome?;
            let (result, reason) = match &outcome {
                Paused::Switched => (PauseOutcome::Switched, None),
                Paused::Aborted(r) => (PauseOutcome::Aborted, Some(r.clone())),
            };
            self.log(
                id,
                &Event::PauseAttempted {
                    at: now(),
                    attempt,
                    ms,
                    outcome: result,
                    writes_held: held.writes,
                    max_write_wait_ms: held.max_wait_ms,
                    reason,
                },
            )
            .await?;
            match outcome {
                Paused::Switched => return Ok(()),
                Paused::Aborted(r) => last = r,
            }
            catch_up(job.source, &job.carry, run).await?;
        }
        Err(UpgradeError::Conflict(format!(
            "every write pause passed its budget of {} ms ({} attempts; last: {last}); production is as it was",
            options.pause_budget_ms, options.max_attempts
        )))
    }

    /// One pause: hold writes, drain, apply the rest, compare, switch — or abort when
    /// the budget runs out first. Errors other than the budget fail the step.
    async fn pause_once(
        &self,
        id: &str,
        gate: &uplift_store::gate::WriteGate,
        budget: Duration,
        job: &PauseJob<'_>,
    ) -> Result<Paused, UpgradeError> {
        let t0 = Instant::now();
        let Some(closed) = gate.close(budget).await else {
            return Ok(Paused::Aborted(
                "writes under way did not finish within the budget".into(),
            ));
        };
        let over = || t0.elapsed() >= budget;
        // Only the last changes are applied and checked here, so the pause does not
        // grow with the database: the build checked every row, and each change since
        // is applied by id.
        let mut last = Vec::new();
        loop {
            let batch = capture::oldest(job.source, CATCHUP_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            if over() {
                return Ok(Paused::Aborted(
                    "the last changes took longer than the budget".into(),
                ));
            }
            job.carry.apply(&batch).await?;
            let seqs: Vec<i64> = batch.iter().map(|c| c.seq).collect();
            capture::consume(job.source, &seqs).await?;
            last.extend(batch);
        }
        for (entity, target, kept) in job.carry.counts_of(&last).await? {
            if target != kept {
                return Err(UpgradeError::Invalid(format!(
                    "of the '{entity}' records changed last, the database switched to holds {target} where production keeps {kept}"
                )));
            }
        }
        let delay_ms = self.pause_delay_ms.load(Ordering::Relaxed);
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        if over() {
            return Ok(Paused::Aborted(
                "applying the last changes and comparing the counts took longer than the budget"
                    .into(),
            ));
        }
        let outcome = self.switch_within(id, job, over).await;
        drop(closed);
        outcome
    }

    /// The end of a pause, writes held: the outbox handed over, the switch committed,
    /// served and logged. What the services cache (roles, the environment's record) is
    /// forgotten once the control plane has the new ones and again once the new
    /// database is served, so no request meets the new database with the old roles.
    async fn switch_within(
        &self,
        id: &str,
        job: &PauseJob<'_>,
        over: impl Fn() -> bool,
    ) -> Result<Paused, UpgradeError> {
        let mut switch = job.switch.clone();
        let env = switch.env.clone();
        let forget = || {
            if let Some(hook) = self.on_switch.get() {
                hook(&env);
            }
        };
        if let Some(hook) = self.before_switch.get() {
            let request = (env.clone(), job.successors.clone(), job.translate.clone());
            switch.runs = hook(request.0, request.1, request.2).await.map_err(|e| {
                UpgradeError::Conflict(format!("the outbox was not handed over: {e}"))
            })?;
        }
        if over() {
            return Ok(Paused::Aborted(
                "handing the outbox over took longer than the budget".into(),
            ));
        }
        if let Some(fresh) = job.fresh_capture {
            capture::clear(fresh).await?;
        }
        self.stall(Stall::BeforeSwitch).await;
        self.store.commit_switch(&switch).await?;
        forget();
        self.store
            .serve_switched(&switch, job.renames.clone())
            .await?;
        self.stall(Stall::AfterSwitch).await;
        let event = match job.carry {
            Carry::CatchUp(_) => Event::Switched {
                at: now(),
                database: switch.to_database.clone(),
                renames: job.renames.clone(),
            },
            Carry::Back(_) => Event::RevertSwitched {
                at: now(),
                database: switch.to_database.clone(),
                renames: job.renames.clone(),
            },
        };
        let logged = self.log(id, &event).await;
        forget();
        logged.map(|()| Paused::Switched)
    }

    /// What the switch publishes: every app's upgrade copy as its next version, every
    /// upgraded flow promoted and its original archived (the original's successor), a
    /// flow an admin excluded turned off (it would act on the retired database), the
    /// upgraded roles.
    async fn publication(
        &self,
        env: &str,
        state: &UpgradeState,
        upgrade: &uplift_plan::Upgrade,
    ) -> Result<(Switch, Vec<Successor>), UpgradeError> {
        let t = state
            .step3
            .as_ref()
            .ok_or_else(|| UpgradeError::Log("step 3 was not started".into()))?;
        let control = self.store.control();
        let record = control
            .get_env(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("no environment '{env}'")))?;
        let mut apps = Vec::new();
        let (mut flows, mut successors) = (Vec::new(), Vec::new());
        for i in state.items.iter().flatten() {
            match (i.item.kind, &i.excluded) {
                (ItemKind::App, None) => {
                    apps.push((i.item.source_id.clone(), i.item.copy.to_string()))
                }
                (ItemKind::App, Some(_)) => {}
                (ItemKind::Flow, excluded) => {
                    let Some(original) = control.flow(env, &i.item.source_id).await? else {
                        continue;
                    };
                    if excluded.is_some() {
                        let mut off = original.definition.clone();
                        off.state = FlowState::Off;
                        flows.push(flow_change(&off, &original.id, &original.database)?);
                        continue;
                    }
                    let Some(clone) = control.flow(env, &i.item.copy_id).await? else {
                        continue;
                    };
                    let promoted = promoted(clone.definition, &original.definition);
                    flows.push(flow_change(&promoted, &clone.id, &t.new_database)?);
                    successors.push((original.id.clone(), clone.id.clone(), promoted));
                    flows.push(archived(
                        original.definition,
                        &original.id,
                        &original.database,
                    )?);
                }
            }
        }
        let security = map_security(
            &self.plan_of(state).await?,
            &source_security(&self.store, env, record.security_mode).await?,
            upgrade,
        );
        let switch = Switch {
            env: env.to_string(),
            from_database: record.database,
            to_database: t.new_database.clone(),
            schema_version: upgrade.target.version,
            security_mode: security.mode,
            apps,
            flows,
            roles: security.roles.into_iter().collect(),
            runs: Vec::new(),
            by: t.by.clone(),
        };
        Ok((switch, successors))
    }
}

impl Upgrades {
    /// The old names of a switched upgrade, planned again from the old production (for
    /// a restart that finds the switch committed but not logged).
    async fn renames_of(
        &self,
        env: &str,
        state: &UpgradeState,
    ) -> Result<BTreeMap<String, String>, UpgradeError> {
        let old = self
            .old_production(env, state)
            .await
            .ok_or_else(|| UpgradeError::NotFound("the old production is gone".into()))?;
        let upgrade = self.planned(state, &old.catalog()).await?;
        Ok(renames(&old.catalog(), &upgrade))
    }
}

/// A long transaction holds back what step 3's copy can see and its capture table.
const LONG_TRANSACTION_S: u64 = 300;

/// What a pause applies before its switch: step 3's catch-up into the new production,
/// or a revert's carry-back into the old one.
pub(super) enum Carry<'a> {
    CatchUp(&'a CatchUp),
    Back(&'a Revert),
}

impl Carry<'_> {
    async fn apply(&self, batch: &[uplift_store::capture::Change]) -> Result<(), UpgradeError> {
        match self {
            Carry::CatchUp(c) => c.apply(batch).await.map(|_| ()),
            Carry::Back(r) => r.apply(batch).await.map(|_| ()),
        }?;
        Ok(())
    }

    /// Per entity of `batch`: the records the database switched to holds, and those
    /// production keeps.
    async fn counts_of(
        &self,
        batch: &[uplift_store::capture::Change],
    ) -> Result<Vec<(String, u64, u64)>, UpgradeError> {
        Ok(match self {
            Carry::CatchUp(c) => c.counts_of(batch).await?,
            Carry::Back(r) => r.counts_of(batch).await?,
        })
    }
}

/// One switch's pause: where the changes are captured, how they are carried, what the
/// switch does.
pub(super) struct PauseJob<'a> {
    /// Production, whose capture records the writes to carry.
    pub source: &'a EnvDb,
    pub carry: Carry<'a>,
    pub switch: &'a Switch,
    pub renames: BTreeMap<String, String>,
    /// A capture installed before the pause on the database switched to, whose
    /// changes so far (the catch-up's) are forgotten just before the switch.
    pub fresh_capture: Option<&'a EnvDb>,
    /// The flows the switch replaces, for the outbox's hand-over.
    pub successors: Vec<Successor>,
    /// Records of the retired side in the new schema, for the runs handed over.
    pub translate: Translate,
}

/// Applies captured changes until fewer than [`CATCHUP_LAG_BOUND`] wait, reporting the
/// lag after each batch.
pub(super) async fn catch_up(
    source: &EnvDb,
    carry: &Carry<'_>,
    run: &Running,
) -> Result<(), UpgradeError> {
    let mut applied = 0;
    for _ in 0..CATCHUP_MAX_ROUNDS {
        let batch = capture::oldest(source, CATCHUP_BATCH).await?;
        if batch.is_empty() {
            run.lag(0, applied);
            return Ok(());
        }
        carry.apply(&batch).await?;
        let seqs: Vec<i64> = batch.iter().map(|c| c.seq).collect();
        capture::consume(source, &seqs).await?;
        applied += batch.len() as u64;
        run.lag(capture::lag(source).await?, applied);
        if batch.len() < CATCHUP_LAG_BOUND {
            return Ok(());
        }
    }
    Ok(())
}

pub(super) fn flow_change(
    def: &FlowDef,
    id: &str,
    database: &str,
) -> Result<FlowChange, UpgradeError> {
    Ok(FlowChange {
        id: id.to_string(),
        name: def.name.clone(),
        owner: def.owner.clone(),
        editors: serde_json::to_string(&def.editors)
            .map_err(|e| UpgradeError::Log(e.to_string()))?,
        state: match def.state {
            FlowState::On => "on",
            FlowState::Off => "off",
        },
        definition: serde_json::to_string(def).map_err(|e| UpgradeError::Log(e.to_string()))?,
        database: database.to_string(),
    })
}

/// The upgraded clone as the flow it becomes: its name without the prefix, on if the
/// original was (bound to the new production by the switch).
fn promoted(mut clone: FlowDef, original: &FlowDef) -> FlowDef {
    clone.name = clone
        .name
        .strip_prefix(UPGRADED_PREFIX)
        .unwrap_or(&clone.name)
        .to_string();
    clone.state = original.state;
    clone
}

/// The original, off and renamed, bound to the database it ran on, its runs kept.
fn archived(mut original: FlowDef, id: &str, database: &str) -> Result<FlowChange, UpgradeError> {
    original.name = format!("{ARCHIVED_PREFIX}{}", original.name);
    original.state = FlowState::Off;
    flow_change(&original, id, database)
}

/// Production's roles, members and users, as the security mapping reads them.
pub async fn source_security(
    store: &Store,
    env: &str,
    mode: uplift_model::security::SecurityMode,
) -> Result<SourceSecurity, UpgradeError> {
    let control = store.control();
    let roles = control
        .list_roles(env)
        .await?
        .into_iter()
        .map(|r| (r.name, r.privileges))
        .collect();
    let members = control
        .list_members(env)
        .await?
        .into_iter()
        .map(|m| (m.role, m.user))
        .collect();
    let users = control
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.email, u.status))
        .collect();
    Ok(SourceSecurity {
        mode,
        roles,
        members,
        users,
    })
}

/// Each entity the plan carries, as (its set before, its set after, each source field
/// with the fields it became).
fn renamed_entities<'a>(
    source: &'a uplift_model::Catalog,
    upgrade: &'a uplift_plan::Upgrade,
) -> impl Iterator<Item = (&'a str, &'a str, Vec<(&'a str, &'a [String])>)> {
    upgrade.changes.entities.iter().filter_map(|c| {
        let se = source.entity(c.source.as_deref()?)?;
        let te = upgrade.target.entity(c.target.as_deref()?)?;
        let fields = c
            .fields
            .iter()
            .filter_map(|f| Some((f.source.as_deref()?, f.targets.as_slice())))
            .filter(|(s, t)| !t.is_empty() && !t.iter().any(|t| t == s))
            .collect();
        Some((se.set_name.as_str(), te.set_name.as_str(), fields))
    })
}

/// Old names the plan changed, for the errors a request using one gets after the switch:
/// entity sets (`positionworkerassignments` → the new set) and properties
/// (`accounts/Address` → its new fields).
pub fn renames(
    source: &uplift_model::Catalog,
    upgrade: &uplift_plan::Upgrade,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (before, after, fields) in renamed_entities(source, upgrade) {
        if before != after {
            out.insert(before.to_string(), after.to_string());
        }
        for (field, targets) in fields {
            out.insert(format!("{after}/{field}"), targets.join(", "));
        }
    }
    out
}

/// The upgraded names a revert takes back, with the old ones, for the errors a request
/// using one gets after it: the inverse of [`renames`].
pub fn reverted_names(
    source: &uplift_model::Catalog,
    upgrade: &uplift_plan::Upgrade,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (before, after, fields) in renamed_entities(source, upgrade) {
        if before != after {
            out.insert(after.to_string(), before.to_string());
        }
        for (field, targets) in fields {
            for t in targets {
                out.insert(format!("{before}/{t}"), field.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use uplift_model::SchemaVersion;
    use uplift_model::standard::initial_catalog;
    use uplift_plan::apply;

    fn classic_to_modern() -> BTreeMap<String, String> {
        let plan =
            uplift_plan::parse_plan(uplift_plan::builtin("classic-to-modern").unwrap()).unwrap();
        let source = initial_catalog(SchemaVersion::Classic);
        let options = uplift_plan::Options {
            language: "en".into(),
            currency: "USD".into(),
            exchange_rates: Default::default(),
        };
        let upgrade = apply(&plan, &source, &options).unwrap();
        renames(&source, &upgrade)
    }

    #[test]
    fn a_revert_maps_the_new_names_back() {
        let plan =
            uplift_plan::parse_plan(uplift_plan::builtin("classic-to-modern").unwrap()).unwrap();
        let source = initial_catalog(SchemaVersion::Classic);
        let options = uplift_plan::Options {
            language: "en".into(),
            currency: "USD".into(),
            exchange_rates: Default::default(),
        };
        let r = reverted_names(&source, &apply(&plan, &source, &options).unwrap());
        for (new, old) in [
            ("accounts/name", "Name"),
            ("accounts/address_city", "Address"),
            (
                "cdm_positionworkerassignmentmaps",
                "positionworkerassignments",
            ),
        ] {
            assert_eq!(r.get(new).map(String::as_str), Some(old), "{new}: {r:#?}");
        }
    }

    #[test]
    fn old_names_map_to_the_new_ones() {
        let r = classic_to_modern();
        for (old, new) in [
            ("accounts/Name", "name"),
            (
                "positionworkerassignments",
                "cdm_positionworkerassignmentmaps",
            ),
        ] {
            assert_eq!(r.get(old).map(String::as_str), Some(new), "{old}: {r:#?}");
        }
    }
}
