//! The `uplift` binary as a user runs it: the demo, the README's curl session, and the
//! client commands against a live server, on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use uplift_test_macros::engine_test;

/// How long a server may take to print its banner (a large demo is generated first).
const BANNER_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

const BIN: &str = env!("CARGO_BIN_EXE_uplift");

/// A running `uplift serve`/`uplift demo` process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    token: String,
    banner: Vec<String>,
}

impl Server {
    fn start(args: &[&str], cwd: &Path, data_dir: &Path) -> Server {
        Server::start_env(args, cwd, data_dir, &[])
    }

    /// A server with extra environment variables (the test-only copy pause).
    fn start_env(args: &[&str], cwd: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .current_dir(cwd)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("uplift starts");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        // Lines arrive through a channel, so a server that never prints its banner
        // fails the test after BANNER_WAIT instead of hanging the run; the reader
        // keeps draining stdout afterwards so the server never writes into a closed pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + BANNER_WAIT;
        let mut banner = Vec::new();
        let mut url = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line.expect("stdout line"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("no banner within {BANNER_WAIT:?}; got {banner:?}");
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if let Some(rest) = line.strip_prefix("Uplift is serving on ") {
                url = rest.split_whitespace().next().map(str::to_string);
            }
            let done = line.starts_with("Token file:");
            banner.push(line);
            if done {
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("no serving line in {banner:?}"));
        let token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_string();
        Server {
            child,
            url,
            token,
            banner,
        }
    }

    fn get(&self, path: &str) -> Value {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-H",
                &format!("Authorization: Bearer {}", self.token),
                &format!("{}{path}", self.url),
            ])
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "GET {path} failed");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stdout).into()))
    }

    /// Runs the `uplift` client against this server.
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.cli_as(&self.token, args)
    }

    /// Runs the `uplift` client against this server as the owner of `token`.
    fn cli_as(&self, token: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("UPLIFT_SERVER", &self.url)
            .env("UPLIFT_TOKEN", token)
            .output()
            .expect("uplift runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pg_url() -> Option<(String, String)> {
    let admin = std::env::var("UPLIFT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("uplift_cli_{}", uuid::Uuid::new_v4().simple());
    let ok = Command::new("psql")
        .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("UPLIFT_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "UPLIFT_REQUIRE_POSTGRES=1 but no PostgreSQL at {admin}"
        );
        eprintln!(
            "NOTICE: PostgreSQL at {admin} unreachable; skipping the PostgreSQL half of this test"
        );
        return None;
    }
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_string();
    Some((format!("{base}/{name}"), name))
}

fn drop_pg(name: &str) {
    let admin = std::env::var("UPLIFT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let _ = Command::new("psql")
        .args([
            &admin,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .output();
}

/// What `#[engine_test]` builds on: the backend of one engine, `None` for SQLite or
/// a fresh PostgreSQL database's URL and name (dropped after the test, even a failed
/// one); the PostgreSQL half is skipped with a notice when no server is reachable.
mod support {
    #[derive(Clone, Copy)]
    pub enum Engine {
        Sqlite,
        Postgres,
    }

    struct Dropped(String);

    impl Drop for Dropped {
        fn drop(&mut self) {
            super::drop_pg(&self.0);
        }
    }

    pub fn run_on(engine: Engine, _: (), body: impl FnOnce(Option<(String, String)>)) {
        match engine {
            Engine::Sqlite => body(None),
            Engine::Postgres => {
                if let Some(pg) = super::pg_url() {
                    let _drop = Dropped(pg.1.clone());
                    body(Some(pg));
                }
            }
        }
    }
}

/// A server's arguments on the engine of the test: `--database-url` for PostgreSQL.
fn on<'a>(backend: &'a Option<(String, String)>, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    if let Some((url, _)) = backend {
        all.extend(["--database-url", url.as_str()]);
    }
    all
}

fn readme_session() -> String {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    let after = readme
        .split("<!-- readme-session")
        .nth(1)
        .expect("README has the session marker");
    let block = after.split("```sh\n").nth(1).expect("session block");
    block.split("\n```").next().expect("block end").to_string()
}

#[engine_test]
fn the_readme_session_works_as_printed_against_the_demo(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &on(&backend, &["demo", "--rows", "3000"]),
        dir.path(),
        &dir.path().join("uplift-demo"),
    );
    assert!(
        server.banner.iter().any(|l| l.contains("Admin token")),
        "{:?}",
        server.banner
    );
    let script = readme_session().replace("http://127.0.0.1:8080", &server.url);
    let out = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "\"name\":\"accounts\"",
        "<edmx:Edmx",
        "\"@odata.count\":",
        "\"Phone\":\"+44 20 7946 0000\"",
        "412 (stale ETag)",
        "204 (deleted)",
        "unknown property 'Nmae' at position 1",
        "200 (accounts as dave)",
        "403 (workers as dave)",
    ] {
        assert!(
            stdout.contains(expected),
            "the README session output lacks {expected}:\n{stdout}"
        );
    }
}

#[engine_test]
fn the_demo_is_complete_deterministic_and_reused_on_restart(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["demo", "--rows", "4000"];
    if let Some((url, _)) = &backend {
        args.extend(["--database-url", url.as_str()]);
    }
    let counts = |s: &Server| -> Vec<(String, u64)> {
        let entities = s.get("/api/environments/contoso/entities");
        entities["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let set = e["set_name"].as_str().unwrap();
                let n = s.get(&format!("/api/environments/contoso/data/{set}/$count"));
                (
                    set.to_string(),
                    n.as_u64()
                        .unwrap_or_else(|| n.as_str().unwrap().parse().unwrap()),
                )
            })
            .collect()
    };
    let first = {
        let s = Server::start(&args, dir.path(), &data);
        let c = counts(&s);
        assert_eq!(c.len(), 12, "9 standard + 3 custom entities: {c:?}");
        assert!(
            c.iter().all(|(_, n)| *n > 0),
            "every entity has data: {c:?}"
        );
        assert!(c.iter().map(|(_, n)| n).sum::<u64>() >= 3900);

        let env = s.get("/api/environments/contoso");
        assert_eq!(env["security_mode"], "restricted");

        // Apps and flows owned by the makers, with editors, covering every trigger.
        let apps = s.get("/api/environments/contoso/apps");
        let apps = apps["value"].as_array().unwrap();
        assert_eq!(apps.len(), 3, "{apps:#?}");
        assert!(apps.iter().all(|a| a["published"]["version"] == 1
            && a["owner"].as_str().unwrap().contains(".maker@")
            && !a["editors"].as_array().unwrap().is_empty()));
        assert!(
            apps.iter().any(|a| a["draft"].is_object()),
            "a draft in progress"
        );
        let flows = s.get("/api/environments/contoso/flows");
        let kinds: std::collections::BTreeSet<&str> = flows["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["definition"]["trigger"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            [
                "app_command",
                "manual",
                "record_created",
                "record_deleted",
                "record_updated",
                "schedule"
            ]
        );
        let text = flows.to_string() + &apps.iter().map(|a| a.to_string()).collect::<String>();
        for upgraded in [
            "FullName/first_name",
            "Address/city",
            "QuantityOnHand",
            "Owner",
            "ModifiedDateTime",
            "SalesOrderTax",
            "PositionWorkerAssignment",
        ] {
            assert!(text.contains(upgraded), "the demo refers to {upgraded}");
        }
        let long = s.get("/api/environments/contoso/entities/CustomerSatisfactionSurveyResponseForEnterpriseAccountsProgram");
        let long_fields: Vec<&str> = long["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .filter(|n| n.len() > 50)
            .collect();
        assert_eq!(long_fields.len(), 2);
        assert_eq!(
            long_fields[0][..50],
            long_fields[1][..50],
            "they collide when truncated to 50"
        );

        let old = s.get("/api/environments/contoso/data/archiveitems/$count?$filter=RecordedOn%20lt%201753-01-01");
        assert!(
            old.as_u64().unwrap_or(0) > 0 || old.as_str().is_some_and(|t| t != "0"),
            "pre-1753 dates"
        );
        for code in ["USD", "EUR", "GBP"] {
            let n = s.get(&format!("/api/environments/contoso/data/accounts/$count?$filter=Revenue/code%20eq%20'{code}'"));
            assert_ne!(n, Value::from(0), "currency {code}");
        }
        let imgs =
            s.get("/api/environments/contoso/data/products/$count?$filter=Picture%20ne%20null");
        assert_ne!(imgs, Value::from(0), "images");
        let users = s.get("/api/users");
        let users = users.as_array().unwrap();
        assert_eq!(users.iter().filter(|u| u["role"] == "maker").count(), 3);
        assert!(users.iter().any(|u| u["status"] == "disabled"));
        let roles = s.get("/api/environments/contoso/roles");
        let disabled_holds_role = roles.as_array().unwrap().iter().any(|r| {
            r["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|u| u == "mallory@contoso.com"))
        });
        assert!(disabled_holds_role, "a disabled user holds a role");
        // Every command of the demo's apps runs its flow on a record of its entity.
        let mut commands = 0;
        for app in apps {
            let name = app["name"].as_str().unwrap();
            for c in app["published"]["definition"]["commands"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let entity = c["entity"].as_str().unwrap();
                let set = s.get(&format!("/api/environments/contoso/entities/{entity}"));
                let set = set["set_name"].as_str().unwrap();
                let rows = s.get(&format!("/api/environments/contoso/data/{set}?$top=1"));
                let record = rows["value"][0]["id"].as_str().unwrap();
                let label = c["label"].as_str().unwrap();
                let (code, run) = curl_json(
                    &s,
                    "POST",
                    &format!(
                        "/api/environments/contoso/apps/{}/commands/{}/run",
                        name.replace(' ', "%20"),
                        label.replace(' ', "%20")
                    ),
                    &format!(r#"{{"record": "{record}"}}"#),
                );
                assert_eq!(code, 202, "{name}: {label}: {run}");
                let path = format!(
                    "/api/environments/contoso/flows/{}/runs/{}",
                    run["flow"].as_str().unwrap(),
                    run["run"].as_str().unwrap()
                );
                let mut status = Value::Null;
                for _ in 0..200 {
                    status = s.get(&path)["status"].clone();
                    if status == "succeeded" || status == "waiting" || status == "failed" {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                assert!(
                    status == "succeeded" || status == "waiting",
                    "{name}: {label}: {:#}",
                    s.get(&path)
                );
                commands += 1;
            }
        }
        assert!(commands >= 2, "the demo's apps have commands");
        // Fields of every classic type exist across the entities with data.
        let all = s.get("/api/environments/contoso/entities");
        let mut types: Vec<String> = all["entities"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| {
                e["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["type"].as_str().unwrap().to_string())
            })
            .collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), 21, "every classic type: {types:?}");
        c
    };
    let s = Server::start(&args, dir.path(), &data);
    assert!(
        s.banner.iter().any(|l| l.contains("Reusing the demo")),
        "{:?}",
        s.banner
    );
    assert_eq!(counts(&s), first, "a restart serves the same demo");
    drop(s);
}

#[engine_test]
fn client_commands_print_tables_or_json_and_fail_with_one_line(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["serve"]),
        dir.path(),
        &dir.path().join("data"),
    );
    let (ok, out, err) = s.cli(&["env", "create", "acme", "--security-mode", "restricted"]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = s.cli(&["env", "list"]);
    assert!(
        ok && out.contains("acme") && out.contains("restricted"),
        "{out}"
    );
    let (ok, out, _) = s.cli(&["env", "list", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v[0]["name"], "acme");

    let defs = dir.path().join("entities.toml");
    std::fs::write(
        &defs,
        r#"
[entities.Project]
business_key = "Title"
display_name = { en = "Project" }
[[entities.Project.fields]]
name = "Title"
type = "Text"
required = true
[[entities.Project.fields]]
name = "Customer"
type = "Lookup"
target = "Account"
"#,
    )
    .unwrap();
    let (ok, out, err) = s.cli(&["env", "apply", "acme", defs.to_str().unwrap()]);
    assert!(ok && out.contains("created entity Project"), "{out}{err}");
    let (ok, out, _) = s.cli(&["env", "apply", "acme", defs.to_str().unwrap()]);
    assert!(ok && out.contains("already up to date"), "{out}");

    let (ok, out, err) = s.cli(&["user", "create", "ann@acme.test", "--role", "maker"]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = s.cli(&["user", "list"]);
    assert!(ok && out.contains("ann@acme.test") && out.contains("maker"));
    let (ok, token, _) = s.cli(&["token", "create", "--user", "ann@acme.test"]);
    assert!(ok && token.trim().starts_with("upl_"), "{token}");
    let (ok, out, _) = s.cli(&["token", "list", "--user", "ann@acme.test", "--json"]);
    let listed: Value = serde_json::from_str(&out).unwrap_or_default();
    let id = listed[0]["id"].as_str().unwrap_or_default().to_string();
    assert!(ok && id.len() == 16 && !out.contains(token.trim()), "{out}");
    let (ok, out, _) = s.cli(&["token", "list", "--user", "ann@acme.test"]);
    assert!(
        ok && out.contains(&id) && out.contains("ann@acme.test"),
        "{out}"
    );
    let (ok, out, err) = s.cli(&["token", "revoke", &id]);
    assert!(ok && out.contains(&format!("revoked {id}")), "{out}{err}");
    let (ok, out, _) = s.cli(&["token", "list", "--user", "ann@acme.test", "--json"]);
    assert!(ok && out.trim() == "[]", "{out}");

    let roles = dir.path().join("roles.toml");
    std::fs::write(
        &roles,
        "[roles.Sales]\nAccount = [\"Create\", \"Read\"]\nProject = [\"Read\"]\n",
    )
    .unwrap();
    let (ok, out, err) = s.cli(&["role", "apply", "acme", roles.to_str().unwrap()]);
    assert!(ok && out.contains("applied role Sales"), "{out}{err}");
    let (ok, _, err) = s.cli(&["role", "assign", "acme", "Sales", "ann@acme.test"]);
    assert!(ok, "{err}");
    let (ok, out, _) = s.cli(&["role", "list", "acme"]);
    assert!(ok && out.contains("ann@acme.test"), "{out}");
    let (ok, out, _) = s.cli(&["env", "show", "acme", "--json"]);
    assert!(ok && out.contains("\"Project\""));

    let (ok, _, _) = s.cli(&["user", "disable", "ann@acme.test"]);
    assert!(ok);

    // Failures exit non-zero with one line naming the problem.
    for (args, expected) in [
        (vec!["env", "create", "acme"], "already exists"),
        (vec!["env", "show", "nowhere"], "no environment 'nowhere'"),
        (
            vec!["env", "apply", "acme", "/nonexistent.toml"],
            "nonexistent.toml",
        ),
        (
            vec!["user", "create", "not-an-email"],
            "not an e-mail address",
        ),
    ] {
        let (ok, out, err) = s.cli(&args);
        assert!(!ok, "{args:?} should fail: {out}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[entities.X\nname=").unwrap();
    let (ok, _, err) = s.cli(&["env", "apply", "acme", bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("bad.toml") && err.contains("line 1"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["env", "list"])
        .env("UPLIFT_SERVER", &s.url)
        .env_remove("UPLIFT_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no token"));
    let (ok, _, _) = s.cli(&["env", "delete", "acme"]);
    assert!(ok);
}

/// A third-party OData v4 client (python-odata) reflects `$metadata`, queries, follows
/// lookups and writes through the API. CI installs it; elsewhere the test says how.
#[engine_test]
fn app_and_flow_commands_apply_publish_switch_list_and_show(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["serve"]),
        dir.path(),
        &dir.path().join("data"),
    );
    let (ok, out, err) = s.cli(&["env", "create", "acme"]);
    assert!(ok, "{out}{err}");
    let app = dir.path().join("sales.toml");
    std::fs::write(
        &app,
        r#"
name = "Sales"
owner = "admin@uplift.local"
[[views]]
name = "Accounts"
entity = "Account"
columns = ["Name", "Address/city"]
filter = "Name ne null"
[[forms]]
name = "Account"
entity = "Account"
fields = ["Name", "Email"]
"#,
    )
    .unwrap();
    let (ok, out, err) = s.cli(&["app", "apply", "acme", app.to_str().unwrap()]);
    assert!(
        ok && out.contains("saved the draft of app Sales"),
        "{out}{err}"
    );
    let (ok, out, err) = s.cli(&["app", "publish", "acme", "Sales"]);
    assert!(ok && out.contains("version 1"), "{out}{err}");
    let (ok, out, _) = s.cli(&["app", "list", "acme"]);
    assert!(ok && out.contains("Sales") && out.contains('1'), "{out}");
    let (ok, out, _) = s.cli(&["app", "show", "acme", "Sales", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert!(ok && v["published"]["definition"]["views"][0]["name"] == "Accounts");

    std::fs::write(
        &app,
        "name = \"Sales\"\nowner = \"admin@uplift.local\"\n[[views]]\nname = \"V\"\nentity = \"Account\"\ncolumns = [\"Nope\"]\n",
    )
    .unwrap();
    let (ok, out, err) = s.cli(&["app", "apply", "acme", app.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("view 'V' column 'Nope'"), "{err}");

    // Flows: created from a file, changed by applying it again, switched off.
    let flow = dir.path().join("flow.toml");
    let text = |subject: &str| {
        format!(
            "name = \"Hello\"\nowner = \"admin@uplift.local\"\n[trigger]\nkind = \"manual\"\n[[steps]]\nkind = \"send_email\"\nname = \"mail\"\nto = [\"ops@acme.test\"]\nsubject = \"{subject}\"\n"
        )
    };
    std::fs::write(&flow, text("Hi")).unwrap();
    let (ok, out, err) = s.cli(&["flow", "apply", "acme", flow.to_str().unwrap()]);
    assert!(ok && out.starts_with("created flow Hello ("), "{out}{err}");
    let id = out
        .trim()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    std::fs::write(&flow, text("Hi again")).unwrap();
    let (ok, out, err) = s.cli(&["flow", "apply", "acme", flow.to_str().unwrap()]);
    assert!(
        ok && out.contains(&format!("changed flow Hello ({id})")),
        "{out}{err}"
    );
    let (ok, out, _) = s.cli(&["flow", "off", "acme", &id]);
    assert!(ok && out.contains("flow Hello is off"), "{out}");
    let (ok, out, _) = s.cli(&["flow", "list", "acme"]);
    assert!(ok && out.contains(&id) && out.contains("off"), "{out}");
    // Applying the file again (it says nothing of on or off) leaves the flow off.
    let (ok, out, err) = s.cli(&["flow", "apply", "acme", flow.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = s.cli(&["flow", "show", "acme", &id, "--json"]);
    let v: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert!(ok && v["state"] == "off", "{v}");
    let (ok, out, _) = s.cli(&["flow", "show", "acme", &id, "--json"]);
    let v: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert!(
        ok && v["definition"]["steps"][0]["subject"] == "Hi again",
        "{v}"
    );
    let (ok, _, err) = s.cli(&["flow", "on", "acme", "nope"]);
    assert!(!ok && err.contains("no flow 'nope'"), "{err}");
    let (ok, _, err) = s.cli(&["flow", "run", "acme", &id]);
    assert!(!ok && err.contains("is off"), "{err}");
    let (ok, out, err) = s.cli(&["flow", "on", "acme", &id]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = s.cli(&["flow", "run", "acme", &id]);
    assert!(ok && out.starts_with("started run "), "{out}{err}");
    // Without [smtp], the message lands as a .eml file in DATA_DIR/outbox.
    let outbox = dir.path().join("data").join("outbox");
    let mut eml = String::new();
    for _ in 0..100 {
        if let Some(f) = std::fs::read_dir(&outbox).ok().and_then(|mut d| d.next()) {
            eml = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
            if !eml.is_empty() {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        eml.contains("Subject: Hi again") && eml.contains("ops@acme.test"),
        "{eml}"
    );
    let mut out = String::new();
    for _ in 0..100 {
        let (ok, o, err) = s.cli(&["flow", "runs", "acme", &id]);
        assert!(ok, "{err}");
        out = o;
        if out.contains("succeeded") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(out.contains("succeeded"), "{out}");

    // Approvals: a run waits on one, listed and answered from the command line.
    let ask = dir.path().join("ask.json");
    std::fs::write(
        &ask,
        r#"{"name": "Ask", "owner": "admin@uplift.local", "trigger": {"kind": "manual"},
            "steps": [{"kind": "start_approval", "name": "ok", "title": "Ship it?",
                       "approvers": ["admin@uplift.local"]}]}"#,
    )
    .unwrap();
    let (ok, out, err) = s.cli(&["flow", "apply", "acme", ask.to_str().unwrap(), "--json"]);
    assert!(ok, "{out}{err}");
    let ask_id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out, err) = s.cli(&["flow", "run", "acme", &ask_id]);
    assert!(ok, "{out}{err}");
    let mut pending = Value::Null;
    for _ in 0..100 {
        let (ok, o, err) = s.cli(&[
            "flow",
            "approvals",
            "acme",
            "--filter",
            "status eq 'pending'",
            "--json",
        ]);
        assert!(ok, "{err}");
        pending = serde_json::from_str(&o).unwrap();
        if pending.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(pending[0]["title"], "Ship it?", "{pending}");
    let approval = pending[0]["id"].as_str().unwrap();
    let (ok, _, err) = s.cli(&["flow", "answer", "acme", approval, "maybe"]);
    assert!(!ok && err.contains("maybe"), "{err}");
    let (ok, out, err) = s.cli(&[
        "flow",
        "answer",
        "acme",
        approval,
        "approved",
        "--comment",
        "go",
    ]);
    assert!(ok && out.contains("approved 'Ship it?'"), "{out}{err}");
    let (ok, _, err) = s.cli(&["flow", "answer", "acme", approval, "rejected"]);
    assert!(!ok && err.contains("already answered"), "{err}");
    let (ok, out, _) = s.cli(&["flow", "approvals", "acme", "--filter", "colour eq 1"]);
    assert!(!ok, "{out}");
}

#[engine_test]
fn a_real_odata_client_reads_metadata_queries_and_writes(backend: Option<(String, String)>) {
    let has_client = Command::new("python3")
        .args(["-c", "import odata"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_client {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python-odata is missing: pip install -r tests/odata-client/requirements.txt"
        );
        eprintln!(
            "NOTICE: python-odata not installed (pip install -r tests/odata-client/requirements.txt); skipping"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["demo", "--rows", "2000"]),
        dir.path(),
        &dir.path().join("demo"),
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/odata-client/python_odata_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("{}/api/environments/contoso/data/", s.url))
        .arg(&s.token)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn curl_json(s: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    curl_json_within(s, method, path, body, 0)
}

/// `curl_json` giving up after `max_s` seconds (0: never), answering code 0 then.
fn curl_json_within(s: &Server, method: &str, path: &str, body: &str, max_s: u32) -> (u16, Value) {
    let mut curl = Command::new("curl");
    if max_s > 0 {
        curl.args(["-m", &max_s.to_string()]);
    }
    let out = curl
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H"])
        .arg(format!("Authorization: Bearer {}", s.token))
        .args(["-H", "Content-Type: application/json", "-d", body])
        .arg(format!("{}{path}", s.url))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// The demo's upgrade, with a rate for each currency it holds.
const START_UPGRADE: &str = r#"{"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{"EUR":1.08,"GBP":1.27,"JPY":0.0067}}"#;

/// Starts step 1 on the demo and waits until step 2 has verified every item once.
fn upgrade_to_step2(s: &Server) {
    let (code, body) = curl_json(
        s,
        "POST",
        "/api/environments/contoso/upgrade",
        START_UPGRADE,
    );
    assert_eq!(code, 202, "{body}");
    wait_for(s, |v| {
        v["status"] == "step2_verifying" && v["items"]["verifying"] == 0
    });
}

fn wait_for(s: &Server, mut done: impl FnMut(&Value) -> bool) -> Value {
    for _ in 0..3000 {
        let v = s.get("/api/environments/contoso/upgrade");
        if done(&v) {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("timed out waiting on the upgrade");
}

fn copy_running(v: &Value) -> bool {
    v["phases"].as_array().is_some_and(|ps| {
        ps.iter().any(|p| {
            p["phase"] == "copy" && p["started_at"].is_string() && p["finished_at"].is_null()
        })
    })
}

/// The per-entity lines of a report, without times.
fn report_lines(s: &Server) -> Vec<Value> {
    let r = s.get("/api/environments/contoso/upgrade/report");
    r["entities"].as_array().unwrap().clone()
}

#[engine_test]
fn step1_survives_a_killed_server_and_production_keeps_taking_writes(
    backend: Option<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["demo", "--rows", "20000"];
    if let Some((url, _)) = &backend {
        args.extend(["--database-url", url.as_str()]);
    }
    let start = START_UPGRADE;
    // Throttled, so the kill lands in the copy phase: small chunks, each followed by
    // a pause (test-only settings).
    let slow = [
        ("UPLIFT_COPY_CHUNK_ROWS", "2000"),
        ("UPLIFT_TEST_COPY_PAUSE_MS", "200"),
    ];
    let s = Server::start_env(&args, dir.path(), &data, &slow);
    let production_before = all_records(&s);
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade", start);
    assert_eq!(code, 202, "{body}");
    wait_for(&s, copy_running);
    // Production answers writes while the copy reads it.
    let mut written = Vec::new();
    for i in 0..5 {
        let (code, body) = curl_json(
            &s,
            "POST",
            "/api/environments/contoso/data/accounts",
            &format!(r#"{{"Name":"During copy {i}"}}"#),
        );
        assert_eq!(code, 201, "write during the copy: {body}");
        written.push(body["id"].as_str().unwrap().to_string());
    }
    let during = s.get("/api/environments/contoso/upgrade");
    assert!(
        copy_running(&during),
        "killed in the copy phase, started and not finished: {during}"
    );
    drop(s); // SIGKILL

    let s = Server::start(&args, dir.path(), &data);
    assert!(
        s.banner.iter().any(|l| l.contains("Resumed 1 upgrade")),
        "{:?}",
        s.banner
    );
    // The half-made test database is never served, before or during the resumed step.
    let (code, _) = curl_json(
        &s,
        "GET",
        "/api/environments/contoso/upgrade/test/data/accounts",
        "",
    );
    let status = s.get("/api/environments/contoso/upgrade");
    assert!(
        code == 404 || status["status"] == "step2_verifying",
        "served a test database while step 1 ran: {code} {status}"
    );
    // Every write acknowledged during the copy is in production; nothing else changed.
    for id in &written {
        let a = s.get(&format!("/api/environments/contoso/data/accounts({id})"));
        assert!(
            a["Name"]
                .as_str()
                .is_some_and(|n| n.starts_with("During copy")),
            "{a}"
        );
    }
    let mut after = all_records(&s);
    for (set, rows) in after.iter_mut() {
        if set == "accounts" {
            rows.retain(|r| !written.iter().any(|id| r["id"] == id.as_str()));
        }
    }
    assert_eq!(
        after, production_before,
        "production is otherwise unchanged"
    );
    let end = wait_for(&s, |v| v["status"] != "step1_running");
    assert_eq!(end["status"], "step2_verifying", "{end}");
    let resumed = report_lines(&s);
    for e in &resumed {
        if !e["target"].is_null() {
            assert_eq!(e["checksum_match"], true, "{e}");
            assert_eq!(
                e["imported"].as_u64().unwrap() + e["errors"].as_u64().unwrap(),
                e["exported"].as_u64().unwrap(),
                "{e}"
            );
        }
    }
    // The same data upgraded without interruption gives the same report.
    let (code, _) = curl_json(&s, "POST", "/api/environments/contoso/upgrade/cancel", "{}");
    assert_eq!(code, 200);
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade", start);
    assert_eq!(code, 202, "{body}");
    wait_for(&s, |v| v["status"] != "step1_running");
    assert_eq!(
        report_lines(&s),
        resumed,
        "a resumed step 1 ends with the report of an uninterrupted one"
    );

    // Cancel while step 1 runs (the copy's own cancel is tested in the server's
    // tests): it stops, the test database goes, a new start works.
    let (code, _) = curl_json(&s, "POST", "/api/environments/contoso/upgrade/cancel", "{}");
    assert_eq!(code, 200);
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade", start);
    assert_eq!(code, 202, "{body}");
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade/cancel", "{}");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (code, _) = curl_json(
        &s,
        "GET",
        "/api/environments/contoso/upgrade/test/data/accounts",
        "",
    );
    assert_eq!(code, 404, "no test database after a cancel");
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade", start);
    assert_eq!(code, 202, "a new upgrade can start after a cancel: {body}");
    let end = wait_for(&s, |v| v["status"] != "step1_running");
    assert_eq!(end["status"], "step2_verifying", "{end}");
    drop(s);
}

/// A local HTTP service that answers every request after 300 ms, so flow runs are
/// still under way when the server is killed. Returns its address.
fn slow_service() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                std::thread::sleep(std::time::Duration::from_millis(300));
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    addr
}

/// Writes are committed, the server is killed before (all of) their flow runs happen,
/// and after a restart every write has run its flow exactly once.
#[engine_test]
fn flow_runs_survive_a_killed_server_exactly_once(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["serve"];
    if let Some((url, _)) = &backend {
        args.extend(["--database-url", url.as_str()]);
    }
    let slow = slow_service();
    let s = Server::start(&args, dir.path(), &data);
    let (ok, out, err) = s.cli(&["env", "create", "acme"]);
    assert!(ok, "{out}{err}");
    let flow = format!(
        r#"{{"name": "Contact per account", "owner": "admin@uplift.local",
        "trigger": {{"kind": "record_created", "entity": "Account"}},
        "steps": [
          {{"kind": "http_request", "name": "slow", "method": "GET", "url": "http://{slow}/"}},
          {{"kind": "create_record", "name": "contact", "entity": "Contact",
           "values": {{"FullName": {{"last_name": "@{{trigger.record.Name}}"}}, "Account": "@{{trigger.record.id}}"}}}}
        ]}}"#
    );
    let (code, body) = curl_json(&s, "POST", "/api/environments/acme/flows", &flow);
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    const WRITES: usize = 12;
    for i in 0..WRITES {
        let (code, body) = curl_json(
            &s,
            "POST",
            "/api/environments/acme/data/accounts",
            &format!(r#"{{"Name": "A{i}"}}"#),
        );
        assert_eq!(code, 201, "{body}");
    }
    let before = s.get(&format!("/api/environments/acme/flows/{id}/runs"));
    let finished_before = before["value"].as_array().map_or(0, |r| {
        r.iter()
            .filter(|r| r["status"] != "queued" && r["status"] != "running")
            .count()
    });
    assert!(
        finished_before < WRITES,
        "killed before every run had finished"
    );
    drop(s); // SIGKILL

    let s = Server::start(&args, dir.path(), &data);
    let mut runs = Vec::new();
    for _ in 0..600 {
        let v = s.get(&format!("/api/environments/acme/flows/{id}/runs"));
        runs = v["value"].as_array().cloned().unwrap_or_default();
        if runs.len() == WRITES
            && runs
                .iter()
                .all(|r| r["status"] == "failed" || r["status"] == "succeeded")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(runs.len(), WRITES, "one run per committed write: {runs:#?}");
    let mut names: Vec<String> = runs
        .iter()
        .map(|r| {
            r["trigger"]["record"]["Name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), WRITES, "no write ran twice");
    for r in &runs {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    // Each run's record was made once, even by a step repeated after the kill.
    let contacts = s.get("/api/environments/acme/data/contacts/$count");
    assert_eq!(contacts, serde_json::json!(WRITES));
    drop(s);
}

/// A local HTTP service that counts the requests to each path. `/hang` never answers
/// its first request (the server is killed while it waits); everything else, and `/hang`
/// after that, answers at once.
fn counting_service() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let first_hang = {
                    let mut calls = seen.lock().unwrap();
                    calls.push(path.clone());
                    path == "/hang" && calls.iter().filter(|p| *p == "/hang").count() == 1
                };
                if first_hang {
                    std::thread::sleep(std::time::Duration::from_secs(120));
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    (addr, calls)
}

/// A run killed while its second step is in flight resumes at that step after a
/// restart: the first step's request is made once, the second's again.
#[engine_test]
fn a_killed_flow_run_resumes_at_its_first_unfinished_step(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["serve"];
    if let Some((url, _)) = &backend {
        args.extend(["--database-url", url.as_str()]);
    }
    let (service, calls) = counting_service();
    let count = |path: &str| calls.lock().unwrap().iter().filter(|p| *p == path).count();
    let s = Server::start(&args, dir.path(), &data);
    let (ok, out, err) = s.cli(&["env", "create", "acme"]);
    assert!(ok, "{out}{err}");
    let flow = format!(
        r#"{{"name": "Two calls", "owner": "admin@uplift.local", "trigger": {{"kind": "manual"}},
        "steps": [
          {{"kind": "http_request", "name": "first", "method": "GET", "url": "http://{service}/first"}},
          {{"kind": "http_request", "name": "second", "method": "GET", "url": "http://{service}/hang"}}
        ]}}"#
    );
    let (code, body) = curl_json(&s, "POST", "/api/environments/acme/flows", &flow);
    assert_eq!(code, 201, "{body}");
    let flow = body["id"].as_str().unwrap().to_string();
    let (code, body) = curl_json(
        &s,
        "POST",
        &format!("/api/environments/acme/flows/{flow}/run"),
        "",
    );
    assert_eq!(code, 202, "{body}");
    let run = body["run"].as_str().unwrap().to_string();
    for _ in 0..600 {
        if count("/hang") == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        (count("/first"), count("/hang")),
        (1, 1),
        "killed in the second step"
    );
    drop(s); // SIGKILL

    let s = Server::start(&args, dir.path(), &data);
    let path = format!("/api/environments/acme/flows/{flow}/runs/{run}");
    let mut done = Value::Null;
    for _ in 0..600 {
        done = s.get(&path);
        if done["status"] == "succeeded" || done["status"] == "failed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_eq!(
        count("/first"),
        1,
        "the finished step is not made again: {done:#}"
    );
    assert_eq!(
        count("/hang"),
        2,
        "the unfinished step is made again: {done:#}"
    );
    let steps = done["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{done:#}");
    assert!(steps.iter().all(|s| s["status"] == "succeeded"), "{done:#}");
}

/// The report's table: every row as wide as the header, every cell starting where its
/// header does.
fn assert_report_table_aligns(out: &str) {
    let lines: Vec<Vec<char>> = out
        .lines()
        .take_while(|l| !l.ends_with(':') && !l.starts_with("step 1"))
        .filter(|l| l.starts_with('│'))
        .map(|l| l.chars().collect())
        .collect();
    let header = lines.first().expect("a header row");
    let text: String = header.iter().collect();
    let starts: Vec<usize> = [
        "source", "target", "exported", "imported", "errors", "warnings", "check",
    ]
    .iter()
    .map(|h| {
        text.find(h)
            .map(|b| text[..b].chars().count())
            .expect("header column")
    })
    .collect();
    assert!(lines.len() > 10, "{out}");
    for row in &lines[1..] {
        let r: String = row.iter().collect();
        assert_eq!(row.len(), header.len(), "{r}\n{text}");
        for &p in &starts {
            assert!(
                row[p - 1] == ' ' && row[p] != ' ',
                "column at {p}: {r}\n{text}"
            );
        }
    }
}

#[engine_test]
fn upgrade_commands_preview_start_wait_report_and_cancel_the_demo(
    backend: Option<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["demo", "--rows", "3000"]),
        dir.path(),
        &dir.path().join("data"),
    );
    let (ok, out, err) = s.cli(&["plan", "list"]);
    assert!(ok && out.contains("classic-to-modern"), "{out}{err}");
    let (ok, out, _) = s.cli(&["plan", "show", "classic-to-modern"]);
    assert!(ok && out.contains("Quantity"), "{out}");
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, &out).unwrap();
    let mine = dir.path().join("My_Plan.toml");
    std::fs::write(&mine, &out).unwrap();
    let (ok, out, _) = s.cli(&["plan", "check", plan.to_str().unwrap()]);
    assert!(ok && out.contains("is valid"), "{out}");
    std::fs::write(&plan, "name = \"broken\"\nfrom = [\n").unwrap();
    let (ok, _, err) = s.cli(&["plan", "check", plan.to_str().unwrap()]);
    assert!(!ok && err.contains("line"), "{err}");

    // A path is uploaded (the server reads no path it is sent) and previewed by name.
    let (ok, out, err) = s.cli(&[
        "upgrade",
        "preview",
        "contoso",
        "--plan",
        mine.to_str().unwrap(),
    ]);
    assert!(
        ok && out.contains("cdm_positionworkerassignmentmap")
            && out.contains("currencies found: EUR, GBP, JPY, USD"),
        "{out}{err}"
    );
    assert!(err.contains("as plan 'my-plan'"), "{err}");
    let (ok, _, err) = s.cli(&[
        "upgrade",
        "preview",
        "contoso",
        "--plan",
        plan.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("plan 'plan'") && err.contains("line"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&[
        "upgrade",
        "start",
        "contoso",
        "--plan",
        "classic-to-modern",
        "--language",
        "en",
        "--currency",
        "USD",
        "--rate",
        "EUR=1.08",
    ]);
    assert!(
        !ok && err.contains("no exchange rate for GBP, JPY"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let start = [
        "upgrade",
        "start",
        "contoso",
        "--plan",
        "classic-to-modern",
        "--language",
        "en",
        "--currency",
        "USD",
        "--rate",
        "EUR=1.08",
        "--rate",
        "GBP=1.27",
        "--rate",
        "JPY=0.0067",
        "--wait",
    ];
    let (ok, out, err) = s.cli(&start);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("exported record count") && out.contains("step 1 took"),
        "{out}"
    );
    assert!(out.contains("cr_project") && out.contains(" ok"), "{out}");
    let (ok, out, _) = s.cli(&["upgrade", "status", "contoso"]);
    assert!(ok && out.contains("step2_verifying"), "{out}");
    let (ok, out, _) = s.cli(&["upgrade", "report", "contoso"]);
    assert!(ok, "{out}");
    assert_report_table_aligns(&out);
    let (ok, out, _) = s.cli(&["upgrade", "report", "contoso", "--json"]);
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    assert!(
        ok && report["entities"].as_array().is_some_and(|e| e.len() == 12),
        "{out}"
    );
    // Step 2's items: the demo's 3 apps and 7 flows, each a row; one shown whole.
    let (ok, out, err) = s.cli(&["upgrade", "items", "contoso", "--json"]);
    let items: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    let kinds: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(ok, "{err}");
    assert_eq!(
        (
            kinds.iter().filter(|k| **k == "app").count(),
            kinds.iter().filter(|k| **k == "flow").count()
        ),
        (3, 7),
        "{out}"
    );
    let (ok, out, err) = s.cli(&["upgrade", "items", "contoso"]);
    assert!(ok && out.lines().count() >= 10 + 3, "{out}{err}");
    let first = items[0]["id"].as_str().unwrap();
    let (ok, out, err) = s.cli(&["upgrade", "item", "contoso", first]);
    assert!(ok && out.contains("\"name\""), "{out}{err}");
    // An item with errors: no sign-off until each is resolved (here: accepted).
    let broken = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["findings"]["error"].as_u64() > Some(0))
        .expect("the demo has an item with errors");
    let broken = broken["id"].as_str().unwrap();
    let (ok, _, err) = s.cli(&["upgrade", "signoff", "contoso", broken]);
    assert!(!ok && err.contains("open error"), "{err}");
    let (ok, out, err) = s.cli(&["upgrade", "item", "contoso", broken, "--json"]);
    let detail: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert!(ok);
    for f in detail["findings"].as_array().unwrap() {
        let id = f["id"].as_str().unwrap();
        let args = [
            "upgrade", "accept", "contoso", broken, id, "--reason", "known",
        ];
        let (ok, _, err) = s.cli(&args);
        assert!(ok, "{err}");
    }
    let (ok, out, err) = s.cli(&["upgrade", "signoff", "contoso", broken]);
    assert!(ok && out.contains("verified"), "{out}{err}");
    let (ok, out, err) = s.cli(&["upgrade", "item", "contoso", broken, "--csv"]);
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        ok && rows[0].starts_with("id,severity,location"),
        "{out}{err}"
    );
    assert_eq!(
        rows.len(),
        1 + detail["findings"].as_array().unwrap().len(),
        "{out}"
    );
    assert!(
        rows[1..].iter().all(|r| r.contains(",accepted,known")),
        "{out}"
    );
    let (ok, out, err) = s.cli(&["upgrade", "verify", "contoso"]);
    assert!(ok && out.lines().count() == 10, "{out}{err}");
    let (ok, out, err) = s.cli(&["upgrade", "exclude", "contoso", first, "--reason", "unused"]);
    assert!(ok && out.contains("excluded"), "{out}{err}");
    let (ok, out, _) = s.cli(&["upgrade", "cancel", "contoso"]);
    assert!(ok && out.contains("cancelled"), "{out}");
    let (ok, _, err) = s.cli(&["upgrade", "retry", "contoso"]);
    assert!(!ok && err.contains("has not failed"), "{err}");
}

/// The served OpenAPI document passes a well-kept validator (PyPI
/// `openapi-spec-validator`, tests/openapi/requirements.txt) as OpenAPI 3.1.
#[test]
fn the_openapi_document_validates_as_openapi_3_1() {
    let has_validator = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_validator {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openapi-spec-validator is missing: pip install -r tests/openapi/requirements.txt"
        );
        eprintln!(
            "NOTICE: openapi-spec-validator not installed (pip install -r tests/openapi/requirements.txt); skipping"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&["serve"], dir.path(), &dir.path().join("data"));
    let doc = dir.path().join("openapi.json");
    let fetched = Command::new("curl")
        .args(["-sf", "-o"])
        .arg(&doc)
        .arg(format!("{}/api/openapi.json", s.url))
        .status()
        .expect("curl runs");
    assert!(fetched.success());
    let script = "import json, sys\nfrom openapi_spec_validator import validate\nfrom openapi_spec_validator.validation import OpenAPIV31SpecValidator\nd = json.load(open(sys.argv[1]))\nassert d['openapi'].startswith('3.1'), d['openapi']\nvalidate(d, cls=OpenAPIV31SpecValidator)\nprint('VALID', len(d['paths']))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&doc)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("VALID"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every record of every entity of the demo, page after page, by id.
fn all_records(s: &Server) -> Vec<(String, Vec<Value>)> {
    let entities = s.get("/api/environments/contoso/entities");
    entities["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let set = e["set_name"].as_str().unwrap().to_string();
            let mut rows = Vec::new();
            let mut path = format!("/api/environments/contoso/data/{set}?$orderby=id");
            loop {
                let page = s.get(&path);
                rows.extend(page["value"].as_array().unwrap().iter().cloned());
                match page["@odata.nextLink"].as_str() {
                    Some(next) => path = next[next.find("/api/").unwrap()..].to_string(),
                    None => break,
                }
            }
            (set, rows)
        })
        .collect()
}

/// Every record of every entity set of the demo, in id order, each set as one array.
fn demo_records(s: &Server) -> Vec<(String, Value)> {
    all_records(s)
        .into_iter()
        .map(|(set, rows)| (set, Value::Array(rows)))
        .collect()
}

/// Two fresh data directories given the same `--rows` hold the same demo, record for
/// record (ids, values, timestamps), on each engine.
#[engine_test]
fn the_demo_is_the_same_in_two_fresh_data_directories(backend: Option<(String, String)>) {
    let second_pg = backend.as_ref().and_then(|_| pg_url());
    let mut seen = Vec::new();
    for pg in [backend.clone(), second_pg.clone()] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["demo", "--rows", "1500"];
        if let Some((url, _)) = &pg {
            args.extend(["--database-url", url.as_str()]);
        }
        let s = Server::start(&args, dir.path(), &dir.path().join("data"));
        seen.push(demo_records(&s));
    }
    if let Some((_, name)) = second_pg {
        drop_pg(&name);
    }
    let total: usize = seen[0]
        .iter()
        .map(|(_, v)| v.as_array().map_or(0, Vec::len))
        .sum();
    assert!(total >= 1400, "{total} records");
    for ((set, a), (_, b)) in seen[0].iter().zip(&seen[1]) {
        assert_eq!(a, b, "{set} differs between two fresh demos");
    }
}

/// Puts a trigger on the test database's `account` table that changes every name the
/// copy inserts: the target no longer holds the converted rows.
fn corrupt_test_accounts(backend: &Option<(String, String)>, data: &Path) {
    match backend {
        None => {
            let db = rusqlite::Connection::open(data.join("envs/contoso/test-1.db")).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(
                "CREATE TRIGGER corrupt AFTER INSERT ON account BEGIN \
                 UPDATE account SET name = 'corrupted' WHERE id = NEW.id; END;",
            )
            .unwrap();
        }
        Some((url, _)) => {
            let sql = "CREATE FUNCTION env_contoso__test1.corrupt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := 'corrupted'; RETURN NEW; END $$; \
                       CREATE TRIGGER corrupt BEFORE INSERT ON env_contoso__test1.account FOR EACH ROW EXECUTE FUNCTION env_contoso__test1.corrupt();";
            let out = Command::new("psql")
                .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[engine_test]
fn a_target_corrupted_mid_step_is_reported_as_a_checksum_mismatch(
    backend: Option<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The test-only pause before the copy leaves time to corrupt the target.
    let slow = [("UPLIFT_TEST_COPY_PAUSE_MS", "1500")];
    let s = Server::start_env(
        &on(&backend, &["demo", "--rows", "1500"]),
        dir.path(),
        &data,
        &slow,
    );
    let start = START_UPGRADE;
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade", start);
    assert_eq!(code, 202, "{body}");
    let at = wait_for(&s, copy_running);
    assert_eq!(at["progress"]["done"], 0, "nothing copied yet: {at}");
    corrupt_test_accounts(&backend, &data);
    let end = wait_for(&s, |v| v["status"] != "step1_running");
    assert_eq!(end["status"], "step2_verifying", "{end}");

    let lines = report_lines(&s);
    let account = lines.iter().find(|e| e["source"] == "Account").unwrap();
    assert_eq!(account["checksum_match"], false, "{account}");
    let others_ok = lines
        .iter()
        .filter(|e| e["source"] != "Account" && !e["target"].is_null())
        .all(|e| e["checksum_match"] == true);
    assert!(others_ok, "only the corrupted entity mismatches: {lines:?}");
    let (ok, out, err) = s.cli(&["upgrade", "report", "contoso"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("MISMATCH") && out.contains("checksum MISMATCH: the test database does not hold exactly the converted rows of Account"),
        "{out}"
    );
}

/// The text of an `.eml` file's body, decoded from what lettre chose (7bit,
/// quoted-printable or base64), with its `To:` header.
fn read_eml(path: &Path) -> (String, String) {
    use base64::Engine as _;
    let raw = std::fs::read_to_string(path).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let to = head
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let body = if head.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
        body.replace("=\r\n", "")
    } else {
        body.to_string()
    };
    (to, body)
}

/// Step 2 on the demo: every item verified, though the server is killed in the
/// middle of it (nothing verified before the kill changes, the rest is done after);
/// then each maker's one message lists exactly the items they own or edit.
#[engine_test]
fn step2_verification_survives_a_kill_and_each_maker_is_mailed_their_items(
    backend: Option<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = on(&backend, &["demo", "--rows", "3000"]);
    let slow = [("UPLIFT_TEST_VERIFY_PAUSE_MS", "400")];
    let s = Server::start_env(&args, dir.path(), &data, &slow);
    let start = START_UPGRADE;
    let (code, body) = curl_json(&s, "POST", "/api/environments/contoso/upgrade", start);
    assert_eq!(code, 202, "{body}");
    let during = wait_for(&s, |v| {
        let (owed, total) = (&v["items"]["verifying"], &v["items"]["total"]);
        owed.as_u64() > Some(0) && owed.as_u64() < total.as_u64().map(|t| t - 1)
    });
    let before = s.get("/api/environments/contoso/upgrade/items");
    drop(s); // SIGKILL, in the middle of the verification
    let done_before: Vec<&Value> = before["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["verifying"] == false)
        .collect();
    assert!(!done_before.is_empty(), "killed mid-verification: {during}");

    let s = Server::start(&args, dir.path(), &data);
    let after = s.get("/api/environments/contoso/upgrade/items");
    for i in &done_before {
        let now = after["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == i["id"])
            .unwrap();
        assert_eq!(now, *i, "an item verified before the kill is as it was");
    }
    let end = wait_for(&s, |v| v["items"]["verifying"] == 0);
    assert_eq!(end["items"]["total"], 10, "{end}");
    let items = s.get("/api/environments/contoso/upgrade/items");
    let items = items["value"].as_array().unwrap();
    assert!(items.iter().all(|i| i["verifying"] == false));

    // Who should hear about what: each owner and editor, their items' names.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in items {
        let who = std::iter::once(&i["owner"]).chain(i["editors"].as_array().unwrap());
        for w in who {
            let name = format!(
                "{} '{}'",
                i["kind"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            );
            expected
                .entry(w.as_str().unwrap().to_string())
                .or_default()
                .push(name);
        }
    }
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..200 {
        got.clear();
        for f in std::fs::read_dir(data.join("outbox"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let (to, body) = read_eml(&f.path());
            if !body.contains("Check each, fix what is open, and sign it off") {
                continue;
            }
            let listed = body.lines().filter_map(|l| {
                let l = l.strip_prefix("- ")?;
                Some(l[..l.rfind(": ")?].to_string())
            });
            assert!(
                got.insert(to.clone(), listed.collect()).is_none(),
                "{to} mailed twice"
            );
        }
        if got.len() == expected.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for list in expected.values_mut().chain(got.values_mut()) {
        list.sort();
    }
    assert_eq!(
        got, expected,
        "each maker's message lists exactly their items"
    );
    drop(s);
}

/// The JSON a command printed, or the test fails with what it printed.
fn json_of((ok, out, err): (bool, String, String)) -> Value {
    assert!(ok, "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}{err}"))
}

/// Step 2 on the demo as its makers and admin work it: the owner of Sales Hub fixes
/// its copy's two errors with `upgrade edit`, verifies it again, accepts the warning
/// and signs it off, and cannot exclude; the admin settles the rest, and the gate
/// opens only with the last item.
#[engine_test]
fn a_maker_fixes_accepts_and_signs_off_and_the_gate_opens_with_the_last_item(
    backend: Option<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["demo", "--rows", "500"]),
        dir.path(),
        &dir.path().join("data"),
    );
    upgrade_to_step2(&s);
    let alice = "alice.maker@contoso.com";
    let (code, t) = curl_json(
        &s,
        "POST",
        "/api/tokens",
        &json!({"user": alice}).to_string(),
    );
    assert_eq!(code, 201, "{t}");
    let token = t["token"].as_str().unwrap();
    let as_alice = |args: &[&str]| s.cli_as(token, args);

    // She sees exactly the items she owns or edits.
    let all = json_of(s.cli(&["upgrade", "items", "contoso", "--json"]));
    let all = all.as_array().unwrap();
    let hers = |i: &&Value| {
        i["owner"] == alice || i["editors"].as_array().unwrap().contains(&json!(alice))
    };
    let names = |items: Vec<&Value>| -> Vec<String> {
        let mut n: Vec<String> = items
            .iter()
            .map(|i| i["name"].as_str().unwrap().into())
            .collect();
        n.sort();
        n
    };
    let seen = json_of(as_alice(&["upgrade", "items", "contoso", "--json"]));
    assert_eq!(
        names(seen.as_array().unwrap().iter().collect()),
        names(all.iter().filter(hers).collect())
    );

    let hub = all.iter().find(|i| i["name"] == "Sales Hub").unwrap();
    let hub = hub["id"].as_str().unwrap();
    let detail = json_of(as_alice(&["upgrade", "item", "contoso", hub, "--json"]));
    let open = |d: &Value, severity: &str| -> Vec<String> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["resolution"] == "open" && f["severity"] == severity)
            .map(|f| f["location"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        open(&detail, "error"),
        [
            "view 'Accounts by city' column 'Owner'",
            "view 'Recent orders' column 'ModifiedDateTime'"
        ],
        "{detail:#}"
    );
    let (ok, _, err) = as_alice(&["upgrade", "signoff", "contoso", hub]);
    assert!(!ok && err.contains("open error"), "{err}");

    // The fix: drop the column that has no counterpart, take the suggestion for the other.
    let mut copy = detail["copy"].clone();
    for view in copy["views"].as_array_mut().unwrap() {
        let columns = view["columns"].as_array_mut().unwrap();
        columns.retain(|c| c != "Owner");
        for c in columns.iter_mut() {
            if c == "ModifiedDateTime" {
                *c = json!("modifiedon");
            }
        }
    }
    let file = dir.path().join("sales-hub.json");
    std::fs::write(&file, copy.to_string()).unwrap();
    let (ok, out, err) = as_alice(&["upgrade", "edit", "contoso", hub, file.to_str().unwrap()]);
    assert!(
        ok && out.contains("Sales Hub") && out.contains("(1 open)"),
        "{out}{err}"
    );
    let (ok, out, err) = as_alice(&["upgrade", "verify", "contoso", hub]);
    assert!(ok, "{out}{err}");
    let detail = json_of(as_alice(&["upgrade", "item", "contoso", hub, "--json"]));
    assert_eq!(detail["copy"], copy, "the copy is the edited definition");
    assert_eq!(open(&detail, "error"), Vec::<String>::new(), "{detail:#}");
    assert_eq!(open(&detail, "warning"), ["app"], "{detail:#}");
    let warning = detail["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "warning")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let accept = [
        "upgrade",
        "accept",
        "contoso",
        hub,
        &warning,
        "--reason",
        "version 1 is what users run",
    ];
    let (ok, out, err) = as_alice(&accept);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = as_alice(&["upgrade", "signoff", "contoso", hub]);
    assert!(ok && out.contains("verified"), "{out}{err}");

    // Excluding is the admin's call; the gate waits for every item.
    let rest: Vec<&Value> = all.iter().filter(|i| i["id"] != hub).collect();
    let own = rest.iter().find(|i| hers(i)).unwrap()["id"]
        .as_str()
        .unwrap();
    let other = rest.iter().find(|i| !hers(i)).unwrap()["id"]
        .as_str()
        .unwrap();
    let (ok, _, err) = as_alice(&["upgrade", "signoff", "contoso", other]);
    assert!(
        !ok && err.contains("404"),
        "another maker's item is not hers to see: {err}"
    );
    let (ok, _, err) = as_alice(&["upgrade", "exclude", "contoso", own, "--reason", "mine"]);
    assert!(!ok && err.contains("403"), "{err}");
    for (n, item) in rest.iter().enumerate() {
        let gate = s.get("/api/environments/contoso/upgrade")["gate"].clone();
        assert_eq!(
            gate["ready"],
            false,
            "{} items left: {gate}",
            rest.len() - n
        );
        let id = item["id"].as_str().unwrap();
        let settled = if item["findings"]["error"] == 0 {
            s.cli(&["upgrade", "signoff", "contoso", id])
        } else {
            s.cli(&[
                "upgrade",
                "exclude",
                "contoso",
                id,
                "--reason",
                "rebuilt after the upgrade",
            ])
        };
        assert!(settled.0, "{}{}", settled.1, settled.2);
    }
    let status = s.get("/api/environments/contoso/upgrade");
    assert_eq!(
        status["gate"],
        json!({"ready": true, "blocking": []}),
        "{status:#}"
    );
    let counts = &status["items"];
    assert_eq!(
        (&counts["verified"], &counts["excluded"], &counts["open"]),
        (
            &json!(1 + rest.iter().filter(|i| i["findings"]["error"] == 0).count()),
            &json!(rest.iter().filter(|i| i["findings"]["error"] != 0).count()),
            &json!(0)
        ),
        "{status:#}"
    );
}

/// Step 3 from the command line on the demo: the preflight names what is not ready (the
/// gate, which an admin may override) and fails; `complete` refuses without the
/// override, and with it follows step 3 to its end and prints the pause figures;
/// `cleanup` then deletes the kept databases and says no revert is possible.
#[engine_test]
fn step3_from_the_cli_preflights_completes_and_cleans_up(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["demo", "--rows", "500"]),
        dir.path(),
        &dir.path().join("data"),
    );
    upgrade_to_step2(&s);

    let (ok, out, err) = s.cli(&["upgrade", "preflight", "contoso"]);
    assert!(!ok, "the demo's items are not all verified: {out}");
    assert!(
        out.contains("gate") && out.contains("FAIL (override possible)"),
        "{out}"
    );
    assert!(
        out.contains("flow_runtime") && err.contains("not ready"),
        "{out}{err}"
    );
    let (ok, _, err) = s.cli(&["upgrade", "complete", "contoso", "--wait"]);
    assert!(!ok && err.contains("gate"), "{err}");
    let status = s.get("/api/environments/contoso/upgrade");
    assert_eq!(status["status"], "step2_verifying", "nothing started");

    let (ok, out, err) = s.cli(&[
        "upgrade",
        "complete",
        "contoso",
        "--override",
        "checked by hand",
        "--pause-budget-ms",
        "5000",
        "--wait",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("completed") && out.contains("switched"),
        "{out}"
    );
    assert!(
        out.contains("writes held") && out.contains("budget: 5000 ms"),
        "{out}"
    );
    let status = s.get("/api/environments/contoso/upgrade");
    assert_eq!(status["status"], "completed", "{status:#}");
    let kept = status["step3"]["kept"].as_array().unwrap().clone();
    assert_eq!(kept.len(), 2, "{status:#}");
    assert!(kept.iter().all(|k| k["removed"] == false), "{status:#}");

    let (ok, out, err) = s.cli(&["upgrade", "cleanup", "contoso"]);
    assert!(ok && out.contains("no longer be reverted"), "{out}{err}");
    let status = s.get("/api/environments/contoso/upgrade");
    let kept = status["step3"]["kept"].as_array().unwrap();
    assert!(kept.iter().all(|k| k["removed"] == true), "{status:#}");
    let accounts = s.get("/api/environments/contoso/data/accounts?$top=1");
    assert_eq!(
        accounts["value"].as_array().map(Vec::len),
        Some(1),
        "production serves on the new schema: {accounts}"
    );
}

/// Creates a record through the data API (curl); returns the answer.
fn create(s: &Server, set: &str, body: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {}", s.token))
        .args(["-H", "Content-Type: application/json", "-d", body])
        .arg(format!("{}/api/environments/contoso/data/{set}", s.url))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// `uplift upgrade revert`: `--preview` lists what a write made after completion would
/// carry back; without a reason the command is refused; with one, `--wait` follows the
/// revert to its end, and production answers with the classic names and the write.
#[engine_test]
fn a_completed_upgrade_is_reverted_from_the_cli(backend: Option<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &on(&backend, &["demo", "--rows", "500"]),
        dir.path(),
        &dir.path().join("data"),
    );
    upgrade_to_step2(&s);
    let (ok, out, err) = s.cli(&[
        "upgrade",
        "complete",
        "contoso",
        "--override",
        "checked by hand",
        "--wait",
    ]);
    assert!(ok, "{out}{err}");
    let made = create(
        &s,
        "accounts",
        r#"{"name":"Reverted Ltd","address_city":"Oslo"}"#,
    );
    let id = made["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"))
        .to_string();

    let (ok, out, err) = s.cli(&["upgrade", "revert", "contoso", "--preview"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("account") && out.contains("written"), "{out}");
    let (ok, _, err) = s.cli(&["upgrade", "revert", "contoso", "--wait"]);
    assert!(!ok && err.contains("--reason"), "{err}");
    assert_eq!(
        s.get("/api/environments/contoso/upgrade")["status"],
        "completed"
    );

    let (ok, out, err) = s.cli(&[
        "upgrade",
        "revert",
        "contoso",
        "--reason",
        "the sales app broke",
        "--wait",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("reverted") && out.contains("writes held"),
        "{out}"
    );
    let back = s.get(&format!("/api/environments/contoso/data/accounts({id})"));
    assert_eq!(
        (&back["Name"], &back["Address"]["city"]),
        (&json!("Reverted Ltd"), &json!("Oslo")),
        "{back}"
    );
}

/// Where step 3 is killed (`UPLIFT_TEST_STEP3_STALL` holds it there), the phase a
/// rollback names, and whether production ends on the new database.
const STEP3_KILLS: [(&str, &str, bool); 6] = [
    ("preflight", "preflight", false),
    ("capture", "capture", false),
    ("build", "build", false),
    ("catch_up", "catch_up", false),
    ("before_switch", "pause", false),
    ("after_switch", "", true),
];

/// A write the gate holds: no answer within a second (curl's timeout, exit 28).
fn write_is_held(s: &Server) -> bool {
    write_is_held_as(s, "Name")
}

/// [`write_is_held`], naming the account's name `field` (`name` on the new schema).
fn write_is_held_as(s: &Server, field: &str) -> bool {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-m", "1", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {}", s.token))
        .args([
            "-H",
            "Content-Type: application/json",
            "-d",
            &json!({field: "probe"}).to_string(),
        ])
        .arg(format!("{}/api/environments/contoso/data/accounts", s.url))
        .output()
        .expect("curl runs");
    out.status.code() == Some(28)
}

/// Whether step 3 has reached `point`.
fn step3_at(s: &Server, v: &Value, point: &str) -> bool {
    let started = |phase: &str| {
        v["phases"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["phase"] == phase && p["started_at"].is_string())
        })
    };
    match point {
        "before_switch" => started("pause") && write_is_held(s),
        "after_switch" => {
            s.get("/api/environments/contoso")["database"] == v["step3"]["new_database"]
        }
        phase => v["status"] == "step3_running" && started(phase),
    }
}

/// Starts step 3 past the gate, writes accounts while it runs, and waits for `point`;
/// returns the accounts acknowledged (id, name).
fn complete_until(s: &Server, point: &str, field: &str) -> Vec<(String, String)> {
    let body = r#"{"pause_budget_ms":100000,"override":{"reason":"kill test"}}"#;
    let (code, v) = curl_json(
        s,
        "POST",
        "/api/environments/contoso/upgrade/complete",
        body,
    );
    assert_eq!(code, 202, "{point}: {v}");
    let mut acked = Vec::new();
    for i in 0..3 {
        let name = format!("before {point} {i}");
        // A write the pause holds (it may close early) is not acknowledged.
        let (code, v) = curl_json_within(
            s,
            "POST",
            "/api/environments/contoso/data/accounts",
            &json!({field: name}).to_string(),
            2,
        );
        if code == 201 {
            acked.push((v["id"].as_str().unwrap().to_string(), name));
        }
    }
    for _ in 0..300 {
        let v = s.get("/api/environments/contoso/upgrade");
        if step3_at(s, &v, point) {
            return acked;
        }
        assert_eq!(
            v["status"], "step3_running",
            "{point}: step 3 ended first: {v:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{point}: step 3 did not get there");
}

/// A server killed at each phase of step 3 resumes it: before the switch it rolls back
/// (production as it was, the upgrade back in step 2 with the failure logged, and step
/// 3 can be started again), after it rolls forward; no acknowledged write is lost.
/// One server is killed and started again for each point, the next one set.
#[engine_test]
fn step3_killed_at_each_phase_rolls_back_before_the_switch_and_forward_after(
    backend: Option<(String, String)>,
) {
    kill_step3_at(&backend, &STEP3_KILLS);
}

/// Killed once the switch is committed and publishing has begun, step 3 finishes.
#[engine_test]
fn step3_killed_while_publishing_finishes_it(backend: Option<(String, String)>) {
    kill_step3_at(&backend, &[("publish", "", true)]);
}

/// Step 1 and 2 on a fresh demo, then step 3 killed at each of `kills` in turn.
fn kill_step3_at(backend: &Option<(String, String)>, kills: &[(&str, &str, bool)]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = on(backend, &["demo", "--rows", "500"]);
    let start_at = |point: &str| {
        let env = [("UPLIFT_TEST_STEP3_STALL", point)];
        Server::start_env(&args, dir.path(), &data, &env)
    };
    let mut s = start_at(kills[0].0);
    upgrade_to_step2(&s);
    let original = s.get("/api/environments/contoso")["database"].clone();
    let mut acked = Vec::new();
    for (n, (point, phase, forward)) in kills.iter().enumerate() {
        acked.extend(complete_until(&s, point, "Name"));
        let new_database =
            s.get("/api/environments/contoso/upgrade")["step3"]["new_database"].clone();
        drop(s); // SIGKILL
        s = start_at(kills.get(n + 1).map_or("", |k| k.0));
        let v = s.get("/api/environments/contoso/upgrade");
        let database = s.get("/api/environments/contoso")["database"].clone();
        if *forward {
            assert_eq!(v["status"], "completed", "{point}: {v:#}");
            assert_eq!(database, new_database, "{point}: on the new production");
            assert_eq!(v["step3"]["switched"], true, "{point}: {v:#}");
        } else {
            assert_eq!(v["status"], "step2_verifying", "{point}: {v:#}");
            assert_eq!(v["step3"]["failure"]["phase"], *phase, "{point}: {v:#}");
            assert_eq!(database, original, "{point}: production as it was");
        }
        let field = if *forward { "name" } else { "Name" };
        for (id, name) in &acked {
            let a = s.get(&format!("/api/environments/contoso/data/accounts({id})"));
            assert_eq!(a[field], json!(name), "{point}: write {id} kept: {a}");
        }
    }
}

/// Starts a revert, writes accounts (new names) while it runs, and waits for `point`
/// (`before_switch`: writes held in the pause; `after_switch`: production back on the
/// old database); returns the accounts acknowledged (id, name).
fn revert_until(s: &Server, point: &str) -> Vec<(String, String)> {
    // One write before the revert starts, so there is always one to carry back.
    let name = format!("before the revert {point}");
    let (code, v) = curl_json(
        s,
        "POST",
        "/api/environments/contoso/data/accounts",
        &json!({"name": name}).to_string(),
    );
    assert_eq!(code, 201, "{point}: {v}");
    let mut acked = vec![(v["id"].as_str().unwrap().to_string(), name)];
    let body = r#"{"reason":"kill test","pause_budget_ms":100000}"#;
    let (code, v) = curl_json(s, "POST", "/api/environments/contoso/upgrade/revert", body);
    assert_eq!(code, 202, "{point}: {v}");
    for i in 0..3 {
        let name = format!("revert {point} {i}");
        let (code, v) = curl_json_within(
            s,
            "POST",
            "/api/environments/contoso/data/accounts",
            &json!({"name": name}).to_string(),
            2,
        );
        if code == 201 {
            acked.push((v["id"].as_str().unwrap().to_string(), name));
        }
    }
    for _ in 0..300 {
        let v = s.get("/api/environments/contoso/upgrade");
        let there = match point {
            "before_switch" => {
                v["step3"]["revert"]["pause"]["attempts"] == json!([])
                    && write_is_held_as(s, "name")
            }
            _ => s.get("/api/environments/contoso")["database"] == v["step3"]["from_database"],
        };
        if there {
            return acked;
        }
        assert_eq!(
            v["status"], "revert_running",
            "{point}: the revert ended first: {v:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{point}: the revert did not get there");
}

/// A server killed during a revert: held in the pause just before its switch back, it
/// rolls back (production stays on the upgraded database, the upgrade `completed` with
/// the failure logged, and a revert can start again); killed just after the switch, it
/// finishes. No acknowledged write is lost either way.
#[engine_test]
fn a_revert_killed_before_its_switch_rolls_back_and_after_it_finishes(
    backend: Option<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = on(&backend, &["demo", "--rows", "500"]);
    let start_at = |point: &str| {
        let env = [("UPLIFT_TEST_STEP3_STALL", point)];
        Server::start_env(&args, dir.path(), &data, &env)
    };
    let mut s = start_at("");
    upgrade_to_step2(&s);
    let (ok, out, err) = s.cli(&[
        "upgrade",
        "complete",
        "contoso",
        "--override",
        "x",
        "--wait",
    ]);
    assert!(ok, "{out}{err}");
    let t = s.get("/api/environments/contoso/upgrade")["step3"].clone();
    drop(s);

    s = start_at("before_switch");
    let mut acked = revert_until(&s, "before_switch");
    drop(s); // SIGKILL
    s = start_at("after_switch");
    let v = s.get("/api/environments/contoso/upgrade");
    assert_eq!(v["status"], "completed", "{v:#}");
    assert!(v["step3"]["revert"]["failure"].is_string(), "{v:#}");
    let database = s.get("/api/environments/contoso")["database"].clone();
    assert_eq!(
        database, t["new_database"],
        "still on the upgraded production"
    );
    for (id, name) in &acked {
        let a = s.get(&format!("/api/environments/contoso/data/accounts({id})"));
        assert_eq!(a["name"], json!(name), "write {id} kept: {a}");
    }

    acked.extend(revert_until(&s, "after_switch"));
    drop(s); // SIGKILL
    s = start_at("");
    let v = s.get("/api/environments/contoso/upgrade");
    assert_eq!(v["status"], "reverted", "{v:#}");
    let database = s.get("/api/environments/contoso")["database"].clone();
    assert_eq!(database, t["from_database"], "back on the old production");
    for (id, name) in &acked {
        let a = s.get(&format!("/api/environments/contoso/data/accounts({id})"));
        assert_eq!(a["Name"], json!(name), "write {id} carried back: {a}");
    }
}
