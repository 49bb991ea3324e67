//! Step 2's items: every app and flow of the environment's production database, found
//! when step 1 ends, each with its copy rewritten for the target catalog
//! ([`uplift_plan::rewrite`]) and checked against it.
//!
//! Discovery is pure ([`discover`]): the apps, flows and catalogs in, the items and the
//! upgraded flow clones out. Ids are derived from the upgrade's id, so discovering again
//! after a crash gives the same items and overwrites the same clones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uplift_model::Catalog;
use uplift_model::app::{self, AppDef};
use uplift_model::flow::{self, FlowDef, FlowState};
use uplift_plan::rewrite::{self, Finding, NameMap, Severity};
use uuid::Uuid;

/// The prefix an upgraded flow's name gains.
pub const CLONE_PREFIX: &str = "[Upgraded] ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    App,
    Flow,
}

/// One finding of an item, with an id that stays the same while the finding does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFinding {
    pub id: String,
    #[serde(flatten)]
    pub finding: Finding,
    /// The original, checked the same way against production, has it too: the upgrade
    /// did not cause it.
    #[serde(default)]
    pub pre_existing: bool,
}

/// An app or flow that follows the upgrade, as discovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub kind: ItemKind,
    pub name: String,
    /// The app's name, or the flow's id.
    pub source_id: String,
    /// The app's name (its upgrade copy is a slot of the app), or the upgraded clone's id.
    pub copy_id: String,
    pub owner: String,
    pub editors: Vec<String>,
    /// Source entities and properties the original names.
    pub uses: Vec<String>,
    /// The flow's last run (RFC 3339, UTC); apps record no use yet.
    pub last_used_at: Option<String>,
    pub original: Json,
    pub copy: Json,
    pub findings: Vec<ItemFinding>,
}

/// What has become of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resolution", rename_all = "lowercase")]
pub enum Resolution {
    Open,
    /// A later check no longer saw it.
    Fixed,
    Accepted {
        reason: String,
        by: String,
    },
}

/// A finding an item has had, and its resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub finding: ItemFinding,
    pub resolution: Resolution,
    /// Found when the copy was made (by the rewriter, or the first check).
    pub discovered: bool,
}

/// Where an item stands, from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// An error is open.
    NeedsAttention,
    Ready,
    /// Signed off by its maker or an admin.
    Verified,
    /// Left out of the upgrade by an admin.
    Excluded,
}

/// An item as its events leave it: the copy as last edited, every finding it has had.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    pub item: Item,
    pub findings: Vec<Tracked>,
    /// Who signed it off, and when; cleared by an edit.
    pub signed_off: Option<(String, String)>,
    /// Why an admin excluded it, and who.
    pub excluded: Option<(String, String)>,
    /// A verification is owed: asked for, or the copy changed, since the last one.
    pub pending: bool,
    /// When it was last verified.
    pub checked_at: Option<String>,
    /// How long that verification took, in milliseconds.
    pub verification_ms: Option<u64>,
}

impl ItemState {
    pub fn new(item: Item) -> ItemState {
        let findings = item
            .findings
            .iter()
            .map(|f| Tracked {
                finding: f.clone(),
                resolution: Resolution::Open,
                discovered: true,
            })
            .collect();
        ItemState {
            item,
            findings,
            signed_off: None,
            excluded: None,
            pending: true,
            checked_at: None,
            verification_ms: None,
        }
    }

    pub fn edited(&mut self, copy: &Json) {
        self.item.copy = copy.clone();
        self.signed_off = None;
        self.pending = true;
    }

    /// A check saw `seen`: an open finding it did not see is fixed, a fixed one it saw
    /// again is open again, a new one is open. Warnings and infos found when the copy
    /// was made are about the rewriting, which a check cannot see again: they stay until
    /// accepted.
    pub fn verified(&mut self, seen: &[ItemFinding]) {
        self.pending = false;
        for t in &mut self.findings {
            let again = seen.iter().find(|f| f.id == t.finding.id);
            let rewriting = t.discovered && t.finding.finding.severity != Severity::Error;
            t.resolution = match (&t.resolution, again) {
                (Resolution::Open, None) if !rewriting => Resolution::Fixed,
                (Resolution::Fixed, Some(_)) => Resolution::Open,
                (r, _) => r.clone(),
            };
            if let Some(f) = again {
                t.finding.pre_existing = f.pre_existing;
            }
        }
        for f in seen {
            if !self.findings.iter().any(|t| t.finding.id == f.id) {
                self.findings.push(Tracked {
                    finding: f.clone(),
                    resolution: Resolution::Open,
                    discovered: false,
                });
            }
        }
    }

