//! Flows: definitions validated against the catalog, ids apps refer to, on and off,
//! and who may change them.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

fn follow_up(owner: &str) -> serde_json::Value {
    json!({
        "name": "Follow up", "owner": owner, "editors": ["editor@acme.test"],
        "trigger": {"kind": "app_command", "entity": "Contact"},
        "steps": [
            {"kind": "get_record", "name": "c", "entity": "Contact", "id": "@{trigger.record.id}"},
            {"kind": "send_email", "name": "mail", "to": ["@{steps.c.record.Email}"],
             "subject": "Hello @{steps.c.record.FullName/first_name}"}
        ]
    })
}

#[engine_test]
async fn flows_are_validated_stored_by_id_and_switched_on_and_off(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let editor = p.user("editor@acme.test", "maker").await;
    let other = p.user("other@acme.test", "maker").await;
    let user = p.user("user@acme.test", "user").await;
    let base = "/api/environments/acme/flows";

    let r = p.post(base, &owner, follow_up("owner@acme.test")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", p.engine, r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["state"], "on");
    assert_eq!(r.body["database"], "prod");

    let r = p
        .post(&format!("{base}/{id}/off"), &editor, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        p.get(&format!("{base}/{id}"), &editor).await.body["state"],
        "off"
    );
    // Definitions (which may hold secrets) are shown to owners, editors and admins.
    let r = p.get(&format!("{base}/{id}"), &user).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let listed = p.get(base, &other).await;
    assert_eq!(
        listed.body["value"].as_array().unwrap().len(),
        0,
        "{}",
        listed.body
    );
    let listed = p.get(base, &editor).await;
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
    let r = p.post(&format!("{base}/{id}/on"), &other, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = p.post(base, &user, follow_up("user@acme.test")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "users do not make flows");

    // A bad definition names the step and field, and changes nothing.
    let mut bad = follow_up("owner@acme.test");
    bad["steps"][1]["subject"] = json!("Hello @{steps.c.record.Nickname}");
    let r = p.put(&format!("{base}/{id}"), &owner, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "flow 'Follow up': step 'mail' subject: @{steps.c.record.Nickname}: 'Nickname' is not a field of 'Contact'"
    );
    let stored = p.get(&format!("{base}/{id}"), &owner).await;
    assert_eq!(
        stored.body["definition"]["steps"][1]["subject"],
        "Hello @{steps.c.record.FullName/first_name}"
    );
    let r = p.get(&format!("{base}/nope"), &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Apps' commands refer to flows by id, and only to flows that exist.
    let app = |flow: &str| {
        json!({"name": "Sales", "owner": "owner@acme.test",
               "commands": [{"label": "Follow up", "entity": "Contact", "flow": flow}]})
    };
    let r = p
        .put("/api/environments/acme/apps/Sales", &owner, app("nope"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = p
        .put("/api/environments/acme/apps/Sales", &owner, app(&id))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let list = p.get(base, ADMIN_TOKEN).await;
    assert_eq!(list.body["value"][0]["id"], id.as_str());
}

/// Changes to entities flows react to are written to the outbox with the change, and
/// only committed changes are.
#[engine_test]
async fn watched_changes_reach_the_outbox_in_their_own_transaction(p: Platform) {
    use uplift_store::outbox::{self, Op};
    p.create_env("acme", "classic", "open").await;
    let db = p.store.env_db("acme").await.unwrap();
    db.watch(["Account".to_string()], Default::default());
    let set = "/api/environments/acme/data/accounts";
    let a = p.post(set, ADMIN_TOKEN, json!({"Name": "Fabrikam"})).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let id = a.body["id"].as_str().unwrap().to_string();
    let r = p
        .patch(
            &format!("{set}({id})"),
            ADMIN_TOKEN,
            json!({"Name": "Fabrikam Ltd"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    // A refused write (the id is taken) leaves no trace.
    let dup = p
        .post(set, ADMIN_TOKEN, json!({"id": id, "Name": "Again"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    // Unwatched entities stay out of it.
    let c = p
        .post(
            "/api/environments/acme/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName": {"last_name": "Lee"}}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let r = p.delete(&format!("{set}({id})"), ADMIN_TOKEN).await;
    assert!(r.status.is_success(), "{}", r.body);

    let entries = outbox::pending(&db, 100).await.unwrap();
    let ops: Vec<_> = entries
        .iter()
        .map(|e| (e.op, e.record_id.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            (Op::Created, id.as_str()),
            (Op::Updated, id.as_str()),
            (Op::Deleted, id.as_str())
        ],
        "{}",
        p.engine
    );
    assert_eq!(entries[0].record["Name"], "Fabrikam");
    assert_eq!(entries[1].record["Name"], "Fabrikam Ltd");
    assert_eq!(
        entries[2].record["Name"], "Fabrikam Ltd",
        "the record as it was"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.entity == "Account" && e.depth == 0)
    );
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
    outbox::remove(&db, &[entries[0].seq, entries[1].seq])
        .await
        .unwrap();
    let left = outbox::pending(&db, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].op, Op::Deleted);
}

/// Creates a flow as the admin and returns its id.
async fn new_flow(p: &crate::support::Platform, def: serde_json::Value) -> String {
    let r = p
        .post("/api/environments/acme/flows", ADMIN_TOKEN, def)
        .await;
    r.body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no flow made: {}", p.engine, r.body))
        .to_string()
}

/// Polls until `done` holds for the flow's runs, or fails after a while.
async fn runs_until(
    p: &crate::support::Platform,
    flow: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let r = p
            .get(
                &format!("/api/environments/acme/flows/{flow}/runs"),
                ADMIN_TOKEN,
            )
            .await;
        let runs = r.body["value"].as_array().cloned().unwrap_or_default();
        if done(&runs) {
            return runs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{}: the runs of {flow} never settled", p.engine);
}

fn finished(runs: &[serde_json::Value]) -> bool {
    runs.iter()
        .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
}

#[engine_test]
async fn a_committed_write_runs_its_flow_once_with_every_step_recorded(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Big accounts get a contact", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account", "filter": "contains(Name, 'big')"},
        "steps": [
            {"kind": "set_variable", "name": "who", "variable": "email",
             "value": "owner@@{trigger.record.Name}.test"},
            {"kind": "create_record", "name": "contact", "entity": "Contact",
             "values": {"FullName": {"last_name": "@{trigger.record.Name}"},
                        "Email": "@{variables.email}", "Account": "@{trigger.record.id}"}},
            {"kind": "list_records", "name": "mine", "entity": "Contact",
             "filter": "Account eq '@{trigger.record.id}'"},
            {"kind": "condition", "name": "one", "expression": "steps/mine/count eq 1",
             "then": [{"kind": "update_record", "name": "mark", "entity": "Account",
                       "id": "@{trigger.record.id}", "values": {"Description": "has @{steps.mine.count} contact"}}]}
        ]
    });
    let r = p
        .post("/api/environments/acme/flows", ADMIN_TOKEN, flow)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", p.engine, r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let set = "/api/environments/acme/data/accounts";
    let big = p.post(set, ADMIN_TOKEN, json!({"Name": "BigCo"})).await;
    let big_id = big.body["id"].as_str().unwrap().to_string();
    p.post(set, ADMIN_TOKEN, json!({"Name": "Small"})).await;

    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{}: {run:#}", p.engine);
    assert_eq!(run["trigger"]["record"]["Name"], "BigCo");
    let steps = run["steps"].as_array().unwrap();
    let names: Vec<_> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["who", "contact", "mine", "one", "mark"]);
    assert_eq!(steps[1]["inputs"]["values"]["Email"], "owner@BigCo.test");
    assert!(
        steps
            .iter()
            .all(|s| s["duration_ms"].is_u64() && s["attempts"] == 1)
    );
    let account = p.get(&format!("{set}({big_id})"), ADMIN_TOKEN).await;
    assert_eq!(account.body["Description"], "has 1 contact");
    let contacts = p
        .get(
            "/api/environments/acme/data/contacts?$filter=Email%20eq%20%27owner@BigCo.test%27",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        contacts.body["value"].as_array().unwrap().len(),
        1,
        "made once"
    );
    let one = p
        .get(
            &format!(
                "/api/environments/acme/flows/{id}/runs/{}",
                run["id"].as_str().unwrap()
            ),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(one.body["id"], run["id"]);
    // Nothing more arrives: each write ran (or did not run) exactly once.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let again = runs_until(&p, &id, |_| true).await;
    assert_eq!(again.len(), 1);
}

#[engine_test]
async fn flows_triggering_themselves_stop_at_the_depth_limit(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Echo", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [{"kind": "create_record", "name": "again", "entity": "Account",
                   "values": {"Name": "echo of @{trigger.record.Name}"}}]
    });
    let id = new_flow(&p, flow).await;
    p.post(
        "/api/environments/acme/data/accounts",
        ADMIN_TOKEN,
        json!({"Name": "seed"}),
    )
    .await;
    let limit = uplift_flows::MAX_DEPTH as usize;
    let runs = runs_until(&p, &id, |r| r.len() == limit + 1 && finished(r)).await;
    let stopped: Vec<_> = runs.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(stopped.len(), 1, "{}: {runs:#?}", p.engine);
    assert!(
        stopped[0]["error"].as_str().unwrap().contains("loop"),
        "{}",
        stopped[0]
    );
    // Stopped as it was recorded: never started, never run.
    assert_eq!(stopped[0]["attempts"], 0, "{}", stopped[0]);
    assert!(stopped[0]["finished_at"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let count = p
        .get("/api/environments/acme/data/accounts/$count", ADMIN_TOKEN)
        .await;
    assert_eq!(
        count.body,
        json!(limit + 1),
        "the seed and one echo per allowed level"
    );
}

#[engine_test]
async fn transient_http_failures_are_retried_until_they_succeed(p: Platform) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A local service that fails twice, then answers.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                if h.fetch_add(1, Ordering::SeqCst) < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy".to_string())
                } else {
                    (StatusCode::OK, "{\"ok\":true}".to_string())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    hits.store(0, Ordering::SeqCst);
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Hook", "owner": "admin@uplift.local",
        "trigger": {"kind": "manual"},
        "steps": [{"kind": "http_request", "name": "call", "method": "POST",
                   "url": format!("http://{addr}/hook"), "body": {"by": "@{trigger.user}"}}]
    });
    let id = new_flow(&p, flow).await;
    let r = p
        .post(
            &format!("/api/environments/acme/flows/{id}/run"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    let step = &runs[0]["steps"][0];
    assert_eq!(
        runs[0]["status"], "succeeded",
        "{}: {:#}",
        p.engine, runs[0]
    );
    assert_eq!(step["attempts"], 3);
    assert_eq!(step["outputs"]["body"]["ok"], true);
    assert_eq!(step["inputs"]["body"]["by"], "admin@uplift.local");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

fn mail_flow(to: &str) -> serde_json::Value {
    json!({
        "name": "Tell sales", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [{"kind": "send_email", "name": "mail",
                   "to": [to, "@{trigger.record.Email}"],
                   "subject": "New account @{trigger.record.Name}",
                   "body": "Say hello to @{trigger.record.Name}."}]
    })
}

async fn mail_run(p: &crate::support::Platform, to: &str) -> serde_json::Value {
    p.create_env("acme", "classic", "open").await;
    let id = p
        .post("/api/environments/acme/flows", ADMIN_TOKEN, mail_flow(to))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.post(
        "/api/environments/acme/data/accounts",
        ADMIN_TOKEN,
        json!({"Name": "Northwind", "Email": "buyer@northwind.test"}),
    )
    .await;
    runs_until(p, &id, |r| r.len() == 1 && finished(r)).await[0].clone()
}

#[engine_test]
async fn without_smtp_mail_is_written_as_eml_files(p: Platform) {
    let dir = tempfile::tempdir().unwrap();
    p.flows.set_mailer(
        uplift_flows::mail::Mailer::files(dir.path().join("outbox"), "uplift@acme.test").unwrap(),
    );
    let run = mail_run(&p, "sales@acme.test").await;
    assert_eq!(run["status"], "succeeded", "{}: {run:#}", p.engine);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(eml.contains("Subject: New account Northwind"), "{eml}");
    assert!(
        eml.contains("sales@acme.test") && eml.contains("buyer@northwind.test"),
        "{eml}"
    );
    assert!(eml.contains("From: uplift@acme.test"), "{eml}");
}

/// A real SMTP server (aiosmtpd, from PyPI) receives the flow's message.
#[engine_test]
async fn mail_reaches_a_real_smtp_server(p: Platform) {
    let Some(smtp) = crate::support::SmtpSink::start() else {
        return;
    };
    p.flows.set_mailer(smtp.mailer());
    let run = mail_run(&p, &format!("sales-{}@acme.test", p.engine)).await;
    assert_eq!(run["status"], "succeeded", "{}: {run:#}", p.engine);
    let id = run["steps"][0]["outputs"]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let delivered = smtp.messages();
    let m = delivered
        .iter()
        .find(|m| m.contains(&id))
        .unwrap_or_else(|| panic!("{id} not among {delivered:#?}"));
    assert!(m.contains("Subject: New account Northwind"), "{m}");
    assert!(m.contains(&format!("sales-{}@acme.test", p.engine)), "{m}");
    assert!(m.contains("buyer@northwind.test"), "{m}");
}

#[engine_test]
async fn an_approval_makes_the_run_wait_and_the_answer_resumes_it(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let boss = p.user("boss@acme.test", "user").await;
    let clerk = p.user("clerk@acme.test", "user").await;
    let flow = json!({
        "name": "Big deals need a yes", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [
            {"kind": "start_approval", "name": "ask", "title": "Accept @{trigger.record.Name}?",
             "approvers": ["boss@acme.test"], "details": "New account"},
            {"kind": "condition", "name": "yes", "expression": "steps/ask/outcome eq 'approved'",
             "then": [{"kind": "update_record", "name": "accept", "entity": "Account",
                       "id": "@{trigger.record.id}",
                       "values": {"Description": "approved by @{steps.ask.responder}: @{steps.ask.comment}"}}]}
        ]
    });
    let id = new_flow(&p, flow).await;
    let acc = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": "Contoso"}),
        )
        .await;
    let acc_id = acc.body["id"].as_str().unwrap().to_string();
    let runs = runs_until(&p, &id, |r| r.len() == 1 && r[0]["status"] == "waiting").await;
    assert_eq!(
        runs[0]["steps"][0]["status"], "waiting",
        "{}: {:#}",
        p.engine, runs[0]
    );

    let pending = p.get("/api/environments/acme/approvals", &boss).await;
    let list = pending.body["value"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", pending.body);
    assert_eq!(list[0]["title"], "Accept Contoso?");
    let approval = list[0]["id"].as_str().unwrap().to_string();
    let none = p.get("/api/environments/acme/approvals", &clerk).await;
    assert_eq!(none.body["value"].as_array().unwrap().len(), 0);
    let path = format!("/api/environments/acme/approvals/{approval}");
    let r = p.post(&path, &clerk, json!({"outcome": "approved"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only an approver answers");
    let r = p.post(&path, &boss, json!({"outcome": "maybe"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Still waiting: nothing ran on.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let still = runs_until(&p, &id, |_| true).await;
    assert_eq!(still[0]["status"], "waiting");

    let r = p
        .post(
            &path,
            &boss,
            json!({"outcome": "approved", "comment": "go"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "approved");
    let r = p.post(&path, &boss, json!({"outcome": "rejected"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "one answer only");
    // The approvals entity answers queries like any entity set.
    let q = |f: &str| {
        format!(
            "/api/environments/acme/approvals?$filter={}",
            f.replace(' ', "%20")
        )
    };
    let answered = p
        .get(
            &q("status eq 'approved' and responder eq 'boss@acme.test'"),
            &boss,
        )
        .await;
    assert_eq!(
        answered.body["value"].as_array().unwrap().len(),
        1,
        "{}",
        answered.body
    );
    assert_eq!(answered.body["value"][0]["comment"], "go");
    let pending = p.get(&q("status eq 'pending'"), ADMIN_TOKEN).await;
    assert_eq!(
        pending.body["value"].as_array().unwrap().len(),
        0,
        "{}",
        pending.body
    );
    let counted = p
        .get(
            "/api/environments/acme/approvals?$count=true&$top=0&$orderby=created_at%20desc",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(counted.body["@odata.count"], 1, "{}", counted.body);
    assert_eq!(counted.body["value"].as_array().unwrap().len(), 0);
    let bad = p.get(&q("colour eq 'red'"), &boss).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{}",
        bad.body
    );
    let one = p.get(&path, &boss).await;
    assert_eq!(one.body["outcome"], "approved", "{}", one.body);
    assert_eq!(p.get(&path, &clerk).await.status, StatusCode::FORBIDDEN);
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
    assert_eq!(runs[0]["steps"][0]["outputs"]["outcome"], "approved");
    let account = p
        .get(
            &format!("/api/environments/acme/data/accounts({acc_id})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        account.body["Description"],
        "approved by boss@acme.test: go"
    );
}

#[engine_test]
async fn scheduled_flows_run_once_per_slot(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Every minute", "owner": "admin@uplift.local",
        "trigger": {"kind": "schedule", "every": "1m"},
        "steps": [{"kind": "set_variable", "name": "when", "variable": "t", "value": "@{trigger.time}"}]
    });
    let r = p
        .post("/api/environments/acme/flows", ADMIN_TOKEN, flow)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::minutes(2);
    assert_eq!(
        p.flows.queue_schedules_at(later).await.unwrap(),
        1,
        "{}",
        p.engine
    );
    assert_eq!(
        p.flows.queue_schedules_at(later).await.unwrap(),
        0,
        "a slot runs once"
    );
    let next = now + chrono::Duration::minutes(3);
    assert_eq!(p.flows.queue_schedules_at(next).await.unwrap(), 1);
    // The runtime's own loop queues the real clock's slots too once a minute passes
    // while this runs; only the two slots asked for here are counted.
    let slot = |t: chrono::DateTime<chrono::Utc>| {
        let start = t.timestamp().div_euclid(60) * 60;
        chrono::DateTime::from_timestamp(start, 0)
            .unwrap()
            .to_rfc3339()
    };
    let ours = [slot(later), slot(next)];
    let of_ours = |r: &[serde_json::Value]| -> Vec<serde_json::Value> {
        r.iter()
            .filter(|run| ours.iter().any(|s| run["trigger"]["time"] == s.as_str()))
            .cloned()
            .collect()
    };
    let runs = runs_until(&p, &id, |r| of_ours(r).len() == 2 && finished(r)).await;
    let runs = of_ours(&runs);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:#?}");
    for (run, time) in runs.iter().rev().zip(&ours) {
        assert_eq!(
            run["steps"][0]["outputs"]["value"],
            time.as_str(),
            "{run:#}"
        );
    }
    // Off means no runs.
    p.post(
        &format!("/api/environments/acme/flows/{id}/off"),
        ADMIN_TOKEN,
        json!({}),
    )
    .await;
    let much_later = now + chrono::Duration::minutes(10);
    assert_eq!(p.flows.queue_schedules_at(much_later).await.unwrap(), 0);
}

#[engine_test]
async fn an_app_command_runs_its_flow_on_the_record(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let user = p.user("user@acme.test", "user").await;
    let flow = json!({
        "name": "Flag", "owner": "owner@acme.test",
        "trigger": {"kind": "app_command", "entity": "Account"},
        "steps": [{"kind": "update_record", "name": "flag", "entity": "Account",
                   "id": "@{trigger.record.id}",
                   "values": {"Description": "flagged by @{trigger.user} (was @{trigger.record.Name})"}}]
    });
    let flow_id = p
        .post("/api/environments/acme/flows", &owner, flow)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let app = json!({"name": "Sales", "owner": "owner@acme.test",
        "commands": [{"label": "Flag", "entity": "Account", "flow": flow_id}]});
    let r = p
        .put("/api/environments/acme/apps/Sales", &owner, app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    p.post(
        "/api/environments/acme/apps/Sales/publish",
        &owner,
        json!({}),
    )
    .await;
    let acc = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": "Tailspin"}),
        )
        .await;
    let acc_id = acc.body["id"].as_str().unwrap().to_string();
    let run_path = "/api/environments/acme/apps/Sales/commands/Flag/run";
    let r = p.post(run_path, &user, json!({"record": acc_id})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
    let runs = runs_until(&p, &flow_id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
    let a = p
        .get(
            &format!("/api/environments/acme/data/accounts({acc_id})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(
        a.body["Description"],
        "flagged by user@acme.test (was Tailspin)"
    );
    let r = p
        .post(
            run_path,
            &user,
            json!({"record": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = p
        .post(
            "/api/environments/acme/apps/Sales/commands/Nope/run",
            &user,
            json!({"record": acc_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = p.post(run_path, &user, json!({"rec": acc_id})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// The trigger is part of the write's transaction: a transaction that records a
/// trigger and then rolls back leaves no trigger and no run.
#[engine_test]
async fn a_rolled_back_write_leaves_no_trigger_and_no_run(p: Platform) {
    use uplift_store::outbox::{self, Op};
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Count", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [{"kind": "set_variable", "name": "n", "variable": "name", "value": "@{trigger.record.Name}"}]
    });
    let id = new_flow(&p, flow).await;
    let db = p.store.env_db("acme").await.unwrap();
    assert!(
        db.is_watched("Account"),
        "turning the flow on watches its entity"
    );
    {
        let mut tx = db.pool().begin().await.unwrap();
        let record = json!({"Name": "Ghost"}).as_object().unwrap().clone();
        outbox::append(
            &mut tx,
            &db,
            "Account",
            Op::Created,
            "00000000-0000-0000-0000-000000000001",
            &record,
            0,
        )
        .await
        .unwrap();
        tx.rollback().await.unwrap();
    }
    p.post(
        "/api/environments/acme/data/accounts",
        ADMIN_TOKEN,
        json!({"Name": "Real"}),
    )
    .await;
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let runs_after = runs_until(&p, &id, |_| true).await;
    assert_eq!(runs_after.len(), 1, "{}: {runs_after:#?}", p.engine);
    assert_eq!(runs[0]["trigger"]["record"]["Name"], "Real");
    assert!(outbox::pending(&db, 10).await.unwrap().is_empty());
}

#[engine_test]
async fn updates_and_deletes_trigger_flows_that_read_and_delete_records(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let closing = json!({
        "name": "Closing an account removes its contacts", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_updated", "entity": "Account", "filter": "Description eq 'closed'"},
        "steps": [
            {"kind": "get_record", "name": "acc", "entity": "Account", "id": "@{trigger.record.id}"},
            {"kind": "list_records", "name": "contacts", "entity": "Contact",
             "filter": "Account eq '@{trigger.record.id}'", "top": 1},
            {"kind": "delete_record", "name": "drop", "entity": "Contact",
             "id": "@{steps.contacts.value[0].id}"}
        ]
    });
    let gone = json!({
        "name": "Note deleted contacts", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_deleted", "entity": "Contact"},
        "steps": [{"kind": "set_variable", "name": "who", "variable": "email",
                   "value": "@{trigger.record.Email}"}]
    });
    let flows = "/api/environments/acme/flows";
    let closing = p.post(flows, ADMIN_TOKEN, closing).await;
    assert_eq!(closing.status, StatusCode::CREATED, "{}", closing.body);
    let closing = closing.body["id"].as_str().unwrap().to_string();
    let gone = p.post(flows, ADMIN_TOKEN, gone).await;
    let gone = gone.body["id"].as_str().unwrap().to_string();

    let accounts = "/api/environments/acme/data/accounts";
    let acc = p
        .post(accounts, ADMIN_TOKEN, json!({"Name": "Tailspin"}))
        .await;
    let acc = acc.body["id"].as_str().unwrap().to_string();
    let contact = p
        .post(
            "/api/environments/acme/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName": {"last_name": "Ito"}, "Email": "ito@tailspin.test", "Account": acc}),
        )
        .await;
    assert_eq!(contact.status, StatusCode::CREATED, "{}", contact.body);
    let contact = contact.body["id"].as_str().unwrap().to_string();

    // An update the filter does not match runs nothing; the matching one runs once.
    let account = format!("{accounts}({acc})");
    p.patch(&account, ADMIN_TOKEN, json!({"Description": "open"}))
        .await;
    p.patch(&account, ADMIN_TOKEN, json!({"Description": "closed"}))
        .await;
    let runs = runs_until(&p, &closing, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(
        runs[0]["status"], "succeeded",
        "{}: {:#}",
        p.engine, runs[0]
    );
    assert_eq!(runs[0]["trigger"]["record"]["Description"], "closed");
    let steps = runs[0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["outputs"]["record"]["Name"], "Tailspin");
    assert_eq!(steps[2]["outputs"]["id"], contact.as_str());
    let r = p
        .get(
            &format!("/api/environments/acme/data/contacts({contact})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the flow deleted it");

    // The flow's delete triggered the other flow, with the record as it was.
    let runs = runs_until(&p, &gone, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
    assert_eq!(runs[0]["trigger"]["record"]["Email"], "ito@tailspin.test");
    assert_eq!(runs[0]["depth"], 1, "one run deep");
}

/// A delete step a stopped server had begun counts as done when the record is gone;
/// one that had not begun fails on a missing record instead of claiming success.
#[engine_test]
async fn a_resumed_delete_step_is_not_done_twice(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Ask, then delete", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [
            {"kind": "start_approval", "name": "ask", "title": "Delete @{trigger.record.Name}?",
             "approvers": ["admin@uplift.local"]},
            {"kind": "delete_record", "name": "drop", "entity": "Account", "id": "@{trigger.record.id}"}
        ]
    });
    let id = new_flow(&p, flow).await;
    let accounts = "/api/environments/acme/data/accounts";
    let control = p.store.control();
    for (name, begun) in [("Begun", true), ("Not begun", false)] {
        let acc = p.post(accounts, ADMIN_TOKEN, json!({"Name": name})).await;
        let acc = acc.body["id"].as_str().unwrap().to_string();
        let runs = runs_until(&p, &id, |r| {
            r.iter()
                .any(|r| r["trigger"]["record"]["Name"] == name && r["status"] == "waiting")
        })
        .await;
        let run_id = runs
            .iter()
            .find(|r| r["trigger"]["record"]["Name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        if begun {
            // As a server that stopped right after deleting would have left it.
            let mut run = control.run("acme", &run_id).await.unwrap().unwrap();
            run.steps
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "drop", "kind": "delete_record", "status": "running"}));
            control.save_run(&run).await.unwrap();
        }
        let r = p.delete(&format!("{accounts}({acc})"), ADMIN_TOKEN).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let pending = p
            .get(
                "/api/environments/acme/approvals?$filter=status%20eq%20%27pending%27",
                ADMIN_TOKEN,
            )
            .await;
        let approval = pending.body["value"][0]["id"].as_str().unwrap().to_string();
        p.post(
            &format!("/api/environments/acme/approvals/{approval}"),
            ADMIN_TOKEN,
            json!({"outcome": "approved"}),
        )
        .await;
        let runs = runs_until(&p, &id, |r| {
            r.iter().any(|r| {
                r["trigger"]["record"]["Name"] == name
                    && (r["status"] == "succeeded" || r["status"] == "failed")
            })
        })
        .await;
        let run = runs.iter().find(|r| r["id"] == run_id.as_str()).unwrap();
        if begun {
            assert_eq!(run["status"], "succeeded", "{}: {run:#}", p.engine);
        } else {
            assert_eq!(run["status"], "failed", "{}: {run:#}", p.engine);
            assert!(
                run["error"].as_str().unwrap().contains("no Account"),
                "{run:#}"
            );
        }
    }
}

#[engine_test]
async fn a_flow_bound_to_a_missing_database_fails_its_runs_clearly(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let def: uplift_model::flow::FlowDef = serde_json::from_value(json!({
        "name": "Bound elsewhere", "owner": "admin@uplift.local",
        "trigger": {"kind": "manual"},
        "steps": [{"kind": "list_records", "name": "all", "entity": "Account"}]
    }))
    .unwrap();
    // As step 2 will bind a copy to a test database: here, one that does not exist.
    let id = "0192f000-0000-7000-8000-000000000001";
    p.store
        .control()
        .save_flow("acme", id, &def, "test-9")
        .await
        .unwrap();
    let r = p
        .post(
            &format!("/api/environments/acme/flows/{id}/run"),
            ADMIN_TOKEN,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", p.engine, r.body);
    let runs = runs_until(&p, id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(runs[0]["status"], "failed");
    let error = runs[0]["error"].as_str().unwrap();
    assert!(error.contains("no database 'test-9'"), "{error}");
    assert!(
        runs[0]["steps"].as_array().unwrap().is_empty(),
        "nothing ran on production"
    );
}

/// An environment's runs and approval requests go with it: none is left to resume or
/// to answer.
#[engine_test]
async fn deleting_an_environment_removes_its_runs_and_approvals(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Ask", "owner": "admin@uplift.local", "trigger": {"kind": "manual"},
        "steps": [{"kind": "start_approval", "name": "ok", "title": "Ship?",
                   "approvers": ["admin@uplift.local"]}]
    });
    let id = new_flow(&p, flow).await;
    p.post(
        &format!("/api/environments/acme/flows/{id}/run"),
        ADMIN_TOKEN,
        json!({}),
    )
    .await;
    runs_until(&p, &id, |r| r.len() == 1 && r[0]["status"] == "waiting").await;
    let control = p.store.control();
    assert_eq!(control.approvals("acme").await.unwrap().len(), 1);
    let r = p.delete("/api/environments/acme", ADMIN_TOKEN).await;
    assert!(r.status.is_success(), "{}: {}", p.engine, r.body);
    assert!(control.runs("acme", &id, 10).await.unwrap().is_empty());
    assert!(control.approvals("acme").await.unwrap().is_empty());
}

/// A run is claimed in the database against the state it was read in, so a stale copy
/// (listed before it finished) is not run a second time.
#[engine_test]
async fn a_finished_run_cannot_be_claimed_again_from_a_stale_copy(p: Platform) {
    use uplift_store::control::RunStatus;
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Once", "owner": "admin@uplift.local", "trigger": {"kind": "manual"},
        "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]
    });
    let id = new_flow(&p, flow).await;
    let control = p.store.control();
    let flow = control.flow("acme", &id).await.unwrap().unwrap();
    let run = control
        .enqueue_run(&flow, "test:stale", &json!({"kind": "manual"}), 0)
        .await
        .unwrap()
        .unwrap();
    // The copy a listing taken at enqueue time holds: reading it back here would race
    // the runtime, which may already have claimed the run.
    let (stale_status, stale_attempts) = (RunStatus::Queued, 0);
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(runs[0]["status"], "succeeded");
    assert!(
        !control
            .claim_run(&run, stale_status, stale_attempts, "2026-01-01T00:00:00Z")
            .await
            .unwrap(),
        "{}: a stale copy claims nothing",
        p.engine
    );
    let after = control.run("acme", &run).await.unwrap().unwrap();
    assert_eq!((after.status, after.attempts), (RunStatus::Succeeded, 1));
}

/// A flow acts as its owner: in a restricted environment, a maker without privileges
/// cannot read or change records through a flow, cannot name someone else as owner,
/// and an editor cannot take the flow over.
#[engine_test]
async fn flows_act_with_their_owners_privileges(p: Platform) {
    p.create_env("acme", "classic", "restricted").await;
    let mallory = p.user("mallory@acme.test", "maker").await;
    let eve = p.user("eve@acme.test", "maker").await;
    let flows = "/api/environments/acme/flows";
    let leak = |owner: &str| {
        json!({
            "name": "Leak", "owner": owner, "editors": ["eve@acme.test"],
            "trigger": {"kind": "manual"},
            "steps": [{"kind": "list_records", "name": "all", "entity": "Account"},
                      {"kind": "delete_record", "name": "drop", "entity": "Account",
                       "id": "@{steps.all.value[0].id}"}]
        })
    };
    let r = p.post(flows, &mallory, leak("admin@uplift.local")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", p.engine, r.body);
    assert!(
        r.message().contains("only an admin names another owner"),
        "{}",
        r.message()
    );

    let r = p.post(flows, &mallory, leak("mallory@acme.test")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let acc = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": "Secret"}),
        )
        .await;
    assert_eq!(acc.status, StatusCode::CREATED);
    let r = p
        .post(&format!("{flows}/{id}/run"), &mallory, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(runs[0]["status"], "failed", "{:#}", runs[0]);
    let error = runs[0]["error"].as_str().unwrap();
    assert!(
        error.contains("mallory@acme.test does not have the Read privilege on Account"),
        "{error}"
    );
    let count = p
        .get("/api/environments/acme/data/accounts/$count", ADMIN_TOKEN)
        .await;
    assert_eq!(count.body, json!(1), "nothing was deleted");

    // With a role that grants it, the same flow reads and deletes.
    let r = p
        .put(
            "/api/environments/acme/roles/Cleaner",
            ADMIN_TOKEN,
            json!({"privileges": {"Account": ["Read", "Delete"]}}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = p
        .post(
            "/api/environments/acme/roles/Cleaner/members",
            ADMIN_TOKEN,
            json!({"user": "mallory@acme.test"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    p.post(&format!("{flows}/{id}/run"), &mallory, json!({}))
        .await;
    let runs = runs_until(&p, &id, |r| r.len() == 2 && finished(r)).await;
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);

    // The editor may change the steps, not who owns the flow or edits it.
    let r = p
        .put(&format!("{flows}/{id}"), &eve, leak("eve@acme.test"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let mut locked_out = leak("mallory@acme.test");
    locked_out["editors"] = json!(["eve@acme.test", "friend@acme.test"]);
    let r = p.put(&format!("{flows}/{id}"), &eve, locked_out).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = p
        .put(&format!("{flows}/{id}"), &eve, leak("mallory@acme.test"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Writes committed while no runtime was running (a server that died right after
/// them) run their flows once the runtime starts, exactly once, even when a second
/// start sees the same outbox.
#[engine_test(Flows::Stopped)]
async fn writes_committed_before_a_crash_run_once_when_the_runtime_starts(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = json!({
        "name": "Note", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [{"kind": "create_record", "name": "c", "entity": "Contact",
                   "values": {"FullName": {"last_name": "@{trigger.record.Name}"}}}]
    });
    let id = new_flow(&p, flow).await;
    for i in 0..5 {
        let r = p
            .post(
                "/api/environments/acme/data/accounts",
                ADMIN_TOKEN,
                json!({"Name": format!("A{i}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let db = p.store.env_db("acme").await.unwrap();
    let pending = uplift_store::outbox::pending(&db, 100).await.unwrap();
    assert_eq!(pending.len(), 5, "{}: committed, not yet run", p.engine);
    assert!(
        p.store
            .control()
            .runs("acme", &id, 10)
            .await
            .unwrap()
            .is_empty()
    );

    p.flows.start().await.unwrap();
    // A second server start on the same data, as after a restart mid-dispatch.
    uplift_flows::Runtime::new(p.store.clone())
        .start()
        .await
        .unwrap();
    let runs = runs_until(&p, &id, |r| r.len() == 5 && finished(r)).await;
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:#?}");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(runs_until(&p, &id, |_| true).await.len(), 5, "once each");
    let contacts = p
        .get("/api/environments/acme/data/contacts/$count", ADMIN_TOKEN)
        .await;
    assert_eq!(contacts.body, json!(5));
    assert!(
        uplift_store::outbox::pending(&db, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A run finishes the flow it started with: editing the flow while the run waits on
/// an approval changes later runs, not this one.
#[engine_test]
async fn a_waiting_run_finishes_the_flow_as_it_was_when_queued(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let def = |step: &str, note: &str| {
        json!({
            "name": "Ask", "owner": "admin@uplift.local",
            "trigger": {"kind": "record_created", "entity": "Account"},
            "steps": [
                {"kind": "start_approval", "name": step, "title": "OK?",
                 "approvers": ["admin@uplift.local"]},
                {"kind": "update_record", "name": "mark", "entity": "Account",
                 "id": "@{trigger.record.id}", "values": {"Description": note}}
            ]
        })
    };
    let flows = "/api/environments/acme/flows";
    let id = p.post(flows, ADMIN_TOKEN, def("ask", "old")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let acc = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": "X"}),
        )
        .await;
    let acc = acc.body["id"].as_str().unwrap().to_string();
    runs_until(&p, &id, |r| r.len() == 1 && r[0]["status"] == "waiting").await;
    let r = p
        .put(
            &format!("{flows}/{id}"),
            ADMIN_TOKEN,
            def("ask again", "new"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pending = p.get("/api/environments/acme/approvals", ADMIN_TOKEN).await;
    let approval = pending.body["value"][0]["id"].as_str().unwrap().to_string();
    p.post(
        &format!("/api/environments/acme/approvals/{approval}"),
        ADMIN_TOKEN,
        json!({"outcome": "approved"}),
    )
    .await;
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(
        runs[0]["status"], "succeeded",
        "{}: {:#}",
        p.engine, runs[0]
    );
    let names: Vec<_> = runs[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ask", "mark"]);
    let all = p.get("/api/environments/acme/approvals", ADMIN_TOKEN).await;
    assert_eq!(
        all.body["value"].as_array().unwrap().len(),
        1,
        "no second request"
    );
    let account = p
        .get(
            &format!("/api/environments/acme/data/accounts({acc})"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(account.body["Description"], "old");
}

/// One environment the runtime cannot read (its outbox table gone) does not stop the
/// flows of the others. "aaa" sorts first, so a round that gave up at the first
/// fault would never reach "acme".
#[engine_test]
async fn a_broken_environment_does_not_stop_the_others_flows(p: Platform) {
    p.create_env("aaa", "classic", "open").await;
    p.create_env("acme", "classic", "open").await;
    let broken = "DROP TABLE {s}_uplift_outbox";
    match p.pg_client().await {
        Some(c) => {
            c.batch_execute(&broken.replace("{s}", "env_aaa."))
                .await
                .unwrap();
        }
        None => rusqlite::Connection::open(p.data_dir().join("envs/aaa/prod.db"))
            .unwrap()
            .execute_batch(&broken.replace("{s}", ""))
            .unwrap(),
    }
    let flow = json!({
        "name": "Mark new accounts", "owner": "admin@uplift.local",
        "trigger": {"kind": "record_created", "entity": "Account"},
        "steps": [{"kind": "update_record", "name": "mark", "entity": "Account",
                   "id": "@{trigger.record.id}", "values": {"Description": "seen"}}]
    });
    let id = new_flow(&p, flow).await;
    let a = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": "Northwind"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}: {}", p.engine, a.body);
    let runs = runs_until(&p, &id, |r| r.len() == 1 && finished(r)).await;
    assert_eq!(
        runs[0]["status"], "succeeded",
        "{}: {:#}",
        p.engine, runs[0]
    );
}

/// A flow's or an app's owner is a user of the platform and its editors are e-mail
/// addresses; anything else is a 400 that names it, and nothing is saved.
#[engine_test]
async fn owners_must_be_users_and_editors_e_mail_addresses(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let flow = |owner: &str, editor: &str| {
        json!({"name": "F", "owner": owner, "editors": [editor],
               "trigger": {"kind": "manual"},
               "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]})
    };
    let app = |owner: &str, editor: &str| {
        json!({"name": "A", "owner": owner, "editors": [editor],
               "views": [{"name": "V", "entity": "Account", "columns": ["Name"]}]})
    };
    let cases = [
        (
            "ghost@nowhere.test",
            "ed@acme.test",
            "owner 'ghost@nowhere.test' is not a user of this platform",
        ),
        (
            "admin@uplift.local",
            "not an address",
            "editor 'not an address' is not an e-mail address",
        ),
    ];
    for (owner, editor, expected) in cases {
        let f = p
            .post(
                "/api/environments/acme/flows",
                ADMIN_TOKEN,
                flow(owner, editor),
            )
            .await;
        assert_eq!(
            f.status,
            StatusCode::BAD_REQUEST,
            "{}: flow: {}",
            p.engine,
            f.body
        );
        assert_eq!(f.message(), expected, "{}", p.engine);
        let a = p
            .put(
                "/api/environments/acme/apps/A",
                ADMIN_TOKEN,
                app(owner, editor),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: app: {}",
            p.engine,
            a.body
        );
        assert_eq!(a.message(), expected, "{}", p.engine);
    }
    let flows = p
        .get("/api/environments/acme/flows", ADMIN_TOKEN)
        .await
        .body;
    assert_eq!(flows["value"], json!([]), "{}: nothing was saved", p.engine);
    let ok = p
        .post(
            "/api/environments/acme/flows",
            ADMIN_TOKEN,
            flow("admin@uplift.local", "ed@acme.test"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}: {}", p.engine, ok.body);
}
