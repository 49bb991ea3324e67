//! Step 2's items as makers and admins see and change them: a maker the items they own
//! or edit, an admin every one, a user without the maker role none. Excluding an item
//! is an admin's decision.

use serde_json::Value as Json;
use uplift_api as api;
use uplift_plan::rewrite::Severity;
use uplift_store::control::Bound;
use uplift_upgrade::items::{ItemKind, ItemState, ItemStatus, Resolution, Tracked};
use uplift_upgrade::runner::ItemChange;

use crate::auth::Actor;
use crate::error::{ItemKind as OwnedKind, Missing, Result, ServiceError};
use crate::{Services, policy};

impl Services {
    /// Every item of the environment's upgrade the caller may see.
    pub async fn upgrade_items(&self, actor: &Actor, env: &str) -> Result<api::items::ItemList> {
        let items = self.visible_items(actor, env).await?;
        Ok(api::items::ItemList {
            value: items.iter().map(item).collect(),
        })
    }

    /// One item with its findings, its copy and the original.
    pub async fn upgrade_item(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
    ) -> Result<api::items::ItemDetail> {
        let items = self.visible_items(actor, env).await?;
        let found = items.iter().find(|i| i.item.id == id).ok_or_else(|| {
            ServiceError::NotFound(Missing::Item {
                env: env.into(),
                item: id.into(),
            })
        })?;
        Ok(detail(found))
    }

    /// An item's report: the item and its findings, without the definitions.
    pub async fn upgrade_item_report(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
    ) -> Result<api::items::ItemReport> {
        let d = self.upgrade_item(actor, env, id).await?;
        Ok(api::items::ItemReport {
            fields: d.fields,
            finding_counts: d.finding_counts,
            findings: d.findings,
        })
    }

    /// Replaces a copy, accepts a finding, signs off or excludes, as the caller (an
    /// owner or editor of the item, or an admin; excluding: admins only).
    pub async fn change_upgrade_item(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        change: ItemChange,
    ) -> Result<api::items::ItemDetail> {
        self.upgrade_item(actor, env, id).await?;
        if matches!(change, ItemChange::Exclude { .. }) {
            policy::admin(actor)?;
        }
        self.upgrades
            .change_item(env, id, change, actor.email())
            .await?;
        self.upgrade_item(actor, env, id).await
    }

    /// A copy's replacement, from the JSON a maker sent, verified at once.
    pub async fn edit_upgrade_copy(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
        copy: Json,
    ) -> Result<api::items::ItemDetail> {
        self.change_upgrade_item(actor, env, id, ItemChange::Edit(copy))
            .await?;
        self.verify_upgrade_item(actor, env, id).await
    }

    /// Verifies one item now: its static checks and its runs (see [`crate::verify`]).
    pub async fn verify_upgrade_item(
        &self,
        actor: &Actor,
        env: &str,
        id: &str,
    ) -> Result<api::items::ItemDetail> {
        self.upgrade_item(actor, env, id).await?;
        self.verify_item(env, id).await?;
        self.upgrade_item(actor, env, id).await
    }

    /// Queues the verification of every item the caller sees; the step 2 worker does
    /// them in the background, and a stop in the middle leaves the rest owed.
    pub async fn verify_upgrade(
        &self,
        actor: &Actor,
        env: &str,
    ) -> Result<api::items::VerificationQueued> {
        policy::maker(actor)?;
        let ids: Vec<String> = self
            .visible_items(actor, env)
            .await?
            .into_iter()
            .map(|i| i.item.id)
            .collect();
        let items = self
            .upgrades
            .request_verification(env, Some(&ids), actor.email())
            .await?;
        Ok(api::items::VerificationQueued { items })
    }

    /// The app's copy in the environment's upgrade, bound to the test database.
    pub(crate) async fn upgrade_copy(&self, env: &str, app: &str) -> Result<Bound> {
        let (_, state) = self.serving_upgrade(env).await?;
        let found = state
            .items
            .iter()
            .flatten()
            .find(|i| i.item.kind == ItemKind::App && i.item.source_id == app)
            .ok_or_else(|| {
                ServiceError::NotFound(Missing::Item {
                    env: env.into(),
                    item: format!("the upgrade copy of app '{app}'"),
                })
            })?;
        let definition = serde_json::from_value(found.item.copy.clone()).map_err(|e| {
            ServiceError::Internal {
                what: "reading an upgrade copy",
                detail: e.to_string(),
            }
        })?;
        Ok(Bound {
            definition,
            database: state.test_database,
        })
    }

