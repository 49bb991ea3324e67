//! Apps: drafts validated against the catalog, immutable published versions, who may
//! see and change what, and bindings that never fall back to production.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

fn sales(owner: &str, editors: &[&str], filter: &str) -> serde_json::Value {
    json!({
        "name": "Sales",
        "description": "Accounts and contacts",
        "owner": owner,
        "editors": editors,
        "views": [{"name": "Accounts", "entity": "Account",
                   "columns": ["Name", "Address/city"], "filter": filter, "orderby": "Name"}],
        "forms": [{"name": "Contact", "entity": "Contact", "fields": ["FullName", "Email"]}]
    })
}

#[engine_test]
async fn drafts_publish_into_immutable_versions(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let editor = p.user("editor@acme.test", "maker").await;
    let other = p.user("other@acme.test", "maker").await;
    let user = p.user("user@acme.test", "user").await;
    let path = "/api/environments/acme/apps/Sales";

    let r = p
        .put(
            path,
            &owner,
            sales("owner@acme.test", &["editor@acme.test"], "Name ne null"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", p.engine, r.body);
    assert!(r.body["published"].is_null());
    assert_eq!(r.body["draft"]["database"], "prod", "{}", r.body);

    let r = p.post(&format!("{path}/publish"), &editor, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", p.engine, r.body);
    assert_eq!(r.body["version"], 1);
    let r = p.post(&format!("{path}/publish"), &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing left to publish");

    // Editing works on a new draft; version 1 stays as it was.
    let r = p
        .put(
            path,
            &editor,
            sales("owner@acme.test", &["editor@acme.test"], "Name eq 'x'"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = p.get(path, &user).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["published"]["version"], 1);
    assert!(
        r.body.get("draft").is_none(),
        "a plain user does not see the draft"
    );
    let r = p.get(path, &owner).await;
    assert_eq!(
        r.body["draft"]["definition"]["views"][0]["filter"],
        "Name eq 'x'"
    );
    p.post(&format!("{path}/publish"), &owner, json!({})).await;
    let v1 = p.get(&format!("{path}/versions/1"), &user).await;
    assert_eq!(v1.body["definition"]["views"][0]["filter"], "Name ne null");
    let v2 = p.get(&format!("{path}/versions/2"), &user).await;
    assert_eq!(v2.body["definition"]["views"][0]["filter"], "Name eq 'x'");
    assert_eq!(v2.body["published_by"], "owner@acme.test");

    // Only the owner, editors and admins change it; users never create apps.
    let r = p
        .put(path, &other, sales("other@acme.test", &[], "Name ne null"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = p.post(&format!("{path}/publish"), &other, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut mine = sales("user@acme.test", &[], "Name ne null");
    mine["name"] = json!("Mine");
    let r = p.put("/api/environments/acme/apps/Mine", &user, mine).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = p
        .put(
            path,
            ADMIN_TOKEN,
            sales("owner@acme.test", &[], "Name ne null"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let list = p.get("/api/environments/acme/apps", &user).await;
    assert_eq!(list.body["value"][0]["name"], "Sales");
    assert_eq!(list.body["value"][0]["published"]["version"], 2);
}

#[engine_test]
async fn invalid_apps_are_refused_naming_the_part_and_change_nothing(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let path = "/api/environments/acme/apps/Sales";
    let cases = [
        (
            json!({"name": "Sales", "owner": "owner@acme.test",
                   "views": [{"name": "V", "entity": "Account", "columns": ["Nope"]}]}),
            "app 'Sales': view 'V' column 'Nope': not a field of 'Account'",
        ),
        (
            json!({"name": "Sales", "owner": "owner@acme.test",
                   "views": [{"name": "V", "entity": "Account", "columns": ["Name"],
                              "filter": "Name eq 1"}]}),
            "app 'Sales': view 'V' filter:",
        ),
        (
            json!({"name": "Sales", "owner": "owner@acme.test",
                   "forms": [{"name": "F", "entity": "Ghost", "fields": ["Name"]}]}),
            "app 'Sales': form 'F': no entity 'Ghost'",
        ),
        (
            json!({"name": "Sales", "owner": "owner@acme.test",
                   "commands": [{"label": "Go", "entity": "Account", "flow": "nope"}]}),
            "app 'Sales': command 'Go': no flow 'nope'",
        ),
        (
            json!({"name": "Other", "owner": "owner@acme.test"}),
            "named 'Other' but was sent to 'Sales'",
        ),
        (
            json!({"name": "Sales", "owner": "owner@acme.test", "vews": []}),
            "vews",
        ),
    ];
    for (body, message) in cases {
        let r = p.put(path, &owner, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}: {}",
            p.engine,
            r.body
        );
        assert!(
            r.message().contains(message),
            "{} vs {message}",
            r.message()
        );
    }
    let r = p.get(path, &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing was saved");
    let r = p.get("/api/environments/nowhere/apps", &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[engine_test]
async fn an_app_bound_to_a_missing_database_fails_clearly(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let def: uplift_model::app::AppDef =
        serde_json::from_value(sales("owner@acme.test", &[], "Name ne null")).unwrap();
    // As step 2 will bind a copy to a test database: here, one that does not exist.
    p.store
        .control()
        .save_app_draft("acme", &def, "test-9")
        .await
        .unwrap();
    let r = p
        .put(
            "/api/environments/acme/apps/Sales",
            &owner,
            sales("owner@acme.test", &[], "Name ne null"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {}", p.engine, r.body);
    assert!(
        r.message().contains("no database 'test-9'"),
        "{}",
        r.message()
    );
    let r = p.get("/api/environments/acme/apps/Sales", &owner).await;
    assert_eq!(
        r.body["draft"]["database"], "test-9",
        "no fallback to production"
    );
}

#[engine_test]
async fn the_player_runs_views_page_by_page_and_loads_forms(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let user = p.user("user@acme.test", "user").await;
    let mut ids = Vec::new();
    for (name, city) in [
        ("Alpha", "Oslo"),
        ("Bravo", "Rome"),
        ("Carla", "Lima"),
        ("Zed", "Kyiv"),
    ] {
        let r = p
            .post(
                "/api/environments/acme/data/accounts",
                ADMIN_TOKEN,
                json!({"Name": name, "Email": format!("{name}@x.test"), "Address": {"city": city}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let path = "/api/environments/acme/apps/Sales";
    p.put(
        path,
        &owner,
        sales("owner@acme.test", &[], "contains(Name, 'a')"),
    )
    .await;
    let r = p.get(&format!("{path}/views/Accounts"), &user).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing published yet");
    p.post(&format!("{path}/publish"), &owner, json!({})).await;

    // Three accounts contain an 'a' (Zed does not); two per page, by name.
    let first = p
        .call(
            axum::http::Method::GET,
            &format!("{path}/views/Accounts"),
            Some(&user),
            None,
            &[("prefer", "odata.maxpagesize=2")],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}: {}", p.engine, first.body);
    let names: Vec<_> = first.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Alpha", "Bravo"]);
    let row = &first.body["value"][0];
    assert_eq!(row["Address"]["city"], "Oslo");
    assert!(row.get("Email").is_none(), "only the view's columns: {row}");
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let rel = &next[next.find("/api/").unwrap()..];
    assert!(
        rel.starts_with(&format!("{path}/views/Accounts?")),
        "{next}"
    );
    let second = p.get(rel, &user).await;
    assert_eq!(second.body["value"][0]["Name"], "Carla");
    assert!(second.body.get("@odata.nextLink").is_none());

    // The draft plays only for its editors.
    p.put(path, &owner, sales("owner@acme.test", &[], "Name eq 'Zed'"))
        .await;
    let d = p
        .get(&format!("{path}/views/Accounts?draft=true"), &owner)
        .await;
    assert_eq!(d.body["value"][0]["Name"], "Zed", "{}", d.body);
    let d = p
        .get(&format!("{path}/views/Accounts?draft=true"), &user)
        .await;
    assert_eq!(d.status, StatusCode::FORBIDDEN);

    let f = p
        .get(&format!("{path}/forms/Contact/{}", ids[0]), &user)
        .await;
    assert_eq!(
        f.status,
        StatusCode::NOT_FOUND,
        "an account is not a contact"
    );
    let c = p
        .post(
            "/api/environments/acme/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName": {"first_name": "Ann", "last_name": "Lee"}, "Email": "ann@x.test", "Phone": "+47 555 0100"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let id = c.body["id"].as_str().unwrap();
    let f = p.get(&format!("{path}/forms/Contact/{id}"), &user).await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.body);
    assert_eq!(f.body["FullName"]["last_name"], "Lee");
    assert_eq!(f.body["Email"], "ann@x.test");
    assert!(f.body.get("Phone").is_none(), "only the form's fields");
    let r = p.get(&format!("{path}/views/Nope"), &user).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("no view 'Nope'"));
}

/// Saves and publishes racing on one app end as successes or 409s, never a 500.
#[engine_test]
async fn racing_saves_and_publishes_never_fail_with_500(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let p = std::sync::Arc::new(p);
    for round in 0..3 {
        let name = format!("Race{round}");
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (p, owner, name) = (p.clone(), owner.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                let path = format!("/api/environments/acme/apps/{name}");
                let mut def = sales("owner@acme.test", &[], "Name ne null");
                def["name"] = json!(name);
                let saved = p.put(&path, &owner, def).await.status;
                let published = p
                    .post(&format!("{path}/publish"), &owner, json!({}))
                    .await
                    .status;
                [saved, published]
            }));
        }
        for t in tasks {
            for status in t.await.unwrap() {
                assert!(
                    status.is_success() || status == StatusCode::CONFLICT,
                    "{}: {status}",
                    p.engine
                );
            }
        }
    }
}

/// In a restricted environment the player and the commands read with the caller's
/// privileges: a role's holder sees what the role gives, an outsider nothing.
#[engine_test]
async fn the_player_and_commands_use_the_callers_privileges_when_restricted(p: Platform) {
    p.create_env("acme", "classic", "restricted").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let reader = p.user("reader@acme.test", "user").await;
    let outsider = p.user("outsider@acme.test", "user").await;
    let role = p
        .put(
            "/api/environments/acme/roles/Readers",
            ADMIN_TOKEN,
            json!({"privileges": {"Account": ["Read"]}}),
        )
        .await;
    assert!(role.status.is_success(), "{}", role.body);
    p.post(
        "/api/environments/acme/roles/Readers/members",
        ADMIN_TOKEN,
        json!({"user": "reader@acme.test"}),
    )
    .await;
    let acc = p
        .post(
            "/api/environments/acme/data/accounts",
            ADMIN_TOKEN,
            json!({"Name": "Alpha"}),
        )
        .await;
    let acc_id = acc.body["id"].as_str().unwrap().to_string();
    let contact = p
        .post(
            "/api/environments/acme/data/contacts",
            ADMIN_TOKEN,
            json!({"FullName": {"first_name": "Ann", "last_name": "Lee"}}),
        )
        .await;
    let contact_id = contact.body["id"].as_str().unwrap().to_string();
    let flow = json!({
        "name": "Flag", "owner": "owner@acme.test",
        "trigger": {"kind": "app_command", "entity": "Account"},
        "steps": [{"kind": "update_record", "name": "flag", "entity": "Account",
                   "id": "@{trigger.record.id}", "values": {"Description": "flagged"}}]
    });
    let flow_id = p
        .post("/api/environments/acme/flows", &owner, flow)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut app = sales("owner@acme.test", &[], "contains(Name, 'A')");
    app["commands"] = json!([{"label": "Flag", "entity": "Account", "flow": flow_id}]);
    let put = p
        .put("/api/environments/acme/apps/Sales", &owner, app)
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    p.post(
        "/api/environments/acme/apps/Sales/publish",
        &owner,
        json!({}),
    )
    .await;

    let base = "/api/environments/acme/apps/Sales";
    let view = format!("{base}/views/Accounts");
    let form = format!("{base}/forms/Contact/{contact_id}");
    let cases = [
        (&reader, view.as_str(), StatusCode::OK),
        (&reader, form.as_str(), StatusCode::FORBIDDEN),
        (&outsider, view.as_str(), StatusCode::FORBIDDEN),
        (&outsider, form.as_str(), StatusCode::FORBIDDEN),
    ];
    for (token, path, expect) in cases {
        let a = p.get(path, token).await;
        assert_eq!(a.status, expect, "{}: {path}: {}", p.engine, a.body);
    }
    let run = format!("{base}/commands/Flag/run");
    let refused = p.post(&run, &outsider, json!({"record": acc_id})).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "{}: {}",
        p.engine,
        refused.body
    );
    let started = p.post(&run, &reader, json!({"record": acc_id})).await;
    assert_eq!(
        started.status,
        StatusCode::ACCEPTED,
        "{}: {}",
        p.engine,
        started.body
    );
    let runs = p
        .get(
            &format!("/api/environments/acme/flows/{flow_id}/runs"),
            &owner,
        )
        .await;
    assert_eq!(
        runs.body["value"].as_array().map(Vec::len),
        Some(1),
        "only the permitted command started a run: {}",
        runs.body
    );
}
