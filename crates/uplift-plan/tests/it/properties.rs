//! Properties over generated catalogs: whatever custom entities a classic environment
//! has (long names sharing prefixes, names that collide once lower-cased and prefixed),
//! the upgrade gives a valid catalog, names within budget and unique, and a change list
//! that accounts for every field once.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use uplift_model::input::{EntityDef, FieldDef, OptionDef};
use uplift_model::standard::classic_catalog;
use uplift_model::{Catalog, SchemaVersion};
use uplift_plan::apply;

use crate::support::{options, plan};

/// Names built from a few long stems and short tails, so that truncation collides.
fn name() -> impl Strategy<Value = String> {
    let stems = prop::sample::select(vec![
        "A",
        "Createdon",
        "Name",
        "Cr_name",
        "VeryLongNameThatKeepsGoingAndGoingWellBeyondTheFiftyCharacterLimit",
        "VeryLongNameThatKeepsGoingAndGoingWellBeyondTheFiftyCharacterLimitToo",
    ]);
    (stems, "[a-z0-9]{0,3}").prop_map(|(s, t)| format!("{s}{t}"))
}

fn field() -> impl Strategy<Value = FieldDef> {
    let types = prop::sample::select(SchemaVersion::Classic.type_names().to_vec());
    (name(), types).prop_map(|(name, ty)| FieldDef {
        name,
        ty: ty.to_string(),
        required: false,
        max_length: None,
        options: (ty == "Picklist").then(|| {
            vec![
                OptionDef::Label("One".into()),
                OptionDef::Label("Two".into()),
            ]
        }),
        target: (ty == "Lookup").then(|| "PositionWorkerAssignment".to_string()),
        format: None,
        date_only: None,
        display_name: BTreeMap::new(),
    })
}

fn catalog() -> impl Strategy<Value = Catalog> {
    prop::collection::btree_map(name(), prop::collection::vec(field(), 0..8), 1..6).prop_filter_map(
        "definitions the model refuses",
        |entities| {
            let defs: BTreeMap<String, EntityDef> = entities
                .into_iter()
                .map(|(n, fields)| {
                    // Drop fields whose names repeat (ignoring case): the model refuses them.
                    let mut seen = HashSet::new();
                    let fields = fields
                        .into_iter()
                        .filter(|f| seen.insert(f.name.to_ascii_lowercase()))
                        .collect();
                    (
                        n,
                        EntityDef {
                            fields,
                            ..EntityDef::default()
                        },
                    )
                })
                .collect();
            uplift_model::input::apply(&classic_catalog(), &defs)
                .ok()
                .map(|(c, _)| c)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_classic_catalog_upgrades_to_a_valid_one(source in catalog()) {
        let u = apply(&plan(), &source, &options());
        prop_assert!(u.is_ok(), "{:?}", u.err());
        let Ok(u) = u else { return Ok(()) };
        prop_assert_eq!(uplift_plan::validate::validate(&u.target), Ok(()));
        let mut entity_names = HashSet::new();
        for e in &u.target.entities {
            prop_assert!(e.name.len() <= 50);
            prop_assert!(entity_names.insert(e.name.clone()));
            let mut field_names = HashSet::new();
            for f in e.all_fields(SchemaVersion::Modern) {
                prop_assert!(f.name.len() <= 50);
                prop_assert!(field_names.insert(f.name.to_ascii_lowercase()), "{}.{}", e.name, f.name);
            }
        }
        prop_assert_eq!(u.changes.entities.len(), source.entities.len());
        for e in &source.entities {
            let change = u.changes.entity(&e.name);
            prop_assert!(change.is_some());
            let Some(change) = change else { continue };
            for f in e.all_fields(SchemaVersion::Classic) {
                let n = change.fields.iter().filter(|c| c.source.as_deref() == Some(f.name.as_str())).count();
                prop_assert_eq!(n, 1, "{}.{}", e.name, f.name);
            }
        }
        // Deterministic: the same input gives the same upgrade.
        prop_assert_eq!(apply(&plan(), &source, &options()).ok(), Some(u));
    }
}
