//! Step 2's items through the API: discovered when step 1 ends, each app and flow with
//! its rewritten copy and findings, upgraded flows cloned, visible to their makers.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const MAKER: &str = "mia@acme.test";

/// An environment with a custom entity, two flows (one the maker's) and a published app
/// whose command runs the admin's flow. Returns the maker's token and the flows' ids.
async fn seed(p: &Platform) -> (String, String, String) {
    p.create_env("acme", "classic", "open").await;
    let defs = json!({"entities": {"Gadget": {"fields": [
        {"name": "Title", "type": "Text"},
        {"name": "Stage", "type": "Picklist", "options": ["Planned", "Active", "Done"]},
        {"name": "Keeper", "type": "UserOrGroup"},
        {"name": "Price", "type": "Currency"}]}}});
    let d = p
        .put("/api/environments/acme/entities", ADMIN_TOKEN, defs)
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let maker = p.user(MAKER, "maker").await;
    let flows = "/api/environments/acme/flows";
    let mine = json!({"name": "Gadget per contact", "owner": MAKER,
        "trigger": {"kind": "record_created", "entity": "Contact", "filter": "Address/city eq 'Oslo'"},
        "steps": [{"kind": "create_record", "name": "g", "entity": "Gadget",
                   "values": {"Title": "@{trigger.record.FullName/last_name}", "Stage": "Active",
                              "Price": {"code": "EUR", "value": 11}}}]});
    let r = p.post(flows, &maker, mine).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mine = r.body["id"].as_str().unwrap().to_string();
    let greet = json!({"name": "Greet", "owner": "admin@uplift.local",
        "trigger": {"kind": "app_command", "entity": "Contact"},
        "steps": [{"kind": "send_email", "name": "mail", "to": ["@{trigger.record.Email}"],
                   "subject": "Hello @{trigger.record.FullName/first_name}"}]});
    let r = p.post(flows, ADMIN_TOKEN, greet).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let greet = r.body["id"].as_str().unwrap().to_string();
    let app = json!({"name": "Desk", "owner": "admin@uplift.local",
        "views": [{"name": "Gadgets", "entity": "Gadget", "columns": ["Title", "Keeper"],
                   "filter": "Stage eq 'Active'"}],
        "commands": [{"label": "Greet", "entity": "Contact", "flow": greet}]});
    let path = "/api/environments/acme/apps/Desk";
    let r = p.put(path, ADMIN_TOKEN, app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = p
        .post(&format!("{path}/publish"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (maker, mine, greet)
}

async fn step1(p: &Platform) {
    step1_with(p, json!({})).await;
}

/// Step 1 with extra start options.
async fn step1_with(p: &Platform, extra: Value) {
    let mut start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD"});
    for (k, v) in extra.as_object().unwrap() {
        start[k] = v.clone();
    }
    let a = p
        .post("/api/environments/acme/upgrade", ADMIN_TOKEN, start)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let end = p.wait_step1("acme").await;
    assert_eq!(end["status"], "step2_verifying", "{end}");
    p.wait_verified("acme").await;
}

fn by_source<'a>(items: &'a Value, source: &str) -> &'a Value {
    items["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source_id"] == source)
        .unwrap_or_else(|| panic!("no item for {source}: {items}"))
}

