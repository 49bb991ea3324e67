//! The flow runtime. A loop wakes on every watched write (and on a timer, which also
//! picks up work left by a stopped server), turns outbox entries into runs (one per
//! matching flow, keyed by the entry so a repeat after a crash makes none), and runs
//! queued runs on a bounded pool. A run resumes after a restart from the first step
//! that had not succeeded.

mod dispatch;
mod exec;
pub mod handover;
pub mod mail;
pub mod rights;
pub mod schedule;
pub mod template;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use uplift_store::Store;
use uplift_store::control::{FlowRecord, RunRecord};

pub use exec::MAX_ATTEMPTS;
pub use handover::{Successor, Translate};

/// Runs executing at once; more wait their turn.
pub const MAX_CONCURRENT_RUNS: usize = 8;
/// How deep flows may trigger flows: a run whose trigger was written this many runs
/// deep is recorded as stopped instead of run.
pub const MAX_DEPTH: u32 = 8;
/// How often the loop looks for work when nothing wakes it.
pub const POLL_MS: u64 = 500;
/// How long [`Runtime::dry_run`] waits for a run the loop took, in `POLL_MS / 5` rounds.
const DRY_RUN_WAIT_ROUNDS: u32 = 600;
/// Outbox entries taken per environment per round.
const OUTBOX_BATCH: u32 = 200;
/// Unfinished runs looked at per round.
const RUN_BATCH: u32 = 64;
/// A loop whose last round ended longer ago than this is reported stalled.
const STALLED_AFTER_MS: u64 = 30_000;

/// Whether the loop runs, for step 3's preflight: the switch hands the outbox over
/// from the original flows to the promoted ones, which only a running loop drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// [`Runtime::start`] was not called.
    NotStarted,
    Running,
    /// The last round failed.
    Failing(String),
    /// No round ended for this long.
    Stalled {
        ms: u64,
    },
}

/// What the loop last did.
#[derive(Debug, Default)]
struct LastRound {
    ended: Option<std::time::Instant>,
    error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Store(#[from] uplift_store::StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// The runtime of one server.
pub struct Runtime {
    store: Arc<Store>,
    /// Notified on every watched write (by the databases) and on new work.
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    /// Runs being executed by this process.
    in_flight: Mutex<HashSet<String>>,
    http: reqwest::Client,
    mailer: std::sync::RwLock<Option<Arc<mail::Mailer>>>,
    test_roles: std::sync::RwLock<Option<Arc<dyn rights::TestRoles>>>,
    last_round: Mutex<LastRound>,
    /// Tests hold the loop's outbox dispatch (see [`Runtime::set_dispatch_paused`]).
    dispatch_paused: std::sync::atomic::AtomicBool,
}

impl Runtime {
    pub fn new(store: Arc<Store>) -> Arc<Runtime> {
        Arc::new(Runtime {
            store,
            wake: Arc::new(Notify::new()),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_RUNS)),
            in_flight: Mutex::new(HashSet::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(exec::HTTP_TIMEOUT_SECS))
                .build()
                .unwrap_or_default(),
            mailer: std::sync::RwLock::new(None),
            test_roles: std::sync::RwLock::new(None),
            last_round: Mutex::new(LastRound::default()),
            dispatch_paused: false.into(),
        })
    }

