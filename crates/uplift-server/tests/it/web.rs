//! The web UI through the router: signing in with a token gives an `HttpOnly`,
//! `SameSite=Lax` session cookie; a form without the session's token is refused and
//! changes nothing; signing out ends the session; a maker's pages show only their own
//! items; the admin center is for admins; an unknown page is an HTML 404.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

/// A page as a browser gets it.
pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// One request as a browser sends it: a cookie, and a form body for a POST.
pub(crate) async fn browse(
    p: &Platform,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> Page {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, format!("uplift_session={c}"));
    }
    if method == Method::POST {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let req = req.body(Body::from(form.to_string())).unwrap();
    let resp = p.router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        html: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Signs in with `token`; returns the session cookie's value.
pub(crate) async fn sign_in(p: &Platform, token: &str) -> String {
    let r = browse(
        p,
        Method::POST,
        "/signin",
        None,
        &format!("token={token}&next=%2Fadmin"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), "/admin");
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    cookie
        .strip_prefix("uplift_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string()
}

/// The form token a page's sign-out form carries.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with its token")
        + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

#[engine_test]
async fn a_wrong_token_signs_nobody_in(p: Platform) {
    let r = browse(&p, Method::POST, "/signin", None, "token=upl_wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.html.contains("the token is not valid"), "{}", r.html);
    assert!(!r.headers.contains_key(header::SET_COOKIE));
    let r = browse(&p, Method::GET, "/admin", None, "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/signin?next=%2Fadmin");
}

#[engine_test]
async fn a_form_without_its_token_is_refused_and_changes_nothing(p: Platform) {
    let cookie = sign_in(&p, ADMIN_TOKEN).await;
    for form in ["", "csrf=upl_forged"] {
        let r = browse(&p, Method::POST, "/signout", Some(&cookie), form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form}: {}", r.html);
        assert!(r.html.contains("token does not match"), "{}", r.html);
    }
    let r = browse(&p, Method::GET, "/admin", Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "the session still stands");
}

#[engine_test]
async fn signing_out_ends_the_session(p: Platform) {
    let cookie = sign_in(&p, ADMIN_TOKEN).await;
    let page = browse(&p, Method::GET, "/admin", Some(&cookie), "").await;
    assert_eq!(page.status, StatusCode::OK);
    let form = format!("csrf={}", csrf_of(&page.html));
    let r = browse(&p, Method::POST, "/signout", Some(&cookie), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let cleared = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let r = browse(&p, Method::GET, "/admin", Some(&cookie), "").await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
    assert!(r.location().starts_with("/signin"), "{}", r.location());
}

#[engine_test]
async fn the_admin_center_lists_environments_for_admins_only(p: Platform) {
    p.create_env("shop", "classic", "open").await;
    let admin = sign_in(&p, ADMIN_TOKEN).await;
    let r = browse(&p, Method::GET, "/admin", Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.html.contains(r#"href="/admin/environments/shop""#),
        "{}",
        r.html
    );
    assert!(r.html.contains("Can be upgraded"), "{}", r.html);
    assert!(
        r.html.contains(&format!("<td>{}</td>", p.engine)) && r.html.contains(" MiB</td>"),
        "its engine and size: {}",
        r.html
    );
    let r = browse(
        &p,
        Method::GET,
        "/admin/environments/shop",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.html.contains("Account") && r.html.contains("classic"),
        "{}",
        r.html
    );

    let maker = sign_in(&p, &p.user("mo@shop.test", "maker").await).await;
    for path in ["/admin", "/admin/environments/shop"] {
        let r = browse(&p, Method::GET, path, Some(&maker), "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.html.contains("not an administrator"), "{}", r.html);
    }
}

#[engine_test]
async fn a_makers_page_shows_only_their_own_items(p: Platform) {
    p.create_env("shop", "classic", "open").await;
    let mia = p.user("mia@shop.test", "maker").await;
    let max = p.user("max@shop.test", "maker").await;
    for (token, owner, name) in [
        (&mia, "mia@shop.test", "Mia's flow"),
        (&max, "max@shop.test", "Max's flow"),
    ] {
        let flow = json!({"name": name, "owner": owner, "trigger": {"kind": "manual"},
            "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]});
        let r = p.post("/api/environments/shop/flows", token, flow).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let start = json!({"plan": "classic-to-modern", "language": "en", "currency": "USD"});
    let a = p
        .post("/api/environments/shop/upgrade", ADMIN_TOKEN, start)
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    p.wait_step1("shop").await;
    let cookie = sign_in(&p, &mia).await;
    let r = browse(&p, Method::GET, "/maker", Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.html.contains("Mia&#x27;s flow") || r.html.contains("Mia&#39;s flow"),
        "{}",
        r.html
    );
    assert!(
        !r.html.contains("Max"),
        "another maker's item shows: {}",
        r.html
    );
}

#[engine_test]
async fn an_unknown_page_is_an_html_404_and_the_api_keeps_json(p: Platform) {
    let r = browse(&p, Method::GET, "/no/such/page", None, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.html.contains("<h1>Not found</h1>"), "{}", r.html);
    let r = p.get("/api/no/such", ADMIN_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "NotFound", "{}", r.body);
}

#[engine_test]
async fn the_assets_are_served_from_the_binary(p: Platform) {
    for (path, ty) in [
        ("/static/app.css", "text/css"),
        ("/static/htmx.min.js", "text/javascript"),
    ] {
        let r = browse(&p, Method::GET, path, None, "").await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ty),
            "{path}"
        );
        assert!(r.html.len() > 1000, "{path}");
    }
}

/// The upgrade wizard: the plans to pick, a preview of the changes (filtered) with a
/// rate asked for each currency in the data; a start without the form token is refused
/// and starts nothing, a rate that is not a number is named; a start with them goes to
/// the live page, whose stream carries the status.
#[engine_test]
async fn the_wizard_previews_starts_step1_and_its_page_follows_it(p: Platform) {
    p.create_env("shop", "classic", "open").await;
    let a = json!({"Name": "Fabrikam", "Revenue": {"code": "EUR", "value": 10}});
    let r = p
        .post("/api/environments/shop/data/accounts", ADMIN_TOKEN, a)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let admin = sign_in(&p, ADMIN_TOKEN).await;
    let page = "/admin/environments/shop/upgrade";
    let r = browse(&p, Method::GET, page, Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(
        r.html.contains(r#"<option value="classic-to-modern""#),
        "{}",
        r.html
    );

    let query = format!("{page}?plan=classic-to-modern&language=en&currency=USD&q=Revenue");
    let r = browse(&p, Method::GET, &query, Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(
        r.html.contains(r#"name="rate_EUR""#),
        "a rate for EUR: {}",
        r.html
    );
    assert!(r.html.contains("<td>Revenue</td>"), "{}", r.html);
    assert!(
        !r.html.contains("<td>Birthday</td>"),
        "filtered: {}",
        r.html
    );

    let fields = "plan=classic-to-modern&language=en&currency=USD";
    let r = browse(
        &p,
        Method::POST,
        page,
        Some(&admin),
        &format!("{fields}&rate_EUR=1.08"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no form token: {}", r.html);
    let csrf = csrf_of(&browse(&p, Method::GET, page, Some(&admin), "").await.html);
    let bad = format!("{fields}&rate_EUR=1%2C08&csrf={csrf}");
    let r = browse(&p, Method::POST, page, Some(&admin), &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(r.html.contains("exchange rate of EUR"), "{}", r.html);
    let none = p.get("/api/environments/shop/upgrade", ADMIN_TOKEN).await;
    assert_eq!(
        none.status,
        StatusCode::NOT_FOUND,
        "nothing started: {}",
        none.body
    );

    let good = format!("{fields}&rate_EUR=1.08&csrf={csrf}");
    let r = browse(&p, Method::POST, page, Some(&admin), &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), page);
    p.wait_step1("shop").await;
    let r = browse(&p, Method::GET, page, Some(&admin), "").await;
    assert!(r.html.contains("step2 verifying"), "{}", r.html);
    assert!(r.html.contains(r#"id="phase-copy""#), "{}", r.html);

    let req = Request::builder()
        .uri(format!("{page}/events"))
        .header(header::COOKIE, format!("uplift_session={admin}"))
        .body(Body::empty())
        .unwrap();
    let resp = p.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ty = resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(ty.starts_with("text/event-stream"), "{ty}");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(
        first.starts_with("data: ") && first.contains("\"status\":\"step2 verifying\""),
        "{first}"
    );
    assert!(
        first.contains("\"phases\":[") && first.contains("\"entities\":["),
        "each phase's and each entity's progress: {first}"
    );
}

/// Once step 1 has run, the upgrade page shows its copy report and step 2's items with
/// the gate; an admin excludes an item with a reason (not without the form token).
#[engine_test]
async fn the_upgrade_page_shows_the_report_and_the_items_and_excludes_one(p: Platform) {
    p.create_env("shop", "classic", "open").await;
    let flow = json!({"name": "Nightly count", "owner": "admin@uplift.local",
        "trigger": {"kind": "manual"},
        "steps": [{"kind": "set_variable", "name": "v", "variable": "x", "value": "1"}]});
    let r = p
        .post("/api/environments/shop/flows", ADMIN_TOKEN, flow)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    p.upgrade_to_step2("shop").await;
    let admin = sign_in(&p, ADMIN_TOKEN).await;
    let page = "/admin/environments/shop/upgrade";
    let r = browse(&p, Method::GET, page, Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains("Step 1's copy report"), "{}", r.html);
    assert!(
        r.html.contains(r#"<th scope="row">Account</th>"#),
        "{}",
        r.html
    );
    assert!(r.html.contains("Nightly count"), "{}", r.html);
    let items = p
        .get("/api/environments/shop/upgrade/items", ADMIN_TOKEN)
        .await
        .body;
    let id = items["value"][0]["id"].as_str().unwrap().to_string();
    let exclude = format!("{page}/items/{id}/exclude");
    let r = browse(&p, Method::POST, &exclude, Some(&admin), "reason=later").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    let csrf = csrf_of(&browse(&p, Method::GET, page, Some(&admin), "").await.html);
    let r = browse(
        &p,
        Method::POST,
        &exclude,
        Some(&admin),
        &format!("reason=not+needed&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let item = p
        .get(
            &format!("/api/environments/shop/upgrade/items/{id}"),
            ADMIN_TOKEN,
        )
        .await
        .body;
    assert_eq!(item["status"], "excluded", "{item}");
    let r = browse(&p, Method::GET, page, Some(&admin), "").await;
    assert!(
        r.html.contains("Step 3 can start"),
        "the gate opens: {}",
        r.html
    );

    // The audit log: every event with its time and who caused it, on the API and the page.
    let log = p
        .get("/api/environments/shop/upgrade/log", ADMIN_TOKEN)
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let events = log.body["value"].as_array().unwrap();
    assert_eq!(events[0]["event"], "started", "{}", log.body);
    assert_eq!(events[0]["by"], "admin@uplift.local", "{}", log.body);
    let excluded = events.iter().find(|e| e["event"] == "excluded").unwrap();
    assert_eq!(excluded["detail"]["reason"], "not needed", "{excluded}");
    let r = browse(&p, Method::GET, &format!("{page}/log"), Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.html.contains(r#"<th scope="row">excluded</th>"#),
        "{}",
        r.html
    );
    let maker = p.user("mo@shop.test", "maker").await;
    let r = p.get("/api/environments/shop/upgrade/log", &maker).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admins only: {}", r.body);
}

/// A maker's item page: the copy's findings; a sign-off refused while an error is open,
/// said on the page; a copy that is not JSON shown back with why; the fixed copy saved
/// and verified, then signed off. Another maker cannot open it.
#[engine_test]
async fn a_maker_fixes_a_copy_in_the_editor_and_signs_it_off(p: Platform) {
    p.create_env("acme", "classic", "open").await;
    let defs = json!({"entities": {"Gadget": {"fields": [
        {"name": "Title", "type": "Text"}, {"name": "Keeper", "type": "UserOrGroup"}]}}});
    let d = p
        .put("/api/environments/acme/entities", ADMIN_TOKEN, defs)
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let mia = p.user("mia@acme.test", "maker").await;
    let max = p.user("max@acme.test", "maker").await;
    let app = json!({"name": "Gadgets", "owner": "mia@acme.test",
        "views": [{"name": "All", "entity": "Gadget", "columns": ["Title", "Keeper"]}]});
    let r = p
        .put("/api/environments/acme/apps/Gadgets", &mia, app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    p.upgrade_to_step2("acme").await;
    let items = p
        .get("/api/environments/acme/upgrade/items", &mia)
        .await
        .body;
    let id = items["value"][0]["id"].as_str().unwrap().to_string();
    let page = format!("/maker/environments/acme/items/{id}");

    let cookie = sign_in(&p, &mia).await;
    let r = browse(&p, Method::GET, "/maker", Some(&cookie), "").await;
    assert!(r.html.contains(&format!(r#"href="{page}""#)), "{}", r.html);
    let r = browse(&p, Method::GET, &page, Some(&cookie), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(
        r.html.contains("Keeper") && r.html.contains(">error<"),
        "{}",
        r.html
    );
    let csrf = csrf_of(&r.html);

    let r = browse(
        &p,
        Method::POST,
        &format!("{page}/signoff"),
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(
        r.html.contains(r#"id="item-error""#),
        "said on the page: {}",
        r.html
    );

    let form = |copy: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &csrf)
            .append_pair("copy", copy)
            .finish()
    };
    let r = browse(
        &p,
        Method::POST,
        &format!("{page}/copy"),
        Some(&cookie),
        &form("{not json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(
        r.html.contains("not JSON") && r.html.contains("{not json"),
        "{}",
        r.html
    );

    let mut copy = p
        .get(&format!("/api/environments/acme/upgrade/items/{id}"), &mia)
        .await
        .body["copy"]
        .clone();
    copy["views"][0]["columns"] = json!(["cr_title"]);
    let r = browse(
        &p,
        Method::POST,
        &format!("{page}/copy"),
        Some(&cookie),
        &form(&copy.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = browse(
        &p,
        Method::POST,
        &format!("{page}/signoff"),
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let item = p
        .get(&format!("/api/environments/acme/upgrade/items/{id}"), &mia)
        .await
        .body;
    assert_eq!(item["status"], "verified", "{item}");

    let other = sign_in(&p, &max).await;
    let r = browse(&p, Method::GET, &page, Some(&other), "").await;
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::FORBIDDEN,
        "{}",
        r.status
    );
    assert!(!r.html.contains("Keeper"), "{}", r.html);
}
