//! What happens during an upgrade, as recorded in the control plane's event log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The options an admin starts step 1 with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartOptions {
    pub plan: String,
    pub language: String,
    pub currency: String,
    #[serde(default)]
    pub exchange_rates: BTreeMap<String, uplift_model::Decimal>,
    /// Which version of each app step 2 copies.
    #[serde(default)]
    pub apps_from: AppsFrom,
    /// Hosts that flows bound to the test database may call for real; every other
    /// call, and all their e-mail, is captured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_http: Vec<String>,
}

/// Which version of an app becomes its upgrade copy: the published one (the default;
/// the draft where nothing is published), or the draft where there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppsFrom {
    #[default]
    Published,
    Draft,
}

/// Why step 2 mailed someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailPurpose {
    /// A maker's list of items, when step 1 ended.
    Items,
    /// A maker's list again, of the items still open (`uplift upgrade notify`).
    Reminder,
    /// The admin who started the upgrade: every item is verified or excluded.
    AllVerified,
    /// Step 3 completed: to the admins who started steps 1 and 3 and every maker with
    /// an item.
    Completed,
}

/// The phases of step 1, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    LockSchema,
    Plan,
    CreateTestDatabase,
    Copy,
    Check,
    Done,
    // Step 3's.
    Preflight,
    Capture,
    Build,
    CatchUp,
    Pause,
    Publish,
}

impl Phase {
    pub const STEP1: [Phase; 6] = [
        Phase::LockSchema,
        Phase::Plan,
        Phase::CreateTestDatabase,
        Phase::Copy,
        Phase::Check,
        Phase::Done,
    ];

    pub const STEP3: [Phase; 6] = [
        Phase::Preflight,
        Phase::Capture,
        Phase::Build,
        Phase::CatchUp,
        Phase::Pause,
        Phase::Publish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Capture => "capture",
            Phase::Build => "build",
            Phase::CatchUp => "catch_up",
            Phase::Pause => "pause",
            Phase::Publish => "publish",
            Phase::LockSchema => "lock_schema",
            Phase::Plan => "plan",
            Phase::CreateTestDatabase => "create_test_database",
            Phase::Copy => "copy",
            Phase::Check => "check",
            Phase::Done => "done",
        }
    }
}

/// What step 3 was started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteOptions {
    /// The longest the write pause may last before it is aborted and tried again.
    pub pause_budget_ms: u64,
    /// Pauses tried before step 3 gives up, production as it was.
    pub max_attempts: u32,
    /// Why an admin started step 3 although step 2's gate was not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// How one write pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseOutcome {
    Switched,
    Aborted,
}

/// One sampled row that a rule could not convert, or converted with a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub reason: String,
}

/// Step 1's outcome for one entity.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EntityReport {
    pub source: String,
    pub target: Option<String>,
    pub exported: u64,
    pub imported: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Whether the check found the transformed source and the target identical;
    /// `None` until the check ran (and for dropped entities).
    pub checksum_match: Option<bool>,
    pub error_samples: Vec<Sample>,
    pub warning_samples: Vec<Sample>,
}

impl EntityReport {
    /// The reference product's line for an entity whose copy lost rows.
    pub fn summary(&self) -> Option<String> {
        (self.imported != self.exported).then(|| {
            format!(
                "exported record count {} but imported record count {}, error count {}",
                self.exported, self.imported, self.errors
            )
        })
    }
}

