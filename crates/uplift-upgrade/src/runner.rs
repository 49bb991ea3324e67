//! Step 1 as a background task: lock the schema, apply the plan, create the test
//! database, copy, check. Every phase boundary is an event in the log; live progress
//! is kept in memory. A server that dies mid-step resumes from the log on its next
//! start ([`Upgrades::resume`]): the copy is one transaction, so a half copy never
//! survives, and the step simply runs again from the test database's creation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;
use uplift_model::value::format_instant;
use uplift_model::{ColType, FieldType, Value};
use uplift_plan::{Options, apply};
use uplift_store::copy::{self, CopyLimits, CopyObserver};
use uplift_store::ddl::Keys;
use uplift_store::sql::ident;
use uplift_store::{Store, StoreError};

pub mod janitor;
pub mod revert;
mod step2;
pub mod step3;

pub use step2::{ItemChange, ToVerify};
pub use step3::{BeforeSwitch, Check, OnSwitch, renames, source_security};

use crate::events::{EntityReport, Event, Phase, Sample, StartOptions};
use crate::plans::{self, FoundPlan, PlanSource};
use crate::progress::Progress;
use crate::state::{Status, UpgradeState, fold_more};

/// Why an upgrade request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the upgrade log is inconsistent: {0}")]
    Log(String),
}

impl UpgradeError {
    /// The words the upgrade's log keeps (and the API shows) for a failure: an engine's
    /// own message (SQL, paths) goes to the server log only, logged here.
    pub fn for_the_log(&self) -> String {
        match self {
            UpgradeError::Store(
                e @ (StoreError::Sqlite(_)
                | StoreError::Postgres(_)
                | StoreError::Pool(_)
                | StoreError::Io(_)
                | StoreError::Task(_)),
            ) => {
                tracing::error!(error = %e, "an upgrade's database operation failed");
                "a database operation failed; the server's log has the details".into()
            }
            other => other.to_string(),
        }
    }
}

/// One entity's copy as it goes: rows loaded of its total, then its keys, then its
/// read-back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntityLive {
    pub loaded: u64,
    pub rows: u64,
    pub keyed: bool,
    pub read_back: bool,
}

impl EntityLive {
    /// Progress in rows: a row counts half once loaded, a quarter more once the keys
    /// are built and the last quarter once the table is read back (building keys and
    /// reading back take about half of the copy phase), so the copy reaches its total
    /// only when it is done.
    pub fn rows_done(&self) -> u64 {
        let quarters = 2 * self.loaded
            + if self.keyed { self.rows } else { 0 }
            + if self.read_back { self.rows } else { 0 };
        quarters / 4
    }
}

/// Live figures of a running step, merged into the state the API shows.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub phase: Option<Phase>,
    /// When the copy phase started: its ETA follows its own rate.
    pub copy_started: Option<Instant>,
    /// Per source entity; every entity is here, with its row count, from the copy's
    /// first report on.
    pub entities: BTreeMap<String, EntityLive>,
    /// Step 3's catch-up: changes captured on production and not yet applied to the
    /// new production (measured after each batch), and those applied so far.
    pub lag: Option<u64>,
    pub applied: u64,
}

struct Running {
    cancel: AtomicBool,
    started: Instant,
    live: Mutex<Live>,
    /// Chunk statements started (see [`Upgrades::chunks_started`]).
    chunks: std::sync::atomic::AtomicU64,
}

impl Running {
    fn start() -> Arc<Running> {
        Arc::new(Running {
            cancel: AtomicBool::new(false),
            started: Instant::now(),
            live: Mutex::new(Live::default()),
            chunks: 0.into(),
        })
    }

    /// The copy's size as the copy last told it: exact once every entity is counted.
    fn copy_rows(&self) -> u64 {
        self.live
            .lock()
            .map(|l| l.entities.values().map(|e| e.rows).sum())
            .unwrap_or(0)
    }

    fn entity(&self, entity: &str, f: impl FnOnce(&mut EntityLive)) {
        if let Ok(mut l) = self.live.lock() {
            f(l.entities.entry(entity.to_string()).or_default());
        }
    }
}

impl Running {
    /// Step 3's catch-up lag, as last measured, and the changes applied so far.
    fn lag(&self, lag: u64, applied: u64) {
        if let Ok(mut l) = self.live.lock() {
            l.lag = Some(lag);
            l.applied = applied;
        }
    }
}

