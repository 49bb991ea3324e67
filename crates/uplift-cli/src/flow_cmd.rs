//! `uplift flow`: create or change flows from files, switch them on and off, list and
//! show them, and answer the approvals their runs wait on.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use uplift_api::Listing;
use uplift_api::apps::RunStarted;
use uplift_api::flows::{Answer, Approval, ApprovalPage, Flow, Run};

use crate::client::{Client, NO_BODY, definition_name, read_document, seg};
use crate::output::{self, opt, word};

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
        FlowCmd::Apply { env, file } => apply(c, &flows(&env), &file, json_out).await?,
        FlowCmd::On { env, flow } => switch(c, &flows(&env), &flow, "on", json_out).await?,
        FlowCmd::Off { env, flow } => switch(c, &flows(&env), &flow, "off", json_out).await?,
        FlowCmd::List { env } => {
            let v: Listing<Flow> = c.get(&flows(&env)).await?;
            let header = ["id", "name", "owner", "state", "database"];
            output::table(json_out, &v.value, &header, |f| {
                vec![
                    f.id.clone(),
                    f.name.clone(),
                    f.owner.clone(),
                    word(&f.state),
                    f.database.clone(),
                ]
            });
        }
        FlowCmd::Run { env, flow } => {
            let v: RunStarted = c
                .post(&format!("{}/{}/run", flows(&env), seg(&flow)), NO_BODY)
                .await?;
            if json_out {
                output::print_json(&v);
            } else {
                println!("started run {}", v.run);
            }
        }
        FlowCmd::Runs { env, flow } => {
            let v: Listing<Run> = c
                .get(&format!("{}/{}/runs", flows(&env), seg(&flow)))
                .await?;
            let header = ["id", "status", "created_at", "finished_at", "error"];
            output::table(json_out, &v.value, &header, |r| {
                vec![
                    r.id.clone(),
                    word(&r.status),
                    r.created_at.clone(),
                    opt(&r.finished_at),
                    opt(&r.error),
                ]
            });
        }
        FlowCmd::Approvals { env, filter } => {
            let mut path = format!("/api/environments/{}/approvals", seg(&env));
            if let Some(f) = filter {
                path.push_str(&format!("?$filter={}", seg(&f)));
            }
            let v: ApprovalPage = c.get(&path).await?;
            let header = ["id", "status", "title", "approvers", "created_at"];
            output::table(json_out, &v.value, &header, |a| {
                vec![
                    a.id.clone(),
                    word(&a.status),
                    a.title.clone(),
                    a.approvers.join(", "),
                    a.created_at.clone(),
                ]
            });
        }
        FlowCmd::Answer {
            env,
            approval,
            outcome,
            comment,
        } => {
            let outcome = match outcome {
                Outcome::Approved => uplift_api::flows::Outcome::Approved,
                Outcome::Rejected => uplift_api::flows::Outcome::Rejected,
            };
            let path = format!(
                "/api/environments/{}/approvals/{}",
                seg(&env),
                seg(&approval)
            );
            let v: Approval = c.post(&path, Some(&Answer { outcome, comment })).await?;
            if json_out {
                output::print_json(&v);
            } else {
                println!("{} '{}'", word(&outcome), v.title);
            }
        }
        FlowCmd::Show { env, flow } => {
            let v: Flow = c.get(&format!("{}/{}", flows(&env), seg(&flow))).await?;
            output::object(json_out, &v);
        }
    }
    Ok(())
}

/// Creates the flow a file defines, or changes the flow of the same name.
async fn apply(c: &Client, base: &str, file: &std::path::Path, json_out: bool) -> Result<()> {
    let mut def = read_document(file)?;
    let name = definition_name(&def, "flow", file)?;
    let existing: Listing<Flow> = c.get(base).await?;
    let found = existing.value.iter().find(|f| f.name == name);
    // A file that does not say on or off leaves a switched-off flow off.
    if let (Some(f), Some(d)) = (found, def.as_object_mut())
        && !d.contains_key("state")
    {
        d.insert("state".into(), serde_json::to_value(f.state)?);
    }
    let v: Flow = match found {
        Some(f) => c.put(&format!("{base}/{}", seg(&f.id)), &def).await?,
        None => c.post(base, Some(&def)).await?,
    };
    if json_out {
        output::print_json(&v);
    } else {
        let verb = if found.is_some() {
            "changed"
        } else {
            "created"
        };
        println!("{verb} flow {name} ({})", v.id);
    }
    Ok(())
}

async fn switch(c: &Client, base: &str, flow: &str, state: &str, json_out: bool) -> Result<()> {
    let v: Flow = c
        .post(&format!("{base}/{}/{state}", seg(flow)), NO_BODY)
        .await?;
    if json_out {
        output::print_json(&v);
    } else {
        println!("flow {} is {}", v.name, word(&v.state));
    }
    Ok(())
}
