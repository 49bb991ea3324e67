//! Flows, their runs and the approval requests runs wait on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Document;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    On,
    Off,
}

/// A flow: its definition and where it is bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Flow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub editors: Vec<String>,
    pub state: FlowState,
    /// The database its steps read and write.
    pub database: String,
    /// The flow definition (`name`, `owner`, `trigger`, `steps`, …).
    #[schema(value_type = Object)]
    pub definition: Document,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    /// Waiting for an answer to an approval request.
    Waiting,
    Succeeded,
    Failed,
}

/// A run with every step's inputs, outputs, error, duration and attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub env: String,
    pub flow_id: String,
    pub trigger_key: String,
    pub status: RunStatus,
    pub depth: u32,
    /// What started it (`kind`, `record`, `user`, `time`, …).
    #[schema(value_type = Object)]
    pub trigger: Document,
    /// Per step: `name`, `status`, `inputs`, `outputs`, `error`, `duration_ms`, `attempts`.
    #[schema(value_type = Object)]
    pub steps: Document,
    pub error: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// `pending` until answered, then the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
}

/// An approval request a run waits on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: String,
    pub env: String,
    pub run_id: String,
    pub step: String,
    pub title: String,
    pub details: String,
    pub approvers: Vec<String>,
    pub outcome: Option<Outcome>,
    pub responder: Option<String>,
    pub comment: Option<String>,
    pub created_at: String,
    pub responded_at: Option<String>,
    pub status: ApprovalStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Approved,
    Rejected,
}

/// `GET …/approvals`: a page, with `@odata.count` when `$count=true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalPage {
    pub value: Vec<Approval>,
    #[serde(
        rename = "@odata.count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<u64>,
}

/// `POST …/approvals/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub outcome: Outcome,
    #[serde(default)]
    pub comment: String,
}
