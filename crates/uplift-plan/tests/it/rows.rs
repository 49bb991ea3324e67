//! Rows through the transforms: what a source row becomes, which rows warn, which fail.

use std::collections::BTreeMap;

use time::macros::{date, datetime};
use uplift_model::layout::entity_columns;
use uplift_model::{ColType, Entity, FieldType, SchemaVersion, Value};
use uplift_plan::{EntityTransform, RowOutcome, Severity, Upgrade, evaluate};

use crate::support::*;

/// A source row of `entity` with every column NULL except `id` and the given ones.
fn row(entity: &Entity, set: &[(&str, Value)]) -> BTreeMap<String, Value> {
    let mut r: BTreeMap<String, Value> = entity_columns(entity, SchemaVersion::Classic)
        .into_iter()
        .map(|c| (c.name, Value::Null))
        .collect();
    r.insert(
        "id".into(),
        Value::Text("0190a5e0-0000-7000-8000-000000000001".into()),
    );
    for (c, v) in set {
        assert!(r.contains_key(*c), "{} has no column {c}", entity.name);
        r.insert(c.to_string(), v.clone());
    }
    r
}

fn transform<'a>(u: &'a Upgrade, source: &str) -> &'a EntityTransform {
    u.transform(source)
        .unwrap_or_else(|| panic!("no transform for {source}"))
}

fn run(u: &Upgrade, source_entity: &str, set: &[(&str, Value)]) -> (RowOutcome, Vec<String>) {
    let catalog = catalog();
    let e = catalog
        .entity(source_entity)
        .unwrap_or_else(|| panic!("{source_entity}"));
    let t = transform(u, source_entity);
    let out = evaluate(t, &row(e, set), &ctx()).unwrap_or_else(|e| panic!("{e}"));
    let reasons = out
        .warnings()
        .iter()
        .chain(out.errors())
        .filter_map(|i| t.checks.get(*i))
        .map(|c| c.reason.clone())
        .collect();
    (out, reasons)
}

fn value<'a>(
    u: &'a Upgrade,
    source_entity: &str,
    out: &'a RowOutcome,
    column: &str,
) -> Option<&'a Value> {
    out.value(transform(u, source_entity), column)
}

#[test]
fn dates_before_1753_are_clamped_with_a_warning_each() {
    let u = upgrade();
    let cases = [
        // (entity, source column, value, target column, expected, warns)
        (
            "Contact",
            "birthday",
            Value::Date(date!(1700 - 05 - 06)),
            "birthday",
            Value::Date(date!(1753 - 01 - 01)),
            true,
        ),
        (
            "Contact",
            "birthday",
            Value::Date(date!(1990 - 05 - 06)),
            "birthday",
            Value::Date(date!(1990 - 05 - 06)),
            false,
        ),
        (
            "Project",
            "kickoff",
            Value::DateTime(datetime!(1600-03-04 05:06:07 UTC)),
            "cr_kickoff",
            Value::DateTime(datetime!(1753-01-01 00:00 UTC)),
            true,
        ),
        (
            "Project",
            "kickoff",
            Value::DateTime(datetime!(2024-03-04 05:06:07.891 UTC)),
            "cr_kickoff",
            Value::DateTime(datetime!(2024-03-04 05:06:07.891 UTC)),
            false,
        ),
        (
            "Contact",
            "createddatetime",
            Value::DateTime(datetime!(1700-01-01 00:00 UTC)),
            "overriddencreatedon",
            Value::DateTime(datetime!(1753-01-01 00:00 UTC)),
            true,
        ),
        (
            "Contact",
            "birthday",
            Value::Null,
            "birthday",
            Value::Null,
            false,
        ),
    ];
    for (entity, column, input, target_column, expected, warns) in cases {
        let (out, reasons) = run(&u, entity, &[(column, input.clone())]);
        assert!(
            matches!(out, RowOutcome::Copied { .. }),
            "{entity}.{column}: {out:?}"
        );
        assert_eq!(
            value(&u, entity, &out, target_column),
            Some(&expected),
            "{entity}.{column} = {input:?}"
        );
        assert_eq!(!reasons.is_empty(), warns, "{entity}.{column}: {reasons:?}");
        if warns {
            assert!(
                reasons[0].contains("a date before 1753-01-01 became 1753-01-01"),
                "{reasons:?}"
            );
        }
    }
}

#[test]
fn system_fields_keep_creation_and_take_the_upgrade_for_the_rest() {
    let u = upgrade();
    let created = datetime!(2019-02-03 04:05:06.789 UTC);
    let (out, reasons) = run(
        &u,
        "Account",
        &[
            ("name", Value::Text("Contoso".into())),
            ("createddatetime", Value::DateTime(created)),
            ("createdby", Value::Text("ann@example.com".into())),
            (
                "modifieddatetime",
                Value::DateTime(datetime!(2020-01-01 00:00 UTC)),
            ),
            ("modifiedby", Value::Text("bob@example.com".into())),
            ("_version", Value::Int(7)),
        ],
    );
    assert!(reasons.is_empty(), "{reasons:?}");
    let at = Value::DateTime(ctx().upgrade_time);
    let actor = Value::Text(ctx().actor);
    let cases = [
        ("overriddencreatedon", Value::DateTime(created)),
        ("createdonbehalfby", Value::Text("ann@example.com".into())),
        ("createdon", at.clone()),
        ("createdby", actor.clone()),
        ("modifiedon", at),
        ("modifiedby", actor),
        ("name", Value::Text("Contoso".into())),
        (
            "id",
            Value::Text("0190a5e0-0000-7000-8000-000000000001".into()),
        ),
        ("_version", Value::Int(7)),
    ];
    for (column, expected) in cases {
        assert_eq!(
            value(&u, "Account", &out, column),
            Some(&expected),
            "{column}"
        );
    }
}

