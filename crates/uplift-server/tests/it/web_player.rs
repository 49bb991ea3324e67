//! The app player, the maker's flows and the approvals inbox in the browser, through
//! the router: a user sees only the apps shared with them (through their roles); a
//! view pages and sorts; a form saves a record, or shows a refused value at its field
//! and changes nothing; a command's run is shown to its starter; an approval is
//! answered from the inbox; an upgrade copy plays on the test database, marked so.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Platform};
use crate::web::{browse, csrf_of, sign_in};
use uplift_test_macros::engine_test;

/// `acme` (restricted) with a Gadget entity, 30 gadgets, the app "Gadgets" owned by
/// `mia` (a view and a form), a user in the role that may read and change gadgets and
/// a user in none. Returns (mia, member, outsider) tokens and the first gadget's id.
async fn gadgets(p: &Platform) -> (String, String, String, String) {
    p.create_env("acme", "classic", "restricted").await;
    let defs = json!({"entities": {"Gadget": {"fields": [
        {"name": "Title", "type": "Text", "required": true},
        {"name": "Count", "type": "Integer"},
        {"name": "Site", "type": "Address"}]}}});
    let d = p
        .put("/api/environments/acme/entities", ADMIN_TOKEN, defs)
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let mia = p.user("mia@acme.test", "maker").await;
    let member = p.user("uma@acme.test", "user").await;
    let outsider = p.user("otto@acme.test", "user").await;
    let role = json!({"privileges": {"Gadget": ["Read", "Update"]}});
    let r = p
        .put("/api/environments/acme/roles/Keepers", ADMIN_TOKEN, role)
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    // Mia too: her flows run, and her copies play, with her own rights.
    for who in ["uma@acme.test", "mia@acme.test"] {
        let m = json!({"user": who});
        let r = p
            .post(
                "/api/environments/acme/roles/Keepers/members",
                ADMIN_TOKEN,
                m,
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let mut first = String::new();
    for i in 0..30 {
        let g = json!({"Title": format!("Gadget {i:02}"), "Count": i});
        let r = p
            .post("/api/environments/acme/data/gadgets", ADMIN_TOKEN, g)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        if i == 0 {
            first = r.body["id"].as_str().unwrap().to_string();
        }
    }
    let app = json!({"name": "Gadgets", "owner": "mia@acme.test", "description": "Every gadget",
        "views": [{"name": "All", "entity": "Gadget", "columns": ["Title", "Count", "Site/city"],
                   "filter": "Count ge 0", "orderby": "Title"}],
        "forms": [{"name": "Gadget", "entity": "Gadget", "fields": ["Title", "Count", "Site"]}]});
    let r = p
        .put("/api/environments/acme/apps/Gadgets", &mia, app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = p
        .post(
            "/api/environments/acme/apps/Gadgets/publish",
            &mia,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    (mia, member, outsider, first)
}

/// An attribute's value as the browser reads it (askama escapes `&` and `"`).
fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"").replace("&#38;", "&")
}

#[engine_test]
async fn a_user_sees_only_the_apps_shared_with_them(p: Platform) {
    let (_, member, outsider, _) = gadgets(&p).await;
    let cookie = sign_in(&p, &member).await;
    let r = browse(&p, Method::GET, "/apps", Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(
        r.html.contains(r#"href="/apps/acme/Gadgets""#),
        "{}",
        r.html
    );
    let cookie = sign_in(&p, &outsider).await;
    let r = browse(&p, Method::GET, "/apps", Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(!r.html.contains("Gadgets"), "not shared: {}", r.html);
    assert!(r.html.contains("No app is shared with you"), "{}", r.html);
    for path in ["/apps/acme/Gadgets", "/apps/acme/Gadgets/views/All"] {
        let r = browse(&p, Method::GET, path, Some(&cookie), "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.html);
        assert!(r.html.contains("not shared"), "{}", r.html);
    }
}

#[engine_test]
async fn a_view_pages_and_sorts_by_a_column(p: Platform) {
    let (_, member, _, _) = gadgets(&p).await;
    let cookie = sign_in(&p, &member).await;
    let view = "/apps/acme/Gadgets/views/All";
    let r = browse(&p, Method::GET, view, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains("30 records"), "{}", r.html);
    assert!(
        r.html.contains("Count ge 0"),
        "the view's filter: {}",
        r.html
    );
    assert_eq!(r.html.matches(r#"<th scope="row">"#).count(), 25);
    let first = r.html.find("Gadget 00").expect("the first row");
    assert!(first < r.html.find("Gadget 01").unwrap(), "by title");
    assert!(r.html.contains(r#"rel="next""#), "{}", r.html);
    let next = r
        .html
        .split(r#"rel="next""#)
        .next()
        .and_then(|h| h.rsplit("href=\"").next())
        .map(|h| unescape(h.trim_end_matches("\" ")))
        .expect("a next page");
    let r = browse(&p, Method::GET, &next, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{next}: {}", r.html);
    assert_eq!(r.html.matches(r#"<th scope="row">"#).count(), 5, "{next}");
    assert!(r.html.contains("Gadget 29") && !r.html.contains("Gadget 00"));

    let sorted = format!("{view}?sort=Count&desc=true");
    let r = browse(&p, Method::GET, &sorted, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains(r#"aria-sort="descending""#), "{}", r.html);
    let top = r.html.find("Gadget 29").expect("the largest count first");
    assert!(top < r.html.find("Gadget 28").unwrap());
}

#[engine_test]
async fn a_form_saves_a_record_and_shows_a_refused_value_at_its_field(p: Platform) {
    let (_, member, _, id) = gadgets(&p).await;
    let cookie = sign_in(&p, &member).await;
    let form = format!("/apps/acme/Gadgets/forms/Gadget/{id}");
    let r = browse(&p, Method::GET, &form, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains(r#"value="Gadget 00""#), "{}", r.html);
    let csrf = csrf_of(&r.html);
    let etag = r
        .html
        .split(r#"name="etag" value=""#)
        .nth(1)
        .and_then(|t| t.split('"').next())
        .map(unescape)
        .unwrap();
    let body = |count: &str, csrf: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", csrf)
            .append_pair("etag", &etag)
            .append_pair("f:Title", "Renamed gadget")
            .append_pair("f:Count", count)
            .append_pair("f:Site/city", "Lyon")
            .finish()
    };
    let r = browse(&p, Method::POST, &form, Some(&cookie), &body("7", "forged")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);

    let r = browse(&p, Method::POST, &form, Some(&cookie), &body("lots", &csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(
        r.html.contains(r#"id="f:Count-error""#) && r.html.contains("not a whole number"),
        "at the field: {}",
        r.html
    );
    assert!(r.html.contains(r#"value="lots""#), "as typed: {}", r.html);
    let kept = r
        .html
        .split(r#"name="etag" value=""#)
        .nth(1)
        .and_then(|t| t.split('"').next());
    assert_eq!(
        kept.map(unescape),
        Some(etag.clone()),
        "the ETag they were typed against"
    );
    let r = browse(
        &p,
        Method::POST,
        &form,
        Some(&cookie),
        &body("3000000000", &csrf),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(r.html.contains(r#"id="f:Count-error""#), "{}", r.html);
    let api = format!("/api/environments/acme/data/gadgets({id})");
    let stored = p.get(&api, ADMIN_TOKEN).await.body;
    assert_eq!(stored["Title"], "Gadget 00", "nothing changed: {stored}");

    let r = browse(&p, Method::POST, &form, Some(&cookie), &body("7", &csrf)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = browse(&p, Method::GET, r.location(), Some(&cookie), "").await;
    assert!(r.html.contains("Saved."), "{}", r.html);
    let stored = p.get(&api, ADMIN_TOKEN).await.body;
    assert_eq!(stored["Title"], "Renamed gadget", "{stored}");
    assert_eq!(stored["Count"], 7, "{stored}");
    assert_eq!(stored["Site"]["city"], "Lyon", "{stored}");

    // The form was shown before that save: its ETag is stale now.
    let r = browse(&p, Method::POST, &form, Some(&cookie), &body("8", &csrf)).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.html);
    assert!(r.html.contains("as it is now"), "{}", r.html);
    assert!(
        r.html.contains(r#"value="Renamed gadget""#),
        "the record as saved: {}",
        r.html
    );
}

#[engine_test]
async fn a_user_without_update_rights_cannot_save(p: Platform) {
    let (_, _, _, id) = gadgets(&p).await;
    let reader = p.user("rita@acme.test", "user").await;
    let role = json!({"privileges": {"Gadget": ["Read"]}});
    p.put("/api/environments/acme/roles/Readers", ADMIN_TOKEN, role)
        .await;
    p.post(
        "/api/environments/acme/roles/Readers/members",
        ADMIN_TOKEN,
        json!({"user": "rita@acme.test"}),
    )
    .await;
    let cookie = sign_in(&p, &reader).await;
    let form = format!("/apps/acme/Gadgets/forms/Gadget/{id}");
    let r = browse(&p, Method::GET, &form, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let body = format!("csrf={}&f:Title=Mine", csrf_of(&r.html));
    let r = browse(&p, Method::POST, &form, Some(&cookie), &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    let api = format!("/api/environments/acme/data/gadgets({id})");
    assert_eq!(p.get(&api, ADMIN_TOKEN).await.body["Title"], "Gadget 00");
}

/// A command started from a view's row runs its flow; the starter reads the run's
/// outcome (not its steps' inputs), the flow's owner every step on "My flows".
#[engine_test]
async fn a_command_shows_its_runs_outcome_and_the_maker_its_steps(p: Platform) {
    let (mia, member, _, id) = gadgets(&p).await;
    let flow = json!({"name": "Count up", "owner": "mia@acme.test",
        "trigger": {"kind": "app_command", "entity": "Gadget"},
        "steps": [{"kind": "update_record", "name": "bump", "entity": "Gadget",
                   "id": "@{trigger.record.id}", "values": {"Count": 99}}]});
    let f = p.post("/api/environments/acme/flows", &mia, flow).await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let flow_id = f.body["id"].as_str().unwrap().to_string();
    let mut app = json!({"name": "Gadgets", "owner": "mia@acme.test",
        "views": [{"name": "All", "entity": "Gadget", "columns": ["Title", "Count"]}],
        "forms": [{"name": "Gadget", "entity": "Gadget", "fields": ["Title", "Count"]}]});
    app["commands"] = json!([{"label": "Count up", "entity": "Gadget", "flow": flow_id}]);
    let r = p
        .put("/api/environments/acme/apps/Gadgets", &mia, app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    p.post(
        "/api/environments/acme/apps/Gadgets/publish",
        &mia,
        json!({}),
    )
    .await;

    let cookie = sign_in(&p, &member).await;
    let view = browse(
        &p,
        Method::GET,
        "/apps/acme/Gadgets/views/All",
        Some(&cookie),
        "",
    )
    .await;
    assert!(
        view.html.contains("/apps/acme/Gadgets/commands/Count%20up"),
        "{}",
        view.html
    );
    let body = format!("csrf={}&record={id}", csrf_of(&view.html));
    let r = browse(
        &p,
        Method::POST,
        "/apps/acme/Gadgets/commands/Count%20up",
        Some(&cookie),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let run_page = r.location().to_string();
    let mut html = String::new();
    for _ in 0..100 {
        html = browse(&p, Method::GET, &run_page, Some(&cookie), "")
            .await
            .html;
        if html.contains(r#"id="run-status">succeeded"#) || html.contains(">failed<") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(html.contains(r#"id="run-status">succeeded"#), "{html}");
    assert!(
        html.contains(">bump<") && !html.contains("Count&#34;"),
        "outcome only: {html}"
    );
    let api = format!("/api/environments/acme/data/gadgets({id})");
    assert_eq!(p.get(&api, ADMIN_TOKEN).await.body["Count"], 99);

    let maker = sign_in(&p, &mia).await;
    let r = browse(&p, Method::GET, "/maker/flows", Some(&maker), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let link = r
        .html
        .split(&format!("/maker/environments/acme/flows/{flow_id}/runs/"))
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the run listed");
    let path = format!("/maker/environments/acme/flows/{flow_id}/runs/{link}");
    let r = browse(&p, Method::GET, &path, Some(&maker), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(
        r.html.contains("Count&#34;: 99"),
        "the step's inputs: {}",
        r.html
    );
    let other = p.user("max@acme.test", "maker").await;
    let other = sign_in(&p, &other).await;
    let r = browse(&p, Method::GET, &run_page, Some(&other), "").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "not even its existence: {}",
        r.html
    );
}

#[engine_test]
async fn an_approval_is_answered_from_the_inbox(p: Platform) {
    let (mia, member, _, _) = gadgets(&p).await;
    let flow = json!({"name": "Ask", "owner": "mia@acme.test", "trigger": {"kind": "manual"},
        "steps": [{"kind": "start_approval", "name": "ask", "title": "Order more gadgets?",
                   "approvers": ["uma@acme.test"]}]});
    let f = p.post("/api/environments/acme/flows", &mia, flow).await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let flow_id = f.body["id"].as_str().unwrap().to_string();
    let r = p
        .post(
            &format!("/api/environments/acme/flows/{flow_id}/run"),
            &mia,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let cookie = sign_in(&p, &member).await;
    let mut html = String::new();
    for _ in 0..100 {
        html = browse(&p, Method::GET, "/approvals", Some(&cookie), "")
            .await
            .html;
        if html.contains("Order more gadgets?") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(html.contains("Order more gadgets?"), "{html}");
    let action = html
        .split(r#"action="/approvals/acme/"#)
        .nth(1)
        .and_then(|t| t.split('"').next())
        .map(|id| format!("/approvals/acme/{id}"))
        .unwrap();
    let body = format!("csrf={}&outcome=approved&comment=yes", csrf_of(&html));
    let r = browse(&p, Method::POST, &action, Some(&cookie), &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = browse(&p, Method::GET, "/approvals", Some(&cookie), "").await;
    assert!(r.html.contains("approved by uma@acme.test"), "{}", r.html);
}

/// Once step 1 has run, a maker plays the copy of their app on the test database
/// (every page marked so), and runs the copy of their flow on a test record.
#[engine_test]
async fn a_maker_plays_the_copy_and_tries_the_flow_on_the_test_database(p: Platform) {
    let (mia, member, _, id) = gadgets(&p).await;
    let flow = json!({"name": "Note", "owner": "mia@acme.test",
        "trigger": {"kind": "record_updated", "entity": "Gadget"},
        "steps": [{"kind": "set_variable", "name": "title", "variable": "t",
                   "value": "@{trigger.record.Title}"}]});
    let f = p.post("/api/environments/acme/flows", &mia, flow).await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    p.upgrade_to_step2("acme").await;
    let items = p
        .get("/api/environments/acme/upgrade/items", &mia)
        .await
        .body;
    let item_of = |kind: &str| {
        items["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == kind)
            .map(|i| i["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let cookie = sign_in(&p, &mia).await;
    let page = format!("/maker/environments/acme/items/{}", item_of("app"));
    let r = browse(&p, Method::GET, &page, Some(&cookie), "").await;
    assert!(
        r.html.contains(r#"href="/apps/acme/Gadgets?copy=true""#),
        "{}",
        r.html
    );
    let copy = "/apps/acme/Gadgets?copy=true";
    let r = browse(&p, Method::GET, copy, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains("Test database."), "marked: {}", r.html);
    let r = browse(&p, Method::GET, "/apps/acme/Gadgets", Some(&cookie), "").await;
    assert!(!r.html.contains("Test database."), "production: {}", r.html);
    let user = sign_in(&p, &member).await;
    let r = browse(&p, Method::GET, copy, Some(&user), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "makers only: {}", r.html);

    let page = format!("/maker/environments/acme/items/{}", item_of("flow"));
    let r = browse(&p, Method::GET, &page, Some(&cookie), "").await;
    let body = format!("csrf={}&record={id}", csrf_of(&r.html));
    let r = browse(
        &p,
        Method::POST,
        &format!("{page}/try"),
        Some(&cookie),
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(
        r.html.contains("Dry run on the test database") && r.html.contains("Gadget 00"),
        "the steps, on the record: {}",
        r.html
    );
    assert!(
        r.html.contains(r#"id="run-status">succeeded"#),
        "{}",
        r.html
    );
}

/// Step 2's dashboard sends the makers' e-mails again (admins, with the form token).
#[engine_test]
async fn the_dashboard_sends_the_makers_mail_again(p: Platform) {
    let (mia, _, _, _) = gadgets(&p).await;
    p.upgrade_to_step2("acme").await;
    let admin = sign_in(&p, ADMIN_TOKEN).await;
    let page = "/admin/environments/acme/upgrade";
    let html = browse(&p, Method::GET, page, Some(&admin), "").await.html;
    assert!(html.contains("E-mail the makers again"), "{html}");
    let notify = format!("{page}/notify");
    let r = browse(&p, Method::POST, &notify, Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no form token: {}", r.html);
    let form = format!("csrf={}", csrf_of(&html));
    let r = browse(&p, Method::POST, &notify, Some(&admin), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert!(r.location().contains("notified="), "{}", r.location());
    let r = browse(&p, Method::GET, r.location(), Some(&admin), "").await;
    assert!(r.html.contains("E-mails sent again to"), "{}", r.html);
    let maker = sign_in(&p, &mia).await;
    let form = format!(
        "csrf={}",
        csrf_of(
            &browse(&p, Method::GET, "/maker", Some(&maker), "")
                .await
                .html
        )
    );
    let r = browse(&p, Method::POST, &notify, Some(&maker), &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admins only: {}", r.html);
}