    /// What a verification saw, as findings of this item: `copy` are the copy's
    /// problems (in the target catalog and the test database), `original` the
    /// original's (in production). A problem the rewriter already reported is its
    /// finding, so it keeps its suggestion; a problem the original has too is
    /// `pre_existing`.
    pub fn verification(&self, copy: Vec<Finding>, original: &[Finding]) -> Vec<ItemFinding> {
        let mut seen: Vec<ItemFinding> = Vec::new();
        for f in copy {
            let said = self.findings.iter().find(|t| {
                t.discovered && already_said(&t.finding.finding, &f.location, &f.message)
            });
            let finding = said.map_or(f, |t| t.finding.finding.clone());
            let pre_existing = original.iter().any(|o| same_problem(o, &finding));
            let f = ItemFinding {
                id: finding_id(&finding),
                finding,
                pre_existing,
            };
            if !seen.iter().any(|s| s.id == f.id) {
                seen.push(f);
            }
        }
        seen
    }

    pub fn accept(&mut self, finding: &str, reason: &str, by: &str) {
        if let Some(t) = self.findings.iter_mut().find(|t| t.finding.id == finding) {
            t.resolution = Resolution::Accepted {
                reason: reason.to_string(),
                by: by.to_string(),
            };
        }
    }

    /// The open errors, which stop a sign-off.
    pub fn open_errors(&self) -> impl Iterator<Item = &Tracked> {
        self.findings.iter().filter(|t| {
            t.resolution == Resolution::Open && t.finding.finding.severity == Severity::Error
        })
    }

    pub fn status(&self) -> ItemStatus {
        if self.excluded.is_some() {
            ItemStatus::Excluded
        } else if self.signed_off.is_some() {
            ItemStatus::Verified
        } else if self.open_errors().next().is_some() {
            ItemStatus::NeedsAttention
        } else {
            ItemStatus::Ready
        }
    }
}

/// An app's version to copy, and what a maker should know about the choice.
pub struct SourceApp {
    pub definition: AppDef,
    pub note: Option<(Severity, String)>,
    /// When its published version was last played.
    pub last_used_at: Option<String>,
}

/// A flow of production and when it last ran.
pub struct SourceFlow {
    pub id: String,
    pub definition: FlowDef,
    pub last_run_at: Option<String>,
}

/// An upgraded flow to store, bound to the test database.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowClone {
    pub id: String,
    pub definition: FlowDef,
}

/// What discovery found.
pub struct Discovery {
    pub items: Vec<Item>,
    pub clones: Vec<FlowClone>,
}

/// Every app (its published version, else its draft) and flow, rewritten for `target`.
pub fn discover(
    upgrade_id: &str,
    apps: &[SourceApp],
    flows: &[SourceFlow],
    map: &NameMap,
    target: &Catalog,
) -> Discovery {
    let space = Uuid::parse_str(upgrade_id).unwrap_or(Uuid::nil());
    let derived = |what: &str| Uuid::new_v5(&space, what.as_bytes()).to_string();
    let mut items = Vec::new();
    let mut clones = Vec::new();
    let mut clone_ids = BTreeMap::new();
    for f in flows {
        let clone_id = derived(&format!("clone:{}", f.id));
        clone_ids.insert(f.id.clone(), clone_id.clone());
        let out = rewrite::rewrite_flow(&f.definition, map);
        let mut def = out.def;
        def.name = format!("{CLONE_PREFIX}{}", f.definition.name);
        // Off until a maker turns it on to test it: it should not react to the test
        // database's writes unasked (what it sends is captured either way).
        def.state = FlowState::Off;
        let mut findings = out.findings;
        checked(&mut findings, flow::validate(&def, target).err(), |e| {
            (e.place.clone(), e.problem.clone())
        });
        items.push(item(ItemParts {
            id: derived(&format!("flow:{}", f.id)),
            kind: ItemKind::Flow,
            source_id: f.id.clone(),
            copy_id: clone_id.clone(),
            original: &f.definition,
            copy: &def,
            findings,
            uses: out.uses,
            last_used_at: f.last_run_at.clone(),
        }));
        clones.push(FlowClone {
            id: clone_id,
            definition: def,
        });
    }
    let triggers: BTreeMap<&str, flow::Trigger> = clones
        .iter()
        .map(|c| (c.id.as_str(), c.definition.trigger.clone()))
        .collect();
    for source in apps {
        let a = &source.definition;
        let out = rewrite::rewrite_app(a, map, &clone_ids);
        let mut findings = out.findings;
        if let Some((severity, message)) = &source.note {
            findings.insert(
                0,
                Finding {
                    severity: *severity,
                    location: "app".into(),
                    message: message.clone(),
                    suggestion: None,
                },
            );
        }
        let trigger = |id: &str| triggers.get(id).cloned();
        checked(
            &mut findings,
            app::validate(&out.def, target, &trigger).err(),
            |e| (e.place.clone(), e.problem.clone()),
        );
        items.push(item(ItemParts {
            id: derived(&format!("app:{}", a.name)),
            kind: ItemKind::App,
            source_id: a.name.clone(),
            copy_id: a.name.clone(),
            original: a,
            copy: &out.def,
            findings,
            uses: out.uses,
            last_used_at: source.last_used_at.clone(),
        }));
    }
    Discovery { items, clones }
}

