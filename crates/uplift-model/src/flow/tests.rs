use super::*;
use crate::standard::classic_catalog;

fn flow(v: serde_json::Value) -> FlowDef {
    serde_json::from_value(v).unwrap()
}

fn problems(f: &FlowDef) -> Vec<String> {
    validate(f, &classic_catalog())
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn welcome() -> serde_json::Value {
    serde_json::json!({
        "name": "Welcome", "owner": "m@x.test", "editors": ["e@x.test"],
        "trigger": {"kind": "record_created", "entity": "Contact", "filter": "Email ne null"},
        "steps": [
            {"kind": "list_records", "name": "find", "entity": "Account",
             "filter": "Name eq '@{trigger.record.FullName/last_name}'", "top": 1},
            {"kind": "condition", "name": "known",
             "expression": "steps/find/count gt 0 and trigger/record/DoNotEmail eq false",
             "then": [
                {"kind": "update_record", "name": "link", "entity": "Contact",
                 "id": "@{trigger.record.id}", "values": {"Account": "@{steps.find.value[0].id}"}}
             ],
             "else": [
                {"kind": "set_variable", "name": "note", "variable": "why", "value": "no account"}
             ]},
            {"kind": "send_email", "name": "mail", "to": ["@{trigger.record.Email}", "sales@x.test"],
             "subject": "Welcome @{trigger.record.FullName/first_name}", "body": "@{variables.why}"},
            {"kind": "http_request", "name": "hook", "method": "POST", "url": "https://hooks.x.test/c",
             "body": {"id": "@{trigger.record.id}", "email": "@{steps.link.record.Email}"}},
            {"kind": "start_approval", "name": "ok", "title": "Check @{trigger.record.Email}",
             "approvers": ["boss@x.test"]},
            {"kind": "create_record", "name": "task", "entity": "Account",
             "values": {"Name": "Follow-up @{steps.ok.outcome}"}}
        ]
    })
}

#[test]
fn a_flow_using_every_kind_of_reference_passes() {
    assert_eq!(problems(&flow(welcome())), Vec::<String>::new());
    let toml_text = r#"
name = "Nightly"
owner = "m@x.test"
state = "off"
[trigger]
kind = "schedule"
cron = "0 2 * * 1-5"
[[steps]]
kind = "delete_record"
name = "gone"
entity = "Account"
id = "@{trigger.time}"
"#;
    let f: FlowDef = toml::from_str(toml_text).unwrap();
    assert_eq!(f.state, FlowState::Off);
    assert_eq!(problems(&f), Vec::<String>::new());
}

#[test]
fn each_problem_names_the_flow_the_step_and_the_field() {
    let mut v = welcome();
    v["trigger"]["entity"] = "Contact".into();
    v["steps"][0]["filter"] = "Nope eq '@{trigger.record.Ghost}'".into();
    v["steps"][1]["then"][0]["values"] =
        serde_json::json!({"Missing": "@{steps.later.record.Name}"});
    v["steps"][2]["to"] = serde_json::json!(["not-an-address"]);
    v["steps"][3]["method"] = "FETCH".into();
    v["steps"][5]["values"] = serde_json::json!({"Name": "@{steps.ok.verdict}"});
    let p = problems(&flow(v));
    let expect = [
        "flow 'Welcome': step 'find' filter: @{trigger.record.Ghost}: 'Ghost' is not a field of 'Contact'",
        "flow 'Welcome': step 'link' values: 'Missing' is not a field of 'Contact'",
        "flow 'Welcome': step 'link' values 'Missing': @{steps.later.record.Name}: no step 'later' before this one",
        "flow 'Welcome': step 'mail' to: 'not-an-address' is not an e-mail address",
        "flow 'Welcome': step 'hook' method: 'FETCH' is not GET, POST, PUT, PATCH or DELETE",
        "flow 'Welcome': step 'task' values 'Name': @{steps.ok.verdict}: step 'ok' has no output 'verdict' (it has outcome, responder, comment)",
    ];
    for e in expect {
        assert!(p.iter().any(|x| x == e), "missing {e:?} in {p:#?}");
    }
    assert!(
        p.iter()
            .any(|x| x.starts_with("flow 'Welcome': step 'find' filter:") && x.contains("Nope")),
        "{p:#?}"
    );
}

#[test]
fn triggers_and_conditions_are_checked() {
    let mut v = welcome();
    v["trigger"] = serde_json::json!({"kind": "schedule", "every": "0m"});
    let p = problems(&flow(v.clone()));
    assert!(
        p.iter()
            .any(|x| x == "flow 'Welcome': trigger every: a schedule runs at most once a minute"),
        "{p:#?}"
    );
    // Without a record trigger, trigger.record means nothing.
    assert!(
        p.iter().any(|x| x.contains("@{trigger.record.FullName/last_name}: this trigger has no record")),
        "{p:#?}"
    );
    v["trigger"] = serde_json::json!({"kind": "schedule", "cron": "0 2 * *"});
    assert!(
        problems(&flow(v.clone()))
            .iter()
            .any(|x| x.contains("has 4 fields"))
    );
    v["trigger"] = serde_json::json!({"kind": "record_updated", "entity": "Ghost"});
    assert!(
        problems(&flow(v.clone()))
            .iter()
            .any(|x| x == "flow 'Welcome': trigger: no entity 'Ghost'")
    );
    let mut v = welcome();
    v["steps"][1]["expression"] = "steps/find/count gt 'many'".into();
    assert!(
        problems(&flow(v))
            .iter()
            .any(|x| x.starts_with("flow 'Welcome': step 'known' expression:")),
    );
    assert_eq!(every_minutes("2h"), Ok(120));
}

#[test]
fn every_refuses_what_it_cannot_schedule_without_panicking() {
    assert_eq!(every_minutes("1d"), Ok(1440));
    for bad in [
        "",
        "m",
        "5",
        "5é",
        "é",
        "0m",
        "-5m",
        "4611686018427387904m",
        "367d",
    ] {
        assert!(every_minutes(bad).is_err(), "{bad:?}");
    }
    assert!(every_minutes("366d").is_ok());
}

#[test]
fn templates_are_found_and_unclosed_ones_refused() {
    assert_eq!(templates("a @{x.y} b @{ z }").unwrap(), ["x.y", "z"]);
    assert!(templates("a @{x").is_err());
    assert_eq!(
        fill_templates("Name eq '@{a.b}' and Revenue gt @{c}"),
        "Name eq '00000000-0000-0000-0000-000000000000' and Revenue gt 0"
    );
}

#[test]
fn unknown_step_kinds_and_keys_are_refused() {
    let mut v = welcome();
    v["steps"][0]["kind"] = "teleport".into();
    assert!(
        serde_json::from_value::<FlowDef>(v)
            .unwrap_err()
            .to_string()
            .contains("teleport")
    );
    let mut v = welcome();
    v["steps"][0]["topp"] = 3.into();
    assert!(
        serde_json::from_value::<FlowDef>(v)
            .unwrap_err()
            .to_string()
            .contains("topp")
    );
}
