//! An upgrade's state as a fold over its events.

use std::collections::BTreeMap;

use serde::Serialize;
use uplift_model::security::Privileges;

use crate::events::{
    CompleteOptions, EntityReport, Event, KeptDatabase, MailPurpose, PauseOutcome, Phase,
    StartOptions,
};
use crate::items::ItemState;

/// Where an upgrade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
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

impl Status {
    /// Whether the upgrade still holds the environment (only one at a time may).
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            Status::Cancelled | Status::Completed | Status::Reverted
        )
    }
}

/// A revert as the log tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevertState {
    pub reason: String,
    pub options: CompleteOptions,
    pub by: String,
    pub started_at: String,
    pub pause: PauseReport,
    /// Set once production is on the old database again.
    pub switched: bool,
    /// Upgraded names and the old ones, from the switch back on.
    #[serde(skip)]
    pub renames: BTreeMap<String, String>,
    /// Why the last attempt failed (production then stayed on the upgraded database).
    pub failure: Option<String>,
    pub duration_ms: Option<u64>,
    pub reverted_at: Option<String>,
}

/// Step 3 as the log tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step3State {
    pub options: CompleteOptions,
    pub from_database: String,
    pub new_database: String,
    pub by: String,
    pub started_at: String,
    pub pause: PauseReport,
    /// Set once production is on the new database (the point of no return).
    pub switched: bool,
    /// Old names and their new ones, from the switch on (see `Event::Switched`).
    #[serde(skip)]
    pub renames: BTreeMap<String, String>,
    /// Why the last attempt at step 3 failed (the upgrade is then back in step 2).
    pub failure: Option<Failure>,
    pub duration_ms: Option<u64>,
    /// When step 3 completed (RFC 3339, UTC): the kept databases' time runs from here.
    pub completed_at: Option<String>,
    /// The test database was deleted after completion.
    pub test_database_removed: bool,
    /// The old production was deleted: no revert is possible any more.
    pub old_production_removed: bool,
    /// After a revert, the database step 3 built was deleted.
    pub upgraded_production_removed: bool,
    /// The revert, once one was started.
    pub revert: Option<RevertState>,
}

impl Step3State {
    /// The names production answers to now: the plan's renames after the switch, their
    /// inverse after a revert's switch back.
    pub fn current_renames(&self) -> Option<&BTreeMap<String, String>> {
        match &self.revert {
            Some(r) if r.switched => Some(&r.renames),
            _ => self.switched.then_some(&self.renames),
        }
    }
}

/// Step 3's write pauses: each attempt, the writes held and the longest wait.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PauseReport {
    pub attempts: Vec<PauseAttempt>,
    pub writes_held: u64,
    pub max_write_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PauseAttempt {
    pub ms: u64,
    pub outcome: PauseOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One phase's recorded timing and size.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Everything the log says about an upgrade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeState {
    pub status: Status,
    pub options: StartOptions,
    pub test_database: String,
    pub actor: String,
    /// The plan's text as it was when the upgrade started (see `Event::Started`).
    pub plan_text: Option<String>,
    /// What admins granted users in the test database beyond their upgraded roles,
    /// by user e-mail (lower case).
    pub test_grants: BTreeMap<String, Privileges>,
    pub started_at: String,
    pub phases: Vec<PhaseState>,
    /// Per source entity, in the order they were copied.
    pub entities: Vec<EntityReport>,
    pub failure: Option<Failure>,
    /// Step 1's duration: the estimate of step 3's downtime in the reference product.
    pub step1_duration_ms: Option<u64>,
    /// Production's schema changed (forced) during step 2, after the test database was
    /// built from it.
    pub test_database_stale: bool,
    /// Step 2's apps and flows, once discovered (`None` before); served by the items
    /// API, not with the status.
    #[serde(skip)]
    pub items: Option<Vec<crate::items::ItemState>>,
    /// How many times the test database was rebuilt from production during step 2.
    pub refreshes: u32,
    /// Step 2's notices sent: to whom, why, when.
    #[serde(skip)]
    pub mails: Vec<(String, MailPurpose, String)>,
    /// Step 3, once started.
    pub step3: Option<Step3State>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub phase: Phase,
    pub message: String,
}