impl CopyObserver for Running {
    fn progress(&self, entity: &str, done: u64, total: u64) {
        self.entity(entity, |e| {
            e.loaded = done;
            e.rows = total;
        });
    }
    fn keyed(&self, entity: &str) {
        self.entity(entity, |e| e.keyed = true);
    }
    fn read_back(&self, entity: &str) {
        self.entity(entity, |e| e.read_back = true);
    }
    fn chunk_started(&self, _entity: &str) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// What the API answers for an upgrade: the folded log plus live progress.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeView {
    pub id: String,
    pub env: String,
    #[serde(flatten)]
    pub state: UpgradeState,
    /// Rows done/total over the whole copy, with an ETA, while step 1 runs.
    pub progress: Option<Progress>,
    pub live_entities: BTreeMap<String, Progress>,
    /// While step 3 runs: captured changes not yet applied to the new production; while
    /// a revert runs: changes not yet carried back to the old one.
    pub catchup_lag: Option<u64>,
}

impl UpgradeView {
    /// The folded log alone, when nothing runs.
    fn of(id: String, env: &str, state: UpgradeState) -> UpgradeView {
        UpgradeView {
            id,
            env: env.to_string(),
            state,
            progress: None,
            live_entities: BTreeMap::new(),
            catchup_lag: None,
        }
    }
}

/// The upgrades of every environment.
pub struct Upgrades {
    store: Arc<Store>,
    running: Mutex<HashMap<String, Arc<Running>>>,
    /// The latest run of each environment, kept after it ends, for its counters.
    last: Mutex<HashMap<String, Arc<Running>>>,
    /// Rows per copy statement (see [`copy::CHUNK_ROWS`]).
    chunk_rows: std::sync::atomic::AtomicU64,
    /// A pause after each copy statement, for tests (see [`CopyLimits`]).
    chunk_pause_ms: std::sync::atomic::AtomicU64,
    /// How long a completed upgrade keeps its databases (see [`janitor`]).
    retention: Mutex<janitor::Retention>,
    /// The server's `DATA_DIR/plans/`, where an operator may put plan files.
    plans_dir: std::sync::OnceLock<std::path::PathBuf>,
    /// Each upgrade's state as last folded, with the sequence number and count of the
    /// events folded (see [`Upgrades::latest`]).
    folded: Mutex<HashMap<String, FoldedLog>>,
    /// Held while an event is checked against the log and appended (see `log`).
    writing: tokio::sync::Mutex<()>,
    /// Each upgrade's target catalog, with the production catalog it was planned from.
    targets: Mutex<HashMap<String, PlannedTarget>>,
    /// Notified when step 2 has work owed (verifications, notices): the service's
    /// step 2 worker waits on it.
    step2_work: Arc<tokio::sync::Notify>,
    /// What runs right after step 3's switch (see [`OnSwitch`]).
    on_switch: std::sync::OnceLock<OnSwitch>,
    before_switch: std::sync::OnceLock<step3::BeforeSwitch>,
    /// A wait inside every write pause, for tests (see [`Upgrades::set_pause_delay_ms`]).
    pause_delay_ms: std::sync::atomic::AtomicU64,
    /// Where step 3 waits for a test to kill the server (see [`step3::Stall`]).
    stall: Mutex<Option<step3::Stall>>,
}

/// A target catalog and the production catalog it was planned from.
type PlannedTarget = (Arc<uplift_model::Catalog>, Arc<uplift_model::Catalog>);

/// A folded log: the last sequence number read, how many events, the state.
type FoldedLog = (i64, usize, Option<UpgradeState>);

/// How an upgrade holds production's schema (see [`Upgrades::schema_lock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaLock {
    Free,
    /// Step 1, step 3 or a revert runs (`by` names it): what it reads and copies must
    /// not change under it.
    Locked {
        by: &'static str,
    },
    /// Step 2: a change is possible, forced, and makes the test database stale.
    Step2,
}

/// How long a cancel waits for a running copy to stop: polls × interval.
const CANCEL_WAIT_POLLS: u32 = 600;
const CANCEL_POLL_MS: u64 = 50;

fn now() -> String {
    format_instant(OffsetDateTime::now_utc())
}

impl Upgrades {
    pub fn new(store: Arc<Store>) -> Arc<Upgrades> {
        Arc::new(Upgrades {
            store,
            running: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
            chunk_rows: copy::CHUNK_ROWS.into(),
            chunk_pause_ms: 0.into(),
            retention: Mutex::new(janitor::Retention::default()),
            plans_dir: std::sync::OnceLock::new(),
            step2_work: Arc::new(tokio::sync::Notify::new()),
            folded: Mutex::new(HashMap::new()),
            writing: tokio::sync::Mutex::new(()),
            targets: Mutex::new(HashMap::new()),
            on_switch: std::sync::OnceLock::new(),
            before_switch: std::sync::OnceLock::new(),
            pause_delay_ms: 0.into(),
            stall: Mutex::new(None),
        })
    }

