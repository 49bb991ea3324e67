//! The row transforms run backwards, as a revert does: a record written on the upgraded
//! entity goes back into the original's columns, every value the classic type can hold
//! coming back as it was.

use std::collections::BTreeMap;

use time::macros::{date, datetime};
use uplift_model::layout::entity_columns;
use uplift_model::{Decimal, SchemaVersion, Value};
use uplift_plan::{Inverse, RowOutcome, evaluate, inverse};

use crate::support::*;

fn inverse_of(source: &str) -> Inverse {
    let u = upgrade();
    inverse(&u, &catalog())
        .into_iter()
        .find(|i| i.transform.target_entity == source)
        .unwrap_or_else(|| panic!("no inverse for {source}"))
}

/// A classic `Project` row with `set`, through the forward transform and back.
fn round_trip(set: &[(&str, Value)]) -> BTreeMap<String, Value> {
    let (u, c) = (upgrade(), catalog());
    let e = c.entity("Project").unwrap();
    let mut row: BTreeMap<String, Value> = entity_columns(e, SchemaVersion::Classic)
        .into_iter()
        .map(|c| (c.name, Value::Null))
        .collect();
    row.insert("id".into(), Value::Text("r1".into()));
    row.insert("_version".into(), Value::Int(3));
    for (k, v) in set {
        assert!(row.contains_key(*k), "no column {k}");
        row.insert(k.to_string(), v.clone());
    }
    let forward = u.transform("Project").unwrap();
    let RowOutcome::Copied { values, .. } = evaluate(forward, &row, &ctx()).unwrap() else {
        panic!("the row was refused");
    };
    let modern: BTreeMap<String, Value> = forward
        .columns
        .iter()
        .map(|c| c.name.clone())
        .zip(values)
        .collect();
    let back = inverse_of("Project").transform;
    let RowOutcome::Copied { values, .. } = evaluate(&back, &modern, &ctx()).unwrap() else {
        panic!("the inverse refused the row");
    };
    back.columns
        .iter()
        .map(|c| c.name.clone())
        .zip(values)
        .collect()
}

fn dec(s: &str) -> Value {
    Value::Decimal(Decimal::from_str_exact(s).unwrap())
}

#[test]
fn values_the_classic_type_holds_come_back_as_they_were() {
    let cases: Vec<(&str, Value)> = vec![
        ("code", Value::Text("P-1".into())),
        ("contactemail", Value::Text("a@b.org".into())),
        ("site__city", Value::Text("Lyon".into())),
        ("sponsor__last_name", Value::Text("Curie".into())),
        ("priority", Value::Int(7)),
        ("headcount", Value::Int(12)),
        ("effort", dec("40")),
        ("billable", Value::Bool(true)),
        ("budget__value", dec("11.00")),
        ("budget__code", Value::Text("USD".into())),
        ("startdate", Value::Date(date!(2024 - 02 - 29))),
        (
            "kickoff",
            Value::DateTime(datetime!(2024-03-01 09:30:00 UTC)),
        ),
        ("stage", Value::Text("Active".into())),
        (
            "createddatetime",
            Value::DateTime(datetime!(2020-01-02 03:04:05 UTC)),
        ),
        ("_version", Value::Int(3)),
    ];
    let back = round_trip(&cases);
    for (column, expected) in cases {
        assert_eq!(back.get(column), Some(&expected), "{column}: {back:#?}");
    }
}

#[test]
fn a_value_the_upgrade_dropped_is_not_written_back() {
    let back = inverse_of("Project").transform;
    for dropped in ["manager", "tax"] {
        assert!(
            back.column(dropped).is_none(),
            "{dropped} would be overwritten: {:?}",
            back.columns.iter().map(|c| &c.name).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_record_made_after_the_upgrade_keeps_its_own_audit_values() {
    let back = inverse_of("Project").transform;
    let modern: BTreeMap<String, Value> = [
        (
            "createdon",
            Value::DateTime(datetime!(2026-12-01 10:00:00 UTC)),
        ),
        ("overriddencreatedon", Value::Null),
        (
            "modifiedon",
            Value::DateTime(datetime!(2026-12-02 11:00:00 UTC)),
        ),
        ("modifiedby", Value::Text("ann@x.org".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let row: BTreeMap<String, Value> = back
        .source_columns()
        .into_iter()
        .map(|c| (c.to_string(), modern.get(c).cloned().unwrap_or(Value::Null)))
        .collect();
    let out = evaluate(&back, &row, &ctx()).unwrap();
    for (column, expected) in [
        ("createddatetime", modern["createdon"].clone()),
        ("modifieddatetime", modern["modifiedon"].clone()),
        ("modifiedby", modern["modifiedby"].clone()),
    ] {
        assert_eq!(out.value(&back, column), Some(&expected), "{column}");
    }
}

#[test]
fn an_option_value_goes_back_as_its_label_and_an_unknown_one_as_nothing() {
    let back = inverse_of("Project").transform;
    let stage = back.column("stage").expect("stage is carried back");
    let (column, first) = match &stage.expr {
        uplift_model::transform::ColumnExpr::OptionLabel { column, options } => {
            (column.clone(), options[0].0)
        }
        other => panic!("stage is read back by {other:?}"),
    };
    let modern = |v: Value| -> BTreeMap<String, Value> {
        back.source_columns()
            .into_iter()
            .map(|c| {
                (
                    c.to_string(),
                    if c == column { v.clone() } else { Value::Null },
                )
            })
            .collect()
    };
    for (value, label) in [
        (Value::Int(first), Value::Text("Planned".into())),
        (Value::Int(first + 2), Value::Text("Done".into())),
        (Value::Int(first + 99), Value::Null),
        (Value::Null, Value::Null),
    ] {
        let out = evaluate(&back, &modern(value.clone()), &ctx()).unwrap();
        assert_eq!(out.value(&back, "stage"), Some(&label), "{value:?}");
    }
}

#[test]
fn values_without_a_classic_counterpart_are_listed_as_lost() {
    let u = upgrade();
    let gadget = target(&u, "Gadget");
    let lost: Vec<String> = inverse_of("Gadget")
        .lost
        .into_iter()
        .map(|l| l.field)
        .collect();
    assert_eq!(
        lost,
        vec![gadget.business_key.clone().unwrap()],
        "Gadget's new primary name field"
    );
    let project: Vec<String> = inverse_of("Project")
        .lost
        .into_iter()
        .map(|l| l.field)
        .collect();
    for derived in ["createdon", "modifiedon", "budget"] {
        assert!(
            !project.iter().any(|f| f.eq_ignore_ascii_case(derived)),
            "{derived} is not lost: {project:?}"
        );
    }
}

#[test]
fn an_autonumber_is_left_to_the_original_database_to_give() {
    let i = inverse_of("SalesOrder");
    assert_eq!(i.numbered, vec!["ordernumber".to_string()]);
    assert!(
        i.transform.column("ordernumber").is_none(),
        "not written back"
    );
    assert!(
        i.lost
            .iter()
            .any(|l| l.reason.contains("numbered by the original")),
        "{:?}",
        i.lost
    );
}
