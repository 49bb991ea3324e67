//! Step 2 as the runner drives it: discovering the items when step 1 ends (again on
//! restart, should the server stop in between), and removing the upgraded clones when
//! the upgrade is cancelled.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as Json;
use uplift_model::Catalog;
use uplift_model::app::AppDef;
use uplift_model::flow::{self, FlowDef};
use uplift_plan::rewrite::NameMap;

use super::{UpgradeError, Upgrades, now};
use crate::events::{AppsFrom, Event, MailPurpose};
use crate::items::{self, ItemKind, ItemState, SourceApp, SourceFlow};
use crate::state::{Status, UpgradeState};
use uplift_plan::rewrite::{Finding, Severity};
use uplift_store::control::AppRecord;

impl Upgrades {
    /// Finds every app and flow bound to production, stores the upgraded flow clones
    /// (bound to the test database) and logs the items. Running it again gives the same
    /// items and overwrites the same clones.
    pub(super) async fn discover_items(
        &self,
        env: &str,
        id: &str,
        state: &UpgradeState,
    ) -> Result<(), UpgradeError> {
        let control = self.store.control();
        let production = self.production(env).await?;
        let source = self.store.env_db(env).await?.catalog();
        let upgrade = self.planned(state, &source).await?;
        let apps: Vec<SourceApp> = control
            .apps(env)
            .await?
            .into_iter()
            .filter_map(|a| source_app(a, &production, state.options.apps_from))
            .collect();
        let mut flows = Vec::new();
        for f in control.flows(env).await? {
            if f.database != production {
                continue;
            }
            let last_run_at = control
                .runs(env, &f.id, 1)
                .await?
                .first()
                .map(|r| r.created_at.clone());
            flows.push(SourceFlow {
                id: f.id,
                definition: f.definition,
                last_run_at,
            });
        }
        control
            .set_allowed_hosts(env, &state.test_database, &state.options.allow_http)
            .await?;
        let map = NameMap::new(&source, &upgrade.target, &upgrade.changes);
        let found = items::discover(id, &apps, &flows, &map, &upgrade.target);
        for c in &found.clones {
            control
                .save_flow(env, &c.id, &c.definition, &state.test_database)
                .await?;
        }
        self.log(
            id,
            &Event::ItemsDiscovered {
                at: now(),
                items: found.items,
            },
        )
        .await?;
        // Every item is owed its first verification, and its makers their notice.
        self.step2_work.notify_one();
        Ok(())
    }

    /// The name of `env`'s production database.
    async fn production(&self, env: &str) -> Result<String, UpgradeError> {
        Ok(self
            .store
            .control()
            .get_env(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("no environment '{env}'")))?
            .database)
    }

    /// Removes the upgraded clones of a cancelled upgrade: they are bound to the test
    /// database, which goes with it.
    pub(super) async fn remove_clones(
        &self,
        env: &str,
        state: &UpgradeState,
    ) -> Result<(), UpgradeError> {
        for item in state.items.iter().flatten() {
            if item.item.kind == ItemKind::Flow {
                self.store
                    .control()
                    .delete_flow(env, &item.item.copy_id)
                    .await?;
            }
        }
        Ok(())
    }
}

/// A maker's or admin's change to an item.
pub enum ItemChange {
    /// Replace the copy (validated against the target catalog first); a verification
    /// is then owed.
    Edit(Json),
    Accept {
        finding: String,
        reason: String,
    },
    SignOff,
    Exclude {
        reason: String,
    },
}