    async fn visible_items(&self, actor: &Actor, env: &str) -> Result<Vec<ItemState>> {
        self.env(env).await?;
        let (_, state) = self.serving_upgrade(env).await?;
        if policy::maker(actor).is_err() {
            return Ok(Vec::new());
        }
        let sees = |i: &ItemState| {
            let kind = match i.item.kind {
                ItemKind::App => OwnedKind::App,
                ItemKind::Flow => OwnedKind::Flow,
            };
            policy::sees_inside(
                actor,
                policy::Owned {
                    kind,
                    name: &i.item.name,
                    owner: &i.item.owner,
                    editors: &i.item.editors,
                },
            )
        };
        Ok(state
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(sees)
            .collect())
    }
}

/// Findings that still count (not fixed), by severity, and how many are open.
fn counts(i: &ItemState) -> api::items::FindingCounts {
    let mut c = api::items::FindingCounts::default();
    for t in i
        .findings
        .iter()
        .filter(|t| t.resolution != Resolution::Fixed)
    {
        match t.finding.finding.severity {
            Severity::Error => c.error += 1,
            Severity::Warning => c.warning += 1,
            Severity::Info => c.info += 1,
        }
        if t.resolution == Resolution::Open {
            c.open += 1;
        }
    }
    c
}

fn fields(i: &ItemState) -> api::items::ItemFields {
    let it = &i.item;
    api::items::ItemFields {
        id: it.id.clone(),
        kind: match it.kind {
            ItemKind::App => api::items::ItemKind::App,
            ItemKind::Flow => api::items::ItemKind::Flow,
        },
        name: it.name.clone(),
        source_id: it.source_id.clone(),
        copy_id: it.copy_id.clone(),
        owner: it.owner.clone(),
        editors: it.editors.clone(),
        uses: it.uses.clone(),
        last_used_at: it.last_used_at.clone(),
        status: match i.status() {
            ItemStatus::NeedsAttention => api::items::ItemStatus::NeedsAttention,
            ItemStatus::Ready => api::items::ItemStatus::Ready,
            ItemStatus::Verified => api::items::ItemStatus::Verified,
            ItemStatus::Excluded => api::items::ItemStatus::Excluded,
        },
        verified_by: i.signed_off.as_ref().map(|(by, _)| by.clone()),
        verified_at: i.signed_off.as_ref().map(|(_, at)| at.clone()),
        verifying: i.pending && i.excluded.is_none(),
        checked_at: i.checked_at.clone(),
        verification_ms: i.verification_ms,
    }
}

fn item(i: &ItemState) -> api::items::Item {
    api::items::Item {
        fields: fields(i),
        findings: counts(i),
    }
}

fn detail(i: &ItemState) -> api::items::ItemDetail {
    api::items::ItemDetail {
        fields: fields(i),
        finding_counts: counts(i),
        findings: i.findings.iter().map(finding).collect(),
        copy: i.item.copy.clone(),
        original: i.item.original.clone(),
    }
}

fn finding(t: &Tracked) -> api::items::Finding {
    let f = &t.finding.finding;
    let (resolution, reason) = match &t.resolution {
        Resolution::Open => (api::items::Resolution::Open, None),
        Resolution::Fixed => (api::items::Resolution::Fixed, None),
        Resolution::Accepted { reason, .. } => {
            (api::items::Resolution::Accepted, Some(reason.clone()))
        }
    };
    api::items::Finding {
        id: t.finding.id.clone(),
        severity: match f.severity {
            Severity::Error => api::items::Severity::Error,
            Severity::Warning => api::items::Severity::Warning,
            Severity::Info => api::items::Severity::Info,
        },
        location: f.location.clone(),
        message: f.message.clone(),
        suggestion: f.suggestion.clone(),
        pre_existing: t.finding.pre_existing,
        resolution,
        reason,
    }
}

/// The items by where they stand, for the upgrade's status.
pub(crate) fn counts_of(items: &[ItemState]) -> api::upgrade::ItemCounts {
    let count = |s: ItemStatus| items.iter().filter(|i| i.status() == s).count() as u32;
    let (verified, excluded) = (count(ItemStatus::Verified), count(ItemStatus::Excluded));
    let verifying = items
        .iter()
        .filter(|i| i.pending && i.excluded.is_none())
        .count() as u32;
    api::upgrade::ItemCounts {
        total: items.len() as u32,
        verified,
        excluded,
        open: items.len() as u32 - verified - excluded,
        verifying,
    }
}

/// Step 3's gate: what stops it, an item a line.
pub(crate) fn gate_of(items: &[ItemState]) -> api::upgrade::Gate {
    let blocking: Vec<String> = items
        .iter()
        .filter_map(|i| {
            let errors = i.open_errors().count();
            match i.status() {
                ItemStatus::Verified | ItemStatus::Excluded => None,
                _ if errors > 0 => Some(format!(
                    "{}: {errors} open error{}",
                    i.item.name,
                    if errors == 1 { "" } else { "s" }
                )),
                _ => Some(format!("{}: not signed off", i.item.name)),
            }
        })
        .collect();
    api::upgrade::Gate {
        ready: blocking.is_empty(),
        blocking,
    }
}