#[engine_test]
async fn step1_ends_with_every_app_and_flow_an_item_with_its_rewritten_copy(p: Platform) {
    let (_, mine, greet) = seed(&p).await;
    step1(&p).await;
    let items = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.body);
    assert_eq!(
        items.body["value"].as_array().unwrap().len(),
        3,
        "{}",
        items.body
    );
    let greet_clone = by_source(&items.body, &greet)["copy_id"].clone();

    let app = by_source(&items.body, "Desk");
    assert_eq!(app["status"], "needs_attention", "{app}");
    let detail = p.get(&item_path(&app["id"], ""), ADMIN_TOKEN).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(
        detail.body["copy"],
        json!({"name": "Desk", "description": "", "owner": "admin@uplift.local", "editors": [],
            "views": [{"name": "Gadgets", "entity": "cr_gadget", "columns": ["cr_title", "Keeper"],
                       "filter": "cr_stage eq 100000001"}],
            "forms": [],
            "commands": [{"label": "Greet", "entity": "contact", "flow": greet_clone}]}),
        "{}",
        p.engine
    );
    let findings: Vec<(Value, Value, Value)> = detail.body["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].clone(),
                f["location"].clone(),
                f["message"].clone(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [(
            json!("error"),
            json!("view 'Gadgets' column 'Keeper'"),
            json!("'Keeper' is not upgraded (user and group fields are not upgraded)")
        )],
        "{}",
        p.engine
    );

    let flow = by_source(&items.body, &mine);
    assert_eq!(flow["status"], "ready", "{flow}");
    let clone = p
        .get(
            &format!(
                "/api/environments/acme/flows/{}",
                flow["copy_id"].as_str().unwrap()
            ),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(clone.status, StatusCode::OK, "{}", clone.body);
    assert_eq!(
        clone.body["definition"],
        json!({"name": "[Upgraded] Gadget per contact", "owner": MAKER, "editors": [], "state": "off",
            "trigger": {"kind": "record_created", "entity": "contact", "filter": "address_city eq 'Oslo'"},
            "steps": [{"kind": "create_record", "name": "g", "entity": "cr_gadget",
                       "values": {"cr_title": "@{trigger.record.fullname_last_name}", "cr_stage": 100000001,
                                  "cr_price": {"currency": "EUR", "value": 11}}}]}),
        "{}: {}",
        p.engine,
        clone.body
    );
}

#[engine_test]
async fn makers_see_their_items_users_none(p: Platform) {
    let (maker, mine, _) = seed(&p).await;
    let user = p.user("ulf@acme.test", "user").await;
    step1(&p).await;
    let items = p.get("/api/environments/acme/upgrade/items", &maker).await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.body);
    let sources: Vec<&Value> = items.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["source_id"])
        .collect();
    assert_eq!(sources, [&json!(mine)], "{}", p.engine);
    let all = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await;
    let app = by_source(&all.body, "Desk")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = p
        .get(
            &format!("/api/environments/acme/upgrade/items/{app}"),
            &maker,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let none = p.get("/api/environments/acme/upgrade/items", &user).await;
    assert_eq!(none.body["value"], json!([]), "{}", none.body);
}

