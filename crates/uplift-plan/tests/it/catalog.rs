//! The target catalog and the change list: DESIGN §2's mapping table and bullets.

use std::collections::{BTreeMap, HashSet};

use uplift_model::entity::system_fields;
use uplift_model::layout::entity_columns;
use uplift_model::standard::classic_catalog;
use uplift_model::{Catalog, FieldType, OptionValue, SchemaVersion, TextFormat};
use uplift_plan::{Action, ApplyError, Options, apply};

use crate::support::*;

fn text(format: TextFormat, max_length: u32) -> FieldType {
    FieldType::SingleLineText { format, max_length }
}

/// Target field names with their types.
type Targets = Vec<(&'static str, FieldType)>;

/// Every row of the mapping table, on the custom entity that uses every classic type.
#[test]
fn every_classic_type_becomes_its_modern_type() {
    let u = upgrade();
    let project = target(&u, "Project");
    let part = || text(TextFormat::Text, 250);
    use FieldType as T;
    let cases: Vec<(&str, Targets, Action)> = vec![
        (
            "Code",
            vec![("cr_code", text(TextFormat::Text, 40))],
            Action::Retyped,
        ),
        (
            "ContactEmail",
            vec![("cr_contactemail", text(TextFormat::Email, 100))],
            Action::Retyped,
        ),
        (
            "Hotline",
            vec![("cr_hotline", text(TextFormat::Phone, 50))],
            Action::Retyped,
        ),
        (
            "Homepage",
            vec![("cr_homepage", text(TextFormat::Url, 200))],
            Action::Retyped,
        ),
        (
            "ExternalKey",
            vec![("cr_externalkey", text(TextFormat::Text, 100))],
            Action::Retyped,
        ),
        (
            "Summary",
            vec![("cr_summary", T::MultipleLinesOfText { max_length: 500 })],
            Action::Retyped,
        ),
        (
            "Spec",
            vec![(
                "cr_spec",
                T::MultipleLinesOfText {
                    max_length: uplift_model::types::LARGE_TEXT_MAX_CHARS,
                },
            )],
            Action::Retyped,
        ),
        (
            "Site",
            vec![
                ("cr_site_line1", part()),
                ("cr_site_line2", part()),
                ("cr_site_city", part()),
                ("cr_site_state_or_province", part()),
                ("cr_site_postal_code", part()),
                ("cr_site_country", part()),
            ],
            Action::Flattened,
        ),
        (
            "Sponsor",
            vec![
                ("cr_sponsor_first_name", part()),
                ("cr_sponsor_middle_name", part()),
                ("cr_sponsor_last_name", part()),
            ],
            Action::Flattened,
        ),
        (
            "Ticket",
            vec![("cr_ticket", T::WholeNumber)],
            Action::Retyped,
        ),
        (
            "Priority",
            vec![("cr_priority", T::WholeNumber)],
            Action::Retyped,
        ),
        (
            "Headcount",
            vec![("cr_headcount", T::WholeNumber)],
            Action::Retyped,
        ),
        (
            "Effort",
            vec![("cr_effort", T::WholeNumber)],
            Action::Retyped,
        ),
        (
            "Billable",
            vec![("cr_billable", T::TwoOptions)],
            Action::Retyped,
        ),
        ("Budget", vec![("cr_budget", T::Money)], Action::Retyped),
        (
            "StartDate",
            vec![("cr_startdate", T::ModernDateTime { date_only: true })],
            Action::Retyped,
        ),
        (
            "Kickoff",
            vec![("cr_kickoff", T::ModernDateTime { date_only: false })],
            Action::Renamed,
        ),
        (
            "Stage",
            vec![(
                "cr_stage",
                T::OptionSet {
                    options: vec![
                        OptionValue {
                            value: 100_000_000,
                            label: "Planned".into(),
                        },
                        OptionValue {
                            value: 100_000_001,
                            label: "Active".into(),
                        },
                        OptionValue {
                            value: 100_000_002,
                            label: "Done".into(),
                        },
                    ],
                },
            )],
            Action::Retyped,
        ),
        ("Logo", vec![("cr_logo", T::Image)], Action::Renamed),
        (
            "Assignment",
            vec![(
                "cr_assignment",
                T::Lookup {
                    target: "cdm_positionworkerassignmentmap".into(),
                },
            )],
            Action::Renamed,
        ),
        (
            "Customer",
            vec![(
                "cr_customer",
                T::Lookup {
                    target: "account".into(),
                },
            )],
            Action::Renamed,
        ),
        ("Tax", vec![], Action::Dropped),
        ("Manager", vec![], Action::Dropped),
    ];
    let change = u
        .changes
        .entity("Project")
        .cloned()
        .unwrap_or_else(|| panic!("no Project"));
    for (source, expected, action) in cases {
        let fc = change
            .field(source)
            .unwrap_or_else(|| panic!("no change for {source}"));
        assert_eq!(fc.action, action, "{source}: {fc:?}");
        let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
        assert_eq!(fc.targets, names, "{source}");
        let types: Vec<String> = expected.iter().map(|(_, t)| t.type_label()).collect();
        assert_eq!(fc.target_types, types, "{source}");
        for (name, ty) in expected {
            let f = project.fields.iter().find(|f| f.name == name);
            assert_eq!(f.map(|f| &f.ty), Some(&ty), "{source} → {name}");
        }
    }
    // Nothing a classic type left behind: every field of the target is a modern type.
    for e in &u.target.entities {
        for f in &e.fields {
            assert_ne!(
                f.ty.version(),
                Some(SchemaVersion::Classic),
                "{}.{}",
                e.name,
                f.name
            );
        }
    }
}

#[test]
fn user_or_group_fields_are_not_upgraded_with_a_warning() {
    let u = upgrade();
    let fc = u
        .changes
        .entity("Account")
        .and_then(|e| e.field("Owner"))
        .cloned();
    let fc = fc.unwrap_or_else(|| panic!("no Account.Owner"));
    assert_eq!(fc.action, Action::Dropped);
    assert!(
        fc.reason
            .unwrap_or_default()
            .contains("user and group fields are not upgraded")
    );
    assert!(
        u.changes
            .warnings
            .iter()
            .any(|w| w.entity == "Account" && w.field.as_deref() == Some("Owner"))
    );
}

#[test]
fn long_names_are_truncated_to_50_and_made_unique() {
    let u = upgrade();
    // Entities: both long names truncated, the second made unique inside the budget.
    let a = u.changes.target_entity(LONG_ENTITY_A).unwrap_or_default();
    let b = u.changes.target_entity(LONG_ENTITY_B).unwrap_or_default();
    let wanted_a = format!("cr_{}", LONG_ENTITY_A.to_ascii_lowercase());
    assert_eq!(a, &wanted_a[..50]);
    assert_eq!(b, format!("{}_2", &wanted_a[..48]));
    assert_eq!(
        u.target.entity(b).map(|e| e.set_name.as_str()),
        Some(format!("{b}s").as_str())
    );
    // Fields: two custom fields sharing 50 leading characters stay distinct.
    let project = u
        .changes
        .entity("Project")
        .cloned()
        .unwrap_or_else(|| panic!("no Project"));
    let fa = project
        .field(LONG_FIELD_A)
        .map(|f| f.targets.clone())
        .unwrap_or_default();
    let fb = project
        .field(LONG_FIELD_B)
        .map(|f| f.targets.clone())
        .unwrap_or_default();
    let wanted = format!("cr_{}", LONG_FIELD_A.to_ascii_lowercase());
    assert_eq!(fa, vec![wanted[..50].to_string()]);
    assert_eq!(fb, vec![format!("{}_2", &wanted[..48])]);
    for w in [LONG_FIELD_A, LONG_FIELD_B] {
        assert!(
            u.changes
                .warnings
                .iter()
                .any(|x| x.field.as_deref() == Some(w)),
            "no warning for {w}"
        );
    }
    // Every name of the target fits and is unique in its scope.
    let mut entities = HashSet::new();
    for e in &u.target.entities {
        assert!(
            e.name.len() <= 50 && entities.insert(e.name.clone()),
            "{}",
            e.name
        );
        let mut fields = HashSet::new();
        for f in e.all_fields(SchemaVersion::Modern) {
            assert!(
                f.name.len() <= 50 && fields.insert(f.name.clone()),
                "{}.{}",
                e.name,
                f.name
            );
        }
    }
}

#[test]
fn the_publisher_prefix_goes_on_custom_names_only() {
    let u = upgrade();
    let cases = [
        // (source entity, source field, target entity, target field)
        ("Account", "Name", "account", "name"),
        ("Account", "Tier", "account", "cr_tier"),
        ("Account", "AccountNumber", "account", "accountnumber"),
        ("Project", "Code", "cr_project", "cr_code"),
        ("Project", "CreatedOn", "cr_project", "cr_createdon"),
        ("Contact", "FullName", "contact", "fullname_first_name"),
    ];
    for (se, sf, te, tf) in cases {
        let e = u.changes.entity(se).unwrap_or_else(|| panic!("{se}"));
        assert_eq!(e.target.as_deref(), Some(te));
        let f = e.field(sf).unwrap_or_else(|| panic!("{se}.{sf}"));
        assert_eq!(f.targets.first().map(String::as_str), Some(tf), "{se}.{sf}");
    }
    assert_eq!(
        u.changes.entity("Account").map(|e| e.action),
        Some(Action::Kept)
    );
    assert_eq!(
        u.changes.entity("Project").map(|e| e.action),
        Some(Action::Renamed)
    );
    // Every name is lower-case.
    for e in &u.target.entities {
        assert_eq!(e.name, e.name.to_ascii_lowercase());
        assert_eq!(e.set_name, format!("{}s", e.name));
        for f in &e.fields {
            assert_eq!(f.name, f.name.to_ascii_lowercase(), "{}.{}", e.name, f.name);
        }
    }
}

#[test]
fn system_fields_map_as_the_design_says() {
    let u = upgrade();
    let contact = u
        .changes
        .entity("Contact")
        .cloned()
        .unwrap_or_else(|| panic!("no Contact"));
    let cases: [(Option<&str>, &[&str], Action); 8] = [
        (
            Some("CreatedDateTime"),
            &["overriddencreatedon"],
            Action::Renamed,
        ),
        (Some("CreatedBy"), &["createdonbehalfby"], Action::Retyped),
        (Some("ModifiedDateTime"), &[], Action::Dropped),
        (Some("ModifiedBy"), &[], Action::Dropped),
        (None, &["createdon"], Action::Added),
        (None, &["createdby"], Action::Added),
        (None, &["modifiedon"], Action::Added),
        (None, &["modifiedby"], Action::Added),
    ];
    for (source, targets, action) in cases {
        let found = contact.fields.iter().find(|f| {
            f.source.as_deref() == source
                && f.targets
                    .iter()
                    .map(String::as_str)
                    .eq(targets.iter().copied())
        });
        assert_eq!(
            found.map(|f| f.action),
            Some(action),
            "{source:?} → {targets:?}"
        );
    }
}

#[test]
fn deprecated_entities_are_dropped_and_lookups_to_them_too() {
    let u = upgrade();
    let tax = u
        .changes
        .entity("SalesOrderTax")
        .cloned()
        .unwrap_or_else(|| panic!("no change"));
    assert_eq!(tax.action, Action::Dropped);
    assert_eq!(tax.target, None);
    assert!(
        tax.reason
            .unwrap_or_default()
            .contains("tax entities of orders")
    );
    assert!(tax.fields.iter().all(|f| f.action == Action::Dropped));
    assert!(u.target.entities.iter().all(|e| !e.name.contains("tax")));
    assert!(u.transform("SalesOrderTax").is_none());
    let lookup = u
        .changes
        .entity("Project")
        .and_then(|e| e.field("Tax"))
        .cloned();
    let reason = lookup.and_then(|f| f.reason).unwrap_or_default();
    assert!(
        reason.contains("looks up SalesOrderTax, which is not upgraded"),
        "{reason}"
    );
}

#[test]
fn renamed_entities_take_their_lookups_along() {
    let u = upgrade();
    let change = u.changes.entity("PositionWorkerAssignment").cloned();
    let change = change.unwrap_or_else(|| panic!("no change"));
    assert_eq!(
        change.target.as_deref(),
        Some("cdm_positionworkerassignmentmap")
    );
    assert_eq!(change.action, Action::Renamed);
    let e = target(&u, "PositionWorkerAssignment");
    assert_eq!(e.set_name, "cdm_positionworkerassignmentmaps");
    // No lookup anywhere points at a name that is not a target entity.
    for e in &u.target.entities {
        for f in &e.fields {
            if let Some(t) = f.ty.lookup_target() {
                assert!(u.target.entity(t).is_some(), "{}.{} → {t}", e.name, f.name);
            }
        }
    }
}

#[test]
fn only_the_base_language_display_names_stay() {
    let u = upgrade();
    let project = target(&u, "Project");
    assert_eq!(
        project.display_name,
        BTreeMap::from([("en".to_string(), "Project".to_string())])
    );
    let stage = project
        .fields
        .iter()
        .find(|f| f.name == "cr_stage")
        .map(|f| f.display_name.clone());
    assert_eq!(
        stage,
        Some(BTreeMap::from([("en".to_string(), "Stage".to_string())]))
    );
    let city = project
        .fields
        .iter()
        .find(|f| f.name == "cr_site_city")
        .map(|f| f.display_name.clone());
    assert_eq!(
        city,
        Some(BTreeMap::from([(
            "en".to_string(),
            "Site (city)".to_string()
        )]))
    );
    // A French base language keeps the French names, and fields without one have none.
    let fr = Options {
        language: "fr".into(),
        ..options()
    };
    let u = apply(&plan(), &catalog(), &fr).unwrap_or_else(|e| panic!("{e}"));
    let project = target(&u, "Project");
    assert_eq!(
        project.display_name,
        BTreeMap::from([("fr".to_string(), "Projet".to_string())])
    );
    let account = target(&u, "Account");
    assert!(account.display_name.is_empty());
    // `keep = "all"` keeps every language.
    let all = plan_with("keep = \"base\"", "keep = \"all\"");
    let u = upgrade_with(&all, &catalog());
    let stage = target(&u, "Project")
        .fields
        .iter()
        .find(|f| f.name == "cr_stage")
        .map(|f| f.display_name.len());
    assert_eq!(stage, Some(3));
}

#[test]
fn every_entity_has_a_primary_name_field() {
    let u = upgrade();
    let cases = [
        // (source entity, business key of the target, was it added)
        ("Account", "name", false),
        ("Product", "productnumber", false),
        ("Project", "cr_code", false),
        ("Contact", "name", true),
        ("SalesOrder", "name", true),
        ("Gadget", "name_2", true),
    ];
    for (source, key, added) in cases {
        let e = target(&u, source);
        assert_eq!(e.business_key.as_deref(), Some(key), "{source}");
        let f = e.fields.iter().find(|f| f.name == key);
        assert!(
            f.is_some_and(|f| f.ty.is_text()),
            "{source}: key {key} is not text"
        );
        let change = u
            .changes
            .entity(source)
            .cloned()
            .unwrap_or_else(|| panic!("{source}"));
        let was_added = change
            .fields
            .iter()
            .any(|f| f.action == Action::Added && f.targets == [key]);
        assert_eq!(was_added, added, "{source}");
    }
    for e in &u.target.entities {
        assert!(e.business_key.is_some(), "{} has no primary name", e.name);
    }
}

/// The change list accounts for every source field once and every target field once.
fn assert_accounts_for_everything(source: &Catalog, u: &uplift_plan::Upgrade) {
    assert_eq!(u.changes.entities.len(), source.entities.len());
    for e in &source.entities {
        let hits: Vec<_> = u
            .changes
            .entities
            .iter()
            .filter(|c| c.source.as_deref() == Some(&e.name))
            .collect();
        assert_eq!(hits.len(), 1, "entity {}", e.name);
        let change = hits[0];
        for f in e.all_fields(SchemaVersion::Classic) {
            let n = change
                .fields
                .iter()
                .filter(|c| c.source.as_deref() == Some(&f.name))
                .count();
            assert_eq!(n, 1, "{}.{} appears {n} times", e.name, f.name);
        }
        let sources = change.fields.iter().filter(|c| c.source.is_some()).count();
        assert_eq!(
            sources,
            e.all_fields(SchemaVersion::Classic).count(),
            "{}",
            e.name
        );
        let Some(t) = change.target.as_deref().and_then(|t| u.target.entity(t)) else {
            assert_eq!(change.action, Action::Dropped);
            continue;
        };
        let mut mentioned: Vec<&str> = change
            .fields
            .iter()
            .flat_map(|c| c.targets.iter().map(String::as_str))
            .collect();
        mentioned.sort();
        let mut actual: Vec<&str> = t
            .all_fields(SchemaVersion::Modern)
            .map(|f| f.name.as_str())
            .collect();
        actual.sort();
        assert_eq!(mentioned, actual, "target fields of {}", t.name);
        for c in &change.fields {
            assert_eq!(c.targets.len(), c.target_types.len());
            assert_eq!(c.source.is_none(), c.action == Action::Added);
        }
    }
}

#[test]
fn the_change_list_accounts_for_every_entity_and_field_exactly_once() {
    assert_accounts_for_everything(&catalog(), &upgrade());
    let standard = classic_catalog();
    assert_accounts_for_everything(&standard, &upgrade_with(&plan(), &standard));
}

#[test]
fn the_target_catalog_passes_the_models_validation() {
    let u = upgrade();
    assert_eq!(u.target.version, SchemaVersion::Modern);
    assert_eq!(uplift_plan::validate::validate(&u.target), Ok(()));
    // The same through the model directly: re-applying every entity to an empty modern
    // catalog gives the same entities.
    let defs = u
        .target
        .entities
        .iter()
        .map(|e| (e.name.clone(), uplift_plan::validate::definition(e)))
        .collect();
    let rebuilt = uplift_model::input::apply(&Catalog::empty(SchemaVersion::Modern), &defs);
    let rebuilt = rebuilt.unwrap_or_else(|e| panic!("{e}"));
    for e in &u.target.entities {
        let r = rebuilt
            .0
            .entity(&e.name)
            .map(|r| (r.fields.len(), &r.business_key, &r.set_name));
        assert_eq!(
            r,
            Some((e.fields.len(), &e.business_key, &e.set_name)),
            "{}",
            e.name
        );
    }
}

#[test]
fn transforms_fill_every_target_column_from_source_columns() {
    let source = catalog();
    let u = upgrade();
    assert_eq!(u.entities.len(), u.target.entities.len());
    for (t, e) in u.entities.iter().zip(&u.target.entities) {
        assert_eq!(t.target_entity, e.name);
        let expected: Vec<String> = entity_columns(e, SchemaVersion::Modern)
            .into_iter()
            .map(|c| c.name)
            .collect();
        let got: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        assert_eq!(got, expected, "{}", e.name);
        let s = source
            .entity(&t.source_entity)
            .unwrap_or_else(|| panic!("{}", t.source_entity));
        let available: HashSet<String> = entity_columns(s, SchemaVersion::Classic)
            .into_iter()
            .map(|c| c.name)
            .collect();
        for c in t.source_columns() {
            assert!(
                available.contains(c),
                "{} reads unknown column {c}",
                t.source_entity
            );
        }
        assert_eq!(
            t.column("id").map(|c| &c.expr),
            Some(&uplift_plan::ColumnExpr::Source {
                column: "id".into()
            })
        );
        assert_eq!(
            t.column("_version").map(|c| &c.expr),
            Some(&uplift_plan::ColumnExpr::Source {
                column: "_version".into()
            }),
            "the row version is kept: an ETag read before the switch still holds"
        );
    }
    assert_eq!(system_fields(SchemaVersion::Modern).len(), 6);
}

#[test]
fn the_change_list_serialises_as_documented() {
    let u = upgrade();
    let json = serde_json::to_value(&u.changes).unwrap_or_default();
    let keys: Vec<&str> = json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["entities", "currencies_found", "warnings"]);
    let contact = json["entities"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["source"] == "Contact"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(contact["target"], "contact");
    assert_eq!(contact["action"], "kept");
    assert!(
        contact.get("reason").is_none(),
        "no reason, no key: {contact}"
    );
    let fields = contact["fields"].as_array().cloned().unwrap_or_default();
    let full_name = fields
        .iter()
        .find(|f| f["source"] == "FullName")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        full_name,
        serde_json::json!({
            "source": "FullName",
            "targets": ["fullname_first_name", "fullname_middle_name", "fullname_last_name"],
            "action": "flattened",
            "source_type": "PersonName",
            "target_types": ["SingleLineText", "SingleLineText", "SingleLineText"],
            "reason": "split into one text field per part (first_name, middle_name, last_name)"
        })
    );
    let createdon = fields
        .iter()
        .find(|f| f["targets"][0] == "createdon")
        .cloned()
        .unwrap_or_default();
    assert_eq!(createdon["source"], serde_json::Value::Null);
    assert_eq!(createdon["source_type"], serde_json::Value::Null);
    assert_eq!(createdon["action"], "added");
    let tax = json["entities"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["source"] == "SalesOrderTax"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(tax["target"], serde_json::Value::Null);
    assert_eq!(tax["action"], "dropped");
}

#[test]
fn plans_and_options_that_cannot_apply_are_refused() {
    let modern = Catalog::empty(SchemaVersion::Modern);
    let e = apply(&plan(), &modern, &options()).unwrap_err();
    assert!(matches!(e, ApplyError::VersionMismatch { .. }));
    assert_eq!(
        e.to_string(),
        "the plan upgrades classic catalogs, but this catalog is modern"
    );
    let cases = [
        (
            Options {
                currency: "euro".into(),
                ..options()
            },
            "'euro' is not an ISO 4217",
        ),
        (
            Options {
                exchange_rates: BTreeMap::from([("USD".to_string(), uplift_model::Decimal::ZERO)]),
                ..options()
            },
            "exchange rate of USD must be a positive number",
        ),
        (
            Options {
                exchange_rates: BTreeMap::from([("EUR".to_string(), uplift_model::Decimal::TWO)]),
                ..options()
            },
            "EUR is the base currency, so its rate is 1",
        ),
        (
            Options {
                language: " ".into(),
                ..options()
            },
            "base language is empty",
        ),
    ];
    for (opts, expected) in cases {
        let e = apply(&plan(), &catalog(), &opts)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{e}");
    }
    // A broken source catalog is named, not panicked on.
    let mut broken = classic_catalog();
    if let Some(f) = broken
        .entities
        .iter_mut()
        .flat_map(|e| e.fields.iter_mut())
        .find(|f| f.name == "Customer")
    {
        f.ty = FieldType::Lookup {
            target: "Nowhere".into(),
        };
    }
    let e = apply(&plan(), &broken, &options())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field 'Customer': looks up entity 'Nowhere'"),
        "{e}"
    );
}

/// The change list says the whole target type, format and facet included, so an
/// e-mail field is seen to stay an e-mail field and a date to stay a date.
#[test]
fn the_change_list_names_each_target_type_with_its_format() {
    let u = upgrade();
    let check = |source: &str, expect: &[&str]| {
        let change = u.changes.entity("Project").expect("Project");
        let fc = change
            .field(source)
            .unwrap_or_else(|| panic!("no {source}"));
        assert_eq!(fc.target_types, expect, "{source}");
    };
    check("Code", &["SingleLineText"]);
    check("ContactEmail", &["SingleLineText(Email)"]);
    check("Hotline", &["SingleLineText(Phone)"]);
    check("Homepage", &["SingleLineText(Url)"]);
    check("Summary", &["MultipleLinesOfText"]);
    check("StartDate", &["DateTime(DateOnly)"]);
    check("Kickoff", &["DateTime"]);
}