/// A log that breaks the state machine: a bug in whoever wrote it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("upgrade log event {index} ({event}) is not allowed when the upgrade is {status}")]
pub struct FoldError {
    pub index: usize,
    pub event: String,
    pub status: String,
}

fn name(e: &Event) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_string))
        .unwrap_or_default()
}

impl UpgradeState {
    fn phase_mut(&mut self, phase: Phase) -> &mut PhaseState {
        let i = self
            .phases
            .iter()
            .position(|p| p.phase == phase)
            .unwrap_or(0);
        &mut self.phases[i]
    }

    /// Whether `source`'s copy is recorded (a resumed step skips it).
    pub fn copied(&self, source: &str) -> bool {
        self.entities.iter().any(|e| e.source == source)
    }
}

/// One of step 2's events about an item; one about an item that is not there changes
/// nothing (the service checks before it logs).
fn item_event(s: &mut UpgradeState, e: &Event) {
    let Some(item) = e.item() else {
        return;
    };
    let Some(i) = s
        .items
        .as_mut()
        .and_then(|all| all.iter_mut().find(|i| i.item.id == item))
    else {
        return;
    };
    match e {
        Event::CopyEdited { copy, .. } => i.edited(copy),
        Event::Verified {
            at,
            findings,
            took_ms,
            ..
        } => {
            i.verified(findings);
            i.checked_at = Some(at.clone());
            i.verification_ms = *took_ms;
        }
        Event::FindingAccepted {
            finding,
            reason,
            by,
            ..
        } => i.accept(finding, reason, by),
        Event::SignedOff { at, by, .. } => i.signed_off = Some((by.clone(), at.clone())),
        Event::Excluded { reason, by, .. } => i.excluded = Some((reason.clone(), by.clone())),
        _ => {}
    }
}

/// Whether `e` is one of step 3's events (or a phase event while step 3 runs) that
/// fits where `s` stands.
fn fits_step3(s: &UpgradeState, e: &Event) -> bool {
    let running = s.status == Status::Step3Running;
    match e {
        Event::Step3Started { .. } => s.status == Status::Step2Verifying,
        Event::PauseAttempted { .. } => running || s.status == Status::RevertRunning,
        Event::PhaseStarted { .. }
        | Event::PhaseFinished { .. }
        | Event::Switched { .. }
        | Event::Completed { .. } => running,
        Event::DatabaseRemoved { .. } => {
            matches!(s.status, Status::Completed | Status::Reverted)
        }
        Event::Step3Failed { .. } => running && !s.step3.as_ref().is_some_and(|t| t.switched),
        Event::RevertStarted { .. } => {
            s.status == Status::Completed
                && s.step3.as_ref().is_some_and(|t| !t.old_production_removed)
        }
        Event::RevertSwitched { .. } | Event::Reverted { .. } => s.status == Status::RevertRunning,
        Event::RevertFailed { .. } => {
            s.status == Status::RevertRunning
                && !s
                    .step3
                    .as_ref()
                    .and_then(|t| t.revert.as_ref())
                    .is_some_and(|r| r.switched)
        }
        _ => false,
    }
}

