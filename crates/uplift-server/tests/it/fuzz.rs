//! Bounded fuzzing of what clients send: `$filter`, `$orderby`, `$select`,
//! `$skiptoken`, `$top`/`$skip`, record bodies for every field type of both schema
//! versions, and plan and flow definitions. Whatever comes in, the answer is never a
//! 5xx (a panic would be a 500 from the catcher), on either engine. Deterministic and
//! bounded, so it runs in the default test run and a failure repeats.

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Answer, Platform};
use uplift_test_macros::engine_test;

/// Generated requests per kind and engine.
const REQUESTS: usize = 60;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const CLASSIC_FIELDS: &[&str] = &[
    "Title",
    "Mail",
    "Qty",
    "Flag",
    "Price",
    "Price/value",
    "Price/code",
    "Day",
    "At",
    "Stage",
    "Site",
    "Site/city",
    "Person/last_name",
    "Pic",
    "Small",
    "Big",
    "Ref",
    "Owner",
    "Nope",
    "createdon",
    "id",
];

fn thing() -> Value {
    json!({"fields": [
        {"name":"Title","type":"Text"},{"name":"Mail","type":"Email"},{"name":"Ref","type":"Guid"},
        {"name":"Site","type":"Address"},{"name":"Person","type":"PersonName"},{"name":"Small","type":"Integer"},
        {"name":"Big","type":"Number"},{"name":"Qty","type":"Quantity"},{"name":"Flag","type":"Boolean"},
        {"name":"Price","type":"Currency"},{"name":"Day","type":"Date"},{"name":"At","type":"DateTime"},
        {"name":"Stage","type":"Picklist","options":["Planned","Active"]},{"name":"Pic","type":"Image"},
        {"name":"Owner","type":"UserOrGroup"}
    ]})
}

fn widget() -> Value {
    json!({"fields": [
        {"name":"cr_title","type":"SingleLineText"},{"name":"cr_amount","type":"DecimalNumber"},
        {"name":"cr_price","type":"Money"},{"name":"cr_when","type":"DateTime"},
        {"name":"cr_count","type":"WholeNumber"},{"name":"cr_stage","type":"OptionSet","options":[{"value":100000000,"label":"Open"}]},
        {"name":"cr_yes","type":"TwoOptions"},{"name":"cr_notes","type":"MultipleLinesOfText"}
    ]})
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "[0-9]{1,40}(\\.[0-9]{1,40})?(e[+-]?[0-9]{1,4})?",
        "'[^']{0,12}'",
        Just("'a\u{0}b'".to_string()),
        Just("9999-12-31T23:00:00-23:00".to_string()),
        Just("0001-01-01T00:00:00+01:00".to_string()),
        Just("0000-01-01".to_string()),
        Just("2024-02-30".to_string()),
        Just("2024-05-31".to_string()),
        Just("true".to_string()),
        Just("6f9619ff-8b86-d011-b42d-00c04fc964ff".to_string()),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    let field = prop::sample::select(CLASSIC_FIELDS.to_vec()).prop_map(str::to_string);
    let op = prop::sample::select(vec!["eq", "ne", "gt", "ge", "lt", "le", "has", "in", "add"]);
    let compare = (field.clone(), op, literal()).prop_map(|(f, o, l)| format!("{f} {o} {l}"));
    let call = (
        prop::sample::select(vec![
            "contains",
            "startswith",
            "endswith",
            "tolower",
            "year",
            "length",
            "nosuch",
        ]),
        field,
        literal(),
    )
        .prop_map(|(f, a, b)| format!("{f}({a}, {b})"));
    let leaf = prop_oneof![compare, call, "[ -~]{0,24}"];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or {b}")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn list_of_fields() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(CLASSIC_FIELDS.to_vec()).prop_map(str::to_string),
            "[ -~]{0,8}",
        ],
        0..4,
    )
    .prop_map(|v| v.join(","))
}

