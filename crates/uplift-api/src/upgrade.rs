//! The environment upgrade: plans, the preview, step 1's progress and its report.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin::{Entity, Privileges, SchemaVersion, SecurityMode};

/// What happened to an entity or a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Kept,
    Renamed,
    Retyped,
    Flattened,
    Dropped,
    Added,
}

/// The schema changes of an upgrade: every source entity and field appears once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeList {
    pub entities: Vec<EntityChange>,
    /// Currency codes found in the data: each needs an exchange rate to start.
    pub currencies_found: Vec<String>,
    pub warnings: Vec<SchemaWarning>,
}

/// One entity's change; `source` is null for an added entity, `target` for a dropped one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntityChange {
    pub source: Option<String>,
    pub target: Option<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    pub source: Option<String>,
    pub targets: Vec<String>,
    pub action: Action,
    pub source_type: Option<String>,
    pub target_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Something an admin should know before going on (a dropped value, a shortened name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SchemaWarning {
    pub entity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// The security of the upgraded environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityMapping {
    pub mode: SecurityMode,
    pub roles: Vec<MappedRole>,
    pub members: Vec<MappedMember>,
    pub warnings: Vec<SecurityWarning>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MappedRole {
    pub name: String,
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub privileges: Privileges,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MappedMember {
    pub role: String,
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityWarning {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub message: String,
}

/// The target catalog of a preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TargetCatalog {
    pub schema_version: SchemaVersion,
    pub entities: Vec<Entity>,
}

/// `GET …/upgrade/preview`: what the plan would do, touching nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preview {
    pub plan: String,
    pub target: TargetCatalog,
    pub changes: ChangeList,
    pub security: SecurityMapping,
}

/// `POST …/upgrade`: starts step 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartUpgrade {
    /// A plan's name: shipped (`classic-to-modern`), uploaded with
    /// `PUT /api/plans/{name}`, or a file in the server's `DATA_DIR/plans/`. Never a path.
    pub plan: String,
    /// The base language of labels.
    pub language: String,
    /// The base currency (ISO 4217).
    pub currency: String,
    /// Units of the base currency per unit of each currency found in the data.
    #[serde(default)]
    pub exchange_rates: BTreeMap<String, Decimal>,
    /// Which version of each app step 2 copies (`published` unless given).
    #[serde(default)]
    pub apps_from: Option<AppsFrom>,
    /// Hosts that flows bound to the test database may call for real; every other
    /// HTTP call, and all their e-mail, is captured (`GET …/upgrade/captured`).
    #[serde(default)]
    pub allow_http: Vec<String>,
}

/// Which version of an app becomes its upgrade copy: the published one (the draft
/// where nothing is published), or the draft where there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppsFrom {
    #[default]
    Published,
    Draft,
}

/// `PUT /api/environments/{env}/upgrade/test/access/{user}`: what the user may do in
/// the test database beyond their upgraded roles (target entity names). An empty map
/// withdraws the grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestAccessGrant {
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub privileges: Privileges,
}

/// What one user may do in the test database: the upgraded roles (production's roles
/// as the upgrade maps them, what production will give after step 3) and the admin's
/// grant for testing. Admins may do everything; in an open environment, everyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestAccess {
    pub user: String,
    #[schema(value_type = Vec<BTreeMap<String, Vec<String>>>)]
    pub from_roles: Vec<Privileges>,
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub granted: Privileges,
}

/// Where a plan comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    /// Compiled into the server.
    Shipped,
    /// Uploaded with `PUT /api/plans/{name}`.
    Uploaded,
    /// A `<name>.toml` file in the server's `DATA_DIR/plans/`.
    File,
}

/// `GET /api/plans`: one plan an upgrade can name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanSummary {
    pub name: String,
    pub source: PlanSource,
}

/// `GET /api/plans/{name}` and the answer to `PUT`: a plan and its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanDetail {
    pub name: String,
    pub source: PlanSource,
    /// The schema version it upgrades from, and to.
    pub from: SchemaVersion,
    pub to: SchemaVersion,
    /// The plan's TOML.
    pub text: String,
}

/// Where an upgrade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeStatus {
    Step1Running,
    Step1Failed,
    Step2Verifying,
    Step3Running,
    Completed,
    Cancelled,
    /// A revert of the completed upgrade runs.
    RevertRunning,
    /// Production is back on the database it was on before the upgrade.
    Reverted,
}

/// The phases of step 1, then step 3's, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    LockSchema,
    Plan,
    CreateTestDatabase,
    Copy,
    Check,
    Done,
    Preflight,
    Capture,
    Build,
    CatchUp,
    Pause,
    Publish,
}

