//! Flow runs in the control plane. Each run is keyed by what triggered it
//! (`trigger_key`, unique), so turning the same outbox entry into runs twice, after
//! a crash between recording the runs and clearing the entry, still makes one run.

use serde::Serialize;
use serde_json::Value as Json;
use uplift_model::flow::FlowDef;
use uplift_model::{ColType, Value};

use super::row::{Cols, Row};
use super::{Control, FlowRecord, now_text};
use crate::{Result, StoreError};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    /// Waiting for an answer to an approval request.
    Waiting,
    Succeeded,
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            _ => return None,
        })
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub env: String,
    pub flow_id: String,
    pub trigger_key: String,
    pub status: RunStatus,
    /// The depth of the write that triggered it; its own writes are one deeper.
    pub depth: u32,
    pub trigger: Json,
    /// Per step: inputs, outputs, error, duration (shaped by the flow runtime).
    pub steps: Json,
    pub error: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The flow as it was when the run was queued: a run finishes the flow it
    /// started, even if the flow is edited while it waits (on an approval, say).
    #[serde(skip)]
    pub definition: Option<FlowDef>,
}

const COLS: Cols = &[
    ("id", ColType::Text),
    ("env", ColType::Text),
    ("flow_id", ColType::Text),
    ("trigger_key", ColType::Text),
    ("status", ColType::Text),
    ("depth", ColType::Int),
    ("trigger", ColType::Text),
    ("steps", ColType::Text),
    ("error", ColType::Text),
    ("attempts", ColType::Int),
    ("created_at", ColType::Text),
    ("started_at", ColType::Text),
    ("finished_at", ColType::Text),
    ("definition", ColType::Text),
];

/// A count column, clamped into `u32`.
fn count(r: &Row, name: &str) -> Result<u32> {
    Ok(r.opt_int(name)?.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32)
}

fn run_from(r: &Row) -> Result<RunRecord> {
    let status = r.text("status")?;
    Ok(RunRecord {
        id: r.text("id")?,
        env: r.text("env")?,
        flow_id: r.text("flow_id")?,
        trigger_key: r.text("trigger_key")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status '{status}'")))?,
        depth: count(r, "depth")?,
        trigger: r.json("trigger", "a run's trigger")?,
        steps: r.json("steps", "a run's steps")?,
        error: r.opt_text("error")?,
        attempts: count(r, "attempts")?,
        created_at: r.text("created_at")?,
        started_at: r.opt_text("started_at")?,
        finished_at: r.opt_text("finished_at")?,
        definition: r
            .opt_text("definition")?
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("a run's flow does not parse: {e}")))?,
    })
}

impl Control {
    /// Records a queued run of `flow` (which goes with it, as it is now) unless one
    /// with the same `trigger_key` exists; returns the new run's id, or `None` for a
    /// duplicate.
    pub async fn enqueue_run(
        &self,
        flow: &FlowRecord,
        trigger_key: &str,
        trigger: &Json,
        depth: u32,
    ) -> Result<Option<String>> {
        self.insert_run(flow, trigger_key, trigger, depth, None)
            .await
    }

    /// Records a run that is stopped before it starts (a loop past the depth limit),
    /// with the reason, in one write: no crash can leave it queued instead.
    pub async fn record_stopped_run(
        &self,
        flow: &FlowRecord,
        trigger_key: &str,
        trigger: &Json,
        depth: u32,
        reason: &str,
    ) -> Result<Option<String>> {
        self.insert_run(flow, trigger_key, trigger, depth, Some(reason))
            .await
    }

