//! A revert within the window, through the API, on step 3's environment (not the
//! demo): production goes back to the database it was on before step 3 with every write
//! made since carried back through the inverse transforms; apps and flows go back to
//! what they were.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::complete::{Acknowledged, accounts, complete, seed_with, write_until};
use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const ENV: &str = "/api/environments/shop";

/// Step 3's environment (tickets, an app and a flow over them; see `complete::seed`)
/// through steps 1, 2 and 3. Returns the flow's id and the completed status.
async fn completed(p: &Platform) -> (String, Value) {
    completed_with(p, &[]).await
}

/// `completed`, with `flows` (of the admin) made too before step 1.
async fn completed_with(p: &Platform, flows: &[Value]) -> (String, Value) {
    let flow = seed_with(p, flows).await;
    (flow, complete(p).await)
}

/// Waits while the upgrade's status is `status`; returns the status document.
async fn wait_while(p: &Platform, status: &str) -> Value {
    for _ in 0..1200 {
        let s = p.get(&format!("{ENV}/upgrade"), ADMIN_TOKEN).await.body;
        if s["status"] != status {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: still {status}", p.engine);
}

/// The id of the ticket with this subject, read with the names `set`/`subject`.
async fn ticket(p: &Platform, set: &str, subject_field: &str, subject: &str) -> String {
    let r = p
        .get(
            &format!(
                "{ENV}/data/{set}?$filter={subject_field}%20eq%20'{}'",
                subject.replace(' ', "%20")
            ),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["value"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no ticket '{subject}': {}", r.body))
        .to_string()
}

fn created_id(r: &crate::support::Answer) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[engine_test]
async fn a_revert_carries_every_write_since_completion_back_transformed(p: Platform) {
    let (flow, end) = completed(&p).await;
    let t = &end["step3"];
    // Writes on the upgraded production, with its names and types.
    let closed = 100_000_001;
    let made = p
        .post(
            &format!("{ENV}/data/cr_tickets"),
            ADMIN_TOKEN,
            json!({"cr_subject": "after", "cr_stage": closed}),
        )
        .await;
    let made = created_id(&made);
    let account = p
        .post(
            &format!("{ENV}/data/accounts"),
            ADMIN_TOKEN,
            json!({"name": "Fabrikam", "address_city": "Oslo"}),
        )
        .await;
    let account = created_id(&account);
    // A sales order: its classic number is the old database's to give (AutoNumber).
    let order = p
        .post(
            &format!("{ENV}/data/salesorders"),
            ADMIN_TOKEN,
            json!({"customer": account}),
        )
        .await;
    let order = created_id(&order);
    let changed = ticket(&p, "cr_tickets", "cr_subject", "seed 1").await;
    let r = p
        .patch(
            &format!("{ENV}/data/cr_tickets({changed})"),
            ADMIN_TOKEN,
            json!({"cr_subject": "changed", "cr_stage": closed}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let gone = ticket(&p, "cr_tickets", "cr_subject", "seed 2").await;
    let r = p
        .delete(&format!("{ENV}/data/cr_tickets({gone})"), ADMIN_TOKEN)
        .await;
    assert!(r.status.is_success(), "{}", r.body);

    // The preview counts what goes back.
    let pv = p
        .get(&format!("{ENV}/upgrade/revert/preview"), ADMIN_TOKEN)
        .await;
    assert_eq!(pv.status, StatusCode::OK, "{}", pv.body);
    assert_eq!(pv.body["possible"], true, "{}", pv.body);
    let of = |entity: &str| {
        pv.body["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["entity"] == entity)
            .map(|e| {
                (
                    e["upserts"].as_u64().unwrap(),
                    e["deletes"].as_u64().unwrap(),
                )
            })
    };
    assert_eq!(of("cr_ticket"), Some((2, 1)), "{}: {}", p.engine, pv.body);
    assert_eq!(of("account"), Some((1, 0)), "{}: {}", p.engine, pv.body);
    assert_eq!(pv.body["apps"], json!(["Desk"]), "{}", pv.body);

    let r = p
        .post(
            &format!("{ENV}/upgrade/revert"),
            ADMIN_TOKEN,
            json!({"reason": "the desk app misbehaves"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
    let end = wait_while(&p, "revert_running").await;
    assert_eq!(end["status"], "reverted", "{}: {end}", p.engine);
    let rv = &end["step3"]["revert"];
    assert_eq!(rv["switched"], true, "{rv}");
    assert_eq!(rv["reason"], "the desk app misbehaves", "{rv}");
    let attempts = rv["pause"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.last().unwrap()["outcome"], "switched", "{rv}");

    // Production answers with the classic names again, every write carried back.
    let get = |path: String| {
        let p = &p;
        async move { p.get(&format!("{ENV}/data/{path}"), ADMIN_TOKEN).await }
    };
    let r = get(format!("tickets({made})")).await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", p.engine, r.body);
    assert_eq!(
        (&r.body["Subject"], &r.body["Stage"]),
        (&json!("after"), &json!("Closed")),
        "{}",
        r.body
    );
    let r = get(format!("tickets({changed})")).await;
    assert_eq!(
        (&r.body["Subject"], &r.body["Stage"]),
        (&json!("changed"), &json!("Closed")),
        "{}",
        r.body
    );
    let r = get(format!("tickets({gone})")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = get(format!("accounts({account})")).await;
    assert_eq!(
        (&r.body["Name"], &r.body["Address"]["city"]),
        (&json!("Fabrikam"), &json!("Oslo")),
        "{}",
        r.body
    );
    let r = get(format!("salesorders({order})")).await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", p.engine, r.body);
    assert!(
        r.body["OrderNumber"].is_i64(),
        "{}: numbered: {}",
        p.engine,
        r.body
    );
    assert_eq!(r.body["Customer"], json!(account), "{}", r.body);
    let r = get("tickets?$count=true&$top=1".into()).await;
    assert_eq!(
        r.body["@odata.count"], 20,
        "20 seeded, 1 made, 1 deleted: {}",
        r.body
    );
    let r = get("cr_tickets".into()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.message().contains("'tickets'"), "{}", r.body);

    // Apps and flows are what they were.
    let app = p.get(&format!("{ENV}/apps/Desk"), ADMIN_TOKEN).await.body;
    let published = &app["published"];
    assert_eq!(published["version"], 3, "{app}");
    assert_eq!(published["database"], t["from_database"], "{app}");
    assert_eq!(
        published["definition"]["views"][0]["entity"], "Ticket",
        "{app}"
    );
    assert_eq!(
        published["definition"]["commands"][0]["flow"],
        flow.as_str()
    );
    let original = p
        .get(&format!("{ENV}/flows/{flow}"), ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(
        (&original["name"], &original["state"], &original["database"]),
        (&json!("Tag tickets"), &json!("on"), &t["from_database"]),
        "{original}"
    );
}

#[engine_test]
async fn a_revert_holds_writes_in_its_pause_and_loses_none(p: Platform) {
    completed(&p).await;
    // The pause is held open a while so that some writes wait at the gate.
    p.upgrades.set_pause_delay_ms(150);
    let stop = AtomicBool::new(false);
    let acks = Mutex::new(Acknowledged::default());
    let run = async {
        // Some writes land on the upgraded production before the revert starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = p
            .post(
                &format!("{ENV}/upgrade/revert"),
                ADMIN_TOKEN,
                json!({"reason": "rolled back under load", "pause_budget_ms": 5000}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
        let end = wait_while(&p, "revert_running").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        end
    };
    let (end, ()) = tokio::join!(run, write_until(&p, &stop, &acks, ("name", "Name")));
    assert_eq!(end["status"], "reverted", "{}: {end}", p.engine);
    let acks = acks.into_inner().unwrap();
    assert!(
        acks.refused.is_empty(),
        "{}: refused {:?}",
        p.engine,
        acks.refused
    );
    let pause = &end["step3"]["revert"]["pause"];
    assert!(
        pause["writes_held"].as_u64().unwrap() >= 1,
        "{}: a write waited at the gate: {pause}",
        p.engine
    );
    let now = accounts(&p, "Name").await;
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
}

/// A record written on the upgraded production whose outbox entry is still waiting at
/// the revert's switch (dispatch held) is handed back: the promoted flow's trigger fires
/// for it, and its run acts through the restored original on the old production, once.
#[engine_test]
async fn outbox_entries_before_the_revert_act_on_the_old_production(p: Platform) {
    let close = json!({"name": "Close tickets", "owner": "admin@uplift.local", "state": "on",
        "trigger": {"kind": "record_created", "entity": "Ticket"},
        "steps": [{"kind": "update_record", "name": "close", "entity": "Ticket",
                   "id": "@{trigger.record.id}", "values": {"Stage": "Closed"}}]});
    completed_with(&p, &[close]).await;
    p.flows.set_dispatch_paused(true);
    let r = p
        .post(
            &format!("{ENV}/data/cr_tickets"),
            ADMIN_TOKEN,
            json!({"cr_subject": "late", "cr_stage": 100_000_000}),
        )
        .await;
    let late = created_id(&r);
    let r = p
        .post(
            &format!("{ENV}/upgrade/revert"),
            ADMIN_TOKEN,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let end = wait_while(&p, "revert_running").await;
    assert_eq!(end["status"], "reverted", "{}: {end}", p.engine);
    p.flows.set_dispatch_paused(false);
    let mut ticket = Value::Null;
    for _ in 0..100 {
        ticket = p
            .get(&format!("{ENV}/data/tickets({late})"), ADMIN_TOKEN)
            .await
            .body;
        if ticket["Stage"] == "Closed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ticket["Stage"], "Closed",
        "{}: closed on the old production: {ticket}",
        p.engine
    );
    let flows = p.get(&format!("{ENV}/flows"), ADMIN_TOKEN).await.body;
    let original = flows["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Close tickets")
        .unwrap_or_else(|| panic!("restored: {flows}"))
        .clone();
    let runs = p
        .get(
            &format!("{ENV}/flows/{}/runs", original["id"].as_str().unwrap()),
            ADMIN_TOKEN,
        )
        .await
        .body;
    let outbox: Vec<&Value> = runs["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["trigger_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("outbox:"))
        })
        .collect();
    assert_eq!(
        outbox.len(),
        1,
        "{}: once, with the original: {runs}",
        p.engine
    );
    assert_eq!(outbox[0]["status"], "succeeded", "{}", outbox[0]);
}

/// A schema change after the switch blocks the revert, named: what it added would be
/// lost, and the inverse transforms know the schema of the switch only.
#[engine_test]
async fn a_schema_changed_after_the_switch_blocks_the_revert(p: Platform) {
    p.create_env("shop", "classic", "open").await;
    completed_with_nothing(&p).await;
    let defs =
        json!({"entities": {"cr_note": {"fields": [{"name": "cr_size", "type": "WholeNumber"}]}}});
    let d = p.put(&format!("{ENV}/entities"), ADMIN_TOKEN, defs).await;
    assert_eq!(d.status, StatusCode::OK, "{}: {}", p.engine, d.body);
    let pv = p
        .get(&format!("{ENV}/upgrade/revert/preview"), ADMIN_TOKEN)
        .await;
    assert_eq!(pv.body["possible"], false, "{}", pv.body);
    assert!(
        pv.body["blocked"]
            .as_str()
            .unwrap_or_default()
            .contains("cr_note"),
        "{}",
        pv.body
    );
    let r = p
        .post(
            &format!("{ENV}/upgrade/revert"),
            ADMIN_TOKEN,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.message().contains("cr_note"), "{}", r.body);
    let s = p.get(&format!("{ENV}/upgrade"), ADMIN_TOKEN).await.body;
    assert_eq!(s["status"], "completed", "nothing started: {s}");
}

#[engine_test]
async fn a_revert_needs_an_admin_a_reason_and_a_completed_upgrade(p: Platform) {
    p.create_env("shop", "classic", "open").await;
    let r = p
        .post(
            &format!("{ENV}/upgrade/revert"),
            ADMIN_TOKEN,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no upgrade: {}", r.body);
    let (_, _) = completed_with_nothing(&p).await;
    let maker = p.user("mo@shop.test", "maker").await;
    let cases = [
        (
            maker.as_str(),
            json!({"reason": "x"}),
            StatusCode::FORBIDDEN,
        ),
        (
            ADMIN_TOKEN,
            json!({"reason": "  "}),
            StatusCode::BAD_REQUEST,
        ),
        (
            ADMIN_TOKEN,
            json!({"reason": "x", "pause_budget_ms": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (ADMIN_TOKEN, json!({"why": "x"}), StatusCode::BAD_REQUEST),
    ];
    for (token, body, status) in cases {
        let r = p
            .post(&format!("{ENV}/upgrade/revert"), token, body.clone())
            .await;
        assert_eq!(r.status, status, "{}: {body}: {}", p.engine, r.body);
    }
    let s = p.get(&format!("{ENV}/upgrade"), ADMIN_TOKEN).await.body;
    assert_eq!(s["status"], "completed", "nothing started: {s}");
    // Once the old production is deleted, the window is over.
    let r = p
        .post(&format!("{ENV}/upgrade/cleanup"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pv = p
        .get(&format!("{ENV}/upgrade/revert/preview"), ADMIN_TOKEN)
        .await;
    assert_eq!(pv.body["possible"], false, "{}", pv.body);
    let r = p
        .post(
            &format!("{ENV}/upgrade/revert"),
            ADMIN_TOKEN,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.message().contains("window"), "{}", r.body);
}

/// An environment with no apps or flows, upgraded and completed.
async fn completed_with_nothing(p: &Platform) -> (String, Value) {
    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD"});
    let a = p.post(&format!("{ENV}/upgrade"), ADMIN_TOKEN, start).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let end = p.wait_step1("shop").await;
    assert_eq!(end["status"], "step2_verifying", "{end}");
    let r = p
        .post(
            &format!("{ENV}/upgrade/complete"),
            ADMIN_TOKEN,
            json!({"override": {"reason": "nothing to check"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let end = wait_while(p, "step3_running").await;
    assert_eq!(end["status"], "completed", "{}: {end}", p.engine);
    (String::new(), end)
}