#[test]
fn money_takes_the_rate_of_its_currency_and_a_missing_rate_fails_the_row() {
    let u = upgrade();
    let cases = [
        // (code, value) → Some((base_value, rate)) or None for a row error
        (Some("EUR"), Some("100.00"), Some(("100.00", "1"))),
        (Some("USD"), Some("100.00"), Some(("90.00", "0.9"))),
        (Some("CHF"), Some("10.01"), Some(("10.51", "1.05"))),
        (Some("GBP"), Some("100.00"), None),
    ];
    for (code, amount, expected) in cases {
        let amount = amount.map(dec);
        let set = [
            ("name", Value::Text("Contoso".into())),
            (
                "revenue__code",
                code.map_or(Value::Null, |c| Value::Text(c.into())),
            ),
            ("revenue__value", amount.map_or(Value::Null, Value::Decimal)),
        ];
        let (out, reasons) = run(&u, "Account", &set);
        match expected {
            Some((base, rate)) => {
                assert!(reasons.is_empty(), "{code:?}: {reasons:?}");
                let v = |c| value(&u, "Account", &out, c).cloned();
                assert_eq!(v("revenue__value"), amount.map(Value::Decimal), "{code:?}");
                assert_eq!(v("revenue__currency"), code.map(|c| Value::Text(c.into())));
                // Exact, with the base currency's two decimal places.
                let got_base = v("revenue__base_value").map(|v| match v {
                    Value::Decimal(d) => d.to_string(),
                    other => format!("{other:?}"),
                });
                assert_eq!(got_base.as_deref(), Some(base), "{code:?}");
                assert_eq!(v("revenue__exchange_rate"), Some(Value::Decimal(dec(rate))));
            }
            None => {
                assert!(
                    matches!(out, RowOutcome::Rejected { .. }),
                    "{code:?}: {out:?}"
                );
                assert!(
                    reasons
                        .iter()
                        .any(|r| r.contains("Revenue: no exchange rate")),
                    "{reasons:?}"
                );
            }
        }
    }
    let (out, _) = run(&u, "Account", &[("name", Value::Text("Empty".into()))]);
    assert_eq!(
        value(&u, "Account", &out, "revenue__base_value"),
        Some(&Value::Null)
    );
}

#[test]
fn picklist_labels_become_option_values_and_an_unknown_label_fails_the_row() {
    let u = upgrade();
    let cases = [
        ("Manufacturing", Some(100_000_000)),
        ("Retail", Some(100_000_001)),
        ("finance", Some(100_000_004)),
        ("Agriculture", None),
    ];
    for (label, expected) in cases {
        let (out, reasons) = run(&u, "Account", &[("industry", Value::Text(label.into()))]);
        match expected {
            Some(v) => assert_eq!(
                value(&u, "Account", &out, "industry"),
                Some(&Value::Int(v)),
                "{label}"
            ),
            None => {
                assert!(matches!(out, RowOutcome::Rejected { .. }), "{label}");
                assert!(
                    reasons
                        .iter()
                        .any(|r| r.contains("Industry: the value is not one of")),
                    "{reasons:?}"
                );
            }
        }
    }
}

#[test]
fn quantities_round_with_a_warning_or_fail_when_the_plan_rejects_fractions() {
    let u = upgrade();
    let cases = [("2.0", 2, false), ("2.5", 3, true), ("-0.4", 0, true)];
    for (input, expected, warns) in cases {
        let (out, reasons) = run(
            &u,
            "Product",
            &[("quantityonhand", Value::Decimal(dec(input)))],
        );
        assert_eq!(
            value(&u, "Product", &out, "quantityonhand"),
            Some(&Value::Int(expected)),
            "{input}"
        );
        assert_eq!(!reasons.is_empty(), warns, "{input}: {reasons:?}");
    }
    let (out, _) = run(
        &u,
        "Product",
        &[(
            "quantityonhand",
            Value::Decimal(dec("10000000000000000000")),
        )],
    );
    assert!(matches!(out, RowOutcome::Rejected { .. }), "{out:?}");

    let strict = plan_with("fraction = \"round\"", "fraction = \"reject\"");
    let u = upgrade_with(&strict, &catalog());
    let (out, reasons) = run(
        &u,
        "Product",
        &[("quantityonhand", Value::Decimal(dec("2.5")))],
    );
    assert!(matches!(out, RowOutcome::Rejected { .. }), "{out:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("cannot become a whole number")),
        "{reasons:?}"
    );
    let (out, _) = run(
        &u,
        "Product",
        &[("quantityonhand", Value::Decimal(dec("3.0")))],
    );
    assert_eq!(
        value(&u, "Product", &out, "quantityonhand"),
        Some(&Value::Int(3))
    );
}

