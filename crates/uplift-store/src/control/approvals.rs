//! Approval requests made by flow runs: a run asks, waits, and continues with the
//! answer one of the approvers posts.

use serde::Serialize;
use uplift_model::Value;

use super::{Control, now_text, text};
use crate::{Result, StoreError};

/// Tables behind approvals; appended to the control plane's migration.
pub(super) const MIGRATION: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {s}approvals (id TEXT NOT NULL PRIMARY KEY, env TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, title TEXT NOT NULL, details TEXT NOT NULL, approvers TEXT NOT NULL, outcome TEXT, responder TEXT, comment TEXT, created_at TEXT NOT NULL, responded_at TEXT, UNIQUE (run_id, step))",
];

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

const COLUMNS: &str = "id, env, run_id, step, title, details, approvers, outcome, responder, comment, created_at, responded_at";

fn approval_from(r: &[Value]) -> Result<Approval> {
    let opt = |i: usize| r[i].as_text().map(str::to_string);
    Ok(Approval {
        id: text(&r[0]),
        env: text(&r[1]),
        run_id: text(&r[2]),
        step: text(&r[3]),
        title: text(&r[4]),
        details: text(&r[5]),
        approvers: serde_json::from_str(&text(&r[6]))
            .map_err(|e| StoreError::Corrupt(format!("approvers do not parse: {e}")))?,
        outcome: opt(7),
        responder: opt(8),
        comment: opt(9),
        created_at: text(&r[10]),
        responded_at: opt(11),
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
            .query(
                &format!("SELECT {COLUMNS} FROM {{s}}approvals WHERE run_id = ? AND step = ?"),
                &[Value::Text(run_id.into()), Value::Text(step.into())],
                12,
            )
            .await?;
        rows.first()
            .map(|r| approval_from(r))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("the approval vanished".into()))
    }

    pub async fn approval(&self, env: &str, id: &str) -> Result<Option<Approval>> {
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM {{s}}approvals WHERE env = ? AND id = ?"),
                &[Value::Text(env.into()), Value::Text(id.into())],
                12,
            )
            .await?;
        rows.first().map(|r| approval_from(r)).transpose()
    }

    /// Every request of an environment, answered or not, oldest first.
    pub async fn approvals(&self, env: &str) -> Result<Vec<Approval>> {
        let rows = self
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM {{s}}approvals WHERE env = ? ORDER BY created_at, id"
                ),
                &[Value::Text(env.into())],
                12,
            )
            .await?;
        rows.iter().map(|r| approval_from(r)).collect()
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