impl Upgrades {
    /// Applies `change` to item `item` of `env`'s upgrade, as `by`, and logs it.
    /// Refused unless step 2 runs and the item is there; an excluded item takes no
    /// change.
    pub async fn change_item(
        &self,
        env: &str,
        item: &str,
        change: ItemChange,
        by: &str,
    ) -> Result<(), UpgradeError> {
        let (id, state) = self.step2(env).await?;
        let current = state
            .items
            .iter()
            .flatten()
            .find(|i| i.item.id == item)
            .ok_or_else(|| {
                UpgradeError::NotFound(format!("no item '{item}' in the upgrade of '{env}'"))
            })?;
        if let Some((reason, _)) = &current.excluded {
            return Err(UpgradeError::Conflict(format!(
                "'{}' is excluded from the upgrade ({reason})",
                current.item.name
            )));
        }
        let at = now();
        let item = item.to_string();
        let by = by.to_string();
        let event = match change {
            ItemChange::Edit(copy) => Event::CopyEdited {
                at,
                item,
                copy: self.saved_copy(env, &state, current, copy).await?,
                by,
            },
            ItemChange::Accept { finding, reason } => {
                accepted(current, &item, finding, reason, by)?
            }
            ItemChange::SignOff => signed_off(current, &item, by)?,
            ItemChange::Exclude { reason } => Event::Excluded {
                at,
                item,
                reason: nonempty(reason)?,
                by,
            },
        };
        self.log(&id, &event).await?;
        // A sign-off or an exclusion may have opened the gate.
        self.step2_work.notify_one();
        Ok(())
    }

    pub(super) async fn step2(&self, env: &str) -> Result<(String, UpgradeState), UpgradeError> {
        self.latest(env)
            .await?
            .filter(|(_, s)| s.status == Status::Step2Verifying && s.items.is_some())
            .ok_or_else(|| UpgradeError::Conflict(format!("'{env}' has no upgrade in step 2")))
    }

    /// The target catalog of `state`'s upgrade: planned once per production catalog
    /// (a forced schema change gives production a new one), not per verification.
    async fn target_catalog(
        &self,
        env: &str,
        state: &UpgradeState,
    ) -> Result<Arc<Catalog>, UpgradeError> {
        let source = self.store.env_db(env).await?.catalog();
        let key = format!("{env}\u{0}{}", state.test_database);
        let cached = self.targets.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some((from, target)) = cached
            && Arc::ptr_eq(&from, &source)
        {
            return Ok(target);
        }
        let target = Arc::new(self.planned(state, &source).await?.target);
        if let Ok(mut m) = self.targets.lock() {
            m.insert(key, (source, target.clone()));
        }
        Ok(target)
    }

    /// The target catalog and the upgraded flows' triggers, which an app's commands need.
    async fn target(
        &self,
        env: &str,
        state: &UpgradeState,
    ) -> Result<(Arc<Catalog>, BTreeMap<String, flow::Trigger>), UpgradeError> {
        let target = self.target_catalog(env, state).await?;
        let triggers = state
            .items
            .iter()
            .flatten()
            .filter(|i| i.item.kind == ItemKind::Flow)
            .filter_map(|i| {
                let def: FlowDef = serde_json::from_value(i.item.copy.clone()).ok()?;
                Some((i.item.copy_id.clone(), def.trigger))
            })
            .collect();
        Ok((target, triggers))
    }

    /// A new copy, refused unless it is a valid definition for the target catalog; a
    /// flow's is saved to its clone (on or off as the maker sends it: bound to the test
    /// database, its e-mail and HTTP calls are captured).
    async fn saved_copy(
        &self,
        env: &str,
        state: &UpgradeState,
        current: &ItemState,
        copy: Json,
    ) -> Result<Json, UpgradeError> {
        let (target, triggers) = self.target(env, state).await?;
        let kind = current.item.kind;
        let not_a = |e: String| {
            let what = match kind {
                ItemKind::App => "an app",
                ItemKind::Flow => "a flow",
            };
            UpgradeError::Invalid(format!("the copy is not {what} definition: {e}"))
        };
        let problems = items::check(kind, &copy, &target, &triggers).map_err(not_a)?;
        if !problems.is_empty() {
            let listed: Vec<String> = problems
                .iter()
                .map(|f| format!("{}: {}", f.location, f.message))
                .collect();
            return Err(UpgradeError::Invalid(listed.join("; ")));
        }
        // `check` parsed it already; parsed again here only to store it in its
        // normal form (defaults filled in).
        let normal = |e: serde_json::Error| not_a(e.to_string());
        match kind {
            ItemKind::App => {
                let def: AppDef = serde_json::from_value(copy).map_err(normal)?;
                Ok(serde_json::to_value(&def).unwrap_or(Json::Null))
            }
            ItemKind::Flow => {
                let def: FlowDef = serde_json::from_value(copy).map_err(normal)?;
                self.store
                    .control()
                    .save_flow(env, &current.item.copy_id, &def, &state.test_database)
                    .await?;
                Ok(serde_json::to_value(&def).unwrap_or(Json::Null))
            }
        }
    }