/// One entry of the log. Every event carries its time (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        at: String,
        options: StartOptions,
        test_database: String,
        /// Who started it: the account the test database's records are created by.
        #[serde(default)]
        actor: String,
        /// The plan's text when it started, so a resumed step runs the same plan even
        /// if an uploaded plan of that name has been replaced since. Absent in logs
        /// written before plans were uploaded; the plan is then found by name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_text: Option<String>,
    },
    PhaseStarted {
        at: String,
        phase: Phase,
        total: u64,
    },
    PhaseFinished {
        at: String,
        phase: Phase,
        /// The phase's exact size when it differs from the estimate it started with
        /// (the copy's, once deleted rows are counted out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    EntityCopied {
        at: String,
        report: EntityReport,
    },
    EntityChecked {
        at: String,
        source: String,
        checksum_match: bool,
    },
    Step1Finished {
        at: String,
        duration_ms: u64,
    },
    Failed {
        at: String,
        phase: Phase,
        message: String,
    },
    /// An admin let `user` do more in the test database than the upgraded roles give
    /// (keyed by target entity names; empty withdraws the grant). It lives and dies
    /// with the upgrade's test database.
    TestAccessGranted {
        at: String,
        user: String,
        privileges: uplift_model::security::Privileges,
        by: String,
    },
    /// Step 2 begins: every app and flow, with its rewritten copy and findings.
    ItemsDiscovered {
        at: String,
        items: Vec<crate::items::Item>,
    },
    /// A maker replaced an item's copy (validated against the target catalog).
    CopyEdited {
        at: String,
        item: String,
        copy: serde_json::Value,
        by: String,
    },
    /// The item's copy was checked: every finding the check saw.
    Verified {
        at: String,
        item: String,
        findings: Vec<crate::items::ItemFinding>,
        /// How long the verification took (both runs), in milliseconds; absent in
        /// logs written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        took_ms: Option<u64>,
    },
    FindingAccepted {
        at: String,
        item: String,
        finding: String,
        reason: String,
        by: String,
    },
    /// The item's maker (or an admin) says it is ready for step 3.
    SignedOff {
        at: String,
        item: String,
        by: String,
    },
    /// An admin leaves the item out of the upgrade.
    Excluded {
        at: String,
        item: String,
        reason: String,
        by: String,
    },
    /// Verification of these items was asked for (by a maker, an admin, or the server
    /// when step 1 ended); each is owed one until its `Verified`, even across a restart.
    VerificationRequested {
        at: String,
        items: Vec<String>,
        by: String,
    },
    /// A step 2 notice went out (or was written to the outbox directory).
    MailSent {
        at: String,
        to: String,
        purpose: MailPurpose,
        /// The items the message lists.
        items: Vec<String>,
        message_id: String,
    },
    /// Production's schema was changed during step 2 (forced): the test database and
    /// the copies no longer match it.
    TestDatabaseStale {
        at: String,
        by: String,
    },
    Retried {
        at: String,
    },
    /// An admin rebuilds the test database from production as it is now (after a
    /// forced schema change): step 1's copy and check run again, then every item is
    /// verified again; copies and makers' edits are kept.
    RefreshStarted {
        at: String,
        by: String,
    },
    Cancelled {
        at: String,
    },
    /// Step 3 begins: production is rebuilt on the new schema as `new_database`.
    Step3Started {
        at: String,
        options: CompleteOptions,
        /// Production's database when step 3 started (kept for the revert window).
        from_database: String,
        new_database: String,
        by: String,
    },
    /// One write pause: how long writes were held and how it ended (`reason` says why
    /// an aborted one was).
    PauseAttempted {
        at: String,
        attempt: u32,
        ms: u64,
        outcome: PauseOutcome,
        writes_held: u64,
        max_write_wait_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The environment's production is `database` now, its apps and flows published
    /// (one control-plane transaction).
    Switched {
        at: String,
        database: String,
        /// Old entity set and property names the plan changed, with their new names
        /// (`accounts/Address` → `address_line1, …`), for the errors old names get.
        #[serde(default)]
        renames: BTreeMap<String, String>,
    },
    /// Step 3 stopped before the switch: production is as it was, the new database is
    /// dropped and the upgrade is back in step 2, from where step 3 may start again.
    Step3Failed {
        at: String,
        phase: Phase,
        message: String,
    },
    /// The upgrade is done.
    Completed {
        at: String,
        duration_ms: u64,
    },
    /// An admin reverts the completed upgrade: production goes back to the database it
    /// was on, every write made since carried back through the inverse transforms, in a
    /// write pause bounded like step 3's.
    RevertStarted {
        at: String,
        reason: String,
        options: CompleteOptions,
        by: String,
    },
    /// Production is on the old database again, its apps, flows and roles as they were
    /// before the upgrade (one control-plane transaction).
    RevertSwitched {
        at: String,
        database: String,
        /// The upgraded names, with the old ones they go back to, for the errors a
        /// request using one gets.
        #[serde(default)]
        renames: BTreeMap<String, String>,
    },
    /// The revert is done: the upgrade is `reverted`.
    Reverted {
        at: String,
        duration_ms: u64,
    },
    /// The revert stopped before its switch: production stays on the upgraded
    /// database, the upgrade `completed`, and a revert may be tried again.
    RevertFailed {
        at: String,
        message: String,
    },
    /// A database the completed upgrade kept was deleted: by the janitor once its time
    /// was up, or by an admin's cleanup.
    DatabaseRemoved {
        at: String,
        database: KeptDatabase,
        by: String,
    },
}

/// What a completed upgrade keeps for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeptDatabase {
    /// Step 2's test database, kept `test_retention_hours`.
    Test,
    /// The database production was on, kept `revert_window_hours` for a revert.
    OldProduction,
    /// After a revert: the database step 3 built, kept `revert_window_hours` from the
    /// completion like the old production was.
    UpgradedProduction,
}

impl Event {
    /// The step 2 item an event is about, for the events that are about one.
    pub fn item(&self) -> Option<&str> {
        match self {
            Event::CopyEdited { item, .. }
            | Event::Verified { item, .. }
            | Event::FindingAccepted { item, .. }
            | Event::SignedOff { item, .. }
            | Event::Excluded { item, .. } => Some(item),
            _ => None,
        }
    }

    pub fn at(&self) -> &str {
        match self {
            Event::Started { at, .. }
            | Event::PhaseStarted { at, .. }
            | Event::PhaseFinished { at, .. }
            | Event::EntityCopied { at, .. }
            | Event::EntityChecked { at, .. }
            | Event::Step1Finished { at, .. }
            | Event::Failed { at, .. }
            | Event::TestAccessGranted { at, .. }
            | Event::ItemsDiscovered { at, .. }
            | Event::CopyEdited { at, .. }
            | Event::Verified { at, .. }
            | Event::FindingAccepted { at, .. }
            | Event::SignedOff { at, .. }
            | Event::Excluded { at, .. }
            | Event::VerificationRequested { at, .. }
            | Event::MailSent { at, .. }
            | Event::TestDatabaseStale { at, .. }
            | Event::Retried { at }
            | Event::RefreshStarted { at, .. }
            | Event::Cancelled { at }
            | Event::Step3Started { at, .. }
            | Event::PauseAttempted { at, .. }
            | Event::Switched { at, .. }
            | Event::Step3Failed { at, .. }
            | Event::Completed { at, .. }
            | Event::RevertStarted { at, .. }
            | Event::RevertSwitched { at, .. }
            | Event::Reverted { at, .. }
            | Event::RevertFailed { at, .. }
            | Event::DatabaseRemoved { at, .. } => at,
        }
    }
}