/// One phase's timing and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PhaseState {
    pub phase: Phase,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Units of work done and in all (entities, or rows while a copy runs).
    pub done: u64,
    pub total: u64,
    /// Seconds still needed at the rate seen so far, while the phase runs.
    pub eta_seconds: Option<f64>,
}

/// A sampled row a rule refused or warned about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    pub id: String,
    pub reason: String,
}

/// Step 1's outcome for one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntityReport {
    pub source: String,
    pub target: Option<String>,
    pub exported: u64,
    pub imported: u64,
    pub errors: u64,
    pub warnings: u64,
    /// `None` until the check ran (and for dropped entities).
    pub checksum_match: Option<bool>,
    pub error_samples: Vec<Sample>,
    pub warning_samples: Vec<Sample>,
    /// The reference product's line, for an entity whose copy lost rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    pub phase: Phase,
    pub message: String,
}

/// Done/total with an ETA.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub eta_seconds: Option<f64>,
}

/// The options step 1 was started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpgradeOptions {
    pub plan: String,
    pub language: String,
    pub currency: String,
    pub exchange_rates: BTreeMap<String, Decimal>,
    pub apps_from: AppsFrom,
    pub allow_http: Vec<String>,
}

/// What a flow bound to the test database sent, captured instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Captured {
    pub id: String,
    /// `email` or `http`.
    pub kind: String,
    pub flow_id: String,
    pub run_id: String,
    /// Sent from the test database, or by a dry run of an original on production.
    pub database: CapturedFrom,
    /// The message (`to`, `subject`, `body`) or the call (`method`, `url`, `headers`,
    /// `body`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub at: String,
}

/// Which database a captured message or call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapturedFrom {
    Test,
    Production,
}

/// `GET …/upgrade/captured`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CapturedList {
    pub value: Vec<Captured>,
}

/// `GET …/upgrade`: the upgrade's log folded, with live progress while step 1 runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Upgrade {
    pub id: String,
    pub env: String,
    pub status: UpgradeStatus,
    pub options: UpgradeOptions,
    pub test_database: String,
    /// Who started it.
    pub actor: String,
    pub started_at: String,
    pub phases: Vec<PhaseState>,
    pub entities: Vec<EntityReport>,
    pub failure: Option<Failure>,
    pub step1_duration_ms: Option<u64>,
    /// Rows done/total over the whole copy, while step 1 runs.
    pub progress: Option<Progress>,
    /// Per source entity, while step 1 runs.
    pub live_entities: BTreeMap<String, Progress>,
    /// Production's schema was changed (forced) during step 2: the test database and
    /// the copies no longer match it.
    #[serde(default)]
    pub test_database_stale: bool,
    /// Step 2's items, counted, once discovered.
    #[serde(default)]
    pub items: Option<ItemCounts>,
    /// Whether step 3 may start: every item verified or excluded.
    #[serde(default)]
    pub gate: Option<Gate>,
    /// Step 3, once started.
    #[serde(default)]
    pub step3: Option<Step3>,
}

/// `POST …/upgrade/complete`: start step 3.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteUpgrade {
    /// The longest the write pause may last, in milliseconds (default 2000).
    #[serde(default)]
    pub pause_budget_ms: Option<u64>,
    /// Pauses tried before step 3 gives up (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Start although step 2's gate is not ready (admins; the reason is logged).
    #[serde(default, rename = "override")]
    pub override_gate: Option<Override>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub reason: String,
}

/// `GET …/upgrade/complete/preflight`: what step 3 checks before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Preflight {
    /// Every check passed.
    pub ready: bool,
    pub checks: Vec<PreflightCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreflightCheck {
    /// `gate`, `test_database_current`, `disk_space`, `no_long_transaction`,
    /// `flow_runtime`.
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// An admin may start step 3 with this check failing, with a reason (the gate).
    pub overridable: bool,
}

/// Step 3 as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step3 {
    pub pause_budget_ms: u64,
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// The database production was on, kept for the revert window.
    pub from_database: String,
    /// The new production database.
    pub new_database: String,
    pub by: String,
    pub started_at: String,
    /// Production is on the new database.
    pub switched: bool,
    /// While step 3 runs: changes captured on production and not yet applied to the
    /// new production, as last measured (the catch-up brings it under a bound before
    /// each pause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup_lag: Option<u64>,
    pub pause: PauseReport,
    /// Why the last attempt failed (the upgrade is then back in step 2).
    pub failure: Option<Failure>,
    pub duration_ms: Option<u64>,
    /// When step 3 completed (RFC 3339, UTC, milliseconds).
    #[serde(default)]
    pub completed_at: Option<String>,
    /// The test database and the old production, kept for a while after completion
    /// (after a revert: the test database and the upgraded production).
    #[serde(default)]
    pub kept: Vec<KeptDatabase>,
    /// The revert, once one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<Revert>,
}

