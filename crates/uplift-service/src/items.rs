//! Step 2's items as makers and admins see them: a maker the items they own or edit,
//! an admin every one, a user without the maker role none.

use uplift_api as api;
use uplift_plan::rewrite::Severity;
use uplift_upgrade::items::{Item, ItemKind};

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
        let found = items.iter().find(|i| i.id == id).ok_or_else(|| {
            ServiceError::NotFound(Missing::Item {
                env: env.into(),
                item: id.into(),
            })
        })?;
        Ok(api::items::ItemDetail {
            fields: fields(found),
            finding_counts: counts(found),
            findings: found.findings.iter().map(finding).collect(),
            copy: found.copy.clone(),
            original: found.original.clone(),
        })
    }

    async fn visible_items(&self, actor: &Actor, env: &str) -> Result<Vec<Item>> {
        self.env(env).await?;
        let (_, state) = self.serving_upgrade(env).await?;
        if policy::maker(actor).is_err() {
            return Ok(Vec::new());
        }
        let sees = |i: &Item| {
            let kind = match i.kind {
                ItemKind::App => OwnedKind::App,
                ItemKind::Flow => OwnedKind::Flow,
            };
            policy::sees_inside(
                actor,
                policy::Owned {
                    kind,
                    name: &i.name,
                    owner: &i.owner,
                    editors: &i.editors,
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

fn counts(i: &Item) -> api::items::FindingCounts {
    let mut c = api::items::FindingCounts::default();
    for f in &i.findings {
        match f.finding.severity {
            Severity::Error => c.error += 1,
            Severity::Warning => c.warning += 1,
            Severity::Info => c.info += 1,
        }
        c.open += 1;
    }
    c
}

fn fields(i: &Item) -> api::items::ItemFields {
    let has_error = i
        .findings
        .iter()
        .any(|f| f.finding.severity == Severity::Error);
    api::items::ItemFields {
        id: i.id.clone(),
        kind: match i.kind {
            ItemKind::App => api::items::ItemKind::App,
            ItemKind::Flow => api::items::ItemKind::Flow,
        },
        name: i.name.clone(),
        source_id: i.source_id.clone(),
        copy_id: i.copy_id.clone(),
        owner: i.owner.clone(),
        editors: i.editors.clone(),
        uses: i.uses.clone(),
        last_used_at: i.last_used_at.clone(),
        status: if has_error {
            api::items::ItemStatus::NeedsAttention
        } else {
            api::items::ItemStatus::Ready
        },
    }
}

fn item(i: &Item) -> api::items::Item {
    api::items::Item {
        fields: fields(i),
        findings: counts(i),
    }
}

fn finding(f: &uplift_upgrade::items::ItemFinding) -> api::items::Finding {
    api::items::Finding {
        id: f.id.clone(),
        severity: match f.finding.severity {
            Severity::Error => api::items::Severity::Error,
            Severity::Warning => api::items::Severity::Warning,
            Severity::Info => api::items::Severity::Info,
        },
        location: f.finding.location.clone(),
        message: f.finding.message.clone(),
        suggestion: f.finding.suggestion.clone(),
    }
}