/// Checks a definition against a catalog: an item's copy against the target's (with
/// `triggers`, the upgraded flows' triggers by id, for app commands), or its original
/// against production's (with production's flows). An `Err` is a definition that is
/// not one of its kind at all.
pub fn check(
    kind: ItemKind,
    definition: &Json,
    catalog: &Catalog,
    triggers: &BTreeMap<String, flow::Trigger>,
) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    match kind {
        ItemKind::App => {
            let def: AppDef =
                serde_json::from_value(definition.clone()).map_err(|e| e.to_string())?;
            let trigger = |id: &str| triggers.get(id).cloned();
            checked(
                &mut findings,
                app::validate(&def, catalog, &trigger).err(),
                |e| (e.place.clone(), e.problem.clone()),
            );
        }
        ItemKind::Flow => {
            let def: FlowDef =
                serde_json::from_value(definition.clone()).map_err(|e| e.to_string())?;
            checked(&mut findings, flow::validate(&def, catalog).err(), |e| {
                (e.place.clone(), e.problem.clone())
            });
        }
    }
    Ok(findings)
}

/// Whether the original's finding `o` is the copy's `f` as it was before the upgrade:
/// the same place (which names views, forms and steps, never renamed), or the same part
/// and the same name left unresolved.
fn same_problem(o: &Finding, f: &Finding) -> bool {
    o.location == f.location
        || (part(&o.location) == part(&f.location) && already_said(o, &f.location, &f.message))
}

/// Adds the target catalog's complaints about a copy, except those about a reference
/// the rewriter already reported (left in place, it is what the check trips on).
fn checked<E>(
    findings: &mut Vec<Finding>,
    errors: Option<Vec<E>>,
    place_problem: impl Fn(&E) -> (String, String),
) {
    for e in errors.unwrap_or_default() {
        let (location, message) = place_problem(&e);
        if findings
            .iter()
            .any(|f| already_said(f, &location, &message))
        {
            continue;
        }
        findings.push(Finding {
            severity: Severity::Error,
            location,
            message,
            suggestion: None,
        });
    }
}

/// Whether a rewriter finding covers a check's complaint: the same place, or the same
/// part (`step 'keep'`, `view 'Open orders'`) and the same quoted name.
fn already_said(f: &Finding, location: &str, message: &str) -> bool {
    if f.location == location {
        return true;
    }
    let named = quoted(&f.message).is_some_and(|n| message.contains(&format!("'{n}'")));
    named && part(&f.location) == part(location)
}

/// The first quoted name of a text (`'Owner' is not upgraded` → `Owner`).
fn quoted(text: &str) -> Option<&str> {
    let start = text.find('\'')? + 1;
    let len = text[start..].find('\'')?;
    Some(&text[start..start + len])
}

/// The part of a definition a location is in: up to its first quoted name.
fn part(location: &str) -> &str {
    match location.match_indices('\'').nth(1) {
        Some((i, _)) => &location[..=i],
        None => location,
    }
}

struct ItemParts<'a, D: Serialize> {
    id: String,
    kind: ItemKind,
    source_id: String,
    copy_id: String,
    original: &'a D,
    copy: &'a D,
    findings: Vec<Finding>,
    uses: Vec<String>,
    last_used_at: Option<String>,
}

fn item<D: Serialize + Named>(p: ItemParts<'_, D>) -> Item {
    let findings = p
        .findings
        .into_iter()
        .map(|f| ItemFinding {
            id: finding_id(&f),
            finding: f,
            pre_existing: false,
        })
        .collect();
    Item {
        id: p.id,
        kind: p.kind,
        name: p.original.name().to_string(),
        source_id: p.source_id,
        copy_id: p.copy_id,
        owner: p.original.owner().to_string(),
        editors: p.original.editors().to_vec(),
        uses: p.uses,
        last_used_at: p.last_used_at,
        original: serde_json::to_value(p.original).unwrap_or(Json::Null),
        copy: serde_json::to_value(p.copy).unwrap_or(Json::Null),
        findings,
    }
}

