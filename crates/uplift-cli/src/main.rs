//! `uplift`: runs the server (`serve`, `demo`) and talks to one (client commands).

mod app_cmd;
mod client;
mod complete_cmd;
mod demo;
mod demo_apps;
mod flow_cmd;
mod output;
mod revert_cmd;
mod server;
mod upgrade_cmd;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use output::word;
use uplift_api::admin::{
    CatalogChange, CatalogChanges, Environment, EnvironmentDetail, Membership, NewEnvironment,
    NewMember, NewToken, NewUser, Privileges, Role, RoleDefinition, RoleWithMembers, Token,
    TokenRequest, User, UserChange, UserStatus,
};

use client::{Client, read_document, seg};

/// A request builds and drops many small values (rows, JSON, strings) across the
/// runtime's threads; glibc's allocator spent a third of a list request's CPU on that
/// (see BENCHMARKS.md), mimalloc's thread-local heaps far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "uplift",
    version,
    about = "Self-hosted data platform with online environment upgrades"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server keeps its data, shared by `serve` and `demo`.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Data directory (SQLite files, admin.token, outbox).
    #[arg(long, env = "UPLIFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "UPLIFT_LISTEN")]
    pub listen: String,
    /// PostgreSQL URL; without it environments live in SQLite files under the data dir.
    #[arg(long, env = "UPLIFT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The address clients reach the server at (e.g. `https://uplift.example.com`):
    /// `@odata.nextLink` and `Location` start with it instead of the request's `Host`.
    #[arg(long, env = "UPLIFT_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
    /// Configuration file (TOML, with an `[smtp]` section); by default
    /// `DATA_DIR/uplift.toml` when it exists.
    #[arg(long, env = "UPLIFT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Hours a completed upgrade keeps its test database before the janitor deletes it.
    #[arg(long, default_value_t = 48, env = "UPLIFT_TEST_RETENTION_HOURS")]
    pub test_retention_hours: u64,
    /// Hours a completed upgrade keeps the old production, and so may be reverted.
    #[arg(long, default_value_t = 168, env = "UPLIFT_REVERT_WINDOW_HOURS")]
    pub revert_window_hours: u64,
}

