//! Test harness: a server router on a real engine (a SQLite directory, or a fresh
//! PostgreSQL database), requests through the router, and the PostgreSQL policy:
//! skip with a notice when no server is reachable, fail when one is required.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uplift_server::{AppState, bootstrap, router};
use uplift_store::{Backend, Store};

pub const ADMIN_TOKEN: &str = "upl_test_admin_token";

/// One running platform under test.
pub struct Platform {
    pub engine: &'static str,
    pub router: Router,
    pub store: std::sync::Arc<Store>,
    pub upgrades: std::sync::Arc<uplift_upgrade::runner::Upgrades>,
    pub flows: std::sync::Arc<uplift_flows::Runtime>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

/// An answer: status, headers, and the body as JSON (or a JSON string for text).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error message of an OData error body.
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Platform {
    /// The data directory (SQLite's files live under it).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The name of the PostgreSQL database under test, if this is the PostgreSQL half.
    pub fn pg_database(&self) -> Option<&str> {
        self._pg.as_ref().map(|p| p.name.as_str())
    }

    /// The URL of the PostgreSQL database under test, if this is the PostgreSQL half.
    pub fn pg_url(&self) -> Option<&str> {
        self._pg.as_ref().map(|p| p.url.as_str())
    }

    /// A client of its own on the PostgreSQL database under test (to hold a lock or
    /// change something behind the server's back), if this is the PostgreSQL half.
    pub async fn pg_client(&self) -> Option<tokio_postgres::Client> {
        let url = self.pg_url()?;
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("a connection to the test database");
        tokio::spawn(conn);
        Some(client)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "test.local");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            // A string is sent as it is (an uploaded plan's TOML); anything else as JSON.
            Some(Value::String(text)) => req
                .header("content-type", "application/toml")
                .body(Body::from(text)),
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// Creates an environment as the admin; panics with the server's message if refused.
    pub async fn create_env(&self, name: &str, version: &str, mode: &str) {
        let a = self
            .post(
                "/api/environments",
                ADMIN_TOKEN,
                json!({"name": name, "schema_version": version, "security_mode": mode}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }

    /// Starts the environment's upgrade with the shipped plan (en, USD) and waits for
    /// step 1 to end and step 2's first verifications to be done.
    pub async fn upgrade_to_step2(&self, env: &str) {
        let start =
            serde_json::json!({"plan": "classic-to-modern", "language": "en", "currency": "USD"});
        let a = self
            .post(
                &format!("/api/environments/{env}/upgrade"),
                ADMIN_TOKEN,
                start,
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        self.wait_step1(env).await;
        self.wait_verified(env).await;
    }

    /// Waits until the environment's step 1 is no longer running; returns the status
    /// document it ended with.
    pub async fn wait_step1(&self, env: &str) -> Value {
        for _ in 0..600 {
            let s = self
                .get(&format!("/api/environments/{env}/upgrade"), ADMIN_TOKEN)
                .await;
            assert_eq!(s.status, StatusCode::OK, "{}", s.body);
            if s.body["status"] != "step1_running" {
                return s.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{}: step 1 did not end", self.engine);
    }

    /// Waits until no item of the environment's upgrade is owed a verification (the
    /// step 2 worker's); returns the status document.
    pub async fn wait_verified(&self, env: &str) -> Value {
        for _ in 0..1200 {
            let s = self
                .get(&format!("/api/environments/{env}/upgrade"), ADMIN_TOKEN)
                .await;
            assert_eq!(s.status, StatusCode::OK, "{}", s.body);
            if s.body["items"]["verifying"] == 0 {
                return s.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{}: verification did not end", self.engine);
    }

    /// Creates a user with a token and returns the token.
    pub async fn user(&self, email: &str, role: &str) -> String {
        let a = self
            .post(
                "/api/users",
                ADMIN_TOKEN,
                json!({"email": email, "display_name": email, "role": role}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let t = self
            .post("/api/tokens", ADMIN_TOKEN, json!({"user": email}))
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
        t.body["token"].as_str().expect("token").to_string()
    }
}

/// A platform over an existing backend (one a test prepared, such as a fixture).
pub async fn platform(
    engine: &'static str,
    backend: Backend,
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
    start_flows: bool,
) -> Platform {
    let store = Store::open(backend).await.expect("store opens");
    bootstrap(&store, dir.path(), Some(ADMIN_TOKEN))
        .await
        .expect("bootstrap");
    let state = AppState::new(store);
    state
        .services
        .upgrades()
        .set_plans_dir(dir.path().join("plans"));
    if start_flows {
        state
            .services
            .flows()
            .start()
            .await
            .expect("the flow runtime starts");
        state.services.start_step2_worker();
    }
    Platform {
        engine,
        store: state.services.store().clone(),
        upgrades: state.services.upgrades().clone(),
        flows: state.services.flows().clone(),
        router: router(state),
        _dir: dir,
        _pg: pg,
    }
}

/// The engine one half of an `#[engine_test]` runs on.
#[derive(Debug, Clone, Copy)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Whether the flow runtime runs: stopped, writes reach the outbox and nothing turns
/// them into runs until the test starts it (as after a crash).
#[derive(Debug, Clone, Copy, Default)]
pub enum Flows {
    #[default]
    Started,
    Stopped,
}

/// A platform on SQLite, for tests of what does not depend on the engine.
pub async fn sqlite() -> Platform {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_path_buf();
    platform("sqlite", Backend::Sqlite { data_dir }, dir, None, true).await
}

/// Builds a platform on `engine` and runs `body` with it; the PostgreSQL half is
/// skipped with a notice when no server is reachable (and fails when one is required).
pub async fn run_on<F, Fut>(engine: Engine, flows: Flows, body: F)
where
    F: FnOnce(Platform) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start_flows = matches!(flows, Flows::Started);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = match engine {
        Engine::Sqlite => {
            let data_dir = dir.path().to_path_buf();
            platform(
                "sqlite",
                Backend::Sqlite { data_dir },
                dir,
                None,
                start_flows,
            )
            .await
        }
        Engine::Postgres => {
            let Some(pg) = PgDatabase::create().await else {
                return;
            };
            let url = pg.url.clone();
            platform(
                "postgres",
                Backend::Postgres { url },
                dir,
                Some(pg),
                start_flows,
            )
            .await
        }
    };
    body(p).await;
}

/// A uniquely named database on the test PostgreSQL server, dropped afterwards.
pub struct PgDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

pub fn admin_url() -> String {
    std::env::var("UPLIFT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn required() -> bool {
    std::env::var("UPLIFT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        let admin_url = admin_url();
        let client = match tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                client
            }
            Err(e) => {
                assert!(
                    !required(),
                    "UPLIFT_REQUIRE_POSTGRES=1 but PostgreSQL at {admin_url} is unreachable: {e}"
                );
                eprintln!(
                    "NOTICE: PostgreSQL at {admin_url} unreachable ({e}); skipping the PostgreSQL half of this test"
                );
                return None;
            }
        };
        let name = format!("uplift_test_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b)
            .to_string();
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A real SMTP server (aiosmtpd, from PyPI, writing a maildir) on a free port, killed
/// when dropped. `None` (with a notice) when aiosmtpd is not installed, except in CI.
pub struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpSink {
    pub fn start() -> Option<SmtpSink> {
        let has = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "aiosmtpd is missing: pip install -r tests/smtp/requirements.txt"
            );
            eprintln!(
                "NOTICE: aiosmtpd not installed (pip install -r tests/smtp/requirements.txt); skipping"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("box"))
            .spawn()
            .expect("aiosmtpd starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(SmtpSink { port, dir, child })
    }

    /// A mailer sending to this server.
    pub fn mailer(&self) -> uplift_flows::mail::Mailer {
        uplift_flows::mail::Mailer::smtp(&uplift_flows::mail::SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: uplift_flows::mail::TlsMode::None,
            username: None,
            password: None,
            from: "uplift@acme.test".into(),
        })
        .unwrap()
    }

    /// Every message delivered so far, as received.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("box").join("new");
        std::fs::read_dir(&new)
            .map(|d| {
                d.flatten()
                    .filter_map(|f| std::fs::read_to_string(f.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