/// A query string of one or more options, each well-formed or not.
fn query() -> impl Strategy<Value = String> {
    let orderby = (
        list_of_fields(),
        prop::sample::select(vec!["", " asc", " desc", " sideways"]),
    )
        .prop_map(|(f, d)| format!("$orderby={}", enc(&format!("{f}{d}"))));
    let number = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        Just("9223372036854775808".to_string()),
        Just("-1".to_string()),
        "[ -~]{0,6}",
    ];
    prop::collection::vec(
        prop_oneof![
            filter().prop_map(|f| format!("$filter={}", enc(&f))),
            orderby,
            list_of_fields().prop_map(|f| format!("$select={}", enc(&f))),
            "[A-Za-z0-9_=-]{0,40}".prop_map(|t| format!("$skiptoken={}", enc(&t))),
            number.clone().prop_map(|n| format!("$top={}", enc(&n))),
            number.prop_map(|n| format!("$skip={}", enc(&n))),
            Just("$count=true".to_string()),
            Just("$expand=Nope_ref".to_string()),
        ],
        1..4,
    )
    .prop_map(|v| v.join("&"))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "-?[1-9][0-9]{0,39}\\.[0-9]{1,30}".prop_map(|s| serde_json::from_str(&s).unwrap()),
        "-?[1-9][0-9]{0,2}e-?[0-9]{1,3}".prop_map(|s| serde_json::from_str(&s).unwrap()),
        "[^\u{0}]{0,20}".prop_map(Value::String),
        Just(Value::String("a\u{0}b".into())),
        prop::sample::select(vec![
            "2024-05-31",
            "0000-01-01",
            "9999-12-31T23:00:00-23:00",
            "2024-05-31T10:00:00Z",
            "EUR",
            "Active",
            "Open",
            "not base64!",
            "6f9619ff-8b86-d011-b42d-00c04fc964ff",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "code",
                    "value",
                    "currency",
                    "base_value",
                    "exchange_rate",
                    "city",
                    "last_name",
                    "x"
                ])
                .prop_map(str::to_string),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::btree_map(prop::sample::select(fields.to_vec()), json_value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn no_5xx(engine: &str, what: &str, a: &Answer) {
    assert!(
        a.status < StatusCode::INTERNAL_SERVER_ERROR,
        "{engine}: {what} answered {}: {}",
        a.status,
        a.body
    );
}

fn samples<S: Strategy>(s: S, runner: &mut TestRunner) -> Vec<S::Value> {
    (0..REQUESTS)
        .map(|_| s.new_tree(runner).unwrap().current())
        .collect()
}

async fn setup(p: &Platform) -> String {
    p.create_env("fuzz", "classic", "open").await;
    p.create_env("fuzzm", "modern", "open").await;
    let a = p
        .put(
            "/api/environments/fuzz/entities/Thing",
            ADMIN_TOKEN,
            thing(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = p
        .put(
            "/api/environments/fuzzm/entities/cr_widget",
            ADMIN_TOKEN,
            widget(),
        )
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let r = p
        .post(
            "/api/environments/fuzz/data/things",
            ADMIN_TOKEN,
            json!({"Title": "seed", "Qty": 2.5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[engine_test]
async fn hostile_queries_never_answer_5xx(p: Platform) {
    setup(&p).await;
    let mut runner = TestRunner::deterministic();
    for q in samples(query(), &mut runner) {
        for set in [
            "fuzz/data/things",
            "fuzz/data/accounts",
            "fuzzm/data/cr_widgets",
        ] {
            let path = format!("/api/environments/{set}?{q}");
            no_5xx(p.engine, &path, &p.get(&path, ADMIN_TOKEN).await);
        }
    }
}

#[engine_test]
async fn hostile_record_bodies_never_answer_5xx(p: Platform) {
    let id = setup(&p).await;
    const THING: &[&str] = &[
        "Title", "Mail", "Ref", "Site", "Person", "Small", "Big", "Qty", "Flag", "Price", "Day",
        "At", "Stage", "Pic", "Owner", "id", "_version", "Nope",
    ];
    const WIDGET: &[&str] = &[
        "cr_title",
        "cr_amount",
        "cr_price",
        "cr_when",
        "cr_count",
        "cr_stage",
        "cr_yes",
        "cr_notes",
        "id",
        "Nope",
    ];
    let mut runner = TestRunner::deterministic();
    for b in samples(body(THING), &mut runner) {
        let post = p
            .post("/api/environments/fuzz/data/things", ADMIN_TOKEN, b.clone())
            .await;
        no_5xx(p.engine, &format!("POST {b}"), &post);
        let path = format!("/api/environments/fuzz/data/things({id})");
        let patch = p.patch(&path, ADMIN_TOKEN, b.clone()).await;
        no_5xx(p.engine, &format!("PATCH {b}"), &patch);
    }
    for b in samples(body(WIDGET), &mut runner) {
        let post = p
            .post(
                "/api/environments/fuzzm/data/cr_widgets",
                ADMIN_TOKEN,
                b.clone(),
            )
            .await;
        no_5xx(p.engine, &format!("POST {b}"), &post);
    }
}

/// A plan's text with lines dropped, duplicated or rewritten.
fn plan_text() -> impl Strategy<Value = String> {
    let shipped: Vec<String> = uplift_plan::builtin("classic-to-modern")
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let n = shipped.len();
    prop::collection::vec((0..n, 0u8..4, "[ -~]{0,12}"), 1..6).prop_map(move |edits| {
        let mut lines = shipped.clone();
        for (i, kind, junk) in edits {
            let i = i % lines.len().max(1);
            match kind {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                }
                2 => lines[i] = junk,
                _ => lines[i] = lines[i].replace('"', "").replace("true", "1"),
            }
            if lines.is_empty() {
                lines.push(String::new());
            }
        }
        lines.join("\n")
    })
}

fn flow_def() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "record_created",
        "record_updated",
        "manual",
        "schedule",
        "app_command",
        "nope",
    ]);
    let step_kind = prop::sample::select(vec![
        "create_record",
        "update_record",
        "get_record",
        "list_records",
        "send_email",
        "http",
        "condition",
        "set_variable",
        "approval",
        "nope",
    ]);
    let step = (step_kind, "[a-z]{0,6}", json_value()).prop_map(|(k, n, v)| {
        json!({"kind": k, "name": n, "entity": "Account", "values": v, "to": v, "url": v,
               "expression": "x eq 1", "filter": v, "id": "@{trigger.record.id}"})
    });
    (
        kind,
        json_value(),
        prop::collection::vec(step, 0..3),
        json_value(),
    )
        .prop_map(|(k, filter, steps, owner)| {
            json!({"name": "Fuzz", "owner": owner, "trigger": {"kind": k, "entity": "Account",
                   "filter": filter, "cron": filter}, "steps": steps})
        })
}

#[engine_test]
async fn hostile_plans_and_flows_never_answer_5xx(p: Platform) {
    setup(&p).await;
    let mut runner = TestRunner::deterministic();
    for text in samples(plan_text(), &mut runner) {
        let put = p
            .put("/api/plans/fuzz", ADMIN_TOKEN, Value::String(text))
            .await;
        no_5xx(p.engine, "PUT /api/plans/fuzz", &put);
        if put.status.is_success() {
            let pre = p
                .get(
                    "/api/environments/fuzz/upgrade/preview?plan=fuzz",
                    ADMIN_TOKEN,
                )
                .await;
            no_5xx(p.engine, "a preview with an uploaded plan", &pre);
        }
    }
    for def in samples(flow_def(), &mut runner) {
        let a = p
            .post("/api/environments/fuzz/flows", ADMIN_TOKEN, def.clone())
            .await;
        no_5xx(p.engine, &format!("POST flow {def}"), &a);
    }
}