/// A finding's id: a hash of where it is and what it says, so verifying again gives a
/// finding that is still there the same id.
pub fn finding_id(f: &Finding) -> String {
    let key = format!("{}\u{0}{}", f.location, f.message);
    Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes())
        .simple()
        .to_string()[..12]
        .to_string()
}

/// What an item takes from its definition.
trait Named {
    fn name(&self) -> &str;
    fn owner(&self) -> &str;
    fn editors(&self) -> &[String];
}

impl Named for AppDef {
    fn name(&self) -> &str {
        &self.name
    }
    fn owner(&self) -> &str {
        &self.owner
    }
    fn editors(&self) -> &[String] {
        &self.editors
    }
}

impl Named for FlowDef {
    fn name(&self) -> &str {
        &self.name
    }
    fn owner(&self) -> &str {
        &self.owner
    }
    fn editors(&self) -> &[String] {
        &self.editors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(location: &str, message: &str) -> Finding {
        Finding {
            severity: Severity::Error,
            location: location.into(),
            message: message.into(),
            suggestion: None,
        }
    }

    fn tracked(id: &str, severity: Severity, resolution: Resolution) -> Tracked {
        Tracked {
            finding: ItemFinding {
                id: id.into(),
                finding: Finding {
                    severity,
                    ..finding(id, id)
                },
                pre_existing: false,
            },
            resolution,
            discovered: false,
        }
    }

    #[test]
    fn a_check_fixes_reopens_and_adds_findings() {
        let accepted = Resolution::Accepted {
            reason: "fine".into(),
            by: "m".into(),
        };
        // (finding before, seen by the check, resolution after)
        let cases = [
            (
                tracked("e", Severity::Error, Resolution::Open),
                false,
                Resolution::Fixed,
            ),
            (
                tracked("e", Severity::Error, Resolution::Open),
                true,
                Resolution::Open,
            ),
            (
                tracked("f", Severity::Error, Resolution::Fixed),
                true,
                Resolution::Open,
            ),
            (
                Tracked {
                    discovered: true,
                    ..tracked("w", Severity::Warning, Resolution::Open)
                },
                false,
                Resolution::Open,
            ),
            (
                tracked("w", Severity::Warning, Resolution::Open),
                false,
                Resolution::Fixed,
            ),
            (
                tracked("a", Severity::Error, accepted.clone()),
                false,
                accepted.clone(),
            ),
        ];
        for (i, (before, seen, after)) in cases.into_iter().enumerate() {
            let mut state = ItemState {
                item: serde_json::from_value(serde_json::json!({
                    "id": "i", "kind": "app", "name": "A", "source_id": "A", "copy_id": "A",
                    "owner": "o", "editors": [], "uses": [], "last_used_at": null,
                    "original": {}, "copy": {}, "findings": []}))
                .unwrap(),
                findings: vec![before.clone()],
                signed_off: None,
                excluded: None,
                pending: true,
                checked_at: None,
                verification_ms: None,
            };
            let saw = if seen {
                vec![before.finding.clone()]
            } else {
                vec![]
            };
            state.verified(&saw);
            assert_eq!(state.findings[0].resolution, after, "case {i}");
        }
        let mut state = ItemState::new(
            serde_json::from_value(serde_json::json!({
            "id": "i", "kind": "app", "name": "A", "source_id": "A", "copy_id": "A",
            "owner": "o", "editors": [], "uses": [], "last_used_at": null,
            "original": {}, "copy": {}, "findings": []}))
            .unwrap(),
        );
        let new = tracked("n", Severity::Error, Resolution::Open).finding;
        state.verified(std::slice::from_ref(&new));
        assert_eq!(state.findings.len(), 1, "a new finding is added");
        assert_eq!(state.status(), ItemStatus::NeedsAttention);
    }

    #[test]
    fn a_check_repeating_a_rewriter_finding_is_left_out() {
        let said = finding(
            "step 'keep' value 'Description'",
            "'Owner' is not upgraded (user and group fields are not upgraded)",
        );
        let cases = [
            ("step 'keep' value 'Description'", "anything", true),
            (
                "step 'keep' values 'cr_description'",
                "@{trigger.record.Owner}: 'Owner' is not a field of 'account'",
                true,
            ),
            (
                "step 'other' subject",
                "'Owner' is not a field of 'account'",
                false,
            ),
            (
                "step 'keep' values 'cr_name'",
                "'Name' is not a field",
                false,
            ),
        ];
        for (location, message, expect) in cases {
            assert_eq!(
                already_said(&said, location, message),
                expect,
                "{location}: {message}"
            );
        }
    }
}