#[engine_test]
async fn a_cancelled_upgrade_removes_its_upgraded_flows(p: Platform) {
    let (_, mine, _) = seed(&p).await;
    step1(&p).await;
    let items = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await;
    let clone = by_source(&items.body, &mine)["copy_id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = p
        .post(
            "/api/environments/acme/upgrade/cancel",
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let r = p
        .get(
            &format!("/api/environments/acme/flows/{clone}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = p
        .get(&format!("/api/environments/acme/flows/{mine}"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, StatusCode::OK, "the original stays: {}", r.body);
}

/// A server that stopped between step 1 and discovery (here: an upgrade whose log has
/// no items, as one written before items existed) discovers them when it resumes.
#[engine_test]
async fn a_resumed_server_discovers_items_step1_left_undiscovered(p: Platform) {
    seed(&p).await;
    step1(&p).await;
    let forget = "DELETE FROM {s}upgrade_events WHERE event LIKE '%\"items_discovered\"%'";
    match p.pg_client().await {
        Some(c) => c
            .batch_execute(&forget.replace("{s}", "uplift."))
            .await
            .unwrap(),
        None => rusqlite::Connection::open(p.data_dir().join("control.db"))
            .unwrap()
            .execute_batch(&forget.replace("{s}", ""))
            .unwrap(),
    }
    // A new server over the same store (the running one keeps what it folded: the log
    // is append-only, and this test went behind its back).
    let restarted = uplift_upgrade::runner::Upgrades::new(p.store.clone());
    let (_, state) = restarted.latest("acme").await.unwrap().unwrap();
    assert!(state.items.is_none(), "{}: forgotten", p.engine);
    assert_eq!(restarted.resume().await.unwrap(), 1, "{}", p.engine);
    let (_, state) = restarted.latest("acme").await.unwrap().unwrap();
    assert_eq!(state.items.map(|i| i.len()), Some(3), "{}", p.engine);
}

fn item_path(id: &Value, rest: &str) -> String {
    format!(
        "/api/environments/acme/upgrade/items/{}{rest}",
        id.as_str().unwrap()
    )
}

/// The reference's loop, through the API: the admin's app has an error, so it cannot be
/// signed off until its copy is fixed; the maker accepts the warning on their flow and
/// signs it off; an admin excludes the last flow; then, and only then, the gate opens.
#[engine_test]
async fn items_are_fixed_accepted_signed_off_or_excluded_and_the_gate_opens(p: Platform) {
    let (maker, mine, greet) = seed(&p).await;
    step1(&p).await;
    let all = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let (app, flow, other) = (
        by_source(&all, "Desk")["id"].clone(),
        by_source(&all, &mine)["id"].clone(),
        by_source(&all, &greet)["id"].clone(),
    );
    let gate = |s: Value| (s["gate"]["ready"].clone(), s["items"].clone());
    let status = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(
        gate(status),
        (
            json!(false),
            json!({"total": 3, "verified": 0, "excluded": 0, "open": 3, "verifying": 0})
        )
    );

    let r = p
        .post(&item_path(&app, "/signoff"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.message().contains("view 'Gadgets' column 'Keeper'"),
        "{}",
        r.body
    );
    let mut fixed = p.get(&item_path(&app, ""), ADMIN_TOKEN).await.body["copy"].clone();
    fixed["views"][0]["columns"] = json!(["cr_title", "cr_stage"]);
    let r = p.put(&item_path(&app, "/copy"), ADMIN_TOKEN, fixed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ready", "{}", r.body);
    assert_eq!(r.body["findings"][0]["resolution"], "fixed", "{}", r.body);
    let r = p
        .post(&item_path(&app, "/signoff"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (StatusCode::OK, &json!("verified")),
        "{}",
        r.body
    );
    assert_eq!(r.body["verified_by"], "admin@uplift.local");

    let warning = p.get(&item_path(&flow, ""), &maker).await.body["findings"][0].clone();
    assert_eq!(warning["severity"], "warning", "{warning}");
    let accept = item_path(
        &flow,
        &format!("/findings/{}/accept", warning["id"].as_str().unwrap()),
    );
    let r = p.post(&accept, &maker, json!({"reason": " "})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = p
        .post(&accept, &maker, json!({"reason": "rates are set later"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            &r.body["findings"][0]["resolution"],
            &r.body["findings"][0]["reason"]
        ),
        (&json!("accepted"), &json!("rates are set later"))
    );
    let r = p
        .post(&item_path(&flow, "/signoff"), &maker, json!({}))
        .await;
    assert_eq!(r.body["status"], "verified", "{}", r.body);
    let r = p
        .post(
            &item_path(&flow, "/exclude"),
            &maker,
            json!({"reason": "mine"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "makers do not exclude: {}",
        r.body
    );

    let status = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(
        status["gate"]["blocking"],
        json!(["Greet: not signed off"]),
        "{status}"
    );
    let r = p
        .post(
            &item_path(&other, "/exclude"),
            ADMIN_TOKEN,
            json!({"reason": "nobody uses it"}),
        )
        .await;
    assert_eq!(r.body["status"], "excluded", "{}", r.body);
    let status = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(
        gate(status),
        (
            json!(true),
            json!({"total": 3, "verified": 2, "excluded": 1, "open": 0, "verifying": 0})
        )
    );
}

#[engine_test]
async fn an_invalid_copy_is_refused_and_changes_nothing(p: Platform) {
    let (maker, mine, _) = seed(&p).await;
    step1(&p).await;
    let all = p
        .get("/api/environments/acme/upgrade/items", &maker)
        .await
        .body;
    let flow = by_source(&all, &mine)["id"].clone();
    let before = p.get(&item_path(&flow, ""), &maker).await.body;
    let mut bad = before["copy"].clone();
    bad["steps"][0]["entity"] = json!("Gadget");
    let r = p.put(&item_path(&flow, "/copy"), &maker, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.message().contains("Gadget"),
        "names the problem: {}",
        r.body
    );
    let r = p
        .put(&item_path(&flow, "/copy"), &maker, json!({"name": 5}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let after = p.get(&item_path(&flow, ""), &maker).await.body;
    assert_eq!(after, before, "{}", p.engine);
}

#[engine_test]
async fn an_items_report_is_json_or_a_csv_row_per_finding(p: Platform) {
    seed(&p).await;
    step1(&p).await;
    let all = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let app = by_source(&all, "Desk")["id"].clone();
    let json = p.get(&item_path(&app, "/report"), ADMIN_TOKEN).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.body);
    assert_eq!(
        json.body["findings"].as_array().unwrap().len(),
        1,
        "{}",
        json.body
    );
    assert!(
        json.body.get("copy").is_none(),
        "no definitions: {}",
        json.body
    );
    let csv = p
        .get(&item_path(&app, "/report?format=csv"), ADMIN_TOKEN)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.as_str().unwrap_or_default().to_string();
    let id = json.body["findings"][0]["id"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "id,severity,location,message,suggestion,pre_existing,resolution,reason\r\n\
             {id},error,view 'Gadgets' column 'Keeper',\
             'Keeper' is not upgraded (user and group fields are not upgraded),,false,open,\r\n"
        ),
        "{}",
        p.engine
    );
    let bad = p
        .get(&item_path(&app, "/report?format=xml"), ADMIN_TOKEN)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

/// Desk gets a draft after its version 1: its new view column is the draft's only.
async fn newer_draft(p: &Platform) {
    let path = "/api/environments/acme/apps/Desk";
    let mut def = p.get(path, ADMIN_TOKEN).await.body["published"]["definition"].clone();
    def["views"][0]["columns"] = json!(["Title", "Stage"]);
    let r = p.put(path, ADMIN_TOKEN, def).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[engine_test]
async fn an_app_with_a_newer_draft_is_copied_from_its_version_with_a_warning(p: Platform) {
    seed(&p).await;
    newer_draft(&p).await;
    step1(&p).await;
    let all = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let app = by_source(&all, "Desk")["id"].clone();
    let d = p.get(&item_path(&app, ""), ADMIN_TOKEN).await.body;
    assert_eq!(
        d["copy"]["views"][0]["columns"],
        json!(["cr_title", "Keeper"]),
        "{d}"
    );
    let note = &d["findings"][0];
    assert_eq!(
        (&note["severity"], &note["location"]),
        (&json!("warning"), &json!("app"))
    );
    let text = note["message"].as_str().unwrap();
    assert!(
        text.contains("is newer than version 1") && text.contains("apps_from"),
        "{text}"
    );
}

#[engine_test]
async fn apps_from_draft_copies_the_draft(p: Platform) {
    seed(&p).await;
    newer_draft(&p).await;
    step1_with(&p, json!({"apps_from": "draft"})).await;
    let status = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(status["options"]["apps_from"], "draft", "{status}");
    let all = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let app = by_source(&all, "Desk")["id"].clone();
    let d = p.get(&item_path(&app, ""), ADMIN_TOKEN).await.body;
    assert_eq!(
        d["copy"]["views"][0]["columns"],
        json!(["cr_title", "cr_stage"]),
        "{d}"
    );
    assert_eq!(d["status"], "ready", "the draft has no dropped column: {d}");
    assert_eq!(d["findings"][0]["severity"], "info", "{d}");
}

/// A local HTTP service that counts the requests it answers.
fn counting_service() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (addr, calls)
}

/// An upgraded flow, turned on and run, reaches nobody: its e-mail and its call to a
/// host the upgrade does not allow are captured; a call to an allowed host goes out.
#[engine_test]
async fn flows_on_the_test_database_send_to_the_capture(p: Platform) {
    seed(&p).await;
    let (service, calls) = counting_service();
    let flow = json!({"name": "Tell", "owner": "admin@uplift.local", "trigger": {"kind": "manual"},
        "steps": [
            {"kind": "send_email", "name": "mail", "to": ["someone@customer.example"], "subject": "Hi"},
            {"kind": "http_request", "name": "blocked", "method": "POST", "url": "http://blocked.example/hook", "body": {"a": 1}},
            {"kind": "http_request", "name": "allowed", "method": "GET", "url": format!("http://{service}/ping")}]});
    let r = p
        .post("/api/environments/acme/flows", ADMIN_TOKEN, flow)
        .await;
    let tell = r.body["id"].as_str().unwrap().to_string();
    step1_with(&p, json!({"allow_http": ["127.0.0.1"]})).await;
    let all = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let clone = by_source(&all, &tell)["copy_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The verification's dry run of the clone made the allowed call too; count on from it.
    let before = calls.load(std::sync::atomic::Ordering::SeqCst);
    let flows = format!("/api/environments/acme/flows/{clone}");
    let on = p.post(&format!("{flows}/on"), ADMIN_TOKEN, json!({})).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    let run = p
        .post(&format!("{flows}/run"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    let run = run.body["run"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..200 {
        done = p
            .get(&format!("{flows}/runs/{run}"), ADMIN_TOKEN)
            .await
            .body;
        if done["status"] == "succeeded" || done["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(done["status"], "succeeded", "{}: {done:#}", p.engine);
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "the allowed call went out"
    );
    let captured = p
        .get("/api/environments/acme/upgrade/captured", ADMIN_TOKEN)
        .await;
    assert_eq!(captured.status, StatusCode::OK, "{}", captured.body);
    let got: Vec<(Value, Value)> = captured.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["run_id"] == run.as_str())
        .map(|c| (c["kind"].clone(), c["payload"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                json!("email"),
                json!({"to": ["someone@customer.example"], "subject": "Hi", "body": ""})
            ),
            (
                json!("http"),
                json!({"method": "POST", "url": "http://blocked.example/hook", "headers": {}, "body": {"a": 1}})
            ),
        ],
        "{}",
        p.engine
    );
}

#[engine_test]
async fn answers_from_the_test_database_say_so(p: Platform) {
    seed(&p).await;
    step1(&p).await;
    let test = p
        .get(
            "/api/environments/acme/upgrade/test/data/contacts",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.body);
    assert_eq!(test.headers["uplift-database"], "test", "{}", p.engine);
    let missing = p
        .get(
            "/api/environments/acme/upgrade/test/data/nothing",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(missing.headers["uplift-database"], "test", "errors too");
    let prod = p
        .get("/api/environments/acme/data/contacts", ADMIN_TOKEN)
        .await;
    assert!(
        prod.headers.get("uplift-database").is_none(),
        "{}",
        p.engine
    );
}

/// Production's schema is what step 2 was built from: changing it is a 423 unless
/// forced, and a forced change marks the test database stale.
#[engine_test]
async fn a_schema_change_during_step2_is_refused_unless_forced(p: Platform) {
    seed(&p).await;
    step1(&p).await;
    let path = "/api/environments/acme/entities/Gadget";
    let more = json!({"fields": [{"name": "Title", "type": "Text"},
        {"name": "Stage", "type": "Picklist", "options": ["Planned", "Active", "Done"]},
        {"name": "Keeper", "type": "UserOrGroup"}, {"name": "Price", "type": "Currency"},
        {"name": "Weight", "type": "Integer"}]});
    let r = p.put(path, ADMIN_TOKEN, more.clone()).await;
    assert_eq!(r.status, StatusCode::LOCKED, "{}", r.body);
    assert!(r.message().contains("?force=true"), "{}", r.body);
    let status = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(status["test_database_stale"], false, "{status}");
    let r = p
        .put(&format!("{path}?force=true"), ADMIN_TOKEN, more)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let status = p
        .get("/api/environments/acme/upgrade", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(
        status["test_database_stale"], true,
        "{}: {status}",
        p.engine
    );
}

#[engine_test]
async fn each_item_says_when_its_app_was_last_played_or_its_flow_last_ran(p: Platform) {
    let (_, mine, greet) = seed(&p).await;
    let before = uplift_model::value::format_instant(time::OffsetDateTime::now_utc());
    let c = p
        .post(
            "/api/environments/acme/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName": {"first_name": "Ada", "last_name": "Lovelace"}, "Email": "ada@x.test"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    // Playing the command plays the app and runs the flow behind it.
    let run = p
        .post(
            "/api/environments/acme/apps/Desk/commands/Greet/run",
            ADMIN_TOKEN,
            json!({"record": c.body["id"]}),
        )
        .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    let after = uplift_model::value::format_instant(time::OffsetDateTime::now_utc());
    let desk = p.get("/api/environments/acme/apps/Desk", ADMIN_TOKEN).await;
    assert_eq!(desk.status, StatusCode::OK, "{}", desk.body);
    step1(&p).await;
    let items = p
        .get("/api/environments/acme/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let used = |source: &str| by_source(&items, source)["last_used_at"].clone();
    let app = used("Desk");
    let at = app
        .as_str()
        .unwrap_or_else(|| panic!("{}: {items}", p.engine));
    assert!(
        before.as_str() <= at && at <= after.as_str(),
        "{}: {before} <= {at} <= {after}",
        p.engine
    );
    assert_eq!(desk.body["last_used_at"], app, "{}", p.engine);
    let ran = used(&greet);
    let ran = ran
        .as_str()
        .unwrap_or_else(|| panic!("{}: {items}", p.engine));
    assert!(
        before.as_str() <= ran && ran <= after.as_str(),
        "{}: {ran}",
        p.engine
    );
    assert_eq!(used(&mine), Value::Null, "{}: never ran", p.engine);
}
