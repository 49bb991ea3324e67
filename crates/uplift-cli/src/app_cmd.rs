//! `uplift app`: save drafts of model-driven apps, publish them, list and show them.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, read_document, seg};
use crate::output;

#[derive(Subcommand)]
pub enum AppCmd {
    /// Save an app definition (TOML or JSON) as its draft.
    Apply { env: String, file: PathBuf },
    /// Publish an app's draft as its next version.
    Publish { env: String, app: String },
    /// List the apps of an environment.
    List { env: String },
    /// Show an app: its published version, and its draft if you may edit it.
    Show { env: String, app: String },
}

/// One line per app: name, owner, published version and whether a draft waits.
fn summary(a: &Value) -> Value {
    json!({
        "name": a["name"],
        "owner": a["owner"],
        "editors": a["editors"],
        "version": a["published"]["version"],
        "draft": if a["draft"].is_object() { "yes" } else { "" },
    })
}

pub async fn run(cmd: AppCmd, c: &Client, json_out: bool) -> Result<()> {
    let apps = |env: &str| format!("/api/environments/{}/apps", seg(env));
    match cmd {
        AppCmd::Apply { env, file } => {
            let def = read_document(&file)?;
            let name = def["name"]
                .as_str()
                .ok_or_else(|| anyhow!("{}: the app has no 'name'", file.display()))?
                .to_string();
            let v = c
                .put(&format!("{}/{}", apps(&env), seg(&name)), &def)
                .await?;
            if json_out {
                output::object(true, &v);
            } else {
                println!("saved the draft of app {name}");
            }
        }
        AppCmd::Publish { env, app } => {
            let v = c
                .post(&format!("{}/{}/publish", apps(&env), seg(&app)), &json!({}))
                .await?;
            if json_out {
                output::object(true, &v);
            } else {
                println!("published app {app} version {}", v["version"]);
            }
        }
        AppCmd::List { env } => {
            let v = c.get(&apps(&env)).await?;
            let rows: Vec<Value> = v["value"]
                .as_array()
                .map(|a| a.iter().map(summary).collect())
                .unwrap_or_default();
            if json_out {
                output::rows(true, &v["value"], &[]);
            } else {
                output::rows(
                    false,
                    &Value::Array(rows),
                    &["name", "owner", "editors", "version", "draft"],
                );
            }
        }
        AppCmd::Show { env, app } => {
            let v = c.get(&format!("{}/{}", apps(&env), seg(&app))).await?;
            output::object(json_out, &v);
        }
    }
    Ok(())
}
