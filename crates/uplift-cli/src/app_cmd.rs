//! `uplift app`: save drafts of model-driven apps, publish them, list and show them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use uplift_api::Listing;
use uplift_api::apps::{App, Published};

use crate::client::{Client, NO_BODY, definition_name, read_document, seg};
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

/// One line per app: name, owner, editors, published version, whether a draft waits.
fn summary(a: &App) -> Vec<String> {
    vec![
        a.name.clone(),
        a.owner.clone(),
        a.editors.join(", "),
        a.published
            .as_ref()
            .map(|p| p.version.to_string())
            .unwrap_or_default(),
        if matches!(a.draft, Some(Some(_))) {
            "yes"
        } else {
            ""
        }
        .into(),
    ]
}

pub async fn run(cmd: AppCmd, c: &Client, json_out: bool) -> Result<()> {
    let apps = |env: &str| format!("/api/environments/{}/apps", seg(env));
    match cmd {
        AppCmd::Apply { env, file } => {
            let def = read_document(&file)?;
            let name = definition_name(&def, "app", &file)?;
            let v: App = c
                .put(&format!("{}/{}", apps(&env), seg(&name)), &def)
                .await?;
            if json_out {
                output::print_json(&v);
            } else {
                println!("saved the draft of app {name}");
            }
        }
        AppCmd::Publish { env, app } => {
            let v: Published = c
                .post(&format!("{}/{}/publish", apps(&env), seg(&app)), NO_BODY)
                .await?;
            if json_out {
                output::print_json(&v);
            } else {
                println!("published app {app} version {}", v.version);
            }
        }
        AppCmd::List { env } => {
            let v: Listing<App> = c.get(&apps(&env)).await?;
            let header = ["name", "owner", "editors", "version", "draft"];
            output::table(json_out, &v.value, &header, summary);
        }
        AppCmd::Show { env, app } => {
            let v: App = c.get(&format!("{}/{}", apps(&env), seg(&app))).await?;
            output::object(json_out, &v);
        }
    }
    Ok(())
}