#[test]
fn dropped_values_are_row_warnings_and_the_row_is_copied() {
    let u = upgrade();
    let cases = [
        (
            "Account",
            "owner",
            Value::Text("ann@example.com".into()),
            "Owner: the value is not upgraded",
        ),
        (
            "Project",
            "tax",
            Value::Text("0190a5e0-0000-7000-8000-0000000000aa".into()),
            "Tax: the value is not upgraded",
        ),
    ];
    for (entity, column, input, expected) in cases {
        let (out, reasons) = run(&u, entity, &[(column, input)]);
        assert!(matches!(out, RowOutcome::Copied { .. }), "{out:?}");
        assert!(reasons.iter().any(|r| r.contains(expected)), "{reasons:?}");
        let (_, quiet) = run(&u, entity, &[]);
        assert!(quiet.is_empty(), "{quiet:?}");
    }
}

#[test]
fn flattened_parts_and_retargeted_lookups_keep_their_values() {
    let u = upgrade();
    let id = Value::Text("0190a5e0-0000-7000-8000-0000000000bb".into());
    let (out, _) = run(
        &u,
        "Project",
        &[
            ("site__city", Value::Text("Lyon".into())),
            ("sponsor__last_name", Value::Text("Curie".into())),
            ("assignment", id.clone()),
            ("billable", Value::Bool(true)),
            ("logo", Value::Bytes(vec![1, 2, 3])),
        ],
    );
    let cases = [
        ("cr_site_city", Value::Text("Lyon".into())),
        ("cr_site_line1", Value::Null),
        ("cr_sponsor_last_name", Value::Text("Curie".into())),
        ("cr_assignment", id),
        ("cr_billable", Value::Bool(true)),
        ("cr_logo", Value::Bytes(vec![1, 2, 3])),
    ];
    for (column, expected) in cases {
        assert_eq!(
            value(&u, "Project", &out, column),
            Some(&expected),
            "{column}"
        );
    }
}

/// A plausible non-NULL value for every column of a source entity.
fn full_row(entity: &Entity) -> BTreeMap<String, Value> {
    let mut r = BTreeMap::new();
    for c in entity_columns(entity, SchemaVersion::Classic) {
        let field = entity.field(SchemaVersion::Classic, &c.field);
        let v = match (field.map(|f| &f.ty), c.part, c.ty) {
            (Some(FieldType::Picklist { options }), _, _) => {
                Value::Text(options.first().cloned().unwrap_or_default())
            }
            (Some(FieldType::Currency), Some("code"), _) => Value::Text("USD".into()),
            (_, _, ColType::Text) => Value::Text("x@example.com".into()),
            (_, _, ColType::Int) => Value::Int(7),
            (_, _, ColType::Decimal) => Value::Decimal(dec("7.25")),
            (_, _, ColType::Bool) => Value::Bool(false),
            (_, _, ColType::Date) => Value::Date(date!(1600 - 01 - 01)),
            (_, _, ColType::DateTime) => Value::DateTime(datetime!(2001-01-01 00:00 UTC)),
            (_, _, ColType::Bytes) => Value::Bytes(vec![0]),
        };
        r.insert(c.name, v);
    }
    r
}

fn class(v: &Value) -> Option<ColType> {
    Some(match v {
        Value::Null => return None,
        Value::Text(_) => ColType::Text,
        Value::Int(_) => ColType::Int,
        Value::Decimal(_) => ColType::Decimal,
        Value::Bool(_) => ColType::Bool,
        Value::Date(_) => ColType::Date,
        Value::DateTime(_) => ColType::DateTime,
        Value::Bytes(_) => ColType::Bytes,
    })
}

/// Every transform yields values of its target columns' storage classes, so the store
/// can bind them as they are.
#[test]
fn every_value_has_its_target_columns_storage_class() {
    let source = catalog();
    let u = upgrade();
    for t in &u.entities {
        let e = source
            .entity(&t.source_entity)
            .unwrap_or_else(|| panic!("{}", t.source_entity));
        let out = evaluate(t, &full_row(e), &ctx()).unwrap_or_else(|e| panic!("{e}"));
        let RowOutcome::Copied { values, warnings } = &out else {
            panic!("{}: {out:?}", t.source_entity);
        };
        for (c, v) in t.columns.iter().zip(values) {
            if let Some(found) = class(v) {
                assert_eq!(found, c.ty, "{}.{} = {v:?}", t.target_entity, c.name);
            }
        }
        for i in warnings {
            assert_eq!(
                t.checks.get(*i).map(|c| c.severity),
                Some(Severity::Warning)
            );
        }
    }
}

fn dec(s: &str) -> uplift_model::Decimal {
    uplift_model::Decimal::from_str_exact(s).unwrap()
}