    /// What step 2's worker waits on (see [`Upgrades::step2_work`]).
    pub fn step2_work(&self) -> Arc<tokio::sync::Notify> {
        self.step2_work.clone()
    }

    /// Sets the folder whose `<name>.toml` files are plans too (set once, at start).
    pub fn set_plans_dir(&self, dir: std::path::PathBuf) {
        let _ = self.plans_dir.set(dir);
    }

    /// A plan by name: shipped, uploaded, or a file in the plans folder.
    pub async fn lookup_plan(&self, name: &str) -> Result<FoundPlan, UpgradeError> {
        plans::find(&self.store, self.plans_dir.get(), name).await
    }

    /// The plan an upgrade or a preview names: one that does not exist is a bad
    /// request, not a missing resource.
    pub async fn find_plan(&self, name: &str) -> Result<FoundPlan, UpgradeError> {
        self.lookup_plan(name).await.map_err(|e| match e {
            UpgradeError::NotFound(m) => UpgradeError::Invalid(m),
            e => e,
        })
    }

    /// The upgrade's plan applied to `catalog` (production's, or the old production's
    /// once switched): the target catalog, change list and row transforms.
    pub async fn planned(
        &self,
        state: &UpgradeState,
        catalog: &uplift_model::Catalog,
    ) -> Result<uplift_plan::Upgrade, UpgradeError> {
        let plan = self.plan_of(state).await?;
        apply(&plan, catalog, &plan_options(&state.options))
            .map_err(|e| UpgradeError::Invalid(e.to_string()))
    }

    /// The plan an upgrade runs: the text it started with, or (for a log written
    /// before plan texts were kept) the plan of that name now.
    pub async fn plan_of(&self, state: &UpgradeState) -> Result<uplift_plan::Plan, UpgradeError> {
        match &state.plan_text {
            Some(text) => plans::parse_named(&state.options.plan, text),
            None => Ok(self.find_plan(&state.options.plan).await?.plan),
        }
    }

    /// The names of every plan there is: shipped, uploaded, then files.
    pub async fn plan_names(&self) -> Result<Vec<(String, PlanSource)>, UpgradeError> {
        plans::names(&self.store, self.plans_dir.get()).await
    }

    /// Sets the rows per copy statement: smaller shows progress and honours a cancel
    /// sooner, larger copies faster.
    pub fn set_chunk_rows(&self, rows: u64) {
        self.chunk_rows.store(rows.max(1), Ordering::Relaxed);
    }

    /// Pauses before the copy and after every copy statement, so a test can act in
    /// the middle of a copy (`UPLIFT_TEST_COPY_PAUSE_MS` for a server). Never set in
    /// production.
    pub fn set_chunk_pause_ms(&self, ms: u64) {
        self.chunk_pause_ms.store(ms, Ordering::Relaxed);
    }

