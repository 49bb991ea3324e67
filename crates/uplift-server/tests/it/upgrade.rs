//! Step 1 of the upgrade through the API, on both engines, on an environment defined
//! here (not the demo) that uses every classic type.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const LONG_ENTITY: &str = "ExtraordinarilyLongCustomEntityNameThatGoesOnAndOnForever";
const LONG_PREFIX: &str = "AVeryLongCustomFieldNamePrefixThatIsExactlyFiftyCh";

fn gadget() -> Value {
    json!({"display_name":{"en":"Gadget","fr":"Gadget FR"},"business_key":"Title","fields":[
        {"name":"Title","type":"Text","required":true},
        {"name":"Mail","type":"Email"},{"name":"Tel","type":"Phone"},{"name":"Web","type":"WebsiteUrl"},
        {"name":"Ref","type":"Guid"},{"name":"Memo","type":"MultilineText"},{"name":"Body","type":"LargeText"},
        {"name":"Site","type":"Address"},{"name":"Person","type":"PersonName"},{"name":"Seq","type":"AutoNumber"},
        {"name":"Small","type":"Integer"},{"name":"Big","type":"Number"},{"name":"Qty","type":"Quantity"},
        {"name":"Flag","type":"Boolean"},{"name":"Price","type":"Currency"},{"name":"Day","type":"Date"},
        {"name":"At","type":"DateTime"},{"name":"Stage","type":"Picklist","options":["Planned","Active","Done"]},
        {"name":"Pic","type":"Image"},{"name":"Customer","type":"Lookup","target":"Account"},
        {"name":"Owner","type":"UserOrGroup"}]})
}

/// An environment with data in standard and custom entities, roles and a disabled
/// role holder. Returns the id of the gadget.
async fn seed(p: &Platform, env: &str, mode: &str) -> String {
    p.create_env(env, "classic", mode).await;
    let base = format!("/api/environments/{env}");
    let defs = json!({"entities": {
        "Gadget": gadget(),
        LONG_ENTITY: {"fields": [
            {"name": format!("{LONG_PREFIX}One"), "type": "Integer"},
            {"name": format!("{LONG_PREFIX}Two"), "type": "Integer"}]}
    }});
    let d = p.put(&format!("{base}/entities"), ADMIN_TOKEN, defs).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let post = |set: &str, body: Value| {
        let path = format!("{base}/data/{set}");
        async move {
            let a = p.post(&path, ADMIN_TOKEN, body).await;
            assert_eq!(a.status, StatusCode::CREATED, "{path}: {}", a.body);
            a.body["id"].as_str().unwrap().to_string()
        }
    };
    let acc = post(
        "accounts",
        json!({"Name":"Fabrikam","Revenue":{"code":"GBP","value":100.0},"Owner":"someone@x.test"}),
    )
    .await;
    post(
        "accounts",
        json!({"Name":"Contoso","Revenue":{"code":"USD","value":50.0}}),
    )
    .await;
    let order = post(
        "salesorders",
        json!({"Customer":acc,"Status":"Submitted","Total":{"code":"EUR","value":10.0}}),
    )
    .await;
    post(
        "salesordertaxs",
        json!({"SalesOrder":order,"TaxCode":"VAT20","Amount":{"code":"EUR","value":2.0}}),
    )
    .await;
    let pos = post(
        "positions",
        json!({"PositionId":"P1","Title":"Engineer","FullTimeEquivalent":0.5}),
    )
    .await;
    let w = post("workers", json!({"PersonnelNumber":"W1","Name":{"first_name":"Ada","middle_name":null,"last_name":"Lovelace"}})).await;
    post(
        "positionworkerassignments",
        json!({"Position":pos,"Worker":w,"IsPrimary":true}),
    )
    .await;
    post(&format!("{}s", LONG_ENTITY.to_lowercase()), json!({})).await;
    let gadget = post("gadgets", json!({
        "Title":"Widget","Mail":"ada@example.com","Tel":"+44 20 7946 0958","Web":"https://example.com",
        "Ref":"6f9619ff-8b86-d011-b42d-00c04fc964ff","Memo":"two\nlines","Body":"long text",
        "Site":{"line1":"1 Rue","line2":null,"city":"Paris","state_or_province":"IDF","postal_code":"75001","country":"France"},
        "Person":{"first_name":"Grace","middle_name":"B","last_name":"Hopper"},
        "Small":7,"Big":123456789,"Qty":2.5,"Flag":true,"Price":{"code":"EUR","value":10.0},
        "Day":"1699-05-04","At":"1700-01-01T12:00:00Z","Stage":"Active","Pic":"iVBORw0KGgo=","Customer":acc,"Owner":"Sales Team"
    })).await;
    // Security: a role, an active member, a disabled member.
    for (email, role) in [("seller@x.test", "user"), ("gone@x.test", "user")] {
        p.user(email, role).await;
    }
    p.put(
        &format!("{base}/roles/Sales"),
        ADMIN_TOKEN,
        json!({"privileges":{"Account":["Create","Read","Update"],"Contact":["Read"]}}),
    )
    .await;
    for u in ["seller@x.test", "gone@x.test"] {
        p.post(
            &format!("{base}/roles/Sales/members"),
            ADMIN_TOKEN,
            json!({"user":u}),
        )
        .await;
    }
    p.patch(
        "/api/users/gone@x.test",
        ADMIN_TOKEN,
        json!({"status":"disabled"}),
    )
    .await;
    gadget
}