    /// What verifying `item` needs: the item, where its copy and original run, and
    /// what the static checks found (the copy against the target catalog, the original
    /// against production's).
    pub async fn to_verify(&self, env: &str, item: &str) -> Result<ToVerify, UpgradeError> {
        let (_, state) = self.step2(env).await?;
        let current = find_item(&state, env, item)?.clone();
        let (target, triggers) = self.target(env, &state).await?;
        let kind = current.item.kind;
        let copy = items::check(kind, &current.item.copy, &target, &triggers)
            .map_err(UpgradeError::Invalid)?;
        let control = self.store.control();
        let production = self.production(env).await?;
        let source = self.store.env_db(env).await?.catalog();
        // Production's flows' triggers, for an app's commands (a flow has none).
        let commands = current.item.original["commands"]
            .as_array()
            .is_some_and(|c| !c.is_empty());
        let mut originals: BTreeMap<String, flow::Trigger> = BTreeMap::new();
        if commands {
            for f in control.flows(env).await? {
                if f.database == production {
                    originals.insert(f.id, f.definition.trigger);
                }
            }
        }
        // An original that is no definition at all (written before a format change)
        // has no findings to compare with.
        let original =
            items::check(kind, &current.item.original, &source, &originals).unwrap_or_default();
        Ok(ToVerify {
            item: current,
            test_database: state.test_database,
            production,
            copy,
            original,
        })
    }

    /// Logs a verification of `item`: what the checks of the copy saw and what those of
    /// the original saw (static and run, from [`Upgrades::to_verify`] and the caller).
    pub async fn record_verified(
        &self,
        env: &str,
        item: &str,
        copy: Vec<Finding>,
        original: &[Finding],
        took_ms: u64,
    ) -> Result<(), UpgradeError> {
        let (id, state) = self.step2(env).await?;
        let current = find_item(&state, env, item)?;
        let findings = current.verification(copy, original);
        self.log(
            &id,
            &Event::Verified {
                at: now(),
                item: item.to_string(),
                findings,
                took_ms: Some(took_ms),
            },
        )
        .await
    }

    /// Asks for `items` (every item when `None`) to be verified; returns their ids.
    /// Excluded items are left out.
    pub async fn request_verification(
        &self,
        env: &str,
        items: Option<&[String]>,
        by: &str,
    ) -> Result<Vec<String>, UpgradeError> {
        let (id, state) = self.step2(env).await?;
        let mut chosen = Vec::new();
        for i in state.items.iter().flatten() {
            if i.excluded.is_none() && items.is_none_or(|l| l.contains(&i.item.id)) {
                chosen.push(i.item.id.clone());
            }
        }
        if let Some(l) = items
            && let Some(missing) = l.iter().find(|x| !chosen.contains(x))
        {
            find_item(&state, env, missing)?;
        }
        self.log(
            &id,
            &Event::VerificationRequested {
                at: now(),
                items: chosen.clone(),
                by: by.to_string(),
            },
        )
        .await?;
        self.step2_work.notify_one();
        Ok(chosen)
    }

    /// Logs the completion notice sent to `to`.
    pub async fn record_completion_mail(
        &self,
        env: &str,
        to: &str,
        items: Vec<String>,
        message_id: String,
    ) -> Result<(), UpgradeError> {
        let (id, state) = self
            .latest(env)
            .await?
            .ok_or_else(|| UpgradeError::NotFound(format!("'{env}' has no upgrade")))?;
        if state.status != crate::state::Status::Completed {
            return Err(UpgradeError::Conflict(format!(
                "the upgrade of '{env}' is not completed"
            )));
        }
        self.log(
            &id,
            &Event::MailSent {
                at: now(),
                to: to.to_string(),
                purpose: MailPurpose::Completed,
                items,
                message_id,
            },
        )
        .await
    }