    async fn insert_run(
        &self,
        flow: &FlowRecord,
        trigger_key: &str,
        trigger: &Json,
        depth: u32,
        stopped: Option<&str>,
    ) -> Result<Option<String>> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_text();
        let definition = serde_json::to_string(&flow.definition)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let (status, finished) = match stopped {
            Some(_) => (RunStatus::Failed, Value::Text(now.clone())),
            None => (RunStatus::Queued, Value::Null),
        };
        let n = self
            .execute(
                "INSERT INTO {s}flow_runs (id, env, flow_id, trigger_key, status, depth, trigger, steps, error, attempts, created_at, finished_at, definition) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?, 0, ?, ?, ?) ON CONFLICT (trigger_key) DO NOTHING",
                &[
                    Value::Text(id.clone()),
                    Value::Text(flow.env.clone()),
                    Value::Text(flow.id.clone()),
                    Value::Text(trigger_key.into()),
                    Value::Text(status.as_str().into()),
                    Value::Int(i64::from(depth)),
                    Value::Text(trigger.to_string()),
                    stopped.map_or(Value::Null, |r| Value::Text(r.into())),
                    Value::Text(now),
                    finished,
                    Value::Text(definition),
                ],
            )
            .await?;
        Ok((n == 1).then_some(id))
    }

    /// Saves a run's progress.
    pub async fn save_run(&self, run: &RunRecord) -> Result<()> {
        self.execute(
            "UPDATE {s}flow_runs SET status = ?, steps = ?, error = ?, attempts = ?, started_at = ?, finished_at = ? WHERE id = ?",
            &[
                Value::Text(run.status.as_str().into()),
                Value::Text(run.steps.to_string()),
                run.error.clone().map_or(Value::Null, Value::Text),
                Value::Int(i64::from(run.attempts)),
                run.started_at.clone().map_or(Value::Null, Value::Text),
                run.finished_at.clone().map_or(Value::Null, Value::Text),
                Value::Text(run.id.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn runs_where(&self, clause: &str, params: &[Value]) -> Result<Vec<RunRecord>> {
        self.select(COLS, &format!("FROM {{s}}flow_runs WHERE {clause}"), params)
            .await?
            .iter()
            .map(run_from)
            .collect()
    }

    pub async fn run(&self, env: &str, id: &str) -> Result<Option<RunRecord>> {
        Ok(self
            .runs_where(
                "env = ? AND id = ?",
                &[Value::Text(env.into()), Value::Text(id.into())],
            )
            .await?
            .pop())
    }

    /// A flow's runs, newest first.
    pub async fn runs(&self, env: &str, flow_id: &str, limit: u32) -> Result<Vec<RunRecord>> {
        self.runs_where(
            "env = ? AND flow_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            &[
                Value::Text(env.into()),
                Value::Text(flow_id.into()),
                Value::Int(i64::from(limit)),
            ],
        )
        .await
    }

    /// The runs of `env` still queued (not started), of any of `flows`.
    pub async fn queued_runs(&self, env: &str, flows: &[String]) -> Result<Vec<RunRecord>> {
        if flows.is_empty() {
            return Ok(Vec::new());
        }
        let mut params = vec![Value::Text(env.into())];
        params.extend(flows.iter().map(|f| Value::Text(f.clone())));
        let marks = vec!["?"; flows.len()].join(", ");
        let clause = format!(
            "env = ? AND status = 'queued' AND flow_id IN ({marks}) ORDER BY created_at, id"
        );
        self.runs_where(&clause, &params).await
    }

    /// Runs not finished, oldest first: queued ones, and running ones a stopped
    /// server left behind.
    pub async fn unfinished_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        self.runs_where(
            "status IN ('queued', 'running') ORDER BY created_at, id LIMIT ?",
            &[Value::Int(i64::from(limit))],
        )
        .await
    }
}

impl Control {
    /// Marks a run as running for one more attempt, if it is still in the state it was
    /// read in (`status`, `attempts`); false when it has moved on since, and while its
    /// environment's writes are paused: a run that started then would only wait at the
    /// gate, and a run still queued at a switch is handed to the flow that replaces its
    /// own (see `control::switch`).
    pub async fn claim_run(
        &self,
        id: &str,
        status: RunStatus,
        attempts: u32,
        started_at: &str,
    ) -> Result<bool> {
        let n = self
            .execute(
                "UPDATE {s}flow_runs SET status = 'running', attempts = attempts + 1, started_at = ? WHERE id = ? AND status = ? AND attempts = ? AND NOT EXISTS (SELECT 1 FROM {s}write_pauses w WHERE w.env = {s}flow_runs.env)",
                &[
                    Value::Text(started_at.into()),
                    Value::Text(id.into()),
                    Value::Text(status.as_str().into()),
                    Value::Int(i64::from(attempts)),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Puts a waiting run back in the queue (its approval was answered).
    pub async fn requeue_run(&self, id: &str) -> Result<()> {
        self.execute(
            "UPDATE {s}flow_runs SET status = 'queued' WHERE id = ? AND status = 'waiting'",
            &[Value::Text(id.into())],
        )
        .await?;
        Ok(())
    }
}
