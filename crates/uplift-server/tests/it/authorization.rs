//! The authorization matrix: every endpoint of the API, called by each kind of caller,
//! on production and (for the data API) on the upgrade's test database, answers
//! exactly the status the policy says. A changed cell fails the test, naming the
//! endpoint, the caller and the engine.
//!
//! The callers, in the order of each row's statuses: no token, a disabled user, a user
//! without a role in the environment, a user with a role (Sales: Account Create, Read,
//! Update, Delete), the maker who owns the app and flows, another maker, an admin.
//! Makers have no role in the (restricted) environment, so they read no production
//! records; the test database opens to makers and admins only, and there records
//! follow the upgraded roles (no maker here has one, so only the admin reads them).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Platform};
use uplift_test_macros::engine_test;

const ENV: &str = "/api/environments/acme";
const CALLERS: [&str; 7] = [
    "no token",
    "disabled user",
    "user without role",
    "user with role",
    "maker owner",
    "maker non-owner",
    "admin",
];

/// What a call needs made anew each time, because a successful call uses it up.
#[derive(Clone, Copy)]
enum Fresh {
    /// A name nothing has yet (`{new}` in the path or body).
    Name,
    /// An environment to delete or upgrade (`{env}`).
    Env,
    /// An environment whose step 1 has finished, to cancel (`{env}`).
    UpgradedEnv,
    /// A draft of the app Hub, to publish.
    Draft,
    /// A pending approval of the role member's (`{approval}`).
    Approval,
    /// An account in the database the case addresses (`{record}`).
    Record,
    /// A token of the role member's, by its id (`{token}`).
    Token,
}

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    fresh: Option<Fresh>,
    expect: [u16; 7],
}

fn case(method: Method, path: impl Into<String>, body: Option<Value>, expect: [u16; 7]) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        fresh: None,
        expect,
    }
}

fn fresh(mut c: Case, f: Fresh) -> Case {
    c.fresh = Some(f);
    c
}

/// Everyone signed in (and active) may.
const ANY: [u16; 7] = [401, 403, 200, 200, 200, 200, 200];
const ADMIN: [u16; 7] = [401, 403, 403, 403, 403, 403, 200];
const MAKERS: [u16; 7] = [401, 403, 403, 403, 200, 200, 200];
/// The owner and admins.
const OWNER: [u16; 7] = [401, 403, 403, 403, 200, 403, 200];
/// Those whose role grants the privilege, and admins.
const GRANTED: [u16; 7] = [401, 403, 403, 200, 403, 403, 200];
/// What the environment is made of (entities, `$metadata`, app definitions): those
/// with a role, makers and admins; not a user without a role in it.
const CATALOG: [u16; 7] = [401, 403, 403, 200, 200, 200, 200];

fn with(mut e: [u16; 7], ok: u16) -> [u16; 7] {
    for s in &mut e {
        if *s == 200 {
            *s = ok;
        }
    }
    e
}

/// The ids the fixture made.
struct Fixture {
    record: String,
    flow: String,
    manual: String,
    ask: String,
    run: String,
    approval: String,
    tokens: [Option<String>; 7],
}

fn app(owner: &str, command_flow: &str) -> Value {
    json!({
        "name": "Hub", "owner": owner, "editors": [],
        "views": [{"name": "All", "entity": "Account", "columns": ["Name"], "orderby": "Name"}],
        "forms": [{"name": "Main", "entity": "Account", "fields": ["Name"]}],
        "commands": [{"label": "Go", "entity": "Account", "flow": command_flow}]
    })
}

fn manual_flow(name: &str, owner: &str) -> Value {
    json!({"name": name, "owner": owner, "trigger": {"kind": "manual"},
           "steps": [{"kind": "set_variable", "name": "v", "variable": "v", "value": "1"}]})
}

fn ask_flow() -> Value {
    json!({"name": "Ask", "owner": "owner@acme.test", "trigger": {"kind": "manual"},
           "steps": [{"kind": "start_approval", "name": "ok", "title": "Ship?",
                      "approvers": ["member@acme.test"]}]})
}

fn start_body() -> Value {
    json!({"plan": "classic-to-modern", "language": "en", "currency": "USD", "exchange_rates": {}})
}