    /// Waits this long inside every write pause, before the switch, so a test can push
    /// a pause past its budget or act while writes are held. Never set in production.
    pub fn set_pause_delay_ms(&self, ms: u64) {
        self.pause_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// How many copy statements the environment's latest step 1 has started: a test
    /// reads it before and after a cancel to see that no chunk started after it.
    pub fn chunks_started(&self, env: &str) -> u64 {
        self.last
            .lock()
            .ok()
            .and_then(|m| m.get(env).map(|r| r.chunks.load(Ordering::Relaxed)))
            .unwrap_or(0)
    }

    /// Appends `e` to the log of upgrade `id`, only if it fits the state the log is in
    /// now: the check and the append are one step under a lock, so a writer that looked
    /// at the state before a cancel (the step 2 worker about to record a notice) is
    /// refused instead of writing an event the log cannot hold.
    async fn log(&self, id: &str, e: &Event) -> Result<(), UpgradeError> {
        let json = serde_json::to_string(e).map_err(|e| UpgradeError::Log(e.to_string()))?;
        let _one_writer = self.writing.lock().await;
        let (done, state) = self.folded_log(id).await?;
        if let Err(refused) = fold_more(state, done, std::slice::from_ref(e)) {
            return Err(UpgradeError::Conflict(format!(
                "the upgrade changed meanwhile: {refused}"
            )));
        }
        self.store.control().append_event(id, e.at(), &json).await?;
        Ok(())
    }

    /// Records what `user` may do in the test database beyond the upgraded roles
    /// (replacing an earlier grant; empty withdraws it). Only while step 2 runs: there
    /// is no test database to grant on before, nor after.
    pub async fn grant_test_access(
        &self,
        env: &str,
        user: &str,
        privileges: uplift_model::security::Privileges,
        by: &str,
    ) -> Result<UpgradeState, UpgradeError> {
        let (id, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("'{env}' has no upgrade")))?;
        if state.status != Status::Step2Verifying {
            return Err(UpgradeError::Conflict(format!(
                "the upgrade of '{env}' is {:?}: test access is granted while step 2 runs",
                state.status
            )));
        }
        let event = Event::TestAccessGranted {
            at: now(),
            user: user.to_lowercase(),
            privileges,
            by: by.to_string(),
        };
        self.log(&id, &event).await?;
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))?;
        Ok(state)
    }

    /// The latest upgrade's log as it was written, oldest first: the audit trail.
    pub async fn log_of(&self, env: &str) -> Result<Vec<Event>, UpgradeError> {
        let Some(id) = self.store.control().upgrades(env).await?.pop() else {
            return Ok(Vec::new());
        };
        self.store
            .control()
            .events(&id)
            .await?
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| UpgradeError::Log(e.to_string())))
            .collect()
    }

    /// The latest upgrade of an environment and its state.
    pub async fn latest(&self, env: &str) -> Result<Option<(String, UpgradeState)>, UpgradeError> {
        let Some(id) = self.store.control().upgrades(env).await?.pop() else {
            return Ok(None);
        };
        Ok(self.folded_log(&id).await?.1.map(|s| (id, s)))
    }

    /// Upgrade `id`'s state and how many events it folds.
    async fn folded_log(&self, id: &str) -> Result<(usize, Option<UpgradeState>), UpgradeError> {
        // Folded on from the last read: only the events since are read and parsed.
        let cached = self.folded.lock().ok().and_then(|m| m.get(id).cloned());
        let (seq, done, state) = cached.unwrap_or((0, 0, None));
        let rows = self.store.control().events_after(id, seq).await?;
        let Some(last) = rows.last().map(|(s, _)| *s) else {
            return Ok((done, state));
        };
        let events: Vec<Event> = rows
            .iter()
            .map(|(_, j)| serde_json::from_str(j).map_err(|e| UpgradeError::Log(e.to_string())))
            .collect::<Result<_, _>>()?;
        let state =
            fold_more(state, done, &events).map_err(|e| UpgradeError::Log(e.to_string()))?;
        let done = done + events.len();
        if let Ok(mut m) = self.folded.lock() {
            m.insert(id.to_string(), (last, done, state.clone()));
        }
        Ok((done, state))
    }

    /// The latest upgrade with live progress, for the API.
    pub async fn view(&self, env: &str) -> Result<Option<UpgradeView>, UpgradeError> {
        let Some((id, state)) = self.latest(env).await? else {
            return Ok(None);
        };
        let running = self.running.lock().ok().and_then(|m| m.get(env).cloned());
        let mut state = state;
        let (mut progress, mut live_entities, mut catchup_lag) = (None, BTreeMap::new(), None);
        // Step 1's copy and step 3's build count rows alike.
        let copying = match state.status {
            Status::Step1Running => Phase::Copy,
            Status::Step3Running => Phase::Build,
            Status::RevertRunning => {
                let mut view = UpgradeView::of(id, env, state);
                view.catchup_lag = running.and_then(|r| r.live.lock().ok().and_then(|l| l.lag));
                return Ok(Some(view));
            }
            _ => return Ok(Some(UpgradeView::of(id, env, state))),
        };
        if let Some(r) = running
            && let Ok(l) = r.live.lock()
        {
            if copying == Phase::Build {
                catchup_lag = l.lag;
                if let Some(p) = state.phases.iter_mut().find(|p| p.phase == Phase::CatchUp)
                    && p.finished_at.is_none()
                    && let Some(lag) = l.lag
                {
                    p.done = l.applied;
                    p.total = l.applied + lag;
                }
            }
            let elapsed = l.copy_started.unwrap_or(r.started).elapsed().as_secs_f64();
            let (mut done, mut total) = (0, 0);
            for (name, e) in &l.entities {
                live_entities.insert(name.clone(), Progress::at(e.loaded, e.rows, elapsed));
                done += e.rows_done();
                total += e.rows;
            }
            let overall = Progress::at(done, total, elapsed);
            progress = Some(overall);
            // While the copy runs, its phase counts rows.
            if l.phase == Some(copying)
                && let Some(p) = state.phases.iter_mut().find(|p| p.phase == copying)
            {
                p.done = overall.done;
                p.total = overall.total;
                p.eta_seconds = overall.eta_seconds;
            }
        }
        Ok(Some(UpgradeView {
            id,
            env: env.to_string(),
            state,
            progress,
            live_entities,
            catchup_lag,
        }))
    }

    /// How the upgrade holds production's schema: firmly while step 1 copies it, step 3
    /// rebuilds it or a revert carries it back; during step 2, where a forced change
    /// makes the test database stale; otherwise not at all.
    pub async fn schema_lock(&self, env: &str) -> Result<SchemaLock, UpgradeError> {
        Ok(match self.latest(env).await?.map(|(_, s)| s.status) {
            Some(Status::Step1Running) => SchemaLock::Locked { by: "step 1" },
            Some(Status::Step3Running) => SchemaLock::Locked { by: "step 3" },
            Some(Status::RevertRunning) => SchemaLock::Locked { by: "revert" },
            Some(Status::Step2Verifying) => SchemaLock::Step2,
            _ => SchemaLock::Free,
        })
    }

    /// Records that production's schema changed during step 2, by `by`.
    pub async fn mark_stale(&self, env: &str, by: &str) -> Result<(), UpgradeError> {
        let (id, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("'{env}' has no upgrade")))?;
        if state.status != Status::Step2Verifying {
            return Ok(());
        }
        self.log(
            &id,
            &Event::TestDatabaseStale {
                at: now(),
                by: by.to_string(),
            },
        )
        .await
    }

    /// Validates the request and starts step 1 in the background.
    pub async fn start(
        self: &Arc<Self>,
        env: &str,
        options: StartOptions,
        actor: &str,
    ) -> Result<UpgradeView, UpgradeError> {
        let record = self
            .store
            .control()
            .get_env(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("no environment '{env}'")))?;
        if let Some((_, s)) = self.latest(env).await?
            && s.status.is_active()
        {
            return Err(UpgradeError::Conflict(format!(
                "an upgrade of '{env}' is already under way ({:?}); cancel it first",
                s.status
            )));
        }
        let FoundPlan { text, plan, .. } = self.find_plan(&options.plan).await?;
        let prod = self.store.env_db(env).await?;
        let catalog = prod.catalog();
        if catalog.version != plan.from() {
            return Err(UpgradeError::Invalid(format!(
                "plan '{}' upgrades {} environments; '{env}' is {}",
                options.plan,
                plan.from(),
                record.schema_version
            )));
        }
        let languages = languages(&catalog);
        if !languages.contains(&options.language) {
            return Err(UpgradeError::Invalid(format!(
                "language '{}' is not used by environment '{env}' (its display names use {})",
                options.language,
                languages.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let found = currencies_found(&self.store, env).await?;
        let missing: Vec<&String> = found
            .iter()
            .filter(|c| **c != options.currency && !options.exchange_rates.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            return Err(UpgradeError::Invalid(format!(
                "no exchange rate for {} (found in the data; base currency {}): pass --rate CODE=RATE for each",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                options.currency
            )));
        }
        apply(&plan, &catalog, &plan_options(&options))
            .map_err(|e| UpgradeError::Invalid(e.to_string()))?;

        let id = uuid::Uuid::now_v7().to_string();
        let n = self.store.control().upgrades(env).await?.len() + 1;
        self.store.control().insert_upgrade(&id, env).await?;
        self.log(
            &id,
            &Event::Started {
                at: now(),
                options,
                test_database: format!("test-{n}"),
                actor: actor.to_string(),
                plan_text: Some(text),
            },
        )
        .await?;
        self.spawn(env, &id, actor);
        self.view(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))
    }

    /// A new run of `env`'s upgrade, registered as the one under way (its live figures).
    fn track(&self, env: &str) -> Arc<Running> {
        let run = Running::start();
        if let Ok(mut m) = self.running.lock() {
            m.insert(env.to_string(), run.clone());
        }
        run
    }

    /// Forgets `run` as `env`'s run under way, unless another has taken its place.
    fn untrack(&self, env: &str, run: &Arc<Running>) {
        if let Ok(mut m) = self.running.lock()
            && m.get(env).is_some_and(|r| Arc::ptr_eq(r, run))
        {
            m.remove(env);
        }
    }

    fn spawn(self: &Arc<Self>, env: &str, id: &str, actor: &str) {
        let run = self.track(env);
        if let Ok(mut m) = self.last.lock() {
            m.insert(env.to_string(), run.clone());
        }
        let (me, env, id, actor) = (
            self.clone(),
            env.to_string(),
            id.to_string(),
            actor.to_string(),
        );
        tokio::spawn(async move {
            let result = me.step1(&env, &id, &actor, &run).await;
            if let Err(e) = result {
                if run.cancel.load(Ordering::Relaxed) {
                    tracing::info!(env, "step 1 stopped by cancel");
                } else {
                    tracing::error!(env, error = %e, "step 1 failed");
                    let phase = run
                        .live
                        .lock()
                        .ok()
                        .and_then(|l| l.phase)
                        .unwrap_or(Phase::Copy);
                    let _ = me
                        .log(
                            &id,
                            &Event::Failed {
                                at: now(),
                                phase,
                                message: e.to_string(),
                            },
                        )
                        .await;
                }
            }
            me.untrack(&env, &run);
        });
    }

    /// Cancels the environment's upgrade (before step 3's switch-over): stops a
    /// running step, drops the test database and records the cancel. Production is
    /// never written by step 1, so it is exactly as it was.
    pub async fn cancel(&self, env: &str) -> Result<UpgradeView, UpgradeError> {
        let (id, state) = self
            .latest(env)
            .await?
            .filter(|(_, s)| s.status.is_active())
            .ok_or_else(|| {
                UpgradeError::Conflict(format!("'{env}' has no upgrade under way to cancel"))
            })?;
        if state.step3.as_ref().is_some_and(|t| t.switched) {
            return Err(UpgradeError::Conflict(format!(
                "'{env}' has switched to its new production: it can be reverted, not cancelled"
            )));
        }
        let running = self.running.lock().ok().and_then(|m| m.get(env).cloned());
        if let Some(r) = running {
            r.cancel.store(true, Ordering::Relaxed);
            // The copy checks the flag between chunks; wait for the task to let go.
            for _ in 0..CANCEL_WAIT_POLLS {
                let still = self
                    .running
                    .lock()
                    .ok()
                    .is_some_and(|m| m.get(env).is_some_and(|x| Arc::ptr_eq(x, &r)));
                if !still {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(CANCEL_POLL_MS)).await;
            }
        }
        self.remove_clones(env, &state).await?;
        self.store
            .remove_database(env, &state.test_database)
            .await?;
        self.log(&id, &Event::Cancelled { at: now() }).await?;
        self.view(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))
    }

    /// Runs a failed step 1 again.
    pub async fn retry(self: &Arc<Self>, env: &str) -> Result<UpgradeView, UpgradeError> {
        let (id, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("'{env}' has no upgrade")))?;
        if state.status != Status::Step1Failed {
            return Err(UpgradeError::Conflict(format!(
                "the upgrade of '{env}' has not failed ({:?})",
                state.status
            )));
        }
        self.log(&id, &Event::Retried { at: now() }).await?;
        self.spawn(env, &id, &state.actor);
        self.view(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))
    }

    /// Rebuilds the test database of `env`'s upgrade, in step 2, from production as it
    /// is now: step 1's copy and check again, in the background, then every item
    /// verified again. Items, copies and edits stay; so do test grants.
    pub async fn refresh(
        self: &Arc<Self>,
        env: &str,
        by: &str,
    ) -> Result<UpgradeView, UpgradeError> {
        let (id, state) = self.step2(env).await?;
        self.log(
            &id,
            &Event::RefreshStarted {
                at: now(),
                by: by.to_string(),
            },
        )
        .await?;
        self.spawn(env, &id, &state.actor);
        self.view(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("the upgrade vanished".into()))
    }

    /// Restarts every step 1 that was running when the server stopped.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, UpgradeError> {
        let mut n = 0;
        for e in self.store.control().list_envs().await? {
            // One environment's unreadable log must not keep the server, and every
            // other environment, from starting.
            let latest = match self.latest(&e.name).await {
                Ok(l) => l,
                Err(err) => {
                    tracing::error!(env = e.name, error = %err, "upgrade log unreadable; not resumed");
                    continue;
                }
            };
            if let Some((id, state)) = latest.clone()
                && state.status == Status::Step1Running
                && !self
                    .running
                    .lock()
                    .ok()
                    .is_some_and(|m| m.contains_key(&e.name))
            {
                tracing::info!(env = e.name, "resuming step 1");
                self.spawn(&e.name, &id, &state.actor);
                n += 1;
            } else if let Some((id, state)) = latest.clone()
                && state.status == Status::Step3Running
            {
                tracing::info!(env = e.name, "step 3 was under way when the server stopped");
                let phase = last_phase(&state);
                if let Err(err) = self
                    .end_step3(&e.name, &id, phase, "the server stopped during step 3")
                    .await
                {
                    tracing::error!(env = e.name, error = %err, "step 3 did not roll back or forward");
                }
                n += 1;
            } else if let Some((id, state)) = latest.clone()
                && state.status == Status::RevertRunning
            {
                tracing::info!(
                    env = e.name,
                    "a revert was under way when the server stopped"
                );
                if let Err(err) = self
                    .end_revert(&e.name, &id, "the server stopped during the revert")
                    .await
                {
                    tracing::error!(env = e.name, error = %err, "the revert did not end cleanly");
                }
                n += 1;
            } else if let Some((id, state)) = latest
                && state.status == Status::Step2Verifying
                && state.items.is_none()
            {
                tracing::info!(env = e.name, "discovering step 2's items");
                match self.discover_items(&e.name, &id, &state).await {
                    Ok(()) => n += 1,
                    Err(err) => {
                        tracing::warn!(env = e.name, error = %err, "step 2's items were not discovered")
                    }
                }
            }
        }
        Ok(n)
    }

    async fn phase<T>(
        &self,
        id: &str,
        run: &Running,
        phase: Phase,
        total: u64,
        work: impl std::future::Future<Output = Result<T, UpgradeError>>,
    ) -> Result<T, UpgradeError> {
        if let Ok(mut l) = run.live.lock() {
            l.phase = Some(phase);
        }
        self.log(
            id,
            &Event::PhaseStarted {
                at: now(),
                phase,
                total,
            },
        )
        .await?;
        self.stall(step3::Stall::Phase(phase)).await;
        let out = work.await?;
        let counted = (phase == Phase::Copy)
            .then(|| run.copy_rows())
            .filter(|rows| *rows != total);
        self.log(
            id,
            &Event::PhaseFinished {
                at: now(),
                phase,
                total: counted,
            },
        )
        .await?;
        Ok(out)
    }

    async fn step1(
        &self,
        env: &str,
        id: &str,
        actor: &str,
        run: &Arc<Running>,
    ) -> Result<(), UpgradeError> {
        let started = Instant::now();
        let (_, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::Log("no upgrade".into()))?;
        let options = state.options.clone();
        self.phase(id, run, Phase::LockSchema, 1, async { Ok(()) })
            .await?;
        let prod = self.store.env_db(env).await?;
        let upgrade = self
            .phase(id, run, Phase::Plan, 1, async {
                let plan = self.plan_of(&state).await?;
                apply(&plan, &prod.catalog(), &plan_options(&options))
                    .map_err(|e| UpgradeError::Invalid(e.to_string()))
            })
            .await?;
        let test = self
            .phase(id, run, Phase::CreateTestDatabase, 1, async {
                Ok(self
                    .store
                    .create_database_with(
                        env,
                        &state.test_database,
                        upgrade.target.clone(),
                        Keys::AfterLoad,
                    )
                    .await?)
            })
            .await?;
        let source_catalog = prod.catalog();
        let transforms = transforms_of(&prod, &upgrade);
        let ctx = uplift_model::transform::EvalContext {
            upgrade_time: now_ms(),
            actor: actor.to_string(),
        };
        // Every entity's size, before the phase starts: its total is known from the
        // first report on (estimated here, exact once the copy has counted).
        let counts = copy::estimated_rows(&prod, &transforms).await?;
        for ((t, _), n) in transforms.iter().zip(&counts) {
            run.progress(&t.source_entity, 0, *n);
        }
        if let Ok(mut l) = run.live.lock() {
            l.copy_started = Some(Instant::now());
        }
        let observer: Arc<dyn CopyObserver> = run.clone();
        let copies = self
            .phase(id, run, Phase::Copy, counts.iter().sum(), async {
                let limits = CopyLimits {
                    chunk_rows: self.chunk_rows.load(Ordering::Relaxed),
                    chunk_pause_ms: self.chunk_pause_ms.load(Ordering::Relaxed),
                };
                // A test's pause also falls before the first row moves, when nothing
                // holds the test database: a test can reach it there.
                if limits.chunk_pause_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(limits.chunk_pause_ms))
                        .await;
                }
                let copies =
                    copy::copy(&prod, &test, &transforms, &ctx, limits, observer.clone()).await?;
                Ok(copies)
            })
            .await?;
        // Entities the plan drops still appear in the report, with nothing imported.
        for c in &copies {
            let report = EntityReport {
                source: c.source_entity.clone(),
                target: Some(c.target_entity.clone()),
                exported: c.exported,
                imported: c.imported,
                errors: c.errors,
                warnings: c.warnings,
                checksum_match: None,
                error_samples: c
                    .error_samples
                    .iter()
                    .map(|s| Sample {
                        id: s.id.clone(),
                        reason: s.reason.clone(),
                    })
                    .collect(),
                warning_samples: c
                    .warning_samples
                    .iter()
                    .map(|s| Sample {
                        id: s.id.clone(),
                        reason: s.reason.clone(),
                    })
                    .collect(),
            };
            self.log(id, &Event::EntityCopied { at: now(), report })
                .await?;
        }
        for e in &source_catalog.entities {
            if !copies.iter().any(|c| c.source_entity == e.name) {
                let exported = count_rows(&prod, e).await?;
                let report = EntityReport {
                    source: e.name.clone(),
                    target: None,
                    exported,
                    ..Default::default()
                };
                self.log(id, &Event::EntityCopied { at: now(), report })
                    .await?;
            }
        }
        self.phase(id, run, Phase::Check, copies.len() as u64, async {
            // The copy read every table back; the check compares what it read with
            // the transformed source.
            for c in &copies {
                let ok = c.matches();
                self.log(
                    id,
                    &Event::EntityChecked {
                        at: now(),
                        source: c.source_entity.clone(),
                        checksum_match: ok,
                    },
                )
                .await?;
            }
            Ok(())
        })
        .await?;
        self.phase(id, run, Phase::Done, 1, async { Ok(()) })
            .await?;
        // Step 2's items, so that they are there when step 2 is. Step 1 is done whatever
        // discovery does: a failure is logged, and a restart discovers again. A refresh
        // keeps the items it has (copies, edits, findings) and verifies them again.
        let refresh = state.items.is_some();
        if !refresh && let Err(e) = self.discover_items(env, id, &state).await {
            tracing::warn!(env, error = %e, "step 2's items were not discovered");
        }
        self.log(
            id,
            &Event::Step1Finished {
                at: now(),
                duration_ms: started.elapsed().as_millis() as u64,
            },
        )
        .await?;
        if refresh {
            self.request_verification(env, None, "uplift (refresh)")
                .await?;
        }
        Ok(())
    }
}

