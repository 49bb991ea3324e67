//! `uplift flow`: create or change flows from files, switch them on and off, list and
//! show them, and answer the approvals their runs wait on.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use serde_json::json;

use crate::client::{Client, read_document, seg};
use crate::output;

#[derive(Subcommand)]
pub enum FlowCmd {
    /// Create a flow from a TOML or JSON file, or change the flow of the same name.
    Apply { env: String, file: PathBuf },
    /// Turn a flow on.
    On { env: String, flow: String },
    /// Turn a flow off.
    Off { env: String, flow: String },
    /// List the flows of an environment.
    List { env: String },
    /// Show a flow.
    Show { env: String, flow: String },
    /// Start a run of a manually triggered flow.
    Run { env: String, flow: String },
    /// A flow's runs, newest first.
    Runs { env: String, flow: String },
    /// Approval requests you are an approver of (all, for an admin).
    Approvals {
        env: String,
        /// A `$filter` over the approvals entity, e.g. "status eq 'pending'".
        #[arg(long)]
        filter: Option<String>,
    },
    /// Answer an approval request; the run waiting on it continues.
    Answer {
        env: String,
        approval: String,
        outcome: Outcome,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Outcome {
    Approved,
    Rejected,
}

pub async fn run(cmd: FlowCmd, c: &Client, json_out: bool) -> Result<()> {
    let flows = |env: &str| format!("/api/environments/{}/flows", seg(env));
    match cmd {
        FlowCmd::Apply { env, file } => {
            let mut def = read_document(&file)?;
            let name = def["name"]
                .as_str()
                .ok_or_else(|| anyhow!("{}: the flow has no 'name'", file.display()))?
                .to_string();
            let existing = c.get(&flows(&env)).await?;
            let found = existing["value"]
                .as_array()
                .and_then(|a| a.iter().find(|f| f["name"] == name.as_str()));
            let same = found.and_then(|f| f["id"].as_str()).map(str::to_string);
            // A file that does not say on or off leaves a switched-off flow off.
            if let (Some(f), Some(d)) = (found, def.as_object_mut())
                && !d.contains_key("state")
            {
                d.insert("state".into(), f["state"].clone());
            }
            let v = match &same {
                Some(id) => c.put(&format!("{}/{}", flows(&env), seg(id)), &def).await?,
                None => c.post(&flows(&env), &def).await?,
            };
            if json_out {
                output::object(true, &v);
            } else {
                let verb = if same.is_some() { "changed" } else { "created" };
                println!(
                    "{verb} flow {name} ({})",
                    v["id"].as_str().unwrap_or_default()
                );
            }
        }
        FlowCmd::On { env, flow } => switch(c, &flows(&env), &flow, "on", json_out).await?,
        FlowCmd::Off { env, flow } => switch(c, &flows(&env), &flow, "off", json_out).await?,
        FlowCmd::List { env } => {
            let v = c.get(&flows(&env)).await?;
            output::rows(
                json_out,
                &v["value"],
                &["id", "name", "owner", "state", "database"],
            );
        }
        FlowCmd::Run { env, flow } => {
            let v = c
                .post(&format!("{}/{}/run", flows(&env), seg(&flow)), &json!({}))
                .await?;
            if json_out {
                output::object(true, &v);
            } else {
                println!("started run {}", v["run"].as_str().unwrap_or_default());
            }
        }
        FlowCmd::Runs { env, flow } => {
            let v = c
                .get(&format!("{}/{}/runs", flows(&env), seg(&flow)))
                .await?;
            output::rows(
                json_out,
                &v["value"],
                &["id", "status", "created_at", "finished_at", "error"],
            );
        }
        FlowCmd::Approvals { env, filter } => {
            let mut path = format!("/api/environments/{}/approvals", seg(&env));
            if let Some(f) = filter {
                path.push_str(&format!("?$filter={}", seg(&f)));
            }
            let v = c.get(&path).await?;
            output::rows(
                json_out,
                &v["value"],
                &["id", "status", "title", "approvers", "created_at"],
            );
        }
        FlowCmd::Answer {
            env,
            approval,
            outcome,
            comment,
        } => {
            let outcome = match outcome {
                Outcome::Approved => "approved",
                Outcome::Rejected => "rejected",
            };
            let v = c
                .post(
                    &format!(
                        "/api/environments/{}/approvals/{}",
                        seg(&env),
                        seg(&approval)
                    ),
                    &json!({"outcome": outcome, "comment": comment}),
                )
                .await?;
            if json_out {
                output::object(true, &v);
            } else {
                println!("{} '{}'", outcome, v["title"].as_str().unwrap_or(&approval));
            }
        }
        FlowCmd::Show { env, flow } => {
            let v = c.get(&format!("{}/{}", flows(&env), seg(&flow))).await?;
            output::object(json_out, &v);
        }
    }
    Ok(())
}

async fn switch(c: &Client, base: &str, flow: &str, state: &str, json_out: bool) -> Result<()> {
    let v = c
        .post(&format!("{base}/{}/{state}", seg(flow)), &json!({}))
        .await?;
    if json_out {
        output::object(true, &v);
    } else {
        println!(
            "flow {} is {}",
            v["name"].as_str().unwrap_or(flow),
            v["state"].as_str().unwrap_or(state)
        );
    }
    Ok(())
}