async fn ok(p: &Platform, method: Method, path: &str, body: Value) -> Value {
    let a = p
        .call(method.clone(), path, Some(ADMIN_TOKEN), Some(body), &[])
        .await;
    assert!(
        a.status.is_success(),
        "{}: {method} {path}: {}",
        p.engine,
        a.body
    );
    a.body
}

async fn wait_step1(p: &Platform, env: &str) {
    for _ in 0..1200 {
        let s = p
            .get(&format!("/api/environments/{env}/upgrade"), ADMIN_TOKEN)
            .await;
        if s.body["status"] == "step2_verifying" {
            return;
        }
        assert_eq!(
            s.body["status"], "step1_running",
            "{}: {}",
            p.engine, s.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: step 1 of {env} did not end", p.engine);
}

async fn upgraded_env(p: &Platform, name: &str) {
    p.create_env(name, "classic", "restricted").await;
    ok(
        p,
        Method::POST,
        &format!("/api/environments/{name}/upgrade"),
        start_body(),
    )
    .await;
    wait_step1(p, name).await;
}

/// A pending approval: a run of the Ask flow, waited for until it asks.
async fn approval(p: &Platform, ask: &str) -> String {
    let before = p.store.control().approvals("acme").await.unwrap().len();
    ok(
        p,
        Method::POST,
        &format!("{ENV}/flows/{ask}/run"),
        json!({}),
    )
    .await;
    for _ in 0..400 {
        let all = p.store.control().approvals("acme").await.unwrap();
        if all.len() > before {
            let mut pending: Vec<_> = all.into_iter().filter(|a| a.outcome.is_none()).collect();
            pending.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            return pending.last().expect("a pending approval").id.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{}: the Ask flow never asked", p.engine);
}

async fn setup(p: &Platform) -> Fixture {
    p.create_env("acme", "classic", "restricted").await;
    let disabled = p.user("disabled@acme.test", "user").await;
    ok(
        p,
        Method::PATCH,
        "/api/users/disabled@acme.test",
        json!({"status": "disabled"}),
    )
    .await;
    let norole = p.user("norole@acme.test", "user").await;
    let member = p.user("member@acme.test", "user").await;
    let owner = p.user("owner@acme.test", "maker").await;
    let other = p.user("other@acme.test", "maker").await;
    let sales = json!({"privileges": {"Account": ["Create", "Read", "Update", "Delete"]}});
    ok(p, Method::PUT, &format!("{ENV}/roles/Sales"), sales).await;
    ok(
        p,
        Method::POST,
        &format!("{ENV}/roles/Sales/members"),
        json!({"user": "member@acme.test"}),
    )
    .await;
    let record = ok(
        p,
        Method::POST,
        &format!("{ENV}/data/accounts"),
        json!({"Name": "Fabrikam"}),
    )
    .await;
    let command = json!({"name": "Cmd", "owner": "owner@acme.test",
                         "trigger": {"kind": "app_command", "entity": "Account"},
                         "steps": [{"kind": "set_variable", "name": "v", "variable": "v", "value": "1"}]});
    let flow = ok(p, Method::POST, &format!("{ENV}/flows"), command).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let manual = ok(
        p,
        Method::POST,
        &format!("{ENV}/flows"),
        manual_flow("Manual", "owner@acme.test"),
    )
    .await;
    let manual = manual["id"].as_str().unwrap().to_string();
    let ask = ok(p, Method::POST, &format!("{ENV}/flows"), ask_flow()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        p,
        Method::PUT,
        &format!("{ENV}/apps/Hub"),
        app("owner@acme.test", &flow),
    )
    .await;
    ok(
        p,
        Method::POST,
        &format!("{ENV}/apps/Hub/publish"),
        json!({}),
    )
    .await;
    let run = ok(
        p,
        Method::POST,
        &format!("{ENV}/flows/{manual}/run"),
        json!({}),
    )
    .await;
    let run = run["run"].as_str().unwrap().to_string();
    let approval = approval(p, &ask).await;
    ok(p, Method::POST, &format!("{ENV}/upgrade"), start_body()).await;
    wait_step1(p, "acme").await;
    Fixture {
        record: record["id"].as_str().unwrap().to_string(),
        flow,
        manual,
        ask,
        run,
        approval,
        tokens: [
            None,
            Some(disabled),
            Some(norole),
            Some(member),
            Some(owner),
            Some(other),
            Some(ADMIN_TOKEN.to_string()),
        ],
    }
}

fn admin_cases() -> Vec<Case> {
    use Method as M;
    vec![
        case(M::GET, "/api/health", None, [200; 7]),
        case(M::GET, "/api/openapi.json", None, [200; 7]),
        case(M::GET, "/api/me", None, ANY),
        case(M::GET, "/api/environments", None, ANY),
        fresh(
            case(
                M::POST,
                "/api/environments",
                Some(json!({"name": "{new}"})),
                with(ADMIN, 201),
            ),
            Fresh::Name,
        ),
        case(M::GET, ENV, None, CATALOG),
        fresh(
            case(M::DELETE, "/api/environments/{env}", None, with(ADMIN, 204)),
            Fresh::Env,
        ),
        case(M::GET, format!("{ENV}/entities"), None, CATALOG),
        case(M::GET, format!("{ENV}/entities/Account"), None, CATALOG),
        // The environment is in an upgrade's step 2 (its test database is under test
        // below), so a schema change must be forced.
        fresh(
            case(
                M::PUT,
                format!("{ENV}/entities?force=true"),
                Some(
                    json!({"entities": {"{new}": {"fields": [{"name": "Title", "type": "Text"}]}}}),
                ),
                MAKERS,
            ),
            Fresh::Name,
        ),
        fresh(
            case(
                M::PUT,
                format!("{ENV}/entities/{{new}}?force=true"),
                Some(json!({"fields": [{"name": "Title", "type": "Text"}]})),
                MAKERS,
            ),
            Fresh::Name,
        ),
        case(M::GET, format!("{ENV}/roles"), None, ADMIN),
        case(M::GET, format!("{ENV}/roles/Sales"), None, ADMIN),
        case(
            M::PUT,
            format!("{ENV}/roles/Sales"),
            Some(json!({"privileges": {"Account": ["Create", "Read", "Update", "Delete"]}})),
            ADMIN,
        ),
        case(
            M::POST,
            format!("{ENV}/roles/Sales/members"),
            Some(json!({"user": "member@acme.test"})),
            ADMIN,
        ),
        case(M::GET, "/api/users", None, ADMIN),
        fresh(
            case(
                M::POST,
                "/api/users",
                Some(json!({"email": "{new}@acme.test", "display_name": "New"})),
                with(ADMIN, 201),
            ),
            Fresh::Name,
        ),
        case(
            M::GET,
            "/api/users/member@acme.test",
            None,
            [401, 403, 403, 200, 403, 403, 200],
        ),
        case(
            M::PATCH,
            "/api/users/member@acme.test",
            Some(json!({"display_name": "Member"})),
            ADMIN,
        ),
        case(M::POST, "/api/tokens", Some(json!({})), with(ANY, 201)),
        case(M::GET, "/api/tokens", None, ANY),
        case(
            M::GET,
            "/api/tokens?user=member@acme.test",
            None,
            [401, 403, 403, 200, 403, 403, 200],
        ),
        fresh(
            case(
                M::DELETE,
                "/api/tokens/{token}",
                None,
                [401, 403, 403, 204, 403, 403, 204],
            ),
            Fresh::Token,
        ),
        case(
            M::POST,
            "/api/tokens",
            Some(json!({"user": "member@acme.test"})),
            [401, 403, 403, 201, 403, 403, 201],
        ),
    ]
}

fn maker_cases(f: &Fixture) -> Vec<Case> {
    use Method as M;
    let (flow, manual, run) = (&f.flow, &f.manual, &f.run);
    vec![
        // A user without a role gets the apps they own or edit: none.
        case(M::GET, format!("{ENV}/apps"), None, ANY),
        case(M::GET, format!("{ENV}/apps/Hub"), None, CATALOG),
        case(
            M::PUT,
            format!("{ENV}/apps/Hub"),
            Some(app("owner@acme.test", flow)),
            OWNER,
        ),
        fresh(
            case(M::POST, format!("{ENV}/apps/Hub/publish"), None, OWNER),
            Fresh::Draft,
        ),
        case(M::GET, format!("{ENV}/apps/Hub/versions/1"), None, CATALOG),
        case(M::GET, format!("{ENV}/apps/Hub/views/All"), None, GRANTED),
        case(
            M::GET,
            format!("{ENV}/apps/Hub/forms/Main/{}", f.record),
            None,
            GRANTED,
        ),
        case(
            M::POST,
            format!("{ENV}/apps/Hub/commands/Go/run"),
            Some(json!({"record": f.record})),
            with(GRANTED, 202),
        ),
        case(M::GET, format!("{ENV}/flows"), None, ANY),
        case(
            M::POST,
            format!("{ENV}/flows"),
            Some(manual_flow("Made", "owner@acme.test")),
            [401, 403, 403, 403, 201, 403, 201],
        ),
        case(M::GET, format!("{ENV}/flows/{manual}"), None, OWNER),
        case(
            M::PUT,
            format!("{ENV}/flows/{manual}"),
            Some(manual_flow("Manual", "owner@acme.test")),
            OWNER,
        ),
        case(M::POST, format!("{ENV}/flows/{manual}/off"), None, OWNER),
        case(M::POST, format!("{ENV}/flows/{manual}/on"), None, OWNER),
        case(
            M::POST,
            format!("{ENV}/flows/{manual}/run"),
            None,
            with(OWNER, 202),
        ),
        case(M::GET, format!("{ENV}/flows/{manual}/runs"), None, OWNER),
        case(
            M::GET,
            format!("{ENV}/flows/{manual}/runs/{run}"),
            None,
            OWNER,
        ),
        case(M::GET, format!("{ENV}/approvals"), None, ANY),
        case(
            M::GET,
            format!("{ENV}/approvals/{}", f.approval),
            None,
            GRANTED,
        ),
        fresh(
            case(
                M::POST,
                format!("{ENV}/approvals/{{approval}}"),
                Some(json!({"outcome": "approved"})),
                GRANTED,
            ),
            Fresh::Approval,
        ),
    ]
}

fn upgrade_cases() -> Vec<Case> {
    use Method as M;
    vec![
        case(M::GET, format!("{ENV}/upgrade/preview"), None, ADMIN),
        fresh(
            case(
                M::POST,
                "/api/environments/{env}/upgrade",
                Some(start_body()),
                with(ADMIN, 202),
            ),
            Fresh::Env,
        ),
        case(M::GET, format!("{ENV}/upgrade"), None, MAKERS),
        case(M::GET, format!("{ENV}/upgrade/report"), None, MAKERS),
        fresh(
            case(
                M::POST,
                "/api/environments/{env}/upgrade/cancel",
                None,
                ADMIN,
            ),
            Fresh::UpgradedEnv,
        ),
        // Step 1 has not failed, so an admin's retry is refused after the policy let it by.
        case(
            M::POST,
            format!("{ENV}/upgrade/retry"),
            None,
            with(ADMIN, 409),
        ),
        // Nothing completed to clean up: refused after the policy let an admin by.
        case(
            M::POST,
            format!("{ENV}/upgrade/cleanup"),
            None,
            with(ADMIN, 409),
        ),
    ]
}

/// The data API on one database: (service root, the account set's name field); who
/// reads its service document and `$metadata`, and who its records.
fn data_cases(root: &str, name: &str, catalog: [u16; 7], read: [u16; 7]) -> Vec<Case> {
    use Method as M;
    let accounts = format!("{root}/accounts");
    vec![
        case(M::GET, root, None, catalog),
        case(M::GET, format!("{root}/"), None, catalog),
        case(M::GET, format!("{root}/$metadata"), None, catalog),
        case(M::GET, accounts.clone(), None, read),
        case(M::GET, format!("{accounts}/$count"), None, read),
        case(
            M::POST,
            accounts.clone(),
            Some(one(name, "New")),
            with(read, 201),
        ),
        fresh(
            case(M::GET, format!("{accounts}({{record}})"), None, read),
            Fresh::Record,
        ),
        fresh(
            case(
                M::PATCH,
                format!("{accounts}({{record}})"),
                Some(one(name, "Changed")),
                read,
            ),
            Fresh::Record,
        ),
        fresh(
            case(
                M::DELETE,
                format!("{accounts}({{record}})"),
                None,
                with(read, 204),
            ),
            Fresh::Record,
        ),
    ]
}

/// `{"<field>": "<value>"}`.
fn one(field: &str, value: &str) -> Value {
    Value::Object([(field.to_string(), json!(value))].into_iter().collect())
}

static SEQ: AtomicU32 = AtomicU32::new(0);

async fn make_fresh(
    p: &Platform,
    f: &Fixture,
    kind: Fresh,
    test_db: bool,
) -> (&'static str, String) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    match kind {
        Fresh::Name => ("{new}", format!("fresh{n}")),
        Fresh::Env => {
            p.create_env(&format!("fresh{n}"), "classic", "restricted")
                .await;
            ("{env}", format!("fresh{n}"))
        }
        Fresh::UpgradedEnv => {
            upgraded_env(p, &format!("fresh{n}")).await;
            ("{env}", format!("fresh{n}"))
        }
        Fresh::Draft => {
            ok(
                p,
                Method::PUT,
                &format!("{ENV}/apps/Hub"),
                app("owner@acme.test", &f.flow),
            )
            .await;
            ("{draft}", String::new())
        }
        Fresh::Approval => ("{approval}", approval(p, &f.ask).await),
        Fresh::Record => {
            let (root, field) = match test_db {
                true => (format!("{ENV}/upgrade/test/data"), "name"),
                false => (format!("{ENV}/data"), "Name"),
            };
            let r = ok(
                p,
                Method::POST,
                &format!("{root}/accounts"),
                one(field, "Fresh"),
            )
            .await;
            ("{record}", r["id"].as_str().unwrap().to_string())
        }
        Fresh::Token => {
            let label = format!("fresh{n}");
            let body = json!({"user": "member@acme.test", "label": label});
            ok(p, Method::POST, "/api/tokens", body).await;
            let listed = p
                .get("/api/tokens?user=member@acme.test", ADMIN_TOKEN)
                .await
                .body;
            let t = listed
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["label"] == label);
            ("{token}", t.unwrap()["id"].as_str().unwrap().to_string())
        }
    }
}

fn fill(v: &Value, key: &str, value: &str) -> Value {
    serde_json::from_str(&v.to_string().replace(key, value)).expect("json")
}

async fn check(
    p: &Platform,
    f: &Fixture,
    cases: Vec<Case>,
    test_db: bool,
    failures: &mut Vec<String>,
) {
    for c in cases {
        for (i, token) in f.tokens.iter().enumerate() {
            let (mut path, mut body) = (c.path.clone(), c.body.clone());
            if let Some(kind) = c.fresh {
                let (key, value) = make_fresh(p, f, kind, test_db).await;
                path = path.replace(key, &value);
                body = body.map(|b| fill(&b, key, &value));
            }
            let a = p
                .call(c.method.clone(), &path, token.as_deref(), body, &[])
                .await;
            if a.status != StatusCode::from_u16(c.expect[i]).unwrap() {
                failures.push(format!(
                    "{}: {} {} as {}: expected {}, got {} ({})",
                    p.engine,
                    c.method,
                    c.path,
                    CALLERS[i],
                    c.expect[i],
                    a.status.as_u16(),
                    a.body
                ));
            }
        }
    }
}

#[engine_test]
async fn every_endpoint_answers_each_caller_as_the_policy_says(p: Platform) {
    let f = setup(&p).await;
    let mut failures = Vec::new();
    check(&p, &f, admin_cases(), false, &mut failures).await;
    check(&p, &f, maker_cases(&f), false, &mut failures).await;
    check(&p, &f, upgrade_cases(), false, &mut failures).await;
    check(
        &p,
        &f,
        data_cases(&format!("{ENV}/data"), "Name", CATALOG, GRANTED),
        false,
        &mut failures,
    )
    .await;
    let test = format!("{ENV}/upgrade/test/data");
    check(
        &p,
        &f,
        data_cases(&test, "name", MAKERS, ADMIN),
        true,
        &mut failures,
    )
    .await;
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
