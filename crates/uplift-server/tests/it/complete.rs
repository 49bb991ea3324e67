//! Step 3 through the API, on an environment that is not the demo: production is rebuilt
//! on the new schema while a client keeps writing, switched over in a short write pause
//! that holds writes rather than refusing them, apps and flows published; a pause past
//! its budget is aborted, retried, and fails with production as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform, SmtpSink};
use uplift_test_macros::engine_test;

const ENV: &str = "/api/environments/shop";
/// The maker who owns a flow of the shop.
const MAKER: &str = "mia@shop.test";

/// A classic environment with tickets, an app over them and a flow, through step 1.
async fn seed(p: &Platform) -> String {
    seed_with(p, &[]).await
}

/// `seed`, with `flows` (of the admin) made too before step 1.
pub(crate) async fn seed_with(p: &Platform, flows: &[Value]) -> String {
    p.create_env("shop", "classic", "open").await;
    let defs = json!({"entities": {"Ticket": {"fields": [
        {"name": "Subject", "type": "Text"},
        {"name": "Stage", "type": "Picklist", "options": ["Open", "Closed"]}]}}});
    let d = p.put(&format!("{ENV}/entities"), ADMIN_TOKEN, defs).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    for i in 0..20 {
        let stage = if i % 2 == 0 { "Open" } else { "Closed" };
        let r = p
            .post(
                &format!("{ENV}/data/tickets"),
                ADMIN_TOKEN,
                json!({"Subject": format!("seed {i}"), "Stage": stage}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let flow = json!({"name": "Tag tickets", "owner": "admin@uplift.local", "state": "on",
        "trigger": {"kind": "app_command", "entity": "Ticket"},
        "steps": [{"kind": "update_record", "name": "close", "entity": "Ticket",
                   "id": "@{trigger.record.id}", "values": {"Stage": "Closed"}}]});
    let r = p.post(&format!("{ENV}/flows"), ADMIN_TOKEN, flow).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let flow = r.body["id"].as_str().unwrap().to_string();
    let app = json!({"name": "Desk", "owner": "admin@uplift.local",
        "views": [{"name": "Open tickets", "entity": "Ticket", "columns": ["Subject"],
                   "filter": "Stage eq 'Open'"}],
        "commands": [{"label": "Close", "entity": "Ticket", "flow": flow}]});
    let r = p.put(&format!("{ENV}/apps/Desk"), ADMIN_TOKEN, app).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = p
        .post(&format!("{ENV}/apps/Desk/publish"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for f in flows {
        let r = p
            .post(&format!("{ENV}/flows"), ADMIN_TOKEN, f.clone())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // A maker's own flow: an item of hers in step 2.
    let mia = p.user(MAKER, "maker").await;
    let theirs = json!({"name": "Count tickets", "owner": MAKER, "trigger": {"kind": "manual"},
        "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]});
    let r = p.post(&format!("{ENV}/flows"), &mia, theirs).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD"});
    let a = p.post(&format!("{ENV}/upgrade"), ADMIN_TOKEN, start).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let end = p.wait_step1("shop").await;
    assert_eq!(end["status"], "step2_verifying", "{end}");
    p.wait_verified("shop").await;
    flow
}

/// Starts step 3 past the gate and waits for it to complete; returns the status.
pub(crate) async fn complete(p: &Platform) -> Value {
    let r = p
        .post(
            &format!("{ENV}/upgrade/complete"),
            ADMIN_TOKEN,
            json!({"override": {"reason": "checked by hand"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
    let end = wait_step3(p).await;
    assert_eq!(end["status"], "completed", "{}: {end}", p.engine);
    end
}

/// Waits until step 3 ends; returns the status document.
async fn wait_step3(p: &Platform) -> Value {
    for _ in 0..1200 {
        let s = p.get(&format!("{ENV}/upgrade"), ADMIN_TOKEN).await.body;
        if s["status"] != "step3_running" {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: step 3 did not end", p.engine);
}

/// What a client wrote and was told had happened.
#[derive(Default)]
pub(crate) struct Acknowledged {
    /// Account ids with the name they were created with.
    pub created: BTreeMap<String, String>,
    pub deleted: BTreeSet<String>,
    /// Answers that were neither a success nor the 400 naming a renamed property.
    pub refused: Vec<String>,
    /// Writes answered with the new name of a property (then sent again with it).
    pub renamed: u32,
}

/// Creates accounts and deletes every third one until `stop`, naming the account's
/// name `names.0` until a write is told the other name (a write held across a switch
/// is), then `names.1`.
pub(crate) async fn write_until(
    p: &Platform,
    stop: &AtomicBool,
    acks: &Mutex<Acknowledged>,
    names: (&'static str, &'static str),
) {
    let (mut n, mut field) = (0u32, names.0);
    let told = format!("is now '{}'", names.1);
    while !stop.load(Ordering::Relaxed) {
        let name = format!("w{n}");
        let r = p
            .post(
                &format!("{ENV}/data/accounts"),
                ADMIN_TOKEN,
                json!({field: name}),
            )
            .await;
        if r.status == StatusCode::BAD_REQUEST && r.message().contains(&told) {
            acks.lock().unwrap().renamed += 1;
            field = names.1;
            continue;
        }
        if r.status != StatusCode::CREATED {
            acks.lock()
                .unwrap()
                .refused
                .push(format!("create: {} {}", r.status, r.body));
            break;
        }
        let id = r.body["id"].as_str().unwrap().to_string();
        n += 1;
        if n % 3 == 0 {
            let r = p
                .delete(&format!("{ENV}/data/accounts({id})"), ADMIN_TOKEN)
                .await;
            let mut a = acks.lock().unwrap();
            if r.status == StatusCode::NO_CONTENT {
                a.deleted.insert(id);
            } else {
                a.refused.push(format!("delete: {} {}", r.status, r.body));
                break;
            }
        } else {
            acks.lock().unwrap().created.insert(id, name);
        }
    }
}

/// Every account production serves now: id → its `name` field.
pub(crate) async fn accounts(p: &Platform, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut next = Some(format!("{ENV}/data/accounts?$select=id,{name}&$top=5000"));
    while let Some(url) = next {
        let page = p.get(&url, ADMIN_TOKEN).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for r in page.body["value"].as_array().unwrap() {
            out.insert(
                r["id"].as_str().unwrap().to_string(),
                r[name].as_str().unwrap_or_default().to_string(),
            );
        }
        next = page.body["@odata.nextLink"]
            .as_str()
            .map(|l| l[l.find("/api/").unwrap()..].to_string());
    }
    out
}

#[engine_test]
async fn step3_switches_production_while_a_client_writes_and_loses_nothing(p: Platform) {
    let flow = seed(&p).await;
    // The build is slowed down so that writes land while it runs, and the pause is
    // held open a while so that some wait at the gate.
    p.upgrades.set_chunk_rows(5);
    p.upgrades.set_chunk_pause_ms(20);
    p.upgrades.set_pause_delay_ms(150);
    let stop = AtomicBool::new(false);
    let acks = Mutex::new(Acknowledged::default());
    let run = async {
        let r = p
            .post(
                &format!("{ENV}/upgrade/complete"),
                ADMIN_TOKEN,
                json!({"pause_budget_ms": 5000, "override": {"reason": "the copies are checked by hand"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
        assert_eq!(r.body["status"], "step3_running", "{}", r.body);
        let end = wait_step3(&p).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        end
    };
    let (end, ()) = tokio::join!(run, write_until(&p, &stop, &acks, ("Name", "name")));
    assert_eq!(end["status"], "completed", "{}: {end}", p.engine);
    let acks = acks.into_inner().unwrap();
    assert!(
        acks.refused.is_empty(),
        "{}: refused {:?}",
        p.engine,
        acks.refused
    );
    let t = &end["step3"];
    assert_eq!(t["switched"], true, "{t}");
    assert_eq!(t["override_reason"], "the copies are checked by hand");
    let attempts = t["pause"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.last().unwrap()["outcome"], "switched", "{t}");
    assert!(
        t["pause"]["writes_held"].as_u64().unwrap() >= 1,
        "{}: a write waited at the gate: {t}",
        p.engine
    );
    assert!(
        t["pause"]["max_write_wait_ms"].as_u64().unwrap() < 5000,
        "{t}"
    );

    // Every acknowledged create is there with its value, every acknowledged delete is
    // gone.
    let now = accounts(&p, "name").await;
    let lost: Vec<_> = acks
        .created
        .iter()
        .filter(|(id, name)| now.get(*id) != Some(*name))
        .collect();
    assert!(lost.is_empty(), "{}: lost or changed {lost:?}", p.engine);
    let back: Vec<_> = acks
        .deleted
        .iter()
        .filter(|id| now.contains_key(*id))
        .collect();
    assert!(back.is_empty(), "{}: deleted yet there {back:?}", p.engine);
    assert!(
        acks.created.len() > 5,
        "{}: {} writes",
        p.engine,
        acks.created.len()
    );
    assert!(acks.renamed <= 1, "{}: told the new name once", p.engine);

    // Production is the new schema: transformed records, new names, old names named.
    let tickets = p
        .get(
            &format!("{ENV}/data/cr_tickets?$filter=cr_stage%20eq%20100000000"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(tickets.status, StatusCode::OK, "{}", tickets.body);
    assert_eq!(
        tickets.body["value"].as_array().unwrap().len(),
        10,
        "{}",
        tickets.body
    );
    let old = p.get(&format!("{ENV}/data/tickets"), ADMIN_TOKEN).await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "{}", old.body);
    assert!(old.message().contains("cr_tickets"), "{}", old.body);

    // Published: the app's copy is its next version, on the new production; the flow's
    // clone is promoted and its original archived.
    let app = p.get(&format!("{ENV}/apps/Desk"), ADMIN_TOKEN).await.body;
    let published = &app["published"];
    assert_eq!(published["version"], 2, "{app}");
    assert_eq!(published["database"], t["new_database"], "{app}");
    assert_eq!(
        published["definition"]["views"][0]["entity"], "cr_ticket",
        "{app}"
    );
    let flows = p.get(&format!("{ENV}/flows"), ADMIN_TOKEN).await.body;
    let flows = flows["value"].as_array().unwrap();
    let original = flows.iter().find(|f| f["id"] == flow.as_str()).unwrap();
    assert_eq!(
        (&original["name"], &original["state"]),
        (&json!("[Archived] Tag tickets"), &json!("off")),
        "{original}"
    );
    let promoted = flows.iter().find(|f| f["name"] == "Tag tickets").unwrap();
    assert_eq!(
        (&promoted["state"], &promoted["database"]),
        (&json!("on"), &t["new_database"]),
        "{promoted}"
    );
    assert_eq!(
        published["definition"]["commands"][0]["flow"], promoted["id"],
        "the command runs the promoted flow"
    );
}

#[engine_test]
async fn a_pause_past_its_budget_is_retried_then_fails_with_production_as_it_was(p: Platform) {
    seed(&p).await;
    p.upgrades.set_pause_delay_ms(120);
    let r = p
        .post(
            &format!("{ENV}/upgrade/complete"),
            ADMIN_TOKEN,
            json!({"pause_budget_ms": 50, "max_attempts": 2, "override": {"reason": "test"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
    let end = wait_step3(&p).await;
    assert_eq!(end["status"], "step2_verifying", "{}: {end}", p.engine);
    let t = &end["step3"];
    let outcomes: Vec<&Value> = t["pause"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["outcome"])
        .collect();
    assert_eq!(outcomes, vec!["aborted", "aborted"], "{t}");
    assert!(
        t["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("budget of 50 ms"),
        "{t}"
    );
    // Production is as it was, and serves: old names, writes, no capture left.
    let r = p
        .post(
            &format!("{ENV}/data/tickets"),
            ADMIN_TOKEN,
            json!({"Subject": "after"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let prod = p.store.env_db("shop").await.unwrap();
    assert!(
        !uplift_store::capture::installed(&prod).await.unwrap(),
        "{}",
        p.engine
    );
    let new = t["new_database"].as_str().unwrap();
    assert!(
        !p.store.database_exists("shop", new).await.unwrap(),
        "{}: the new database is dropped",
        p.engine
    );
    let app = p.get(&format!("{ENV}/apps/Desk"), ADMIN_TOKEN).await.body;
    assert_eq!(app["published"]["version"], 1, "{app}");
}

#[engine_test]
async fn step3_needs_an_admin_and_a_ready_gate_or_an_override(p: Platform) {
    seed(&p).await;
    let maker = p.user("mo@shop.test", "maker").await;
    let url = format!("{ENV}/upgrade/complete");
    let r = p.post(&url, &maker, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = p.post(&url, ADMIN_TOKEN, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.message().contains("gate"), "{}", r.body);
    let r = p
        .post(&url, ADMIN_TOKEN, json!({"override": {"reason": "  "}}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = p
        .post(
            &url,
            ADMIN_TOKEN,
            json!({"pause_budget_ms": 0, "override": {"reason": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let pre = p.get(&format!("{url}/preflight"), ADMIN_TOKEN).await;
    assert_eq!(pre.status, StatusCode::OK, "{}", pre.body);
    let names: Vec<&Value> = pre.body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(
        names,
        vec![
            "gate",
            "test_database_current",
            "disk_space",
            "no_long_transaction",
            "flow_runtime"
        ],
        "{}",
        pre.body
    );
    let runtime = &pre.body["checks"][4];
    assert_eq!(runtime["ok"], true, "the server's runtime runs: {runtime}");
    assert_eq!(
        pre.body["ready"], false,
        "the gate is not ready: {}",
        pre.body
    );
    let status = p.get(&format!("{ENV}/upgrade"), ADMIN_TOKEN).await.body;
    assert_eq!(
        status["status"], "step2_verifying",
        "nothing started: {status}"
    );
}

/// A flow an admin excluded from the upgrade is turned off at the switch, under its own
/// name (it would act on the retired database); the others are promoted.
#[engine_test]
async fn an_excluded_flow_is_turned_off_at_the_switch(p: Platform) {
    let watch = json!({"name": "Watch tickets", "owner": "admin@uplift.local", "state": "on",
        "trigger": {"kind": "manual"},
        "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]});
    seed_with(&p, &[watch]).await;
    let items = p
        .get(&format!("{ENV}/upgrade/items"), ADMIN_TOKEN)
        .await
        .body;
    let theirs = items["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Watch tickets")
        .unwrap_or_else(|| panic!("no item for 'Watch tickets': {items}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = p
        .post(
            &format!("{ENV}/upgrade/items/{theirs}/exclude"),
            ADMIN_TOKEN,
            json!({"reason": "retired with the old schema"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    complete(&p).await;
    let flows = p.get(&format!("{ENV}/flows"), ADMIN_TOKEN).await.body;
    let named = |name: &str| {
        flows["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no flow '{name}': {flows}"))
    };
    assert_eq!(
        named("Watch tickets")["state"],
        "off",
        "{}: {flows}",
        p.engine
    );
    assert_eq!(named("Tag tickets")["state"], "on", "{}: {flows}", p.engine);
}

/// While step 3 runs, production's schema is locked: what the build copies and the
/// capture records must not change under it.
#[engine_test]
async fn production_s_schema_is_locked_while_step3_runs(p: Platform) {
    seed(&p).await;
    p.upgrades
        .set_stall(Some(uplift_upgrade::runner::step3::Stall::Phase(
            uplift_upgrade::events::Phase::Build,
        )));
    let r = p
        .post(
            &format!("{ENV}/upgrade/complete"),
            ADMIN_TOKEN,
            json!({"override": {"reason": "checked by hand"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let defs = json!({"entities": {"Note": {"fields": [{"name": "Text", "type": "Text"}]}}});
    for force in ["", "?force=true"] {
        let d = p
            .put(&format!("{ENV}/entities{force}"), ADMIN_TOKEN, defs.clone())
            .await;
        assert_eq!(
            d.status,
            StatusCode::LOCKED,
            "{}: {force}: {}",
            p.engine,
            d.body
        );
        assert!(d.message().contains("step 3 is running"), "{}", d.body);
    }
}

/// Once step 3 has switched, the admin and every maker with an item get one message
/// through a real SMTP server: the pause's figures, and what became of their items.
#[engine_test]
async fn the_admin_and_every_maker_with_an_item_are_mailed_on_completion(p: Platform) {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    p.flows.set_mailer(smtp.mailer());
    seed(&p).await;
    complete(&p).await;
    let mut notices = Vec::new();
    for _ in 0..200 {
        notices = smtp
            .messages()
            .into_iter()
            .filter(|m| m.contains("Subject: Upgrade of 'shop' is complete"))
            .collect();
        if notices.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let to_of = |m: &String| {
        m.lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mut to: Vec<String> = notices.iter().map(to_of).collect();
    to.sort();
    assert_eq!(
        to,
        ["admin@uplift.local", MAKER],
        "{}: {notices:#?}",
        p.engine
    );
    let hers = notices.iter().find(|m| to_of(m) == MAKER).unwrap();
    assert!(hers.contains("flow 'Count tickets'"), "{hers}");
    assert!(!hers.contains("Desk"), "only her items: {hers}");
    let admins = notices.iter().find(|m| to_of(m) != MAKER).unwrap();
    assert!(
        admins.contains("Write pause:") && admins.contains("app 'Desk'"),
        "{admins}"
    );
}

/// The kind and state of each database a completed upgrade keeps.
fn kept(status: &Value) -> Vec<(String, bool)> {
    status["step3"]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap().to_string(),
                k["removed"] == true,
            )
        })
        .collect()
}

/// The janitor deletes the test database once `test_retention_hours` are up and keeps
/// the old production for the revert window; an admin's cleanup deletes it now.
#[engine_test]
async fn kept_databases_go_when_their_time_is_up_or_at_cleanup(p: Platform) {
    seed(&p).await;
    p.upgrades.set_retention(uplift_server::Retention {
        test_retention_hours: 0,
        revert_window_hours: 1000,
    });
    let end = complete(&p).await;
    let test_db = end["test_database"].as_str().unwrap().to_string();
    let old = end["step3"]["from_database"].as_str().unwrap().to_string();
    let mut status = end.clone();
    for _ in 0..300 {
        status = p.get(&format!("{ENV}/upgrade"), ADMIN_TOKEN).await.body;
        if kept(&status)[0].1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expect = |test: bool, old: bool| {
        vec![
            ("test".to_string(), test),
            ("old_production".to_string(), old),
        ]
    };
    assert_eq!(
        kept(&status),
        expect(true, false),
        "{}: {status:#}",
        p.engine
    );
    assert!(
        p.store.database("shop", &test_db).await.is_err(),
        "the test database is gone"
    );
    assert!(
        p.store.database("shop", &old).await.is_ok(),
        "the old production is kept"
    );

    let mia = p.user("ed@shop.test", "maker").await;
    let url = format!("{ENV}/upgrade/cleanup");
    let r = p.post(&url, &mia, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = p.post(&url, ADMIN_TOKEN, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(kept(&r.body), expect(true, true), "{}", r.body);
    assert!(
        p.store.database("shop", &old).await.is_err(),
        "the old production is gone"
    );
    let tickets = p.get(&format!("{ENV}/data/cr_tickets"), ADMIN_TOKEN).await;
    assert_eq!(
        tickets.status,
        StatusCode::OK,
        "production serves: {}",
        tickets.body
    );
}

/// The row version survives the switch: an ETag a client read before step 3 still
/// guards its write after it, and a stale one is still refused.
#[engine_test]
async fn an_etag_read_before_the_switch_still_guards_a_write_after_it(p: Platform) {
    use axum::http::Method;
    seed(&p).await;
    let first = p
        .get(&format!("{ENV}/data/tickets?$top=1"), ADMIN_TOKEN)
        .await;
    let id = first.body["value"][0]["id"].as_str().unwrap().to_string();
    let etag = |a: &crate::support::Answer| a.headers["etag"].to_str().unwrap().to_string();
    let old_path = format!("{ENV}/data/tickets({id})");
    let stale = etag(&p.get(&old_path, ADMIN_TOKEN).await);
    let r = p
        .patch(&old_path, ADMIN_TOKEN, json!({"Subject": "edited once"}))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let current = etag(&p.get(&old_path, ADMIN_TOKEN).await);
    assert_ne!(stale, current);
    complete(&p).await;

    let path = format!("{ENV}/data/cr_tickets({id})");
    let body = json!({"cr_subject": "after the switch"});
    let send = |tag: String| {
        let (path, body) = (path.clone(), body.clone());
        let p = &p;
        async move {
            p.call(
                Method::PATCH,
                &path,
                Some(ADMIN_TOKEN),
                Some(body),
                &[("if-match", &tag)],
            )
            .await
        }
    };
    let r = send(stale).await;
    assert_eq!(
        r.status,
        StatusCode::PRECONDITION_FAILED,
        "{}: {}",
        p.engine,
        r.body
    );
    let r = send(current).await;
    assert!(
        r.status.is_success(),
        "{}: {} {}",
        p.engine,
        r.status,
        r.body
    );
}

/// The runs the outbox made of the flow named `name` (not step 2's dry runs), once `n`
/// of them have finished.
async fn finished_runs(p: &Platform, name: &str, n: usize) -> Vec<Value> {
    let flows = p.get(&format!("{ENV}/flows"), ADMIN_TOKEN).await.body;
    let id = flows["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no flow '{name}': {flows}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut runs = Vec::new();
    for _ in 0..200 {
        let r = p.get(&format!("{ENV}/flows/{id}/runs"), ADMIN_TOKEN).await;
        runs = r.body["value"].as_array().cloned().unwrap_or_default();
        runs.retain(|r| {
            r["trigger_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("outbox:"))
        });
        let done = runs
            .iter()
            .all(|r| r["status"] == "succeeded" || r["status"] == "failed");
        if runs.len() >= n && done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runs
}

/// A record written before the switch, whose outbox entry is still waiting when step 3
/// switches (the runtime's dispatch is held), is handed over: the original flow's
/// trigger fires for it, and the run it makes acts through the flow's upgraded
/// definition on the new production — its record step writes there and its e-mail goes
/// out through real SMTP, not to the capture. A record written after the switch runs
/// the promoted flow. Each runs once; the archived original runs none.
#[engine_test]
async fn outbox_entries_before_the_switch_act_on_the_new_production(p: Platform) {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    p.flows.set_mailer(smtp.mailer());
    let close = json!({"name": "Close tickets", "owner": "admin@uplift.local", "state": "on",
        "trigger": {"kind": "record_created", "entity": "Ticket"},
        "steps": [
            {"kind": "update_record", "name": "close", "entity": "Ticket",
             "id": "@{trigger.record.id}", "values": {"Stage": "Closed"}},
            {"kind": "send_email", "name": "tell", "to": ["desk@shop.test"],
             "subject": "Closed @{trigger.record.Subject}", "body": "done"}]});
    seed_with(&p, &[close]).await;
    p.flows.set_dispatch_paused(true);
    let r = p
        .post(
            &format!("{ENV}/data/tickets"),
            ADMIN_TOKEN,
            json!({"Subject": "before", "Stage": "Open"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let before = r.body["id"].as_str().unwrap().to_string();
    complete(&p).await;
    p.flows.set_dispatch_paused(false);
    let open = 100_000_000;
    let r = p
        .post(
            &format!("{ENV}/data/cr_tickets"),
            ADMIN_TOKEN,
            json!({"cr_subject": "after", "cr_stage": open}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let after = r.body["id"].as_str().unwrap().to_string();
    let promoted = finished_runs(&p, "Close tickets", 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (archived, promoted_again) = (
        finished_runs(&p, "[Archived] Close tickets", 0).await,
        finished_runs(&p, "Close tickets", 2).await,
    );
    assert_eq!(
        (archived.len(), promoted.len(), promoted_again.len()),
        (0, 2, 2),
        "{}: each entry runs once, with the promoted flow: {promoted:#?}",
        p.engine
    );
    for run in &promoted {
        assert_eq!(run["status"], "succeeded", "{}: {run:#}", p.engine);
    }
    for id in [&before, &after] {
        let t = p
            .get(&format!("{ENV}/data/cr_tickets({id})"), ADMIN_TOKEN)
            .await;
        assert_eq!(
            t.body["cr_stage"], 100_000_001,
            "{}: closed: {}",
            p.engine, t.body
        );
    }
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = smtp
            .messages()
            .into_iter()
            .filter(|m| m.contains("To: desk@shop.test"))
            .collect();
        if sent.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent.len(), 2, "{}: both e-mails sent: {sent:#?}", p.engine);
    assert!(
        sent.iter().any(|m| m.contains("Closed before")),
        "the record came across with its values: {sent:#?}"
    );
    let captured = p.get(&format!("{ENV}/upgrade/captured"), ADMIN_TOKEN).await;
    let runs: Vec<&Value> = promoted.iter().map(|r| &r["id"]).collect();
    let of_these = captured.body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| runs.contains(&&c["run_id"]))
        .count();
    assert_eq!(of_these, 0, "nothing of theirs captured: {}", captured.body);
}

/// After the switch production is the new schema: the report still lists what the plan
/// changed (planned from the old production) and the pause, and still answers once the
/// old production is cleaned up.
#[engine_test]
async fn the_report_after_the_switch_lists_what_the_plan_changed(p: Platform) {
    seed(&p).await;
    let before = p.get(&format!("{ENV}/upgrade/report"), ADMIN_TOKEN).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    complete(&p).await;
    let after = p.get(&format!("{ENV}/upgrade/report"), ADMIN_TOKEN).await;
    assert_eq!(after.status, StatusCode::OK, "{}: {}", p.engine, after.body);
    assert_eq!(
        after.body["changes"], before.body["changes"],
        "{}: the same change list",
        p.engine
    );
    let tickets = after.body["changes"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "Ticket")
        .cloned();
    assert_eq!(
        tickets.map(|t| t["target"].clone()),
        Some(json!("cr_ticket")),
        "{}",
        after.body
    );
    assert!(
        after.body["pause"]["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{}",
        after.body
    );
    let r = p
        .post(&format!("{ENV}/upgrade/cleanup"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let gone = p.get(&format!("{ENV}/upgrade/report"), ADMIN_TOKEN).await;
    assert_eq!(gone.status, StatusCode::OK, "{}: {}", p.engine, gone.body);
}