/// Folds one of step 3's events into `s` (see [`fits_step3`]).
fn step3_event(s: &mut UpgradeState, e: &Event) {
    match e {
        Event::Step3Started {
            at,
            options,
            from_database,
            new_database,
            by,
        } => {
            s.status = Status::Step3Running;
            s.step3 = Some(Step3State {
                options: options.clone(),
                from_database: from_database.clone(),
                new_database: new_database.clone(),
                renames: BTreeMap::new(),
                by: by.clone(),
                started_at: at.clone(),
                pause: PauseReport::default(),
                switched: false,
                failure: None,
                duration_ms: None,
                completed_at: None,
                test_database_removed: false,
                old_production_removed: false,
                upgraded_production_removed: false,
                revert: None,
            });
            s.phases.retain(|p| !Phase::STEP3.contains(&p.phase));
            s.phases.extend(Phase::STEP3.iter().map(|p| PhaseState {
                phase: *p,
                started_at: None,
                finished_at: None,
                done: 0,
                total: 0,
                eta_seconds: None,
            }));
        }
        Event::PhaseStarted { .. } | Event::PhaseFinished { .. } => phase_event(s, e),
        Event::PauseAttempted {
            ms,
            outcome,
            writes_held,
            max_write_wait_ms,
            reason,
            ..
        } => {
            let reverting = s.status == Status::RevertRunning;
            let pause = s.step3.as_mut().and_then(|t| match reverting {
                true => t.revert.as_mut().map(|r| &mut r.pause),
                false => Some(&mut t.pause),
            });
            if let Some(p) = pause {
                p.attempts.push(PauseAttempt {
                    ms: *ms,
                    outcome: *outcome,
                    reason: reason.clone(),
                });
                p.writes_held += writes_held;
                p.max_write_wait_ms = p.max_write_wait_ms.max(*max_write_wait_ms);
            }
        }
        Event::Switched { renames, .. } => {
            if let Some(t) = s.step3.as_mut() {
                t.switched = true;
                t.renames = renames.clone();
            }
        }
        Event::Step3Failed { phase, message, .. } => {
            s.status = Status::Step2Verifying;
            if let Some(t) = s.step3.as_mut() {
                t.failure = Some(Failure {
                    phase: *phase,
                    message: message.clone(),
                });
            }
        }
        Event::Completed { at, duration_ms } => {
            s.status = Status::Completed;
            if let Some(t) = s.step3.as_mut() {
                t.duration_ms = Some(*duration_ms);
                t.completed_at = Some(at.clone());
            }
        }
        Event::DatabaseRemoved { database, .. } => {
            if let Some(t) = s.step3.as_mut() {
                match database {
                    KeptDatabase::Test => t.test_database_removed = true,
                    KeptDatabase::OldProduction => t.old_production_removed = true,
                    KeptDatabase::UpgradedProduction => t.upgraded_production_removed = true,
                }
            }
        }
        _ => revert_event(s, e),
    }
}

/// Folds one of a revert's events into `s` (see [`fits_step3`]).
fn revert_event(s: &mut UpgradeState, e: &Event) {
    let Some(t) = s.step3.as_mut() else {
        return;
    };
    match e {
        Event::RevertStarted {
            at,
            reason,
            options,
            by,
        } => {
            s.status = Status::RevertRunning;
            t.revert = Some(RevertState {
                reason: reason.clone(),
                options: options.clone(),
                by: by.clone(),
                started_at: at.clone(),
                pause: PauseReport::default(),
                switched: false,
                renames: BTreeMap::new(),
                failure: None,
                duration_ms: None,
                reverted_at: None,
            });
        }
        Event::RevertSwitched { renames, .. } => {
            if let Some(r) = t.revert.as_mut() {
                r.switched = true;
                r.renames = renames.clone();
            }
        }
        Event::Reverted { at, duration_ms } => {
            s.status = Status::Reverted;
            if let Some(r) = t.revert.as_mut() {
                r.duration_ms = Some(*duration_ms);
                r.reverted_at = Some(at.clone());
            }
        }
        Event::RevertFailed { message, .. } => {
            s.status = Status::Completed;
            if let Some(r) = t.revert.as_mut() {
                r.failure = Some(message.clone());
            }
        }
        _ => {}
    }
}

fn phase_event(s: &mut UpgradeState, e: &Event) {
    match e {
        Event::PhaseStarted { at, phase, total } => {
            let p = s.phase_mut(*phase);
            p.started_at = Some(at.clone());
            p.finished_at = None;
            p.total = *total;
            p.done = 0;
            p.eta_seconds = None;
        }
        Event::PhaseFinished { at, phase, total } => {
            let p = s.phase_mut(*phase);
            p.finished_at = Some(at.clone());
            if let Some(t) = total {
                p.total = *t;
            }
            p.done = p.total;
            p.eta_seconds = Some(0.0);
        }
        _ => {}
    }
}

/// Folds a log into the upgrade's state. The first event must be `Started`.
pub fn fold(events: &[Event]) -> Result<Option<UpgradeState>, FoldError> {
    fold_more(None, 0, events)
}

