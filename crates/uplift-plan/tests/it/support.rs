//! The catalog, plan and options the tests share.

use std::collections::BTreeMap;

use serde_json::json;
use time::macros::datetime;
use uplift_model::input::EntityDef;
use uplift_model::standard::classic_catalog;
use uplift_model::{Catalog, Decimal, Entity, Field, FieldType, Labels, Origin};
use uplift_plan::{EvalContext, Options, Plan, Upgrade, apply, builtin, parse_plan};

/// Two custom field names that share their first 60 characters.
pub const LONG_FIELD_A: &str = "EstimatedQuarterlyRevenueContributionOfTheNorthernRegion_BeforeTax";
pub const LONG_FIELD_B: &str = "EstimatedQuarterlyRevenueContributionOfTheNorthernRegion_AfterTax";
/// Two custom entity names longer than 50 characters sharing their first 55.
pub const LONG_ENTITY_A: &str = "ProjectMilestoneDeliverableAcceptanceCriterionEvaluation";
pub const LONG_ENTITY_B: &str = "ProjectMilestoneDeliverableAcceptanceCriterionEvaluationArchive";

pub fn plan() -> Plan {
    let text = builtin("classic-to-modern").unwrap_or_default();
    match parse_plan(text) {
        Ok(p) => p,
        Err(e) => panic!("the shipped plan does not parse: {e}"),
    }
}

/// The shipped plan with one piece of its text replaced.
pub fn plan_with(from: &str, to: &str) -> Plan {
    let text = builtin("classic-to-modern").unwrap_or_default();
    assert!(text.contains(from), "the shipped plan has no '{from}'");
    match parse_plan(&text.replace(from, to)) {
        Ok(p) => p,
        Err(e) => panic!("variant does not parse: {e}"),
    }
}

pub fn options() -> Options {
    Options {
        language: "en".into(),
        currency: "EUR".into(),
        exchange_rates: BTreeMap::from([
            ("USD".to_string(), Decimal::new(9, 1)),
            ("CHF".to_string(), Decimal::new(105, 2)),
        ]),
    }
}

pub fn ctx() -> EvalContext {
    EvalContext {
        upgrade_time: datetime!(2025-06-01 12:00:00 UTC),
        actor: "upgrade@example.com".into(),
    }
}

/// A custom entity using every classic type, a custom field on a standard entity, two
/// long entity names, and a standard entity (as a later release might ship one) whose
/// `Name` is not text and which has no business key.
pub fn catalog() -> Catalog {
    let defs: BTreeMap<String, EntityDef> = match serde_json::from_value(json!({
        "Project": {
            "display_name": {"en": "Project", "fr": "Projet"},
            "business_key": "Code",
            "fields": [
                {"name": "Code", "type": "Text", "max_length": 40, "required": true,
                 "display_name": {"en": "Code", "fr": "Code"}},
                {"name": "ContactEmail", "type": "Email"},
                {"name": "Hotline", "type": "Phone"},
                {"name": "Homepage", "type": "WebsiteUrl"},
                {"name": "ExternalKey", "type": "Guid"},
                {"name": "Summary", "type": "MultilineText", "max_length": 500},
                {"name": "Spec", "type": "LargeText"},
                {"name": "Site", "type": "Address", "display_name": {"en": "Site", "fr": "Site"}},
                {"name": "Sponsor", "type": "PersonName"},
                {"name": "Ticket", "type": "AutoNumber"},
                {"name": "Priority", "type": "Integer"},
                {"name": "Headcount", "type": "Number"},
                {"name": "Effort", "type": "Quantity"},
                {"name": "Billable", "type": "Boolean"},
                {"name": "Budget", "type": "Currency"},
                {"name": "StartDate", "type": "Date"},
                {"name": "Kickoff", "type": "DateTime"},
                {"name": "Stage", "type": "Picklist", "options": ["Planned", "Active", "Done"],
                 "display_name": {"en": "Stage", "fr": "Étape", "de": "Phase"}},
                {"name": "Logo", "type": "Image"},
                {"name": "Assignment", "type": "Lookup", "target": "PositionWorkerAssignment"},
                {"name": "Tax", "type": "Lookup", "target": "SalesOrderTax"},
                {"name": "Customer", "type": "Lookup", "target": "Account"},
                {"name": "Manager", "type": "UserOrGroup"},
                {"name": "CreatedOn", "type": "DateTime"},
                {"name": LONG_FIELD_A, "type": "Text"},
                {"name": LONG_FIELD_B, "type": "Text"}
            ]
        },
        "Account": {"fields": [{"name": "Tier", "type": "Text"}]},
        LONG_ENTITY_A: {"fields": [{"name": "Title", "type": "Text"}]},
        LONG_ENTITY_B: {"fields": [{"name": "Title", "type": "Text"}]}
    })) {
        Ok(d) => d,
        Err(e) => panic!("test definitions: {e}"),
    };
    let mut catalog = match uplift_model::input::apply(&classic_catalog(), &defs) {
        Ok((c, _)) => c,
        Err(e) => panic!("test catalog: {e}"),
    };
    let field = |name: &str, ty: FieldType| Field {
        name: name.into(),
        display_name: Labels::from([("en".to_string(), name.to_string())]),
        ty,
        required: false,
        origin: Origin::Standard,
    };
    catalog.entities.push(Entity {
        name: "Gadget".into(),
        display_name: Labels::from([("en".to_string(), "Gadget".to_string())]),
        set_name: "gadgets".into(),
        business_key: None,
        origin: Origin::Standard,
        fields: vec![
            field("Name", FieldType::Integer),
            field("Label", FieldType::Text { max_length: 50 }),
        ],
    });
    catalog
}

pub fn upgrade() -> Upgrade {
    upgrade_with(&plan(), &catalog())
}

pub fn upgrade_with(plan: &Plan, catalog: &Catalog) -> Upgrade {
    match apply(plan, catalog, &options()) {
        Ok(u) => u,
        Err(e) => panic!("apply: {e}"),
    }
}

/// The target entity of a source entity.
pub fn target<'a>(u: &'a Upgrade, source: &str) -> &'a Entity {
    let name = u.changes.target_entity(source).unwrap_or_default();
    match u.target.entity(name) {
        Some(e) => e,
        None => panic!("no target entity for {source}"),
    }
}
