//! The app and flow rewriter, table-driven: a definition in, exactly the expected
//! definition and findings out.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uplift_model::app::AppDef;
use uplift_model::flow::FlowDef;
use uplift_plan::rewrite::{NameMap, rewrite_app, rewrite_flow};

use crate::support::{catalog, upgrade};

/// Rewrites a one-view app and compares the view and the findings (as JSON, so a
/// table row reads like what a maker sees).
fn check_view(view: Value, expect_view: Value, expect_findings: Value) {
    let source = catalog();
    let up = upgrade();
    let map = NameMap::new(&source, &up.target, &up.changes);
    let app: AppDef = serde_json::from_value(json!({
        "name": "A", "owner": "maker@example.com", "views": [view]
    }))
    .unwrap();
    let out = rewrite_app(&app, &map, &BTreeMap::new());
    let got = serde_json::to_value(&out.def.views[0]).unwrap();
    assert_eq!(got, expect_view, "view of {view}");
    assert_eq!(
        serde_json::to_value(&out.findings).unwrap(),
        expect_findings,
        "findings of {view}"
    );
}

fn view(entity: &str, columns: &[&str], filter: Option<&str>, orderby: Option<&str>) -> Value {
    let mut v = json!({"name": "V", "entity": entity, "columns": columns});
    if let Some(f) = filter {
        v["filter"] = json!(f);
    }
    if let Some(o) = orderby {
        v["orderby"] = json!(o);
    }
    v
}

#[test]
fn view_names_follow_the_plan() {
    let cases = [
        // A custom entity gains the prefix; its fields too.
        (
            view("Project", &["Code", "Priority"], None, None),
            view("cr_project", &["cr_code", "cr_priority"], None, None),
        ),
        // A standard entity renamed by the plan.
        (
            view("PositionWorkerAssignment", &["id"], None, None),
            view("cdm_positionworkerassignmentmap", &["id"], None, None),
        ),
        // A complex column becomes its flattened fields; a sub-property one field.
        (
            view("Contact", &["FullName", "Address/city"], None, None),
            view(
                "contact",
                &[
                    "fullname_first_name",
                    "fullname_middle_name",
                    "fullname_last_name",
                    "address_city",
                ],
                None,
                None,
            ),
        ),
        // Currency columns become the Money field.
        (
            view("Project", &["Budget", "Budget/value"], None, None),
            view("cr_project", &["cr_budget", "cr_budget/value"], None, None),
        ),
    ];
    for (input, expect) in cases {
        check_view(input, expect, json!([]));
    }
}

#[test]
fn filters_and_orders_are_rewritten_and_printed_back() {
    let cases = [
        (
            "Address/city eq 'Oslo' and FullName/last_name ne null",
            "address_city eq 'Oslo' and fullname_last_name ne null",
        ),
        (
            "contains(Email, '@') or not (FullName/first_name eq 'x')",
            "contains(email, '@') or not (fullname_first_name eq 'x')",
        ),
    ];
    for (filter, expect) in cases {
        check_view(
            view(
                "Contact",
                &["id"],
                Some(filter),
                Some("FullName/last_name desc, Email"),
            ),
            view(
                "contact",
                &["id"],
                Some(expect),
                Some("fullname_last_name desc, email"),
            ),
            json!([]),
        );
    }
}

#[test]
fn picklist_labels_become_option_values_and_money_parts_money_fields() {
    let cases = [
        ("Stage eq 'Active'", "cr_stage eq 100000001"),
        ("'Done' ne Stage", "100000002 ne cr_stage"),
        (
            "Budget/code eq 'EUR' and Budget/value gt 10.50",
            "cr_budget/currency eq 'EUR' and cr_budget/value gt 10.50",
        ),
    ];
    for (filter, expect) in cases {
        check_view(
            view("Project", &["id"], Some(filter), None),
            view("cr_project", &["id"], Some(expect), None),
            json!([]),
        );
    }
}

#[test]
fn what_cannot_be_rewritten_is_left_in_place_as_a_finding() {
    let cases = [
        (
            view("Project", &["Manager"], None, None),
            view("cr_project", &["Manager"], None, None),
            json!([{"severity": "error", "location": "view 'V' column 'Manager'",
                    "message": "'Manager' is not upgraded (user and group fields are not upgraded)"}]),
        ),
        (
            view(
                "Contact",
                &["id"],
                Some("ModifiedDateTime gt 2024-01-01T00:00:00Z"),
                None,
            ),
            view(
                "contact",
                &["id"],
                Some("ModifiedDateTime gt 2024-01-01T00:00:00Z"),
                None,
            ),
            json!([{"severity": "error", "location": "view 'V' filter",
                    "message": "'ModifiedDateTime' is not upgraded (not carried: modifiedon is set to the upgrade time)",
                    "suggestion": "use 'modifiedon'"}]),
        ),
        (
            view("Project", &["id"], Some("Stage eq 'Cancelled'"), None),
            view("cr_project", &["id"], Some("cr_stage eq 'Cancelled'"), None),
            json!([{"severity": "error", "location": "view 'V' filter",
                    "message": "'Cancelled' is not an option (the options are Planned, Active, Done)"}]),
        ),
        (
            view("SalesOrderTax", &["id"], None, None),
            view("SalesOrderTax", &["id"], None, None),
            json!([{"severity": "error", "location": "view 'V'",
                    "message": "entity 'SalesOrderTax' is not upgraded (tax entities of orders are not upgraded)"}]),
        ),
    ];
    for (input, expect, findings) in cases {
        check_view(input, expect, findings);
    }
}

