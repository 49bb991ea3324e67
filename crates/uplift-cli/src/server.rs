//! `uplift serve` and `uplift demo`: open the store, bootstrap the admin, serve.

use std::path::PathBuf;

use anyhow::{Context, Result};
use uplift_server::{AppState, bootstrap};
use uplift_store::{Backend, Store};

use crate::ServerArgs;

/// The server's configuration file.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Without it, e-mail is written as `.eml` files to `DATA_DIR/outbox/`.
    smtp: Option<uplift_flows::mail::SmtpConfig>,
}

/// Sender of messages when no `[smtp]` section names one.
const DEFAULT_FROM: &str = "uplift@localhost";

fn read_config(args: &ServerArgs, data_dir: &std::path::Path) -> Result<Config> {
    let path = match &args.config {
        Some(p) => p.clone(),
        None => {
            let p = data_dir.join("uplift.toml");
            if !p.exists() {
                return Ok(Config::default());
            }
            p
        }
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Opens the store named by the arguments, creates the demo when asked, and serves
/// until the process is stopped.
pub async fn serve(args: ServerArgs, demo_rows: Option<u64>) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let default_dir = if demo_rows.is_some() {
        "uplift-demo"
    } else {
        "uplift-data"
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_dir));
    let backend = match &args.database_url {
        Some(url) => Backend::Postgres { url: url.clone() },
        None => Backend::Sqlite {
            data_dir: data_dir.clone(),
        },
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let config = read_config(&args, &data_dir)?;
    let store = Store::open(backend).await.context("opening the store")?;
    let preset = std::env::var("UPLIFT_BOOTSTRAP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let boot = bootstrap(&store, &data_dir, preset.as_deref())
        .await
        .context("bootstrapping the admin")?;

    if let Some(rows) = demo_rows {
        crate::demo::ensure(&store, &data_dir, rows)
            .await
            .context("creating the demo")?;
    }

    // Steps interrupted by the last stop carry on before anything else is served.
    let mut state = AppState::new(store);
    if let Some(url) = &args.public_url {
        state = state.with_public_url(url);
    }
    let upgrades = state.services.upgrades();
    upgrades.set_plans_dir(data_dir.join("plans"));
    upgrades.set_retention(uplift_server::Retention {
        test_retention_hours: args.test_retention_hours,
        revert_window_hours: args.revert_window_hours,
    });
    // Knobs for tests that act in the middle of a copy (a kill, a cancel).
    if let Some(rows) = env_u64("UPLIFT_COPY_CHUNK_ROWS") {
        upgrades.set_chunk_rows(rows);
    }
    if let Some(ms) = env_u64("UPLIFT_TEST_COPY_PAUSE_MS") {
        upgrades.set_chunk_pause_ms(ms);
    }
    if let Some(at) = std::env::var("UPLIFT_TEST_STEP3_STALL")
        .ok()
        .filter(|s| !s.is_empty())
    {
        let at = at
            .parse()
            .map_err(|e: String| anyhow::anyhow!("UPLIFT_TEST_STEP3_STALL: {e}"))?;
        upgrades.set_stall(Some(at));
    }
    let resumed = state
        .services
        .upgrades()
        .resume()
        .await
        .context("resuming upgrades")?;
    if resumed > 0 {
        println!("Resumed {resumed} upgrade step(s) interrupted by the last stop.");
    }
    let mailer = match &config.smtp {
        Some(smtp) => uplift_flows::mail::Mailer::smtp(smtp),
        None => uplift_flows::mail::Mailer::files(data_dir.join("outbox"), DEFAULT_FROM),
    }
    .map_err(|e| anyhow::anyhow!("e-mail: {e}"))?;
    state.services.flows().set_mailer(mailer);
    if let Some(ms) = env_u64("UPLIFT_TEST_VERIFY_PAUSE_MS") {
        state.services.set_verify_pause_ms(ms);
    }
    // Flow runs left queued or running by the last stop, and outbox entries not yet
    // turned into runs, are picked up by the runtime's first round.
    state
        .services
        .flows()
        .start()
        .await
        .context("starting the flow runtime")?;

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Step 2's notices link to the public URL, else to where this server listens.
    let public = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    state.services.set_public_url(&public);
    // After the runtime (dry runs) and the mailer (notices): step 2's owed work.
    state.services.start_step2_worker();
    let token = boot.new_token.clone().or(preset).or_else(|| {
        std::fs::read_to_string(data_dir.join("admin.token"))
            .ok()
            .map(|t| t.trim().to_string())
    });
    println!(
        "Uplift is serving on http://{addr} (engine: {})",
        state.services.store().engine_name()
    );
    if demo_rows.is_some() {
        println!("Demo environment: http://{addr}/api/environments/contoso/data/");
    }
    match &token {
        Some(t) => println!("Admin token ({}): {t}", boot.admin_email),
        None => println!(
            "Admin token: see {}",
            data_dir.join("admin.token").display()
        ),
    }
    println!("Token file: {}", data_dir.join("admin.token").display());
    uplift_server::serve(listener, state)
        .await
        .context("serving")
}

/// A whole number from the environment, if set and valid.
fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}
