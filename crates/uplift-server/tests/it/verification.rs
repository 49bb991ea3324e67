//! Step 2's verification run for real: flows dry-run on a sample record (writes rolled
//! back, what they send captured), problems the original has too marked
//! `pre_existing`, makers mailed their items through a real SMTP server.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform, SmtpSink};
use uplift_test_macros::engine_test;

const ENV: &str = "/api/environments/acme";

async fn new_flow(p: &Platform, token: &str, def: Value) -> String {
    let r = p.post(&format!("{ENV}/flows"), token, def).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", p.engine, r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn step1(p: &Platform) {
    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD"});
    let a = p.post(&format!("{ENV}/upgrade"), ADMIN_TOKEN, start).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let end = p.wait_step1("acme").await;
    assert_eq!(end["status"], "step2_verifying", "{end}");
    p.wait_verified("acme").await;
}

async fn item_of(p: &Platform, source: &str) -> Value {
    let all = p
        .get(&format!("{ENV}/upgrade/items"), ADMIN_TOKEN)
        .await
        .body;
    let id = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source_id"] == source)
        .unwrap_or_else(|| panic!("no item for {source}: {all}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.get(&format!("{ENV}/upgrade/items/{id}"), ADMIN_TOKEN)
        .await
        .body
}

/// The dry runs of a flow: its runs whose trigger says `dry_run`.
async fn dry_runs(p: &Platform, flow: &str) -> Vec<Value> {
    let runs = p
        .get(&format!("{ENV}/flows/{flow}/runs"), ADMIN_TOKEN)
        .await
        .body;
    runs["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"]["dry_run"] == true)
        .cloned()
        .collect()
}

#[engine_test]
async fn a_dry_run_rolls_its_writes_back_and_captures_what_it_sends(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let outbox = tempfile::tempdir().unwrap();
    p.flows.set_mailer(
        uplift_flows::mail::Mailer::files(outbox.path().to_path_buf(), "uplift@acme.test").unwrap(),
    );
    let c = p
        .post(
            &format!("{ENV}/data/contacts"),
            ADMIN_TOKEN,
            json!({"FullName": {"first_name": "Ada", "last_name": "Lovelace"},
                   "Email": "ada@acme.test"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    // Off in production: only the dry runs run it.
    let welcome = json!({"name": "Welcome", "owner": "admin@uplift.local", "state": "off",
        "trigger": {"kind": "record_created", "entity": "Contact"},
        "steps": [
            {"kind": "create_record", "name": "acct", "entity": "Account",
             "values": {"Name": "@{trigger.record.FullName/last_name}"}},
            {"kind": "update_record", "name": "touch", "entity": "Contact",
             "id": "@{trigger.record.id}", "values": {"Email": "changed@acme.test"}},
            {"kind": "send_email", "name": "hello", "to": ["customer@real.example"],
             "subject": "Welcome @{trigger.record.FullName/first_name}"}]});
    let original = new_flow(&p, ADMIN_TOKEN, welcome).await;
    step1(&p).await;

    let item = item_of(&p, &original).await;
    assert_eq!(item["finding_counts"]["error"], 0, "{}: {item:#}", p.engine);
    let clone = item["copy_id"].as_str().unwrap();
    for (flow, database) in [(clone, "test"), (original.as_str(), "production")] {
        let runs = dry_runs(&p, flow).await;
        assert_eq!(runs.len(), 1, "{} {database}: {runs:#?}", p.engine);
        assert_eq!(
            runs[0]["status"], "succeeded",
            "{}: {:#}",
            p.engine, runs[0]
        );
        let steps: Vec<(&str, &str)> = runs[0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            steps,
            [
                ("acct", "succeeded"),
                ("touch", "succeeded"),
                ("hello", "succeeded")
            ],
            "{} {database}",
            p.engine
        );
    }
    // Both databases as they were: no account, the contact's e-mail untouched.
    for base in [format!("{ENV}/upgrade/test/data"), format!("{ENV}/data")] {
        let accounts = p.get(&format!("{base}/accounts"), ADMIN_TOKEN).await;
        assert_eq!(accounts.body["value"], json!([]), "{} {base}", p.engine);
        let contacts = p.get(&format!("{base}/contacts"), ADMIN_TOKEN).await;
        let text = contacts.body.to_string();
        assert!(
            text.contains("ada@acme.test") && !text.contains("changed@acme.test"),
            "{} {base}: {text}",
            p.engine
        );
    }
    // The message went to the capture, from each dry run, and never out.
    let captured = p.get(&format!("{ENV}/upgrade/captured"), ADMIN_TOKEN).await;
    let mut got: Vec<(String, Value)> = captured.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["database"].as_str().unwrap().to_string(),
                c["payload"]["to"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("production".to_string(), json!(["customer@real.example"])),
            ("test".to_string(), json!(["customer@real.example"]))
        ],
        "{}",
        p.engine
    );
    for f in std::fs::read_dir(outbox.path()).unwrap().flatten() {
        let eml = std::fs::read_to_string(f.path()).unwrap();
        assert!(
            !eml.contains("customer@real.example"),
            "sent for real: {eml}"
        );
    }
}

/// A step that fails on production as it does on the test database is the original's
/// problem; a reference the upgrade broke is not.
#[engine_test]
async fn a_finding_the_original_has_too_is_pre_existing(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let lookup = json!({"name": "Lookup", "owner": "admin@uplift.local",
        "trigger": {"kind": "manual"},
        "steps": [{"kind": "get_record", "name": "find", "entity": "Account",
                   "id": "00000000-0000-0000-0000-0000000000aa"},
                  {"kind": "set_variable", "name": "who", "variable": "who",
                   "value": "@{steps.find.record.Owner}"}]});
    let broken = new_flow(&p, ADMIN_TOKEN, lookup).await;
    let fine = json!({"name": "Fine", "owner": "admin@uplift.local",
        "trigger": {"kind": "manual"},
        "steps": [{"kind": "get_record", "name": "find", "entity": "Contact",
                   "id": "00000000-0000-0000-0000-0000000000aa"}]});
    let fine = new_flow(&p, ADMIN_TOKEN, fine).await;
    step1(&p).await;

    let seen = |item: &Value| -> Vec<(String, String, bool)> {
        item["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["resolution"] == "open")
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["location"].as_str().unwrap().to_string(),
                    f["pre_existing"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let item = item_of(&p, &fine).await;
    assert_eq!(
        seen(&item),
        [("error".to_string(), "step 'find'".to_string(), true)],
        "{}: {item:#}",
        p.engine
    );
    let message = item["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("dry run: no contact with id"),
        "{message}"
    );
    // `Owner` is dropped by the upgrade: an error of the copy alone. The dry run is
    // not run on a copy that does not validate.
    let item = item_of(&p, &broken).await;
    let mut got = seen(&item);
    got.sort();
    assert_eq!(
        got,
        [("error".to_string(), "step 'who' value".to_string(), false)],
        "{}: {item:#}",
        p.engine
    );
}

/// Each maker (a user, not a group) gets one message listing exactly their items, once
/// the first verification is done; the admin who started the upgrade hears when every
/// item is verified or excluded; `notify` reminds those with items still open.
#[engine_test]
async fn makers_are_mailed_their_items_through_a_real_smtp_server(p: Platform) {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    p.flows.set_mailer(smtp.mailer());
    p.create_env("acme", "classic", "open").await;
    let mia = p.user("mia@acme.test", "maker").await;
    p.user("ed@acme.test", "maker").await;
    let manual = |name: &str, owner: &str, editors: Value| {
        json!({"name": name, "owner": owner, "editors": editors, "trigger": {"kind": "manual"},
               "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]})
    };
    let mine = new_flow(
        &p,
        &mia,
        manual(
            "Mia's flow",
            "mia@acme.test",
            json!(["ed@acme.test", "sales@groups.acme.test"]),
        ),
    )
    .await;
    let admins = new_flow(
        &p,
        ADMIN_TOKEN,
        manual("Admin's flow", "admin@uplift.local", json!([])),
    )
    .await;
    step1(&p).await;

    let notices = |purpose: &str| -> Vec<(String, String)> {
        let mut got: Vec<(String, String)> = smtp
            .messages()
            .iter()
            .filter(|m| m.contains(purpose))
            .map(|m| {
                let to = m
                    .lines()
                    .find_map(|l| l.strip_prefix("To: "))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let items: Vec<&str> = m
                    .lines()
                    .filter_map(|l| l.strip_prefix("- flow "))
                    .collect();
                (to, items.join("|"))
            })
            .collect();
        got.sort();
        got
    };
    let mut first = Vec::new();
    for _ in 0..200 {
        first = notices("to verify");
        if first.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        first,
        [
            (
                "admin@uplift.local".to_string(),
                "'Admin's flow': 0 open errors".to_string()
            ),
            (
                "ed@acme.test".to_string(),
                "'Mia's flow': 0 open errors".to_string()
            ),
            (
                "mia@acme.test".to_string(),
                "'Mia's flow': 0 open errors".to_string()
            ),
        ],
        "{}",
        p.engine
    );
    let report = smtp
        .messages()
        .into_iter()
        .find(|m| m.contains("To: mia@"))
        .unwrap();
    assert!(
        report.contains("/upgrade/items/") && report.contains("/report"),
        "{report}"
    );

    let item = item_of(&p, &mine).await;
    let id = item["id"].as_str().unwrap();
    let r = p
        .post(
            &format!("{ENV}/upgrade/items/{id}/signoff"),
            &mia,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = p
        .post(&format!("{ENV}/upgrade/notify"), &mia, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a maker does not notify");
    let r = p
        .post(&format!("{ENV}/upgrade/notify"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["value"],
        json!([{"to": "admin@uplift.local", "items": 1}]),
        "only the admin has an item still open"
    );
    assert!(notices("every item is verified").is_empty());
    let item = item_of(&p, &admins).await;
    let id = item["id"].as_str().unwrap();
    let r = p
        .post(
            &format!("{ENV}/upgrade/items/{id}/signoff"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut done = Vec::new();
    for _ in 0..200 {
        done = notices("every item is verified");
        if !done.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(done.len(), 1, "{}: {done:?}", p.engine);
    assert_eq!(done[0].0, "admin@uplift.local");
}

/// After a forced schema change, a refresh rebuilds the test database from production
/// as it is now (the new field, the new rows), keeps the makers' edited copies and
/// verifies every item again.
#[engine_test]
async fn a_refresh_rebuilds_the_test_database_and_keeps_the_copies(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let gadget = |extra: Value| {
        let mut fields = vec![json!({"name": "Title", "type": "Text"})];
        fields.extend(extra.as_array().unwrap().iter().cloned());
        json!({"entities": {"Gadget": {"fields": fields}}})
    };
    let r = p
        .put(&format!("{ENV}/entities"), ADMIN_TOKEN, gadget(json!([])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let make = json!({"name": "Make", "owner": "admin@uplift.local", "trigger": {"kind": "manual"},
        "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]});
    let make = new_flow(&p, ADMIN_TOKEN, make).await;
    step1(&p).await;
    let item = item_of(&p, &make).await;
    let id = item["id"].as_str().unwrap().to_string();
    let mut copy = item["copy"].clone();
    copy["steps"][0]["value"] = json!("edited");
    let r = p
        .put(
            &format!("{ENV}/upgrade/items/{id}/copy"),
            ADMIN_TOKEN,
            copy.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let edited = r.body["copy"].clone();

    let more = gadget(json!([{"name": "Weight", "type": "Integer"}]));
    let r = p
        .put(&format!("{ENV}/entities?force=true"), ADMIN_TOKEN, more)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = p
        .post(
            &format!("{ENV}/data/gadgets"),
            ADMIN_TOKEN,
            json!({"Title": "after step 1", "Weight": 7}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let maker = p.user("mia@acme.test", "maker").await;
    let r = p
        .post(&format!("{ENV}/upgrade/refresh"), &maker, json!({}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "admins refresh: {}",
        r.body
    );
    let r = p
        .post(&format!("{ENV}/upgrade/refresh"), ADMIN_TOKEN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let end = p.wait_step1("acme").await;
    assert_eq!(end["status"], "step2_verifying", "{}: {end}", p.engine);
    let end = p.wait_verified("acme").await;
    assert_eq!(end["test_database_stale"], false, "{end}");

    let sets = p
        .get(&format!("{ENV}/upgrade/test/data/"), ADMIN_TOKEN)
        .await;
    let set = sets.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap().to_string())
        .find(|u| u.contains("gadget"))
        .unwrap_or_else(|| panic!("no gadgets in {}", sets.body));
    let rows = p
        .get(&format!("{ENV}/upgrade/test/data/{set}"), ADMIN_TOKEN)
        .await;
    let text = rows.body["value"].to_string();
    assert!(
        text.contains("after step 1") && text.contains("weight"),
        "{}: the new row and field: {text}",
        p.engine
    );
    let item = item_of(&p, &make).await;
    assert_eq!(item["copy"], edited, "the edited copy is kept");
    let clone = p
        .get(
            &format!("{ENV}/flows/{}", item["copy_id"].as_str().unwrap()),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        clone.body["definition"]["steps"][0]["value"], "edited",
        "{}",
        clone.body
    );
}

/// A flow on the test database acts as its owner would after the upgrade: with the
/// upgraded roles, plus what an admin grants for testing, never with nothing.
#[engine_test]
async fn dry_runs_on_the_test_database_act_with_the_upgraded_roles(p: Platform) {
    p.create_env("acme", "classic", "restricted").await;
    let mia = p.user("mia@acme.test", "maker").await;
    let role = json!({"privileges": {"Contact": ["Read"]}});
    let r = p
        .put(&format!("{ENV}/roles/Readers"), ADMIN_TOKEN, role)
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let member = json!({"user": "mia@acme.test"});
    let r = p
        .post(&format!("{ENV}/roles/Readers/members"), ADMIN_TOKEN, member)
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let reads = |name: &str, entity: &str| {
        json!({"name": name, "owner": "mia@acme.test", "trigger": {"kind": "manual"},
               "steps": [{"kind": "list_records", "name": "all", "entity": entity}]})
    };
    let contacts = new_flow(&p, &mia, reads("Contacts", "Contact")).await;
    let accounts = new_flow(&p, &mia, reads("Accounts", "Account")).await;
    step1(&p).await;

    let open = |item: &Value| -> Vec<(String, String)> {
        item["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["resolution"] == "open")
            .map(|f| {
                let text = |k: &str| f[k].as_str().unwrap().to_string();
                (text("location"), text("message"))
            })
            .collect()
    };
    let item = item_of(&p, &contacts).await;
    assert_eq!(open(&item), [], "{}: {item:#}", p.engine);
    assert!(item["verification_ms"].is_u64(), "timed: {item:#}");
    let item = item_of(&p, &accounts).await;
    let denied =
        "dry run: the flow's owner mia@acme.test does not have the Read privilege on account";
    assert_eq!(
        open(&item),
        [("step 'all'".to_string(), denied.to_string())],
        "{}: {item:#}",
        p.engine
    );
    assert_eq!(item["findings"][0]["pre_existing"], true, "{item:#}");

    // A grant for testing is what the runs on the test database get too.
    let grant = json!({"privileges": {"account": ["Read"]}});
    let g = p
        .put(
            &format!("{ENV}/upgrade/test/access/mia@acme.test"),
            ADMIN_TOKEN,
            grant,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    let id = item["id"].as_str().unwrap();
    let v = p
        .post(&format!("{ENV}/upgrade/items/{id}/verify"), &mia, json!({}))
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    let clone = item["copy_id"].as_str().unwrap();
    let last = dry_runs(&p, clone).await;
    assert_eq!(last[0]["status"], "succeeded", "{}: {last:#?}", p.engine);
}