fn flow(def: Value) -> FlowDef {
    serde_json::from_value(def).unwrap()
}

#[test]
fn flows_have_triggers_steps_values_and_templates_rewritten() {
    let source = catalog();
    let up = upgrade();
    let map = NameMap::new(&source, &up.target, &up.changes);
    let input = flow(json!({
        "name": "Greet", "owner": "maker@example.com",
        "trigger": {"kind": "record_created", "entity": "Contact", "filter": "Address/country eq 'NO'"},
        "steps": [
            {"kind": "list_records", "name": "same", "entity": "Contact",
             "filter": "FullName/last_name eq '@{trigger.record.FullName/last_name}'"},
            {"kind": "condition", "name": "many", "expression": "steps/same/count gt 1 and trigger/record/Address/city ne null",
             "then": [
                {"kind": "send_email", "name": "greet", "to": ["@{trigger.record.Email}"],
                 "subject": "Hello @{trigger.record.FullName/first_name}", "body": "from @{steps.same.value[0].Address/city}"}
             ]},
            {"kind": "create_record", "name": "project", "entity": "Project",
             "values": {"Code": "P-@{trigger.record.id}", "Stage": "Planned",
                        "Sponsor": {"last_name": "@{trigger.record.FullName/last_name}"},
                        "Budget": {"code": "EUR", "value": 11}}}
        ]
    }));
    let expect = flow(json!({
        "name": "Greet", "owner": "maker@example.com",
        "trigger": {"kind": "record_created", "entity": "contact", "filter": "address_country eq 'NO'"},
        "steps": [
            {"kind": "list_records", "name": "same", "entity": "contact",
             "filter": "fullname_last_name eq '@{trigger.record.fullname_last_name}'"},
            {"kind": "condition", "name": "many", "expression": "steps/same/count gt 1 and trigger/record/address_city ne null",
             "then": [
                {"kind": "send_email", "name": "greet", "to": ["@{trigger.record.email}"],
                 "subject": "Hello @{trigger.record.fullname_first_name}", "body": "from @{steps.same.value[0].address_city}"}
             ]},
            {"kind": "create_record", "name": "project", "entity": "cr_project",
             "values": {"cr_code": "P-@{trigger.record.id}", "cr_stage": 100000000,
                        "cr_sponsor_last_name": "@{trigger.record.fullname_last_name}",
                        "cr_budget": {"currency": "EUR", "value": 11}}}
        ]
    }));
    let out = rewrite_flow(&input, &map);
    assert_eq!(out.def, expect);
    assert_eq!(
        out.uses,
        [
            "Contact",
            "Contact.Address/city",
            "Contact.Address/country",
            "Contact.Email",
            "Contact.FullName/first_name",
            "Contact.FullName/last_name",
            "Contact.id",
            "Project",
            "Project.Budget",
            "Project.Code",
            "Project.Sponsor",
            "Project.Sponsor/last_name",
            "Project.Stage",
        ]
    );
    assert_eq!(
        serde_json::to_value(&out.findings).unwrap(),
        json!([{"severity": "warning", "location": "step 'project' value 'Budget'",
                "message": "a Money value takes an exchange rate; without one it is 1"}])
    );
}

#[test]
fn app_commands_run_the_upgraded_clone_of_their_flow() {
    let source = catalog();
    let up = upgrade();
    let map = NameMap::new(&source, &up.target, &up.changes);
    let app: AppDef = serde_json::from_value(json!({
        "name": "A", "owner": "maker@example.com",
        "commands": [{"label": "Close", "entity": "Project", "flow": "f-1"},
                     {"label": "Open", "entity": "Project", "flow": "f-2"}]
    }))
    .unwrap();
    let clones = BTreeMap::from([("f-1".to_string(), "f-1-upgraded".to_string())]);
    let out = rewrite_app(&app, &map, &clones);
    assert_eq!(
        serde_json::to_value(&out.def.commands).unwrap(),
        json!([{"label": "Close", "entity": "cr_project", "flow": "f-1-upgraded"},
               {"label": "Open", "entity": "cr_project", "flow": "f-2"}])
    );
    assert_eq!(
        serde_json::to_value(&out.findings).unwrap(),
        json!([{"severity": "warning", "location": "command 'Open'",
                "message": "flow 'f-2' has no upgraded clone: the command still runs the original"}])
    );
}
