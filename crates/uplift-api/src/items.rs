//! Step 2's items: the apps and flows that follow an upgrade, each with its rewritten
//! copy and its findings.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    App,
    Flow,
}

/// Where an item stands: `needs_attention` while it has an open error, else `ready`;
/// `verified` once signed off (until its copy changes); `excluded` by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    NeedsAttention,
    Ready,
    Verified,
    Excluded,
}

/// What has become of a finding: `fixed` when a later check no longer sees it,
/// `accepted` with a reason by a maker or admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Open,
    Fixed,
    Accepted,
}

/// `{"reason": "…"}`: why a finding is accepted or an item excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// Findings by severity, and how many are open.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct FindingCounts {
    pub error: u32,
    pub warning: u32,
    pub info: u32,
    pub open: u32,
}

/// Something about an item's copy that a maker should see: where it is, what it is,
/// and, when there is one, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    /// `view 'Open orders' column 'Owner'`, `step 'greet' subject`.
    pub location: String,
    pub message: String,
    pub suggestion: Option<String>,
    /// The original, checked and run the same way on production, has it too: the
    /// upgrade did not cause it.
    pub pre_existing: bool,
    pub resolution: Resolution,
    /// Why it was accepted.
    pub reason: Option<String>,
}

/// What every view of an item shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemFields {
    pub id: String,
    pub kind: ItemKind,
    pub name: String,
    /// The app's name, or the flow's id.
    pub source_id: String,
    /// The app's name (its upgrade copy), or the id of the `[Upgraded]` flow.
    pub copy_id: String,
    pub owner: String,
    pub editors: Vec<String>,
    /// Source entities and properties the original names (`Contact`,
    /// `Contact.FullName/last_name`).
    pub uses: Vec<String>,
    /// A flow's last run, or the last play of an app's published version (RFC 3339,
    /// UTC, milliseconds; an app's use is recorded at most once a minute).
    pub last_used_at: Option<String>,
    pub status: ItemStatus,
    /// Who signed it off, and when (RFC 3339, UTC, milliseconds).
    pub verified_by: Option<String>,
    pub verified_at: Option<String>,
    /// A verification is owed (asked for, or the copy changed) and not yet done.
    pub verifying: bool,
    /// When it was last verified (RFC 3339, UTC, milliseconds).
    pub checked_at: Option<String>,
    /// How long that verification took: the copy's checks and runs and the original's,
    /// in milliseconds.
    pub verification_ms: Option<u64>,
}

/// An app or flow following the upgrade, with its findings counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    #[serde(flatten)]
    pub fields: ItemFields,
    pub findings: FindingCounts,
}

/// `GET …/upgrade/items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemList {
    pub value: Vec<Item>,
}

/// `GET …/upgrade/items/{item}`: the item with every finding (`finding_counts` are the
/// list's `findings` counts), its rewritten copy and the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemDetail {
    #[serde(flatten)]
    pub fields: ItemFields,
    pub finding_counts: FindingCounts,
    pub findings: Vec<Finding>,
    #[schema(value_type = Object)]
    pub copy: Json,
    #[schema(value_type = Object)]
    pub original: Json,
}

/// `GET …/upgrade/items/{item}/report`: the item and every finding, for a maker to work
/// through (`?format=csv`: a row per finding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemReport {
    #[serde(flatten)]
    pub fields: ItemFields,
    pub finding_counts: FindingCounts,
    pub findings: Vec<Finding>,
}

/// `POST …/upgrade/verify`: the items whose verification is queued (progress: each
/// item's `verifying`, and the upgrade's `items.verifying`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerificationQueued {
    pub items: Vec<String>,
}

/// One maker mailed by `POST …/upgrade/notify`, and how many items the message listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoticeSent {
    pub to: String,
    pub items: u32,
}

/// `POST …/upgrade/notify`: who was mailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notified {
    pub value: Vec<NoticeSent>,
}