/// Each entity transform of `upgrade` with the source column types it reads.
fn transforms_of(
    prod: &uplift_store::EnvDb,
    upgrade: &uplift_plan::Upgrade,
) -> Vec<(
    uplift_model::transform::EntityTransform,
    uplift_store::transform_sql::SourceTypes,
)> {
    let source_catalog = prod.catalog();
    upgrade
        .entities
        .iter()
        .filter_map(|t| {
            let e = source_catalog.entity(&t.source_entity)?;
            Some((t.clone(), copy::source_types(prod, e)))
        })
        .collect()
}

fn now_ms() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(u32::from(t.millisecond()) * 1_000_000)
        .unwrap_or(t)
}

/// The step 3 phase that started last (where a stopped step 3 was).
fn last_phase(state: &UpgradeState) -> Phase {
    state
        .phases
        .iter()
        .rfind(|p| Phase::STEP3.contains(&p.phase) && p.started_at.is_some())
        .map_or(Phase::Preflight, |p| p.phase)
}

/// The options `apply` takes, from the ones step 1 was started with.
pub fn plan_options(o: &StartOptions) -> Options {
    Options {
        language: o.language.clone(),
        currency: o.currency.clone(),
        exchange_rates: o.exchange_rates.clone(),
    }
}

/// Languages used by a catalog's display names.
fn languages(c: &uplift_model::Catalog) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in &c.entities {
        out.extend(e.display_name.keys().cloned());
        for f in &e.fields {
            out.extend(f.display_name.keys().cloned());
        }
    }
    out
}

