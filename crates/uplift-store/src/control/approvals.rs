//! Approval requests made by flow runs: a run asks, waits, and continues with the
//! answer one of the approvers posts.

use serde::Serialize;
use uplift_model::{ColType, Value};

use super::row::{Cols, Row};
use super::{Control, now_text};
use crate::{Result, StoreError};

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub id: String,
    pub env: String,
    pub run_id: String,
    pub step: String,
    pub title: String,
    pub details: String,
    pub approvers: Vec<String>,
    /// `approved` or `rejected` once answered.
    pub outcome: Option<String>,
    pub responder: Option<String>,
    pub comment: Option<String>,
    pub created_at: String,
    pub responded_at: Option<String>,
}

impl Approval {
    pub fn may_answer(&self, user: &str) -> bool {
        self.approvers.iter().any(|a| a.eq_ignore_ascii_case(user))
    }
}

const COLS: Cols = &[
    ("id", ColType::Text),
    ("env", ColType::Text),
    ("run_id", ColType::Text),
    ("step", ColType::Text),
    ("title", ColType::Text),
    ("details", ColType::Text),
    ("approvers", ColType::Text),
    ("outcome", ColType::Text),
    ("responder", ColType::Text),
    ("comment", ColType::Text),
    ("created_at", ColType::Text),
    ("responded_at", ColType::Text),
];

fn approval_from(r: &Row) -> Result<Approval> {
    Ok(Approval {
        id: r.text("id")?,
        env: r.text("env")?,
        run_id: r.text("run_id")?,
        step: r.text("step")?,
        title: r.text("title")?,
        details: r.text("details")?,
        approvers: r.json("approvers", "approvers")?,
        outcome: r.opt_text("outcome")?,
        responder: r.opt_text("responder")?,
        comment: r.opt_text("comment")?,
        created_at: r.text("created_at")?,
        responded_at: r.opt_text("responded_at")?,
    })
}

impl Control {
    /// The request a run's step made, creating it on the first call.
    pub async fn approval_for(
        &self,
        env: &str,
        run_id: &str,
        step: &str,
        title: &str,
        details: &str,
        approvers: &[String],
    ) -> Result<Approval> {
        let list =
            serde_json::to_string(approvers).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.execute(
            "INSERT INTO {s}approvals (id, env, run_id, step, title, details, approvers, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step) DO NOTHING",
            &[
                Value::Text(uuid::Uuid::now_v7().to_string()),
                Value::Text(env.into()),
                Value::Text(run_id.into()),
                Value::Text(step.into()),
                Value::Text(title.into()),
                Value::Text(details.into()),
                Value::Text(list),
                Value::Text(now_text()),
            ],
        )
        .await?;
        let rows = self
            .select(
                COLS,
                "FROM {s}approvals WHERE run_id = ? AND step = ?",
                &[Value::Text(run_id.into()), Value::Text(step.into())],
            )
            .await?;
        rows.first()
            .map(approval_from)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("the approval vanished".into()))
    }

    pub async fn approval(&self, env: &str, id: &str) -> Result<Option<Approval>> {
        let rows = self
            .select(
                COLS,
                "FROM {s}approvals WHERE env = ? AND id = ?",
                &[Value::Text(env.into()), Value::Text(id.into())],
            )
            .await?;
        rows.first().map(approval_from).transpose()
    }

    /// Every request of an environment, answered or not, oldest first.
    pub async fn approvals(&self, env: &str) -> Result<Vec<Approval>> {
        self.select(
            COLS,
            "FROM {s}approvals WHERE env = ? ORDER BY created_at, id",
            &[Value::Text(env.into())],
        )
        .await?
        .iter()
        .map(approval_from)
        .collect()
    }

    /// Records the answer; refuses a second one.
    pub async fn answer_approval(
        &self,
        env: &str,
        id: &str,
        outcome: &str,
        responder: &str,
        comment: &str,
    ) -> Result<()> {
        let n = self
            .execute(
                "UPDATE {s}approvals SET outcome = ?, responder = ?, comment = ?, responded_at = ? WHERE env = ? AND id = ? AND outcome IS NULL",
                &[
                    Value::Text(outcome.into()),
                    Value::Text(responder.into()),
                    Value::Text(comment.into()),
                    Value::Text(now_text()),
                    Value::Text(env.into()),
                    Value::Text(id.into()),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "approval '{id}' was already answered"
            )));
        }
        Ok(())
    }
}
