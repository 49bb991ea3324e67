//! Flows: definitions validated against the catalog, ids apps refer to, on and off,
//! and who may change them.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, platforms};

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

#[tokio::test]
async fn flows_are_validated_stored_by_id_and_switched_on_and_off() {
    for p in platforms().await {
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
            p.get(&format!("{base}/{id}"), &user).await.body["state"],
            "off"
        );
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
}

/// Changes to entities flows react to are written to the outbox with the change, and
/// only committed changes are.
#[tokio::test]
async fn watched_changes_reach_the_outbox_in_their_own_transaction() {
    use uplift_store::outbox::{self, Op};
    for p in platforms().await {
        p.create_env("acme", "classic", "open").await;
        let db = p.store.env_db("acme").await.unwrap();
        db.watch(["Account".to_string()]);
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
}