    /// Logs a step 2 notice sent to `to`.
    pub async fn record_mail(
        &self,
        env: &str,
        to: &str,
        purpose: MailPurpose,
        items: Vec<String>,
        message_id: String,
    ) -> Result<(), UpgradeError> {
        let (id, _) = self.step2(env).await?;
        self.log(
            &id,
            &Event::MailSent {
                at: now(),
                to: to.to_string(),
                purpose,
                items,
                message_id,
            },
        )
        .await
    }
}

/// What verifying an item needs (see [`Upgrades::to_verify`]).
pub struct ToVerify {
    pub item: ItemState,
    pub test_database: String,
    pub production: String,
    /// The copy's problems in the target catalog.
    pub copy: Vec<Finding>,
    /// The original's problems in production's catalog.
    pub original: Vec<Finding>,
}

fn find_item<'s>(
    state: &'s UpgradeState,
    env: &str,
    item: &str,
) -> Result<&'s ItemState, UpgradeError> {
    state
        .items
        .iter()
        .flatten()
        .find(|i| i.item.id == item)
        .ok_or_else(|| {
            UpgradeError::NotFound(format!("no item '{item}' in the upgrade of '{env}'"))
        })
}

fn nonempty(reason: String) -> Result<String, UpgradeError> {
    match reason.trim() {
        "" => Err(UpgradeError::Invalid("a reason is required".into())),
        r => Ok(r.to_string()),
    }
}

fn accepted(
    current: &ItemState,
    item: &str,
    finding: String,
    reason: String,
    by: String,
) -> Result<Event, UpgradeError> {
    if !current.findings.iter().any(|t| t.finding.id == finding) {
        return Err(UpgradeError::NotFound(format!(
            "no finding '{finding}' on '{}'",
            current.item.name
        )));
    }
    Ok(Event::FindingAccepted {
        at: now(),
        item: item.to_string(),
        finding,
        reason: nonempty(reason)?,
        by,
    })
}

/// A sign-off, refused while an error is open, naming each.
fn signed_off(current: &ItemState, item: &str, by: String) -> Result<Event, UpgradeError> {
    let open: Vec<String> = current
        .open_errors()
        .map(|t| {
            format!(
                "{}: {}",
                t.finding.finding.location, t.finding.finding.message
            )
        })
        .collect();
    if !open.is_empty() {
        return Err(UpgradeError::Conflict(format!(
            "'{}' has {} open error{}: {}",
            current.item.name,
            open.len(),
            if open.len() == 1 { "" } else { "s" },
            open.join("; ")
        )));
    }
    Ok(Event::SignedOff {
        at: now(),
        item: item.to_string(),
        by,
    })
}

/// The version of an app bound to production that step 2 copies: the published one
/// unless `from` says the draft (or nothing is published), with a note when a draft and
/// a version differ.
fn source_app(a: AppRecord, production: &str, from: AppsFrom) -> Option<SourceApp> {
    let draft = a.draft.filter(|b| b.database == production);
    let published = a.published.filter(|v| v.bound.database == production);
    let saved = a.draft_saved_at.unwrap_or_default();
    let last_used_at = a.last_used_at;
    let (definition, note) = match (published, draft) {
        (Some(v), Some(d)) if from == AppsFrom::Draft => {
            let note = format!(
                "the draft saved {saved} was copied, not version {} published {}",
                v.version, v.published_at
            );
            (d.definition, Some((Severity::Info, note)))
        }
        (Some(v), Some(_)) => {
            let note = format!(
                "the draft saved {saved} is newer than version {} published {}: version {} was copied (start the upgrade with \"apps_from\":\"draft\" to copy drafts)",
                v.version, v.published_at, v.version
            );
            (v.bound.definition, Some((Severity::Warning, note)))
        }
        (Some(v), None) => (v.bound.definition, None),
        (None, Some(d)) => (d.definition, None),
        (None, None) => return None,
    };
    Some(SourceApp {
        definition,
        note,
        last_used_at,
    })
}