fn start_body() -> Value {
    json!({"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{"EUR":1.08,"GBP":1.27}})
}

async fn wait_step1(p: &Platform, env: &str) -> Value {
    p.wait_step1(env).await
}

/// Everything a user can see of production: catalog and every row of every entity.
async fn production(p: &Platform, env: &str) -> Value {
    let catalog = p
        .get(&format!("/api/environments/{env}/entities"), ADMIN_TOKEN)
        .await
        .body;
    let mut rows = serde_json::Map::new();
    for e in catalog["entities"].as_array().unwrap() {
        let set = e["set_name"].as_str().unwrap();
        let all = p
            .get(
                &format!("/api/environments/{env}/data/{set}?$top=5000"),
                ADMIN_TOKEN,
            )
            .await;
        rows.insert(set.to_string(), all.body["value"].clone());
    }
    json!({"catalog": catalog, "rows": rows})
}

fn entity<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == source)
        .unwrap_or_else(|| panic!("no {source} in {report}"))
}

#[engine_test]
async fn step1_builds_the_test_database_as_the_plan_says_and_leaves_production_alone(p: Platform) {
    let gadget_id = seed(&p, "acme", "restricted").await;
    // Tiny chunks, so every entity is copied in several statements.
    p.upgrades.set_chunk_rows(1);
    let before = production(&p, "acme").await;

    let preview = p
        .get(
            "/api/environments/acme/upgrade/preview?plan=classic-to-modern",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(
        preview.body["changes"]["currencies_found"],
        json!(["EUR", "GBP", "USD"])
    );
    let ch = &preview.body["changes"]["entities"];
    let sources: Vec<&str> = ch
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert_eq!(
        sources.len(),
        11,
        "every source entity exactly once: {sources:?}"
    );

    let started = p
        .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start_body())
        .await;
    assert_eq!(
        started.status,
        StatusCode::ACCEPTED,
        "{}: {}",
        p.engine,
        started.body
    );
    let done = wait_step1(&p, "acme").await;
    assert_eq!(done["status"], "step2_verifying", "{}: {done}", p.engine);
    let test = p
        .store
        .database("acme", done["test_database"].as_str().unwrap())
        .await
        .unwrap();
    if let uplift_store::Pool::Sqlite(file) = test.pool() {
        // Loaded with a rollback journal, it must be back in WAL mode to serve
        // readers beside a writer during step 2.
        let mode: String = rusqlite::Connection::open(file.path())
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    for phase in done["phases"].as_array().unwrap() {
        assert!(
            phase["started_at"].is_string() && phase["finished_at"].is_string(),
            "{phase}"
        );
    }

    let report = p
        .get("/api/environments/acme/upgrade/report", ADMIN_TOKEN)
        .await
        .body;
    assert!(report["step1_duration_ms"].is_u64());
    for e in report["entities"].as_array().unwrap() {
        if e["target"].is_null() {
            continue;
        }
        assert_eq!(e["checksum_match"], true, "{}: {e}", p.engine);
        assert_eq!(e["imported"], e["exported"], "{}: {e}", p.engine);
    }
    let tax = entity(&report, "SalesOrderTax");
    assert!(tax["target"].is_null(), "deprecated entity dropped");
    assert_eq!(
        tax["summary"],
        "exported record count 1 but imported record count 0, error count 0"
    );
    let g = entity(&report, "Gadget");
    assert_eq!(g["target"], "cr_gadget");
    let reasons: Vec<&str> = g["warning_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("before 1753-01-01")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("Owner")), "{reasons:?}");
    assert_eq!(
        entity(&report, "PositionWorkerAssignment")["target"],
        "cdm_positionworkerassignmentmap"
    );
    let long = entity(&report, LONG_ENTITY)["target"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(long.starts_with("cr_") && long.len() <= 50, "{long}");
    let sec = &report["security"];
    assert!(
        sec["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["user"] == "gone@x.test"),
        "{sec}"
    );
    let sales = sec["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Sales")
        .unwrap();
    assert_eq!(
        sales["privileges"]["account"],
        json!(["Append", "Create", "Read", "Write"]),
        "{sales}"
    );

    // The test database, through its own OData surface.
    let t = |path: &str| format!("/api/environments/acme/upgrade/test/data/{path}");
    let g = p
        .get(&t(&format!("cr_gadgets({gadget_id})")), ADMIN_TOKEN)
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}: {}", p.engine, g.body);
    let g = g.body;
    assert_eq!(g["cr_title"], "Widget");
    assert_eq!(g["cr_mail"], "ada@example.com");
    assert_eq!(g["cr_day"], "1753-01-01", "pre-1753 date clamped");
    assert_eq!(g["cr_at"], "1753-01-01T00:00:00.000Z");
    assert_eq!(g["cr_site_city"], "Paris", "Address flattened");
    assert_eq!(g["cr_person_last_name"], "Hopper", "PersonName flattened");
    assert_eq!(
        g["cr_stage"], 100000001,
        "option set numbered from 100000000"
    );
    assert_eq!(g["cr_qty"], 3, "Quantity rounded to a whole number");
    assert_eq!(g["cr_flag"], true);
    assert_eq!(g["cr_price"]["currency"], "EUR");
    assert_eq!(g["cr_price"]["exchange_rate"], 1.08);
    assert!(
        (g["cr_price"]["base_value"].as_f64().unwrap() - 10.8).abs() < 1e-9,
        "base = value × rate"
    );
    assert!(
        g.get("cr_owner").is_none() && g.get("Owner").is_none(),
        "UserOrGroup not upgraded"
    );
    assert_eq!(
        g["createdonbehalfby"], "admin@uplift.local",
        "CreatedBy kept"
    );
    assert!(g["overriddencreatedon"].is_string(), "CreatedDateTime kept");
    assert_ne!(
        g["createdon"], g["overriddencreatedon"],
        "createdon = upgrade time"
    );
    assert_eq!(g["createdby"], "admin@uplift.local");
    // Every row of the reference's type table, as the test catalog says it.
    let cat = p
        .get("/api/environments/acme/upgrade/preview", ADMIN_TOKEN)
        .await
        .body;
    let cr_gadget = cat["target"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "cr_gadget")
        .unwrap()
        .clone();
    let ty = |name: &str| -> (String, Value) {
        let f = cr_gadget["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {cr_gadget}"));
        (f["type"].as_str().unwrap().to_string(), f["format"].clone())
    };
    let expected: &[(&str, &str, Value)] = &[
        ("cr_title", "SingleLineText", json!("Text")),
        ("cr_mail", "SingleLineText", json!("Email")),
        ("cr_tel", "SingleLineText", json!("Phone")),
        ("cr_web", "SingleLineText", json!("Url")),
        ("cr_ref", "SingleLineText", json!("Text")),
        ("cr_memo", "MultipleLinesOfText", Value::Null),
        ("cr_body", "MultipleLinesOfText", Value::Null),
        ("cr_site_line1", "SingleLineText", json!("Text")),
        ("cr_site_country", "SingleLineText", json!("Text")),
        ("cr_person_first_name", "SingleLineText", json!("Text")),
        ("cr_seq", "WholeNumber", Value::Null),
        ("cr_small", "WholeNumber", Value::Null),
        ("cr_big", "WholeNumber", Value::Null),
        ("cr_qty", "WholeNumber", Value::Null),
        ("cr_flag", "TwoOptions", Value::Null),
        ("cr_price", "Money", Value::Null),
        ("cr_day", "DateTime", Value::Null),
        ("cr_at", "DateTime", Value::Null),
        ("cr_stage", "OptionSet", Value::Null),
        ("cr_pic", "Image", Value::Null),
        ("cr_customer", "Lookup", Value::Null),
    ];
    for (name, ty_name, format) in expected {
        assert_eq!(ty(name), (ty_name.to_string(), format.clone()), "{name}");
    }
    assert!(
        cr_gadget["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"] != "cr_owner"),
        "UserOrGroup not upgraded"
    );
    assert_eq!(
        cr_gadget["display_name"],
        json!({"en": "Gadget"}),
        "only the base language is kept"
    );
    assert_eq!(cr_gadget["business_key"], "cr_title");
    assert_eq!(g["cr_memo"], "two\nlines");
    assert_eq!(g["cr_pic"], "iVBORw0KGgo=");
    assert_eq!(g["cr_ref"], "6f9619ff-8b86-d011-b42d-00c04fc964ff");
    assert_eq!(g["cr_seq"], 1);
    let meta = p.get(&t("$metadata"), ADMIN_TOKEN).await;
    assert!(
        meta.body
            .as_str()
            .unwrap()
            .contains("EntityType Name=\"cdm_positionworkerassignmentmap\"")
    );
    let acc = p
        .get(&t("accounts?$filter=name%20eq%20'Fabrikam'"), ADMIN_TOKEN)
        .await
        .body;
    let money = &acc["value"][0]["revenue"];
    // Keys are built after the load: the test database still refuses a duplicate id.
    let dup = p
        .post(
            &t("accounts"),
            ADMIN_TOKEN,
            json!({"id": acc["value"][0]["id"], "name": "Again"}),
        )
        .await;
    assert_eq!(
        dup.status,
        StatusCode::CONFLICT,
        "{}: {}",
        p.engine,
        dup.body
    );
    let fresh = p
        .post(&t("accounts"), ADMIN_TOKEN, json!({"name": "Made in test"}))
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    assert!(
        (money["base_value"].as_f64().unwrap() - 127.0).abs() < 1e-9,
        "{money}"
    );
    let seller = p
        .post("/api/tokens", ADMIN_TOKEN, json!({"user":"seller@x.test"}))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        p.get(&t("accounts"), &seller).await.status,
        StatusCode::FORBIDDEN,
        "plain users cannot reach the test database"
    );

    assert_eq!(
        production(&p, "acme").await,
        before,
        "{}: production is exactly as before",
        p.engine
    );

    // Cancel: the test database goes, production stays, a new upgrade can start.
    let c = p
        .post(
            "/api/environments/acme/upgrade/cancel",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!(c.body["status"], "cancelled");
    assert!(
        !p.store.database_exists("acme", "test-1").await.unwrap(),
        "{}",
        p.engine
    );
    assert_eq!(
        p.get(&t("accounts"), ADMIN_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        production(&p, "acme").await,
        before,
        "{}: production unchanged after cancel",
        p.engine
    );
    let again = p
        .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start_body())
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(wait_step1(&p, "acme").await["status"], "step2_verifying");
    assert_eq!(again.body["test_database"], "test-2");
}

#[engine_test]
async fn a_failed_step1_is_retried_to_completion(p: Platform) {
    seed(&p, "acme", "restricted").await;
    // A step 1 that failed (as the log records it) is run again by retry.
    let c = p.store.control();
    c.insert_upgrade("failed-once", "acme").await.unwrap();
    let at = "2026-01-01T00:00:00.000Z";
    let started = json!({"event":"started","at":at,"options":{"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{"EUR":1.08,"GBP":1.27}},"test_database":"test-1","actor":"admin@uplift.local"});
    let failed = json!({"event":"failed","at":at,"phase":"copy","message":"disk full"});
    c.append_event("failed-once", at, &started.to_string())
        .await
        .unwrap();
    c.append_event("failed-once", at, &failed.to_string())
        .await
        .unwrap();
    let s = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(s["status"], "step1_failed");
    assert_eq!(s["failure"]["message"], "disk full");
    // A value no whole number holds: the row is refused, counted and sampled.
    let huge = p
        .post(
            "/api/environments/acme/data/gadgets",
            ADMIN_TOKEN,
            json!({"Title":"Huge","Qty":1e19}),
        )
        .await;
    assert_eq!(huge.status, StatusCode::CREATED, "{}", huge.body);
    let huge_id = huge.body["id"].as_str().unwrap().to_string();
    let r = p
        .post(
            "/api/environments/acme/upgrade/retry",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let done = wait_step1(&p, "acme").await;
    assert_eq!(done["status"], "step2_verifying", "{}: {done}", p.engine);
    assert!(done["failure"].is_null());
    let report = p
        .get("/api/environments/acme/upgrade/report", ADMIN_TOKEN)
        .await
        .body;
    let g = entity(&report, "Gadget");
    assert_eq!(
        (
            g["exported"].as_u64(),
            g["imported"].as_u64(),
            g["errors"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{}: {g}",
        p.engine
    );
    assert_eq!(
        g["checksum_match"], true,
        "{}: refused rows are left out of both sides: {g}",
        p.engine
    );
    assert_eq!(g["error_samples"][0]["id"], huge_id.as_str());
    assert_eq!(
        g["summary"],
        "exported record count 2 but imported record count 1, error count 1"
    );
    let again = p
        .post(
            "/api/environments/acme/upgrade/retry",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "only a failed step is retried"
    );
}

#[engine_test]
async fn open_mode_becomes_a_role_for_every_active_user(p: Platform) {
    seed(&p, "commons", "open").await;
    let preview = p
        .get("/api/environments/commons/upgrade/preview", ADMIN_TOKEN)
        .await
        .body;
    let sec = &preview["security"];
    assert_eq!(sec["mode"], "restricted");
    let members: Vec<&str> = sec["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "Environment User")
        .map(|m| m["user"].as_str().unwrap())
        .collect();
    assert!(
        members.contains(&"seller@x.test") && !members.contains(&"gone@x.test"),
        "{members:?}"
    );
}

#[engine_test]
async fn refusals_name_the_problem_and_start_nothing(p: Platform) {
    seed(&p, "acme", "restricted").await;
    let cases = [
        (
            json!({"plan":"/nonexistent/plan.toml","language":"en","currency":"USD","exchange_rates":{"EUR":1.08,"GBP":1.27}}),
            StatusCode::BAD_REQUEST,
            "is not a plan name",
        ),
        (
            json!({"plan":"no-such-plan","language":"en","currency":"USD","exchange_rates":{"EUR":1.08,"GBP":1.27}}),
            StatusCode::BAD_REQUEST,
            "no plan 'no-such-plan'",
        ),
        (
            json!({"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{"EUR":1.08}}),
            StatusCode::BAD_REQUEST,
            "no exchange rate for GBP",
        ),
        (
            json!({"plan":"classic-to-modern","language":"de","currency":"USD","exchange_rates":{"EUR":1.08,"GBP":1.27}}),
            StatusCode::BAD_REQUEST,
            "language 'de'",
        ),
        (
            json!({"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{"EUR":-1}}),
            StatusCode::BAD_REQUEST,
            "EUR=-1",
        ),
        (
            json!({"plan":"classic-to-modern"}),
            StatusCode::BAD_REQUEST,
            "missing field",
        ),
    ];
    for (body, status, expected) in cases {
        let a = p
            .post("/api/environments/acme/upgrade", ADMIN_TOKEN, body.clone())
            .await;
        assert_eq!(a.status, status, "{}: {body}: {}", p.engine, a.body);
        assert!(
            a.message().contains(expected),
            "{}: expected '{expected}' in '{}'",
            p.engine,
            a.message()
        );
    }
    assert_eq!(
        p.get("/api/environments/acme/upgrade", ADMIN_TOKEN)
            .await
            .status,
        StatusCode::NOT_FOUND,
        "nothing started"
    );
    let plans = p.data_dir().join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::write(
        plans.join("bad.toml"),
        "name = \"x\"\nfrom = \"classic\"\nto = [\n",
    )
    .unwrap();
    let a = p
        .get(
            "/api/environments/acme/upgrade/preview?plan=bad",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message().contains("line"), "{}", a.message());

    // A running step 1 refuses a second start and locks the schema. The log says
    // "running" without a task behind it, so the lock is tested without a race.
    let c = p.store.control();
    c.insert_upgrade("held", "acme").await.unwrap();
    let started = json!({"event":"started","at":"2026-01-01T00:00:00.000Z","options":{"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{}},"test_database":"test-9","actor":"admin@uplift.local"});
    c.append_event("held", "2026-01-01T00:00:00.000Z", &started.to_string())
        .await
        .unwrap();
    let second = p
        .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start_body())
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert!(second.message().contains("already under way"));
    let lock = p
        .put(
            "/api/environments/acme/entities/Thing",
            ADMIN_TOKEN,
            json!({"fields":[]}),
        )
        .await;
    assert_eq!(lock.status, StatusCode::LOCKED, "{}", lock.body);
    assert!(
        lock.message().contains("step 1 is running"),
        "{}",
        lock.message()
    );
    let cancelled = p
        .post(
            "/api/environments/acme/upgrade/cancel",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    let unlocked = p
        .put(
            "/api/environments/acme/entities/Thing",
            ADMIN_TOKEN,
            json!({"fields":[]}),
        )
        .await;
    assert_eq!(
        unlocked.status,
        StatusCode::OK,
        "cancel unlocks: {}",
        unlocked.body
    );
    let nothing = p
        .post(
            "/api/environments/acme/upgrade/cancel",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(nothing.status, StatusCode::CONFLICT);
}

/// A JSON document parsed keeping every digit of its numbers, as a client writes them.
fn exact(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[engine_test]
async fn money_is_exact_in_production_and_through_step1(p: Platform) {
    p.create_env("exact", "classic", "open").await;
    let def =
        json!({"fields": [{"name":"Title","type":"Text"},{"name":"Price","type":"Currency"}]});
    let d = p
        .put("/api/environments/exact/entities/Deal", ADMIN_TOKEN, def)
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let rows = [
        ("a", r#"{"code":"EUR","value":11.00}"#),
        ("b", r#"{"code":"USD","value":12345678901234567.89}"#),
        ("c", r#"{"code":"EUR","value":0.10}"#),
    ];
    let mut ids = std::collections::BTreeMap::new();
    for (title, price) in rows {
        let body = exact(&format!(r#"{{"Title":"{title}","Price":{price}}}"#));
        let a = p
            .post("/api/environments/exact/data/deals", ADMIN_TOKEN, body)
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}: {}", p.engine, a.body);
        assert_eq!(
            a.body["Price"],
            exact(price),
            "{}: stored as written",
            p.engine
        );
        ids.insert(title, a.body["id"].as_str().unwrap().to_string());
    }
    let titles = |v: &Value| -> Vec<String> {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Title"].as_str().unwrap().to_string())
            .collect()
    };
    let sorted = p
        .get(
            "/api/environments/exact/data/deals?$orderby=Price/value%20desc",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        titles(&sorted.body),
        ["b", "a", "c"],
        "{}: {}",
        p.engine,
        sorted.body
    );
    let above = p
        .get(
            "/api/environments/exact/data/deals?$filter=Price/value%20gt%2011.001",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(titles(&above.body), ["b"], "{}: {}", p.engine, above.body);

    let start = exact(
        r#"{"plan":"classic-to-modern","language":"en","currency":"USD","exchange_rates":{"EUR":1.1}}"#,
    );
    let a = p
        .post("/api/environments/exact/upgrade", ADMIN_TOKEN, start)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let done = wait_step1(&p, "exact").await;
    assert_eq!(done["status"], "step2_verifying", "{}: {done}", p.engine);
    let cases = [
        ("a", "11.00", "12.10", "1.1"),
        ("b", "12345678901234567.89", "12345678901234567.89", "1"),
        ("c", "0.10", "0.11", "1.1"),
    ];
    for (title, value, base, rate) in cases {
        let path = format!(
            "/api/environments/exact/upgrade/test/data/cr_deals({})",
            ids[title]
        );
        let g = p.get(&path, ADMIN_TOKEN).await;
        assert_eq!(g.status, StatusCode::OK, "{}", g.body);
        let m = &g.body["cr_price"];
        let text = |part: &str| m[part].to_string();
        assert_eq!(
            (text("value"), text("base_value"), text("exchange_rate")),
            (value.to_string(), base.to_string(), rate.to_string()),
            "{}: {title}: {m}",
            p.engine
        );
    }
}

#[engine_test]
async fn the_test_database_applies_the_upgraded_roles_and_test_grants(p: Platform) {
    seed(&p, "acme", "restricted").await;
    let mia = p.user("mia@x.test", "maker").await;
    let max = p.user("max@x.test", "maker").await;
    let joined = p
        .post(
            "/api/environments/acme/roles/Sales/members",
            ADMIN_TOKEN,
            json!({"user":"mia@x.test"}),
        )
        .await;
    assert!(joined.status.is_success(), "{}", joined.body);
    let a = p
        .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start_body())
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(wait_step1(&p, "acme").await["status"], "step2_verifying");
    let t = |path: &str| format!("/api/environments/acme/upgrade/test/data/{path}");
    let status = |token: &str, path: &str| {
        let (token, path) = (token.to_string(), t(path));
        let p = &p;
        async move { p.get(&path, &token).await.status }
    };
    // A Sales member reads what Sales will read after the upgrade, and nothing else; a
    // maker without a role reads nothing, as production would answer them.
    assert_eq!(
        status(&mia, "accounts").await,
        StatusCode::OK,
        "{}",
        p.engine
    );
    assert_eq!(
        status(&mia, "cr_gadgets").await,
        StatusCode::FORBIDDEN,
        "{}",
        p.engine
    );
    assert_eq!(
        status(&max, "accounts").await,
        StatusCode::FORBIDDEN,
        "{}",
        p.engine
    );
    assert_eq!(status(ADMIN_TOKEN, "cr_gadgets").await, StatusCode::OK);
    let made = p
        .post(&t("accounts"), &mia, json!({"name":"Test deal"}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);

    // What an admin grants for testing comes on top, and can be withdrawn.
    let grant = |user: &str, token: &str, privileges: Value| {
        let path = format!("/api/environments/acme/upgrade/test/access/{user}");
        let (token, p) = (token.to_string(), &p);
        async move {
            p.put(&path, &token, json!({"privileges": privileges}))
                .await
        }
    };
    let g = grant("max@x.test", ADMIN_TOKEN, json!({"cr_gadget":["Read"]})).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    assert_eq!(g.body["granted"], json!({"cr_gadget":["Read"]}));
    assert_eq!(
        status(&max, "cr_gadgets").await,
        StatusCode::OK,
        "{}",
        p.engine
    );
    assert_eq!(status(&max, "accounts").await, StatusCode::FORBIDDEN);
    let list = p
        .get("/api/environments/acme/upgrade/test/access", ADMIN_TOKEN)
        .await;
    let users: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        ["max@x.test", "mia@x.test", "seller@x.test"],
        "{}",
        list.body
    );

    let refused = [
        (
            "max@x.test",
            ADMIN_TOKEN,
            json!({"Gadget":["Read"]}),
            StatusCode::BAD_REQUEST,
            "no entity 'Gadget'",
        ),
        (
            "max@x.test",
            ADMIN_TOKEN,
            json!({"cr_gadget":["Fly"]}),
            StatusCode::BAD_REQUEST,
            "'Fly'",
        ),
        (
            "nobody@x.test",
            ADMIN_TOKEN,
            json!({"cr_gadget":["Read"]}),
            StatusCode::BAD_REQUEST,
            "no user",
        ),
        (
            "mia@x.test",
            mia.as_str(),
            json!({"cr_gadget":["Read"]}),
            StatusCode::FORBIDDEN,
            "admin",
        ),
    ];
    for (user, token, privileges, code, expect) in refused {
        let a = grant(user, token, privileges).await;
        assert_eq!(a.status, code, "{user}: {}", a.body);
        assert!(a.message().contains(expect), "{user}: {}", a.message());
    }
    assert_eq!(
        status(&mia, "cr_gadgets").await,
        StatusCode::FORBIDDEN,
        "a refused grant changes nothing"
    );
    let withdrawn = grant("max@x.test", ADMIN_TOKEN, json!({})).await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.body);
    assert_eq!(status(&max, "cr_gadgets").await, StatusCode::FORBIDDEN);
}

/// An environment with `accounts` accounts and a few contacts, for copies that last.
async fn many_rows(p: &Platform, env: &str, accounts: usize) -> u64 {
    p.create_env(env, "classic", "open").await;
    for i in 0..accounts {
        let a = p
            .post(
                &format!("/api/environments/{env}/data/accounts"),
                ADMIN_TOKEN,
                json!({"Name": format!("Account {i}")}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }
    for i in 0..10 {
        p.post(
            &format!("/api/environments/{env}/data/contacts"),
            ADMIN_TOKEN,
            json!({"FullName": {"first_name": "C", "last_name": format!("{i}")}}),
        )
        .await;
    }
    accounts as u64 + 10
}

fn copy_phase(status: &Value) -> Value {
    status["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "copy")
        .cloned()
        .unwrap()
}

#[engine_test]
async fn copy_progress_knows_its_total_from_the_first_report(p: Platform) {
    let rows = many_rows(&p, "busy", 200).await;
    p.upgrades.set_chunk_rows(10);
    p.upgrades.set_chunk_pause_ms(20);
    let start = json!({"plan":"classic-to-modern","language":"en","currency":"USD"});
    let a = p
        .post("/api/environments/busy/upgrade", ADMIN_TOKEN, start)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let mut reports = Vec::new();
    loop {
        let s = p
            .get("/api/environments/busy/upgrade", ADMIN_TOKEN)
            .await
            .body;
        if s["status"] != "step1_running" {
            break;
        }
        let phase = copy_phase(&s);
        if phase["started_at"].is_string()
            && phase["finished_at"].is_null()
            && s["progress"].is_object()
        {
            let loaded: u64 = s["live_entities"]
                .as_object()
                .unwrap()
                .values()
                .map(|e| e["done"].as_u64().unwrap())
                .sum();
            reports.push((
                s["progress"]["done"].as_u64().unwrap(),
                s["progress"]["total"].as_u64().unwrap(),
                phase["total"].as_u64().unwrap(),
                loaded,
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        reports.len() > 5,
        "{}: the copy was seen running: {reports:?}",
        p.engine
    );
    for (i, (done, total, phase_total, _)) in reports.iter().enumerate() {
        assert_eq!(
            *total, rows,
            "{}: report {i} knows every row: {reports:?}",
            p.engine
        );
        assert_eq!(phase_total, total, "{}: the phase says the same", p.engine);
        assert!(done <= total);
        if i > 0 {
            assert!(
                *done >= reports[i - 1].0,
                "{}: progress never goes back: {reports:?}",
                p.engine
            );
        }
    }
    // Keys and read-back count too: every row loaded is not the copy done.
    assert!(
        reports
            .iter()
            .any(|(done, _, _, loaded)| *loaded == rows && *done < rows),
        "{}: {reports:?}",
        p.engine
    );
}

#[engine_test]
async fn a_cancel_stops_the_copy_at_its_next_chunk(p: Platform) {
    copy_under_way(&p).await;
    let asked = std::time::Instant::now();
    let c = p
        .post(
            "/api/environments/busy/upgrade/cancel",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    let waited = asked.elapsed();
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!(c.body["status"], "cancelled");
    let at_cancel = p.upgrades.chunks_started("busy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        p.upgrades.chunks_started("busy"),
        at_cancel,
        "{}: no chunk starts after the cancel is acknowledged",
        p.engine
    );
    // 210 rows in chunks of 5 is 40 and more chunks; a cancel honoured only at the end
    // would have run them all and taken a second or more.
    assert!(at_cancel < 40, "{}: {at_cancel} chunks ran", p.engine);
    assert!(
        waited < Duration::from_secs(2),
        "{}: the cancel took {waited:?}",
        p.engine
    );
}

/// Starts a throttled step 1 on `busy` and waits until its copy has loaded some rows.
async fn copy_under_way(p: &Platform) {
    many_rows(p, "busy", 200).await;
    p.upgrades.set_chunk_rows(5);
    p.upgrades.set_chunk_pause_ms(20);
    let start = json!({"plan":"classic-to-modern","language":"en","currency":"USD"});
    let a = p
        .post("/api/environments/busy/upgrade", ADMIN_TOKEN, start)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    loop {
        let s = p
            .get("/api/environments/busy/upgrade", ADMIN_TOKEN)
            .await
            .body;
        assert_eq!(
            s["status"], "step1_running",
            "the copy outlasts the wait: {s}"
        );
        if s["progress"]["done"].as_u64().unwrap_or(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The copy's role on this database (as `uplift_store::reader_role` names it).
async fn copy_role(c: &tokio_postgres::Client) -> String {
    c.query_one(
        "SELECT 'uplift_copy_' || left(md5(current_database() || '/env_busy'), 20)",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// PostgreSQL cannot run an `INSERT … SELECT` read-only, so step 1's copy reads
/// production as a role the engine lets read it and nothing else; the role is gone,
/// and the test tables are the database user's again, once step 1 ends.
#[tokio::test]
async fn postgres_step1_copies_as_a_role_that_cannot_write_production() {
    use crate::support::{Engine, Flows, run_on};
    run_on(Engine::Postgres, Flows::Started, |p| async move {
        copy_under_way(&p).await;
        let c = p.pg_client().await.unwrap();
        let role = copy_role(&c).await;
        let privileges = "SELECT bool_and(has_table_privilege($1, format('%I.%I', schemaname, tablename), 'SELECT')), \
             bool_or(has_table_privilege($1, format('%I.%I', schemaname, tablename), 'INSERT, UPDATE, DELETE, TRUNCATE')) \
             FROM pg_tables WHERE schemaname = 'env_busy'";
        let row = c.query_one(privileges, &[&role]).await.unwrap();
        let (reads, writes): (bool, bool) = (row.get(0), row.get(1));
        assert!(reads && !writes, "{role}: reads {reads}, writes {writes}");
        let write = format!("BEGIN; SET LOCAL ROLE {role}; DELETE FROM env_busy.account; ROLLBACK");
        let refused = c.batch_execute(&write).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{refused}"
        );
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(wait_step1(&p, "busy").await["status"], "step2_verifying");
        let left: i64 = c
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{role} outlives the copy");
        let foreign: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'env_busy\\_\\_%' AND tableowner <> current_user",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(foreign, 0, "test tables owned by another role after the copy");
    })
    .await;
}

/// The lanes do read through the role: once it may not read production either, the
/// copy stops with an error instead of carrying on with the server's own rights.
#[tokio::test]
async fn postgres_step1_reads_production_only_through_its_role() {
    use crate::support::{Engine, Flows, run_on};
    run_on(Engine::Postgres, Flows::Started, |p| async move {
        copy_under_way(&p).await;
        let c = p.pg_client().await.unwrap();
        let role = copy_role(&c).await;
        c.batch_execute(&format!(
            "REVOKE SELECT ON ALL TABLES IN SCHEMA env_busy FROM {role}"
        ))
        .await
        .unwrap();
        let end = wait_step1(&p, "busy").await;
        assert_eq!(end["status"], "step1_failed", "{end}");
        assert_eq!(end["failure"]["phase"], "copy", "{end}");
    })
    .await;
}

/// Deleted rows make the up-front estimate too large (SQLite's rowid span); the copy
/// corrects it once it has counted, so a finished copy reads done = total = the rows.
#[engine_test]
async fn a_copy_corrects_an_estimate_that_deleted_rows_made_too_large(p: Platform) {
    let rows = many_rows(&p, "busy", 60).await;
    let accounts = "/api/environments/busy/data/accounts";
    // From the middle, in creation order, so SQLite's rowid span stays as it was.
    let list = p
        .get(
            &format!("{accounts}?$orderby=id&$skip=20&$top=20"),
            ADMIN_TOKEN,
        )
        .await;
    for a in list.body["value"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let d = p.delete(&format!("{accounts}({id})"), ADMIN_TOKEN).await;
        assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.body);
    }
    let start = json!({"plan":"classic-to-modern","language":"en","currency":"USD"});
    let a = p
        .post("/api/environments/busy/upgrade", ADMIN_TOKEN, start)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let end = wait_step1(&p, "busy").await;
    let copy = copy_phase(&end);
    assert_eq!(
        (copy["done"].as_u64(), copy["total"].as_u64()),
        (Some(rows - 20), Some(rows - 20)),
        "{}: {copy}",
        p.engine
    );
}