async fn count_rows(
    db: &uplift_store::EnvDb,
    e: &uplift_model::Entity,
) -> Result<u64, UpgradeError> {
    let mut conn = db.pool().conn().await?;
    let row = conn
        .query_opt(
            &format!("SELECT COUNT(*) FROM {}", db.table(e)),
            &[],
            &[ColType::Int],
        )
        .await?;
    Ok(row.and_then(|r| r[0].as_int()).unwrap_or(0) as u64)
}

/// Every currency code present in Currency fields of production.
pub async fn currencies_found(store: &Store, env: &str) -> Result<BTreeSet<String>, UpgradeError> {
    let db = store.env_db(env).await?;
    currencies_in(&db).await
}

/// The currency codes found in `db`'s Currency fields.
pub async fn currencies_in(db: &uplift_store::EnvDb) -> Result<BTreeSet<String>, UpgradeError> {
    let catalog = db.catalog();
    let mut out = BTreeSet::new();
    let mut conn = db.pool().conn().await?;
    for e in &catalog.entities {
        for f in e.fields.iter().filter(|f| f.ty == FieldType::Currency) {
            let col = uplift_model::names::physical(&f.name, Some("code"));
            let sql = format!(
                "SELECT DISTINCT upper({}) FROM {} WHERE {} IS NOT NULL",
                ident(&col),
                db.table(e),
                ident(&col)
            );
            for r in conn.query(&sql, &[], &[ColType::Text]).await? {
                if let Value::Text(code) = &r[0] {
                    out.insert(code.clone());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engines_message_stays_out_of_the_upgrades_log() {
        let cases = [
            (
                UpgradeError::Store(StoreError::Pool("connecting to /var/run/postgresql".into())),
                false,
            ),
            (
                UpgradeError::Conflict("every write pause passed its budget".into()),
                true,
            ),
            (
                UpgradeError::Store(StoreError::Conflict("'x' is no longer on 'prod'".into())),
                true,
            ),
        ];
        for (e, shown) in cases {
            let words = e.for_the_log();
            assert_eq!(words == e.to_string(), shown, "{e:?}: {words}");
            assert!(!words.contains("/var/run"), "{words}");
        }
    }
}