#[derive(Args, Clone)]
struct Conn {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "UPLIFT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// API token.
    #[arg(long, global = true, env = "UPLIFT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServerArgs),
    /// Create (once) and serve the demo environment `contoso`.
    Demo {
        #[command(flatten)]
        server: ServerArgs,
        /// Rows of generated data, over all entities.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
    },
    /// Environments and their catalogs.
    Env {
        #[command(subcommand)]
        cmd: EnvCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Upgrade plans (shipped ones, or checking your own).
    Plan {
        #[command(subcommand)]
        cmd: PlanCmd,
    },
    /// Environment upgrades.
    Upgrade {
        #[command(subcommand)]
        cmd: UpgradeCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Security roles of an environment.
    Role {
        #[command(subcommand)]
        cmd: RoleCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Automation flows.
    Flow {
        #[command(subcommand)]
        cmd: flow_cmd::FlowCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Model-driven apps: drafts, published versions.
    App {
        #[command(subcommand)]
        cmd: app_cmd::AppCmd,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
enum EnvCmd {
    /// List environments.
    List,
    /// Create an environment.
    Create {
        name: String,
        #[arg(long, default_value = "classic")]
        schema_version: String,
        #[arg(long, default_value = "restricted")]
        security_mode: String,
    },
    /// Show an environment.
    Show { name: String },
    /// Delete an environment and its data.
    Delete { name: String },
    /// Apply entity definitions from a TOML or JSON file (`entities.<Name>` tables).
    Apply {
        name: String,
        file: PathBuf,
        /// During an upgrade's step 2: apply anyway, marking its test database stale.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum PlanCmd {
    /// List the shipped plans.
    List,
    /// Print a shipped plan.
    Show { name: String },
    /// Validate a plan file.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum UpgradeCmd {
    /// Show the target catalog's change list for a plan, touching nothing.
    Preview {
        env: String,
        #[arg(long, default_value = "classic-to-modern")]
        plan: String,
    },
    /// Start step 1: build the test database.
    Start {
        env: String,
        #[arg(long, default_value = "classic-to-modern")]
        plan: String,
        /// Base language: its display names are kept.
        #[arg(long)]
        language: String,
        /// Base currency.
        #[arg(long)]
        currency: String,
        /// Exchange rate to the base currency, CODE=RATE (repeat per currency).
        #[arg(long = "rate", value_parser = upgrade_cmd::parse_rate)]
        rates: Vec<(String, uplift_model::Decimal)>,
        /// In step 2, copy each app's draft where it has one, not its published version.
        #[arg(long)]
        drafts: bool,
        /// Draw progress bars until step 1 ends; exit non-zero if it failed.
        #[arg(long)]
        wait: bool,
    },
    /// Where the upgrade stands.
    Status { env: String },
    /// Step 1's report.
    Report { env: String },
    /// Cancel the upgrade (production stays as it was).
    Cancel { env: String },
    /// Run a failed step again.
    Retry { env: String },
    /// Rebuild the test database from production as it is now and verify every item
    /// again, keeping copies and edits (after `env apply --force`); `--wait` follows it.
    Refresh {
        env: String,
        #[arg(long)]
        wait: bool,
    },
    /// Step 2's items (the apps and flows you own or edit; every one for an admin).
    Items { env: String },
    /// One item: its findings, then its rewritten copy as JSON; `--csv`: its report,
    /// a row per finding.
    Item {
        env: String,
        item: String,
        #[arg(long)]
        csv: bool,
    },
    /// Replace an item's copy with the definition in FILE (JSON or TOML, an app's or a
    /// flow's as the item is): refused unless it is valid for the target catalog, then
    /// verified.
    Edit {
        env: String,
        item: String,
        file: PathBuf,
    },
    /// Verify an item now: its copy checked and run on the test database, its original
    /// on production (without ITEM: every item you may see, in the background, with a
    /// progress bar).
    Verify { env: String, item: Option<String> },
    /// Mail each maker the list of their items still open (admins).
    Notify { env: String },
    /// Accept a finding of an item, with a reason.
    Accept {
        env: String,
        item: String,
        finding: String,
        #[arg(long)]
        reason: String,
    },
    /// Sign an item off: refused while an error is open.
    Signoff { env: String, item: String },
    /// Leave an item out of the upgrade (admins), with a reason.
    Exclude {
        env: String,
        item: String,
        #[arg(long)]
        reason: String,
    },
    /// Delete what a completed upgrade kept (its test database and the old
    /// production) now, instead of when their time is up; no revert after it (admins).
    Cleanup { env: String },
    /// Step 3's checks, without starting it; exits non-zero unless every one passes.
    Preflight { env: String },
    /// Step 3 (admins): build the new production from production while it serves,
    /// catch up, pause writes briefly to switch, publish the copies.
    Complete {
        env: String,
        /// The longest the write pause may last (default 2000).
        #[arg(long)]
        pause_budget_ms: Option<u64>,
        /// Pauses tried before step 3 gives up (default 3).
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Start although step 2's gate is not ready; the reason is logged.
        #[arg(long = "override", value_name = "REASON")]
        override_reason: Option<String>,
        /// Draw progress bars until step 3 ends, print the pause figures; exit
        /// non-zero unless it completed.
        #[arg(long)]
        wait: bool,
    },
    /// Revert a completed upgrade within its window (admins): production goes back to
    /// the database it was on, every write since carried back; `--preview` only says
    /// what would go back and what cannot.
    Revert {
        env: String,
        /// Why (the upgrade's log keeps it); needed unless `--preview`.
        #[arg(long, required_unless_present = "preview")]
        reason: Option<String>,
        /// Show what a revert would carry back, and what it cannot, without reverting.
        #[arg(long, conflicts_with_all = ["reason", "wait"])]
        preview: bool,
        /// The longest the write pause may last (default 2000).
        #[arg(long)]
        pause_budget_ms: Option<u64>,
        /// Pauses tried before the revert gives up (default 3).
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Follow the revert to its end and print the pause figures; exit non-zero
        /// unless it reverted.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user.
    Create {
        email: String,
        #[arg(long)]
        display_name: Option<String>,
        /// admin, maker or user.
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// List users.
    List,
    /// Disable a user.
    Disable { email: String },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token (for yourself, or as an admin for USER). Shown once.
    Create {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (yours; as an admin everyone's, or USER's): ids, never the tokens.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (from `uplift token list`).
    Revoke { id: String },
}

#[derive(Subcommand)]
enum RoleCmd {
    /// Create or replace roles from a TOML or JSON file: `roles.<Role>.<Entity> = [privileges]`.
    Apply { env: String, file: PathBuf },
    /// Assign a role to a user.
    Assign {
        env: String,
        role: String,
        user: String,
    },
    /// List roles with their members.
    List { env: String },
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => server::serve(args, None).await,
        Command::Demo { server: args, rows } => server::serve(args, Some(rows)).await,
        Command::Env { cmd, conn } => env_cmd(cmd, &conn).await,
        Command::User { cmd, conn } => user_cmd(cmd, &conn).await,
        Command::Token { cmd, conn } => token_cmd(cmd, &conn).await,
        Command::Role { cmd, conn } => role_cmd(cmd, &conn).await,
        Command::App { cmd, conn } => app_cmd::run(cmd, &client(&conn)?, conn.json).await,
        Command::Flow { cmd, conn } => flow_cmd::run(cmd, &client(&conn)?, conn.json).await,
        Command::Plan { cmd } => match cmd {
            PlanCmd::List => {
                upgrade_cmd::plan_list();
                Ok(())
            }
            PlanCmd::Show { name } => upgrade_cmd::plan_show(&name),
            PlanCmd::Check { file } => upgrade_cmd::plan_check(&file),
        },
        Command::Upgrade { cmd, conn } => {
            let c = client(&conn)?;
            match cmd {
                UpgradeCmd::Preview { env, plan } => {
                    upgrade_cmd::preview(&c, &env, &plan, conn.json).await
                }
                UpgradeCmd::Start {
                    env,
                    plan,
                    language,
                    currency,
                    rates,
                    drafts,
                    wait,
                } => {
                    upgrade_cmd::start(
                        &c,
                        upgrade_cmd::StartArgs {
                            env: &env,
                            plan: &plan,
                            language: &language,
                            currency: &currency,
                            rates: &rates,
                            drafts,
                            wait,
                        },
                        conn.json,
                    )
                    .await
                }
                UpgradeCmd::Status { env } => upgrade_cmd::status(&c, &env, conn.json).await,
                UpgradeCmd::Report { env } => upgrade_cmd::report(&c, &env, conn.json).await,
                UpgradeCmd::Cancel { env } => {
                    upgrade_cmd::simple(&c, &env, "cancel", conn.json).await
                }
                UpgradeCmd::Retry { env } => {
                    upgrade_cmd::simple(&c, &env, "retry", conn.json).await
                }
                UpgradeCmd::Refresh { env, wait } => {
                    upgrade_cmd::refresh(&c, &env, wait, conn.json).await
                }
                UpgradeCmd::Items { env } => upgrade_cmd::items(&c, &env, conn.json).await,
                UpgradeCmd::Item {
                    env,
                    item,
                    csv: true,
                } => upgrade_cmd::item_csv(&c, &env, &item).await,
                UpgradeCmd::Item { env, item, .. } => {
                    upgrade_cmd::item(&c, &env, &item, conn.json).await
                }
                UpgradeCmd::Edit { env, item, file } => {
                    upgrade_cmd::edit(&c, &env, &item, &file, conn.json).await
                }
                UpgradeCmd::Verify { env, item } => {
                    upgrade_cmd::verify(&c, &env, item.as_deref(), conn.json).await
                }
                UpgradeCmd::Notify { env } => upgrade_cmd::notify(&c, &env, conn.json).await,
                UpgradeCmd::Accept {
                    env,
                    item,
                    finding,
                    reason,
                } => {
                    let path = format!("/findings/{}/accept", seg(&finding));
                    let body = serde_json::json!({ "reason": reason });
                    upgrade_cmd::change(&c, &env, &item, &path, &body, conn.json).await
                }
                UpgradeCmd::Signoff { env, item } => {
                    let body = serde_json::json!({});
                    upgrade_cmd::change(&c, &env, &item, "/signoff", &body, conn.json).await
                }
                UpgradeCmd::Cleanup { env } => complete_cmd::cleanup(&c, &env, conn.json).await,
                UpgradeCmd::Preflight { env } => complete_cmd::preflight(&c, &env, conn.json).await,
                UpgradeCmd::Complete {
                    env,
                    pause_budget_ms,
                    max_attempts,
                    override_reason,
                    wait,
                } => {
                    let args = complete_cmd::CompleteArgs {
                        env: &env,
                        pause_budget_ms,
                        max_attempts,
                        override_reason: override_reason.as_deref(),
                        wait,
                    };
                    complete_cmd::complete(&c, args, conn.json).await
                }
                UpgradeCmd::Revert {
                    env, preview: true, ..
                } => revert_cmd::preview(&c, &env, conn.json).await,
                UpgradeCmd::Revert {
                    env,
                    reason,
                    pause_budget_ms,
                    max_attempts,
                    wait,
                    ..
                } => {
                    let args = revert_cmd::RevertArgs {
                        env: &env,
                        reason: reason.as_deref().unwrap_or_default(),
                        pause_budget_ms,
                        max_attempts,
                        wait,
                    };
                    revert_cmd::revert(&c, args, conn.json).await
                }
                UpgradeCmd::Exclude { env, item, reason } => {
                    let body = serde_json::json!({ "reason": reason });
                    upgrade_cmd::change(&c, &env, &item, "/exclude", &body, conn.json).await
                }
            }
        }
    }
}

fn client(conn: &Conn) -> Result<Client> {
    if conn.token.is_none() {
        bail!(
            "no token: pass --token or set UPLIFT_TOKEN (the admin token is in DATA_DIR/admin.token)"
        );
    }
    Client::new(&conn.server, conn.token.clone())
}

async fn env_cmd(cmd: EnvCmd, conn: &Conn) -> Result<()> {
    let c = client(conn)?;
    match cmd {
        EnvCmd::List => {
            let v: Vec<Environment> = c.get("/api/environments").await?;
            let header = ["name", "schema_version", "security_mode", "created_at"];
            output::table(conn.json, &v, &header, |e| {
                vec![
                    e.name.clone(),
                    word(&e.schema_version),
                    word(&e.security_mode),
                    e.created_at.clone(),
                ]
            });
        }
        EnvCmd::Create {
            name,
            schema_version,
            security_mode,
        } => {
            let body = NewEnvironment {
                name,
                schema_version: parse_word(&schema_version, "schema version")?,
                security_mode: parse_word(&security_mode, "security mode")?,
            };
            let v: Environment = c.post("/api/environments", Some(&body)).await?;
            output::object(conn.json, &v);
        }
        EnvCmd::Show { name } => {
            let v: EnvironmentDetail = c.get(&format!("/api/environments/{}", seg(&name))).await?;
            output::object(conn.json, &v);
        }
        EnvCmd::Delete { name } => {
            c.delete(&format!("/api/environments/{}", seg(&name)))
                .await?;
            if !conn.json {
                println!("deleted environment {name}");
            }
        }
        EnvCmd::Apply { name, file, force } => {
            let doc = read_document(&file)?;
            let query = if force { "?force=true" } else { "" };
            let v: CatalogChanges = c
                .put(
                    &format!("/api/environments/{}/entities{query}", seg(&name)),
                    &doc,
                )
                .await?;
            if conn.json {
                output::print_json(&v);
            } else {
                if v.changes.is_empty() {
                    println!("{name}: already up to date");
                }
                for ch in v.changes {
                    match ch {
                        CatalogChange::CreatedEntity(e) => println!("created entity {e}"),
                        CatalogChange::AddedField(f) => println!("added field {f}"),
                    }
                }
            }
        }
    }
    Ok(())
}

/// A word of the API (`classic`, `maker`, …) into its type, naming what it should be.
/// An `http` or `https` URL without a query or fragment.
fn public_url(s: &str) -> Result<String, String> {
    let u = url::Url::parse(s).map_err(|e| format!("'{s}' is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "'{s}' must be an http or https URL without a query"
        ));
    }
    Ok(s.trim_end_matches('/').to_string())
}

fn parse_word<T: serde::de::DeserializeOwned>(w: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(w.to_string()))
        .map_err(|e| anyhow::anyhow!("'{w}' is not a {what}: {e}"))
}

async fn user_cmd(cmd: UserCmd, conn: &Conn) -> Result<()> {
    let c = client(conn)?;
    match cmd {
        UserCmd::Create {
            email,
            display_name,
            role,
        } => {
            let name = display_name
                .unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_string());
            let body = NewUser {
                email,
                display_name: name,
                role: parse_word(&role, "role (admin, maker or user)")?,
            };
            let v: User = c.post("/api/users", Some(&body)).await?;
            output::object(conn.json, &v);
        }
        UserCmd::List => {
            let v: Vec<User> = c.get("/api/users").await?;
            let header = ["email", "display_name", "role", "status"];
            output::table(conn.json, &v, &header, |u| {
                vec![
                    u.email.clone(),
                    u.display_name.clone(),
                    word(&u.role),
                    word(&u.status),
                ]
            });
        }
        UserCmd::Disable { email } => {
            let change = UserChange {
                status: Some(UserStatus::Disabled),
                ..UserChange::default()
            };
            let v: User = c
                .patch(&format!("/api/users/{}", seg(&email)), &change)
                .await?;
            output::object(conn.json, &v);
        }
    }
    Ok(())
}

async fn token_cmd(cmd: TokenCmd, conn: &Conn) -> Result<()> {
    let c = client(conn)?;
    match cmd {
        TokenCmd::Create { user, label } => {
            let v: NewToken = c
                .post("/api/tokens", Some(&TokenRequest { user, label }))
                .await?;
            if conn.json {
                output::print_json(&v);
            } else {
                println!("{}", v.token);
            }
        }
        TokenCmd::List { user } => {
            let path = match user {
                Some(u) => format!("/api/tokens?user={}", seg(&u)),
                None => "/api/tokens".to_string(),
            };
            let v: Vec<Token> = c.get(&path).await?;
            let header = ["id", "user", "label", "created_at"];
            output::table(conn.json, &v, &header, |t| {
                vec![
                    t.id.clone(),
                    t.user.clone(),
                    t.label.clone(),
                    t.created_at.clone(),
                ]
            });
        }
        TokenCmd::Revoke { id } => {
            c.delete(&format!("/api/tokens/{}", seg(&id))).await?;
            if !conn.json {
                println!("revoked {id}");
            }
        }
    }
    Ok(())
}

/// A roles file: `[roles.Sales] Account = ["Create", "Read"]`.
#[derive(serde::Deserialize)]
struct RolesFile {
    roles: std::collections::BTreeMap<String, Privileges>,
}

async fn role_cmd(cmd: RoleCmd, conn: &Conn) -> Result<()> {
    let c = client(conn)?;
    match cmd {
        RoleCmd::Apply { env, file } => {
            let doc: RolesFile = serde_json::from_value(read_document(&file)?).map_err(|e| {
                anyhow::anyhow!(
                    "{}: expected a 'roles' table of role name -> entity -> privileges ({e})",
                    file.display()
                )
            })?;
            for (name, privileges) in doc.roles {
                let path = format!("/api/environments/{}/roles/{}", seg(&env), seg(&name));
                let _: Role = c.put(&path, &RoleDefinition { privileges }).await?;
                if !conn.json {
                    println!("applied role {name}");
                }
            }
        }
        RoleCmd::Assign { env, role, user } => {
            let path = format!(
                "/api/environments/{}/roles/{}/members",
                seg(&env),
                seg(&role)
            );
            let v: Membership = c.post(&path, Some(&NewMember { user })).await?;
            output::object(conn.json, &v);
        }
        RoleCmd::List { env } => {
            let v: Vec<RoleWithMembers> = c
                .get(&format!("/api/environments/{}/roles", seg(&env)))
                .await?;
            output::table(conn.json, &v, &["name", "members"], |r| {
                vec![
                    r.name.clone(),
                    r.members.clone().unwrap_or_default().join(", "),
                ]
            });
        }
    }
    Ok(())
}