/// Folds more of a log into a state folded from its first `done` events, so a long log
/// (step 2 logs an event per verification) is not read and folded again whole.
pub fn fold_more(
    mut state: Option<UpgradeState>,
    done: usize,
    events: &[Event],
) -> Result<Option<UpgradeState>, FoldError> {
    for (i, e) in events.iter().enumerate() {
        let index = done + i;
        let bad = |status: &str| FoldError {
            index,
            event: name(e),
            status: status.to_string(),
        };
        match (&mut state, e) {
            (
                None,
                Event::Started {
                    at,
                    options,
                    test_database,
                    actor,
                    plan_text,
                },
            ) => {
                state = Some(UpgradeState {
                    status: Status::Step1Running,
                    options: options.clone(),
                    test_database: test_database.clone(),
                    actor: actor.clone(),
                    plan_text: plan_text.clone(),
                    test_grants: BTreeMap::new(),
                    started_at: at.clone(),
                    phases: Phase::STEP1
                        .iter()
                        .map(|p| PhaseState {
                            phase: *p,
                            started_at: None,
                            finished_at: None,
                            done: 0,
                            total: 0,
                            eta_seconds: None,
                        })
                        .collect(),
                    entities: Vec::new(),
                    failure: None,
                    step1_duration_ms: None,
                    test_database_stale: false,
                    items: None,
                    refreshes: 0,
                    mails: Vec::new(),
                    step3: None,
                });
            }
            (None, _) => return Err(bad("not started")),
            (Some(s), _) if s.status == Status::Cancelled => return Err(bad("cancelled")),
            (Some(_), Event::Started { .. }) => return Err(bad("started")),
            (Some(s), Event::Cancelled { .. })
                if s.status == Status::Completed
                    || s.step3.as_ref().is_some_and(|t| t.switched) =>
            {
                return Err(bad("switched"));
            }
            (Some(s), Event::Cancelled { .. }) => s.status = Status::Cancelled,
            (Some(s), Event::RefreshStarted { .. }) if s.status == Status::Step2Verifying => {
                s.status = Status::Step1Running;
                for p in &mut s.phases {
                    *p = PhaseState {
                        phase: p.phase,
                        started_at: None,
                        finished_at: None,
                        done: 0,
                        total: 0,
                        eta_seconds: None,
                    };
                }
                s.entities.clear();
                s.step1_duration_ms = None;
                s.test_database_stale = false;
                s.refreshes += 1;
            }
            (Some(s), Event::Retried { .. }) if s.status == Status::Step1Failed => {
                s.status = Status::Step1Running;
                s.failure = None;
            }
            (
                Some(s),
                Event::TestAccessGranted {
                    user, privileges, ..
                },
            ) if s.status == Status::Step2Verifying => {
                let user = user.to_lowercase();
                if privileges.is_empty() {
                    s.test_grants.remove(&user);
                } else {
                    s.test_grants.insert(user, privileges.clone());
                }
            }
            (Some(s), Event::ItemsDiscovered { items, .. })
                if matches!(s.status, Status::Step1Running | Status::Step2Verifying) =>
            {
                s.items = Some(items.iter().cloned().map(ItemState::new).collect());
            }
            (Some(s), Event::TestDatabaseStale { .. }) if s.status == Status::Step2Verifying => {
                s.test_database_stale = true;
            }
            (Some(s), Event::VerificationRequested { items, .. })
                if s.status == Status::Step2Verifying =>
            {
                for i in s.items.iter_mut().flatten() {
                    if items.contains(&i.item.id) {
                        i.pending = true;
                    }
                }
            }
            (
                Some(s),
                Event::MailSent {
                    at, to, purpose, ..
                },
            ) if s.status == Status::Step2Verifying
                || (matches!(
                    s.status,
                    Status::Completed | Status::RevertRunning | Status::Reverted
                ) && *purpose == MailPurpose::Completed) =>
            {
                s.mails.push((to.clone(), *purpose, at.clone()));
            }
            (Some(s), e) if s.status == Status::Step2Verifying && e.item().is_some() => {
                item_event(s, e);
            }
            (Some(s), e) if fits_step3(s, e) => step3_event(s, e),
            (Some(s), _) if s.status != Status::Step1Running => {
                let status = format!("{:?}", s.status);
                return Err(bad(&status));
            }
            (Some(_), Event::TestAccessGranted { .. }) => return Err(bad("Step1Running")),
            // Allowed while step 1 runs (above): this arm only completes the match.
            (Some(_), Event::ItemsDiscovered { .. }) => return Err(bad("Step1Running")),
            (
                Some(_),
                Event::CopyEdited { .. }
                | Event::Verified { .. }
                | Event::FindingAccepted { .. }
                | Event::SignedOff { .. }
                | Event::Excluded { .. }
                | Event::VerificationRequested { .. }
                | Event::MailSent { .. }
                | Event::TestDatabaseStale { .. },
            ) => return Err(bad("Step1Running")),
            (Some(s), e @ (Event::PhaseStarted { .. } | Event::PhaseFinished { .. })) => {
                phase_event(s, e);
            }
            (Some(s), Event::EntityCopied { report, .. }) => {
                s.entities.retain(|r| r.source != report.source);
                s.entities.push(report.clone());
            }
            (
                Some(s),
                Event::EntityChecked {
                    source,
                    checksum_match,
                    ..
                },
            ) => {
                if let Some(r) = s.entities.iter_mut().find(|r| r.source == *source) {
                    r.checksum_match = Some(*checksum_match);
                }
            }
            (Some(s), Event::Step1Finished { duration_ms, .. }) => {
                s.status = Status::Step2Verifying;
                s.step1_duration_ms = Some(*duration_ms);
            }
            (Some(s), Event::Failed { phase, message, .. }) => {
                s.status = Status::Step1Failed;
                s.failure = Some(Failure {
                    phase: *phase,
                    message: message.clone(),
                });
            }
            (
                Some(_),
                Event::Retried { .. }
                | Event::RefreshStarted { .. }
                | Event::Step3Started { .. }
                | Event::PauseAttempted { .. }
                | Event::Switched { .. }
                | Event::Step3Failed { .. }
                | Event::Completed { .. }
                | Event::RevertStarted { .. }
                | Event::RevertSwitched { .. }
                | Event::Reverted { .. }
                | Event::RevertFailed { .. }
                | Event::DatabaseRemoved { .. },
            ) => {
                return Err(bad("running"));
            }
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Event {
        Event::Started {
            at: "t0".into(),
            options: StartOptions {
                plan: "classic-to-modern".into(),
                language: "en".into(),
                currency: "USD".into(),
                exchange_rates: Default::default(),
                apps_from: Default::default(),
                allow_http: Vec::new(),
            },
            test_database: "test-1".into(),
            actor: "admin@x".into(),
            plan_text: None,
        }
    }

    fn copied(source: &str) -> Event {
        Event::EntityCopied {
            at: "t".into(),
            report: EntityReport {
                source: source.into(),
                exported: 3,
                imported: 3,
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_full_step_one() {
        let log = vec![
            started(),
            Event::PhaseStarted {
                at: "t1".into(),
                phase: Phase::Copy,
                total: 2,
            },
            copied("Account"),
            copied("Contact"),
            Event::PhaseFinished {
                at: "t2".into(),
                phase: Phase::Copy,
                total: None,
            },
            Event::EntityChecked {
                at: "t3".into(),
                source: "Account".into(),
                checksum_match: true,
            },
            Event::Step1Finished {
                at: "t4".into(),
                duration_ms: 1234,
            },
        ];
        let s = fold(&log).unwrap().unwrap();
        assert_eq!(s.status, Status::Step2Verifying);
        assert_eq!(s.step1_duration_ms, Some(1234));
        assert!(s.copied("Contact") && !s.copied("Product"));
        assert_eq!(s.entities[0].checksum_match, Some(true));
        let copy = s.phases.iter().find(|p| p.phase == Phase::Copy).unwrap();
        assert_eq!(
            (copy.done, copy.total, copy.finished_at.as_deref()),
            (2, 2, Some("t2"))
        );
    }

    #[test]
    fn failure_retry_and_cancel() {
        let mut log = vec![
            started(),
            Event::Failed {
                at: "t".into(),
                phase: Phase::Copy,
                message: "disk full".into(),
            },
        ];
        assert_eq!(fold(&log).unwrap().unwrap().status, Status::Step1Failed);
        log.push(Event::Retried { at: "t".into() });
        let s = fold(&log).unwrap().unwrap();
        assert_eq!((s.status, s.failure), (Status::Step1Running, None));
        log.push(Event::Cancelled { at: "t".into() });
        assert_eq!(fold(&log).unwrap().unwrap().status, Status::Cancelled);
        log.push(copied("Account"));
        assert!(fold(&log).is_err(), "nothing follows a cancel");
    }

    #[test]
    fn the_log_must_start_with_started_and_not_restart() {
        assert!(fold(&[copied("Account")]).is_err());
        assert!(fold(&[started(), started()]).is_err());
        assert_eq!(fold(&[]).unwrap(), None);
        assert!(
            fold(&[started(), Event::Retried { at: "t".into() }]).is_err(),
            "retry needs a failure"
        );
    }

    #[test]
    fn the_reference_summary_line() {
        let r = EntityReport {
            source: "X".into(),
            exported: 17,
            imported: 0,
            errors: 17,
            ..Default::default()
        };
        assert_eq!(
            r.summary().unwrap(),
            "exported record count 17 but imported record count 0, error count 17"
        );
        let ok = EntityReport {
            exported: 3,
            imported: 3,
            ..Default::default()
        };
        assert_eq!(ok.summary(), None);
    }

    fn step3_started() -> Event {
        Event::Step3Started {
            at: "t5".into(),
            options: CompleteOptions {
                pause_budget_ms: 100,
                max_attempts: 2,
                override_reason: None,
            },
            from_database: "prod".into(),
            new_database: "prod-1".into(),
            by: "admin@x".into(),
        }
    }

    fn in_step2() -> Vec<Event> {
        vec![
            started(),
            Event::Step1Finished {
                at: "t4".into(),
                duration_ms: 1,
            },
        ]
    }

    fn attempt(outcome: PauseOutcome, ms: u64, held: u64) -> Event {
        Event::PauseAttempted {
            at: "t6".into(),
            attempt: 1,
            ms,
            outcome,
            writes_held: held,
            max_write_wait_ms: ms,
            reason: None,
        }
    }

    #[test]
    fn step3_aborts_a_pause_switches_and_completes() {
        let mut log = in_step2();
        log.push(step3_started());
        assert_eq!(fold(&log).unwrap().unwrap().status, Status::Step3Running);
        log.push(attempt(PauseOutcome::Aborted, 120, 3));
        log.push(attempt(PauseOutcome::Switched, 40, 2));
        log.push(Event::Switched {
            at: "t7".into(),
            database: "prod-1".into(),
            renames: BTreeMap::from([("tickets".into(), "cr_tickets".into())]),
        });
        log.push(Event::Completed {
            at: "t8".into(),
            duration_ms: 900,
        });
        let s = fold(&log).unwrap().unwrap();
        assert_eq!(s.status, Status::Completed);
        assert!(
            !s.status.is_active(),
            "a completed upgrade frees the environment"
        );
        let t = s.step3.unwrap();
        assert_eq!((t.pause.writes_held, t.pause.max_write_wait_ms), (5, 120));
        assert_eq!(t.pause.attempts.len(), 2);
        assert_eq!(t.renames["tickets"], "cr_tickets");
    }

    #[test]
    fn after_the_switch_step3_cannot_fail_back_nor_be_cancelled() {
        let mut log = in_step2();
        log.push(step3_started());
        log.push(Event::Switched {
            at: "t7".into(),
            database: "prod-1".into(),
            renames: BTreeMap::new(),
        });
        for late in [
            Event::Step3Failed {
                at: "t".into(),
                phase: Phase::Publish,
                message: "x".into(),
            },
            Event::Cancelled { at: "t".into() },
        ] {
            let mut l = log.clone();
            l.push(late);
            assert!(fold(&l).is_err(), "{l:?}");
        }
    }

    #[test]
    fn a_failed_step3_returns_to_step2_and_may_start_again() {
        let mut log = in_step2();
        log.push(step3_started());
        log.push(Event::Step3Failed {
            at: "t".into(),
            phase: Phase::Build,
            message: "disk full".into(),
        });
        let s = fold(&log).unwrap().unwrap();
        assert_eq!(s.status, Status::Step2Verifying);
        assert_eq!(s.step3.unwrap().failure.unwrap().phase, Phase::Build);
        log.push(step3_started());
        assert_eq!(fold(&log).unwrap().unwrap().status, Status::Step3Running);
        assert!(
            fold(&[started(), step3_started()]).is_err(),
            "step 3 starts from step 2 only"
        );
    }

    fn completed() -> Vec<Event> {
        let mut log = in_step2();
        log.push(step3_started());
        log.push(Event::Switched {
            at: "t7".into(),
            database: "prod-1".into(),
            renames: BTreeMap::from([("tickets".into(), "cr_tickets".into())]),
        });
        log.push(Event::Completed {
            at: "t8".into(),
            duration_ms: 900,
        });
        log
    }

    fn revert_started() -> Event {
        Event::RevertStarted {
            at: "t9".into(),
            reason: "broken".into(),
            options: CompleteOptions {
                pause_budget_ms: 100,
                max_attempts: 2,
                override_reason: None,
            },
            by: "admin@x".into(),
        }
    }

    #[test]
    fn a_revert_pauses_switches_back_and_ends_reverted() {
        let mut log = completed();
        log.push(revert_started());
        assert_eq!(fold(&log).unwrap().unwrap().status, Status::RevertRunning);
        assert!(fold(&log).unwrap().unwrap().status.is_active());
        log.push(attempt(PauseOutcome::Switched, 12, 1));
        log.push(Event::RevertSwitched {
            at: "t10".into(),
            database: "prod".into(),
            renames: BTreeMap::from([("cr_tickets".into(), "tickets".into())]),
        });
        log.push(Event::Reverted {
            at: "t11".into(),
            duration_ms: 50,
        });
        let s = fold(&log).unwrap().unwrap();
        assert_eq!(s.status, Status::Reverted);
        let t = s.step3.unwrap();
        assert_eq!(t.pause.attempts.len(), 0, "step 3's pauses are its own");
        let r = t.revert.as_ref().unwrap();
        assert_eq!((r.pause.attempts.len(), r.switched), (1, true));
        assert_eq!(t.current_renames().unwrap()["cr_tickets"], "tickets");
    }

    #[test]
    fn a_revert_fits_only_where_the_log_allows_it() {
        let removed = Event::DatabaseRemoved {
            at: "t9".into(),
            database: KeptDatabase::OldProduction,
            by: "janitor".into(),
        };
        let switched_back = Event::RevertSwitched {
            at: "t10".into(),
            database: "prod".into(),
            renames: BTreeMap::new(),
        };
        let failed = Event::RevertFailed {
            at: "t10".into(),
            message: "x".into(),
        };
        let cases: Vec<(Vec<Event>, bool)> = vec![
            ([in_step2(), vec![revert_started()]].concat(), false),
            ([completed(), vec![revert_started()]].concat(), true),
            (
                [completed(), vec![removed, revert_started()]].concat(),
                false,
            ),
            (
                [completed(), vec![revert_started(), failed.clone()]].concat(),
                true,
            ),
            (
                [
                    completed(),
                    vec![revert_started(), failed.clone(), revert_started()],
                ]
                .concat(),
                true,
            ),
            (
                [completed(), vec![revert_started(), switched_back, failed]].concat(),
                false,
            ),
        ];
        for (log, fits) in cases {
            assert_eq!(fold(&log).is_ok(), fits, "{log:?}");
        }
        let mut log = completed();
        log.extend([
            revert_started(),
            Event::RevertFailed {
                at: "t".into(),
                message: "disk full".into(),
            },
        ]);
        let s = fold(&log).unwrap().unwrap();
        assert_eq!(
            s.status,
            Status::Completed,
            "a failed revert leaves it completed"
        );
        assert_eq!(
            s.step3.unwrap().revert.unwrap().failure.as_deref(),
            Some("disk full")
        );
    }
}
