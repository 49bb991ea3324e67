//! Failures of the server itself: a 5xx body says what failed in plain words with the
//! request id, never an engine's message, SQL or a path; a database that is busy or
//! gone answers 503 with `Retry-After`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform, admin_url};
use uplift_test_macros::engine_test;

/// Words that would mean engine text, SQL or a path leaked into a body.
const LEAKS: &[&str] = &[
    "sqlite",
    "postgres",
    "relation",
    "no such table",
    "select",
    "from ",
    "account\"",
    "/tmp",
    ".db",
    "env_acme",
];

async fn drop_accounts(p: &Platform) {
    let db = p.store.env_db("acme").await.expect("env db");
    let entity = db.catalog().entity("Account").expect("Account").clone();
    let mut conn = db.pool().conn().await.expect("conn");
    conn.batch(&format!("DROP TABLE {}", db.table(&entity)))
        .await
        .expect("drop");
}

#[engine_test]
async fn a_5xx_names_no_engine_text_and_gives_the_request_id(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    drop_accounts(&p).await;
    let a = p
        .call(
            Method::GET,
            "/api/environments/acme/data/accounts",
            Some(ADMIN_TOKEN),
            None,
            &[("x-request-id", "req-42")],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}: {}",
        p.engine,
        a.body
    );
    assert_eq!(a.body["error"]["code"], "InternalError", "{}", p.engine);
    assert_eq!(a.body["error"]["request_id"], "req-42", "{}", p.engine);
    assert_eq!(a.headers["x-request-id"], "req-42", "{}", p.engine);
    let text = a.body.to_string().to_lowercase();
    for leak in LEAKS {
        assert!(!text.contains(leak), "{}: '{leak}' in {text}", p.engine);
    }
    assert!(
        a.message().contains("failed"),
        "{}: {}",
        p.engine,
        a.message()
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let p = &crate::support::sqlite().await;
    let a = p.get("/api/environments/nowhere", ADMIN_TOKEN).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let id = a.headers["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(a.body["error"]["request_id"], id.as_str());
    // A client-sent id that is not a sane token is replaced, not echoed.
    let a = p
        .call(
            Method::GET,
            "/api/me",
            Some(ADMIN_TOKEN),
            None,
            &[("x-request-id", "a b<c>")],
        )
        .await;
    assert_ne!(a.headers["x-request-id"], "a b<c>");
}

/// SQLite: a write while another process holds the database's write lock waits out
/// the busy timeout, then answers 503. PostgreSQL: a request while the server can
/// reach no database (its connections ended, new ones refused) answers 503. Either
/// way the next request after the database is back is served.
#[engine_test]
async fn a_busy_or_lost_database_answers_503_with_retry_after(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let body = json!({"Name": "Busy"});
    let mut lock = None;
    let mut pg = None;
    if p.engine == "sqlite" {
        let path = p.data_dir().join("envs/acme/prod.db");
        let c = rusqlite::Connection::open(path).expect("open");
        c.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        lock = Some(c);
    } else {
        let name = p.pg_database().expect("a PostgreSQL database").to_string();
        let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .expect("refuse connections");
        pg = Some((client, name));
    }
    let a = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            body.clone(),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}: {}",
        p.engine,
        a.body
    );
    assert_eq!(a.headers["retry-after"], "1", "{}", p.engine);
    assert_eq!(a.body["error"]["code"], "Busy", "{}", p.engine);
    drop(lock);
    if let Some((client, name)) = pg {
        client
            .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .await
            .expect("allow connections");
    }
    let mut again = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            body.clone(),
        )
        .await;
    for _ in 0..5 {
        if again.status == StatusCode::CREATED {
            break;
        }
        again = p
            .post(
                "/api/environments/acme/data/accounts",
                ADMIN_TOKEN,
                body.clone(),
            )
            .await;
    }
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "{}: {}",
        p.engine,
        again.body
    );
}

async fn boom() -> &'static str {
    panic!("secret panic text")
}

/// A handler that panics (none should) still answers: a 500 with the request id and
/// no panic text, and the server answers the next request.
#[tokio::test]
async fn a_panicking_handler_answers_500_with_a_request_id_and_serving_goes_on() {
    use axum::routing::get;
    let router = uplift_server::edge(
        axum::Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "fine" })),
    );
    let call = |path: &'static str| {
        let router = router.clone();
        async move {
            let req = axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap();
            tower::ServiceExt::oneshot(router, req).await.unwrap()
        }
    };
    let resp = call("/boom").await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    assert!(!body.to_string().contains("secret"), "{body}");
    assert_eq!(call("/ok").await.status(), StatusCode::OK);
}

/// `GET /api/health` reads the control plane: while its database refuses
/// connections it answers 503 with `Retry-After`, and `ok` again once it is back.
#[engine_test]
async fn health_answers_503_while_the_control_plane_is_unreachable(p: Platform) {
    let ok = p.call(Method::GET, "/api/health", None, None, &[]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}: {}", p.engine, ok.body);
    assert_eq!(ok.body["engine"], p.engine);
    // SQLite's control plane is a file the server holds open; only PostgreSQL's can
    // be taken away from under it.
    let Some(name) = p.pg_database().map(str::to_string) else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let down = p.call(Method::GET, "/api/health", None, None, &[]).await;
    client
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert_eq!(down.headers["retry-after"], "1");
    let mut back = p.call(Method::GET, "/api/health", None, None, &[]).await;
    for _ in 0..5 {
        if back.status == StatusCode::OK {
            break;
        }
        back = p.call(Method::GET, "/api/health", None, None, &[]).await;
    }
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
}