/// A revert of a completed upgrade as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Revert {
    pub reason: String,
    pub by: String,
    pub started_at: String,
    pub pause_budget_ms: u64,
    pub max_attempts: u32,
    /// Production is on the old database again.
    pub switched: bool,
    /// While the revert runs: changes made on the upgraded production and not yet
    /// carried back, as last measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    pub pause: PauseReport,
    /// Why the last attempt failed (production then stayed on the upgraded database).
    pub failure: Option<String>,
    pub duration_ms: Option<u64>,
    /// When the revert ended (RFC 3339, UTC, milliseconds).
    pub reverted_at: Option<String>,
}

/// `POST …/upgrade/revert`: put production back on the database it was on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRevert {
    /// Why (the upgrade's log keeps it).
    pub reason: String,
    /// The longest the write pause may last, in milliseconds (default 2000).
    #[serde(default)]
    pub pause_budget_ms: Option<u64>,
    /// Pauses tried before the revert gives up (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// `GET …/upgrade/revert/preview`: what a revert would carry back now, and what it
/// cannot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevertPreview {
    /// A revert may start now.
    pub possible: bool,
    /// Why it may not, when it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// The upgraded production, serving now, and the database a revert goes back to.
    pub from_database: String,
    pub to_database: String,
    /// Per entity with writes since the switch: what goes back.
    pub entities: Vec<RevertEntity>,
    /// Fields of the upgraded entities whose values a revert cannot carry back.
    pub cannot_carry: Vec<LostField>,
    /// Apps that go back to the version they had before the upgrade.
    pub apps: Vec<String>,
    /// Flows that go back to what they were before the upgrade.
    pub flows: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevertEntity {
    /// The upgraded entity, and the one its records go back to.
    pub entity: String,
    pub target_entity: String,
    /// Records created or changed since the switch, written back.
    pub upserts: u64,
    /// Records deleted since the switch, deleted in the old database too.
    pub deletes: u64,
    /// Fields that cannot go back, with how many of the changed records hold a value
    /// there (lost by a revert).
    pub lost: Vec<LostValues>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LostValues {
    pub field: String,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LostField {
    pub entity: String,
    pub field: String,
    pub reason: String,
}

/// A database a completed upgrade keeps: the test database for `test_retention_hours`,
/// the old production for `revert_window_hours` (a revert needs it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeptDatabase {
    pub kind: KeptKind,
    pub database: String,
    /// When the janitor deletes it (RFC 3339, UTC).
    pub until: String,
    pub removed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeptKind {
    Test,
    OldProduction,
    /// After a revert: the database step 3 built.
    UpgradedProduction,
}

/// Step 3's write pauses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PauseReport {
    pub attempts: Vec<PauseAttempt>,
    /// Writes that waited at the gate, over every attempt.
    pub writes_held: u64,
    /// The longest any write waited, in milliseconds.
    pub max_write_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PauseAttempt {
    pub ms: u64,
    pub outcome: PauseOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseOutcome {
    Switched,
    Aborted,
}

/// Step 2's items by where they stand; `open` are neither verified nor excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ItemCounts {
    pub total: u32,
    pub verified: u32,
    pub excluded: u32,
    pub open: u32,
    /// Items whose verification is owed and not yet done.
    pub verifying: u32,
}

/// Step 3's gate: `ready` once every item is verified or excluded; `blocking` says what
/// is still in the way, an item a line (`Sales Hub: 2 open errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Gate {
    pub ready: bool,
    pub blocking: Vec<String>,
}

/// `GET …/upgrade/report`: step 1's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub id: String,
    pub status: UpgradeStatus,
    pub step1_duration_ms: Option<u64>,
    /// What the reference product would take offline in step 3 (step 1's duration).
    pub estimated_step3_downtime_ms: Option<u64>,
    pub entities: Vec<EntityReport>,
    /// How to read the entity lines (what the counts count), so that they are not
    /// taken for a mismatch.
    pub notes: Vec<String>,
    pub changes: ChangeList,
    pub security: SecurityMapping,
    /// Step 3's write pauses, once step 3 has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseReport>,
    /// Step 3's phases with their timings, once step 3 has run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step3_phases: Vec<PhaseState>,
}

/// `GET …/upgrade/log`: the upgrade's events as they were logged, oldest first — the
/// audit trail of who did what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditLog {
    pub value: Vec<AuditEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// When (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// What (`started`, `phase_finished`, `signed_off`, `pause_attempted`, …).
    pub event: String,
    /// Who, for the events a person caused (`by`, or the account that started the
    /// upgrade).
    pub by: Option<String>,
    /// The rest of the event as logged.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