    /// Keeps the loop from turning outbox entries into runs (tests that need an entry
    /// still in the outbox at a given moment); [`Runtime::drain`] still does.
    pub fn set_dispatch_paused(&self, paused: bool) {
        self.dispatch_paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    /// Turns every outbox entry of `env`'s databases into runs of the flows as they
    /// are now. Step 3 calls it inside its pause, with writes held, just before the
    /// switch: what was committed on the old production runs with the original flows,
    /// which the switch then archives; nothing is left for them afterwards.
    pub async fn drain(&self, env: &str) -> Result<(), FlowError> {
        let control = self.store.control();
        let record = control
            .get_env(env)
            .await?
            .ok_or_else(|| FlowError::Invalid(format!("no environment '{env}'")))?;
        let flows = control.flows(env).await?;
        while dispatch::dispatch(self, &record, &flows).await? {}
        Ok(())
    }

    /// Whether the loop is running and its rounds succeed.
    pub fn health(&self) -> Health {
        let Ok(last) = self.last_round.lock() else {
            return Health::Failing("the runtime's state is poisoned".into());
        };
        match (&last.ended, &last.error) {
            (None, _) => Health::NotStarted,
            (Some(_), Some(e)) => Health::Failing(e.clone()),
            (Some(t), None) => {
                let ms = t.elapsed().as_millis() as u64;
                match ms > STALLED_AFTER_MS {
                    true => Health::Stalled { ms },
                    false => Health::Running,
                }
            }
        }
    }

    fn round_ended(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_round.lock() {
            *last = LastRound {
                ended: Some(std::time::Instant::now()),
                error,
            };
        }
    }

    /// Sets how `send_email` steps send.
    pub fn set_mailer(&self, mailer: mail::Mailer) {
        if let Ok(mut m) = self.mailer.write() {
            *m = Some(Arc::new(mailer));
        }
    }

    /// Where runs on a test database get their owner's rights (see
    /// [`rights::TestRoles`]); until it is set they have none there.
    pub fn set_test_roles(&self, roles: Arc<dyn rights::TestRoles>) {
        if let Ok(mut r) = self.test_roles.write() {
            *r = Some(roles);
        }
    }

    fn test_roles(&self) -> Option<Arc<dyn rights::TestRoles>> {
        self.test_roles.read().ok().and_then(|r| r.clone())
    }

    /// How mail is sent, once the server has said (flows, and the upgrade's notices).
    pub fn mailer(&self) -> Option<Arc<mail::Mailer>> {
        self.mailer.read().ok().and_then(|m| m.clone())
    }

    /// Tells every environment database which entities its flows react to, and starts
    /// the loop.
    pub async fn start(self: &Arc<Self>) -> Result<(), FlowError> {
        for env in self.store.control().list_envs().await? {
            // One environment that cannot be read must not keep the others' flows off.
            if let Err(e) = self.refresh(&env.name).await {
                tracing::warn!(env = %env.name, error = %e, "flows of an environment not watched");
            }
        }
        let me = self.clone();
        // Started: healthy until a round says otherwise.
        self.round_ended(None);
        tokio::spawn(async move {
            let poll = Duration::from_millis(POLL_MS);
            let mut last_schedule: Option<std::time::Instant> = None;
            loop {
                let _ = tokio::time::timeout(poll, me.wake.notified()).await;
                // Writes wake the loop many times a second; schedules have minute
                // slots, so they are looked at once per poll interval at most.
                let schedules = last_schedule.is_none_or(|t| t.elapsed() >= poll);
                if schedules {
                    last_schedule = Some(std::time::Instant::now());
                }
                // In a task of its own, so that even a bug that panics costs one round,
                // not the loop every flow of the server depends on.
                let round = me.clone();
                let error = match tokio::spawn(async move { round.round(schedules).await }).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "flow runtime round failed");
                        Some(format!("its last round failed: {e}"))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "flow runtime round panicked");
                        Some("its last round panicked".to_string())
                    }
                };
                me.round_ended(error);
            }
        });
        Ok(())
    }

    /// Wakes the loop now (after a write, a new run, a changed flow).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Recomputes which entities of `env` have record-triggered flows that are on.
    pub async fn refresh(&self, env: &str) -> Result<(), FlowError> {
        let flows = self.store.control().flows(env).await?;
        let mut by_db: std::collections::HashMap<String, HashSet<String>> = Default::default();
        let production = self
            .store
            .control()
            .get_env(env)
            .await?
            .map(|e| e.database)
            .unwrap_or_default();
        by_db.entry(production).or_default();
        for f in flows {
            if f.definition.state == uplift_model::flow::FlowState::On
                && dispatch::record_trigger(&f.definition.trigger).is_some()
                && let Some(e) = f.definition.trigger.entity()
            {
                by_db
                    .entry(f.database.clone())
                    .or_default()
                    .insert(e.to_string());
            }
        }
        for (database, entities) in by_db {
            if let Ok(db) = self.store.bound(env, &database).await {
                db.watch(entities, self.wake.clone());
            }
        }
        self.wake();
        Ok(())
    }

    /// Queues the runs scheduled flows have due at `now` (the loop passes the clock);
    /// returns how many were new.
    pub async fn queue_schedules_at(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, FlowError> {
        let mut n = 0;
        let control = self.store.control();
        for env in control.list_envs().await? {
            let flows = control.flows(&env.name).await?;
            match schedule::schedule(self, &env.name, &flows, now).await {
                Ok(k) => n += k,
                Err(e) => tracing::warn!(env = %env.name, error = %e, "schedules skipped"),
            }
        }
        if n > 0 {
            self.wake();
        }
        Ok(n)
    }

    /// Queues a run of a flow started by hand or by an app command.
    pub async fn start_run(
        &self,
        flow: &FlowRecord,
        trigger: serde_json::Value,
    ) -> Result<String, FlowError> {
        let key = format!("manual:{}", uuid::Uuid::now_v7());
        let id = self
            .store
            .control()
            .enqueue_run(flow, &key, &trigger, 0)
            .await?
            .ok_or_else(|| FlowError::Invalid("the run was already queued".into()))?;
        self.wake();
        Ok(id)
    }

    /// Runs `flow` once as a dry run on `trigger` and returns the finished run: every
    /// step runs and is recorded, but record writes roll back, e-mail and HTTP calls
    /// (to hosts not allowed) are captured and approvals count as given. Run here
    /// rather than on the pool, so the caller has its outcome at once; the run is
    /// claimed like any other, so the loop never runs it twice.
    pub async fn dry_run(
        &self,
        flow: &FlowRecord,
        mut trigger: serde_json::Value,
    ) -> Result<RunRecord, FlowError> {
        trigger[exec::DRY_RUN] = serde_json::Value::Bool(true);
        let key = format!("dry_run:{}", uuid::Uuid::now_v7());
        let control = self.store.control();
        let id = control
            .enqueue_run(flow, &key, &trigger, 0)
            .await?
            .ok_or_else(|| FlowError::Invalid("the dry run was already queued".into()))?;
        // Marked in flight first, as the loop marks its own, so that the loop (which
        // resumes `running` runs it does not hold, as after a crash) leaves it alone.
        let mine = self
            .in_flight
            .lock()
            .is_ok_and(|mut f| f.insert(id.clone()));
        if mine {
            let run = control.run(&flow.env, &id).await;
            let ran = match run {
                Ok(Some(run)) => exec::execute(self, run).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Ok(mut f) = self.in_flight.lock() {
                f.remove(&id);
            }
            ran?;
        }
        // Taken by the loop in between: it finishes soon (a dry run never waits).
        for _ in 0..DRY_RUN_WAIT_ROUNDS {
            match control.run(&flow.env, &id).await? {
                Some(r) if r.finished_at.is_some() => return Ok(r),
                Some(_) => tokio::time::sleep(Duration::from_millis(POLL_MS / 5)).await,
                None => break,
            }
        }
        Err(FlowError::Invalid(format!(
            "the dry run {id} did not finish"
        )))
    }

    /// One round: outbox entries (and, when `schedules`, due schedule slots) into runs,
    /// then queued runs onto the pool.
    async fn round(self: &Arc<Self>, schedules: bool) -> Result<(), FlowError> {
        let now = chrono::Utc::now();
        let control = self.store.control();
        for env in control.list_envs().await? {
            // A fault in one environment (its database gone, say) is logged and that
            // environment skipped this round; every other environment's flows go on.
            if let Err(e) = self.env_round(&env, schedules, now).await {
                tracing::warn!(env = %env.name, error = %e, "flow runtime skipped an environment this round");
            }
        }
        let runs = self.store.control().unfinished_runs(RUN_BATCH).await?;
        for run in runs {
            self.launch(run);
        }
        Ok(())
    }

    async fn env_round(
        self: &Arc<Self>,
        env: &uplift_store::control::EnvRecord,
        schedules: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), FlowError> {
        let flows = self.store.control().flows(&env.name).await?;
        if !self
            .dispatch_paused
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            dispatch::dispatch(self, env, &flows).await?;
        }
        if schedules {
            schedule::schedule(self, &env.name, &flows, now).await?;
        }
        Ok(())
    }

    fn launch(self: &Arc<Self>, run: RunRecord) {
        if let Ok(mut f) = self.in_flight.lock()
            && !f.insert(run.id.clone())
        {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(_slot) = me.slots.clone().acquire_owned().await else {
                return;
            };
            let id = run.id.clone();
            if let Err(e) = exec::execute(&me, run).await {
                tracing::warn!(run = %id, error = %e, "a flow run could not be recorded");
            }
            let idle_slots = me.in_flight.lock().is_ok_and(|mut f| {
                f.remove(&id);
                f.len() < MAX_CONCURRENT_RUNS
            });
            if idle_slots {
                // A slot is free and nothing is lined up for it: look for queued runs now.
                me.wake();
            }
        });
    }
}
