//! Upgrade plans are named, never paths: shipped, uploaded through the API, or files
//! in the server's `DATA_DIR/plans/`. A request cannot make the server read a file of
//! its choosing, hang on a FIFO or stream a device.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

fn shipped_text() -> String {
    uplift_plan::builtin("classic-to-modern")
        .unwrap()
        .to_string()
}

fn put_plan(
    p: &Platform,
    name: &str,
    text: String,
) -> impl Future<Output = crate::support::Answer> {
    let path = format!("/api/plans/{name}");
    async move { p.put(&path, ADMIN_TOKEN, Value::String(text)).await }
}

fn names(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[engine_test]
async fn an_uploaded_plan_is_validated_stored_and_listed(p: Platform) {
    let created = put_plan(&p, "ours", shipped_text()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["source"], "uploaded");
    assert_eq!(created.body["from"], "classic");
    assert_eq!(created.body["to"], "modern");
    let replaced = put_plan(&p, "ours", shipped_text()).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);

    let broken = put_plan(&p, "ours", "from = \"classic\"\nto = [\n".into()).await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST, "{}", broken.body);
    assert!(
        broken.message().contains("plan 'ours'"),
        "{}",
        broken.message()
    );
    let shown = p.get("/api/plans/ours", ADMIN_TOKEN).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        shown.body["text"],
        shipped_text(),
        "a refused upload changes nothing"
    );

    let list = p.get("/api/plans", ADMIN_TOKEN).await;
    assert_eq!(
        names(&list.body),
        [
            ("classic-to-modern".to_string(), "shipped".to_string()),
            ("ours".to_string(), "uploaded".to_string())
        ]
    );
}

#[engine_test]
async fn uploads_that_are_not_plans_are_refused(p: Platform) {
    let maker = p.user("maker@x.test", "maker").await;
    let big = format!("# {}\n{}", "x".repeat(300 * 1024), shipped_text());
    let cases: &[(&str, String, &str, StatusCode, &str)] = &[
        (
            "classic-to-modern",
            shipped_text(),
            ADMIN_TOKEN,
            StatusCode::CONFLICT,
            "shipped plan",
        ),
        (
            "Bad.Name",
            shipped_text(),
            ADMIN_TOKEN,
            StatusCode::BAD_REQUEST,
            "not a plan name",
        ),
        (
            "big",
            big,
            ADMIN_TOKEN,
            StatusCode::BAD_REQUEST,
            "at most 262144 bytes",
        ),
        (
            "nul",
            "name = \"a\0b\"".into(),
            ADMIN_TOKEN,
            StatusCode::BAD_REQUEST,
            "NUL",
        ),
        (
            "mine",
            shipped_text(),
            &maker,
            StatusCode::FORBIDDEN,
            "admin",
        ),
    ];
    for (name, text, token, status, expect) in cases {
        let path = format!("/api/plans/{}", name.replace('.', "%2E"));
        let a = p.put(&path, token, Value::String(text.clone())).await;
        assert_eq!(a.status, *status, "{name}: {}", a.body);
        assert!(a.message().contains(expect), "{name}: '{}'", a.message());
    }
    let list = p.get("/api/plans", ADMIN_TOKEN).await;
    assert_eq!(
        names(&list.body).len(),
        1,
        "only the shipped plan: {}",
        list.body
    );
}

#[engine_test]
async fn an_upgrade_names_its_plan_and_never_a_path(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let start = |plan: &str| json!({"plan": plan, "language": "en", "currency": "USD"});
    for path in ["/etc/passwd", "../control.db", "/dev/zero", "plans/x.toml"] {
        let a = p
            .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start(path))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.body);
        assert!(
            a.message().contains("is not a plan name"),
            "{path}: {}",
            a.message()
        );
    }
    // A FIFO in the plans folder is refused at once, not read (it would block).
    let plans = p.data_dir().join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    let fifo = plans.join("stuck.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let a = tokio::time::timeout(
        Duration::from_secs(10),
        p.get(
            "/api/environments/acme/upgrade/preview?plan=stuck",
            ADMIN_TOKEN,
        ),
    )
    .await
    .expect("a FIFO does not hang the server");
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.message().contains("not a regular file"),
        "{}",
        a.message()
    );

    // A file an operator put there is a plan, listed as such.
    std::fs::write(plans.join("local.toml"), shipped_text()).unwrap();
    let preview = p
        .get(
            "/api/environments/acme/upgrade/preview?plan=local",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    let list = p.get("/api/plans", ADMIN_TOKEN).await;
    assert!(
        names(&list.body).contains(&("local".into(), "file".into())),
        "{}",
        list.body
    );

    // An uploaded plan runs, and the upgrade keeps the text it started with.
    assert_eq!(
        put_plan(&p, "ours", shipped_text()).await.status,
        StatusCode::CREATED
    );
    let a = p
        .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start("ours"))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    let events = p.store.control().events(&id).await.unwrap();
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["plan_text"], shipped_text());
    let end = p.wait_step1("acme").await;
    assert_eq!(end["status"], "step2_verifying", "{end}");
}
