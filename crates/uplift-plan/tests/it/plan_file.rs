//! Plan files: the shipped plan says what DESIGN §2 says, and bad files are refused with
//! the place of the problem.

use time::macros::date;
use uplift_model::{SchemaVersion, TextFormat};
use uplift_plan::{
    Conversion, EntityRule, Fraction, LanguageRule, PlanError, SystemFieldRule, TypeRule, builtin,
    builtin_names, parse_plan,
};

use crate::support::plan;

fn shipped() -> &'static str {
    builtin("classic-to-modern").unwrap_or_default()
}

#[test]
fn the_shipped_plan_is_the_design_table() {
    let p = plan();
    assert_eq!(builtin_names(), ["classic-to-modern"]);
    assert_eq!(
        (p.from(), p.to()),
        (SchemaVersion::Classic, SchemaVersion::Modern)
    );
    let floor = Some(date!(1753 - 01 - 01));
    let text = |format| TypeRule::Convert(Conversion::SingleLineText { format });
    let table: Vec<(&str, TypeRule)> = vec![
        ("Email", text(TextFormat::Email)),
        ("Text", text(TextFormat::Text)),
        ("Phone", text(TextFormat::Phone)),
        ("WebsiteUrl", text(TextFormat::Url)),
        ("Guid", text(TextFormat::Text)),
        (
            "MultilineText",
            TypeRule::Convert(Conversion::MultipleLinesOfText),
        ),
        (
            "LargeText",
            TypeRule::Convert(Conversion::MultipleLinesOfText),
        ),
        ("Address", TypeRule::Flatten),
        ("PersonName", TypeRule::Flatten),
        (
            "AutoNumber",
            TypeRule::Convert(Conversion::WholeNumber { fraction: None }),
        ),
        (
            "Integer",
            TypeRule::Convert(Conversion::WholeNumber { fraction: None }),
        ),
        (
            "Number",
            TypeRule::Convert(Conversion::WholeNumber { fraction: None }),
        ),
        (
            "Quantity",
            TypeRule::Convert(Conversion::WholeNumber {
                fraction: Some(Fraction::Round),
            }),
        ),
        ("Boolean", TypeRule::Convert(Conversion::TwoOptions)),
        ("Currency", TypeRule::Convert(Conversion::Money)),
        (
            "Date",
            TypeRule::Convert(Conversion::DateTime {
                date_only: true,
                floor,
            }),
        ),
        (
            "DateTime",
            TypeRule::Convert(Conversion::DateTime {
                date_only: false,
                floor,
            }),
        ),
        (
            "Picklist",
            TypeRule::Convert(Conversion::OptionSet {
                first_value: 100_000_000,
            }),
        ),
        ("Image", TypeRule::Convert(Conversion::Image)),
        ("Lookup", TypeRule::Convert(Conversion::Lookup)),
        (
            "UserOrGroup",
            TypeRule::Drop {
                reason: "user and group fields are not upgraded".into(),
            },
        ),
    ];
    assert_eq!(table.len(), SchemaVersion::Classic.type_names().len());
    for (ty, expected) in table {
        assert_eq!(p.type_rule(ty), Some(&expected), "{ty}");
    }
    let system = [
        (
            "CreatedDateTime",
            SystemFieldRule::Keep("overriddencreatedon".into()),
        ),
        (
            "CreatedBy",
            SystemFieldRule::Keep("createdonbehalfby".into()),
        ),
        ("ModifiedDateTime", SystemFieldRule::Drop),
        ("ModifiedBy", SystemFieldRule::Drop),
    ];
    for (name, expected) in system {
        assert_eq!(p.system_field(name), Some(&expected), "{name}");
    }
    assert!(matches!(
        p.entity_rule("SalesOrderTax"),
        Some(EntityRule::Deprecated { .. })
    ));
    assert!(matches!(
        p.entity_rule("PositionWorkerAssignment"),
        Some(EntityRule::Rename { to, .. }) if to == "cdm_positionworkerassignmentmap"
    ));
    assert_eq!(p.language(), LanguageRule::Base);
    let n = p.naming();
    assert!(n.lowercase);
    assert_eq!((n.custom_prefix.as_deref(), n.max_chars), (Some("cr_"), 50));
    let s = p.security();
    let get = |k: &str| {
        s.privileges
            .get(k)
            .map(|v| v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(get("Create"), Some(vec!["Append", "Create"]));
    assert_eq!(get("Update"), Some(vec!["Append", "Write"]));
    assert_eq!(get("Read"), Some(vec!["Read"]));
    assert_eq!(get("Delete"), Some(vec!["Delete"]));
    assert!(s.append_to_lookup_targets);
}

/// Line (1-based) of the first occurrence of `needle` in the shipped plan.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("no '{needle}'"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn syntax_and_shape_errors_name_the_line_and_column() {
    let base = shipped();
    let cases = [
        // (replace, with, needle whose line the error is on, expected message part)
        ("max_chars = 50", "max_chars = = 50", "max_chars", ""),
        (
            "lowercase = true",
            "lowercase = true\nlowercsae = true",
            "lowercsae",
            "unknown field `lowercsae`",
        ),
        (
            "Image         = { to = \"Image\" }",
            "Image         = { to = \"Image\", colour = \"red\" }",
            "Image ",
            "unknown field `colour`",
        ),
        (
            "max_chars = 50",
            "max_chars = \"fifty\"",
            "max_chars",
            "invalid type",
        ),
        (
            "from = \"classic\"",
            "from = \"vintage\"",
            "from = ",
            "unknown variant `vintage`",
        ),
        (
            "Quantity      = { to = \"WholeNumber\", fraction = \"round\" }",
            "Quantity      = { to = \"WholeNumber\", fraction = \"truncate\" }",
            "Quantity ",
            "unknown variant `truncate`",
        ),
    ];
    for (from, to, needle, expected) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replace(from, to);
        let err = parse_plan(&text).unwrap_err();
        let line = line_of(&text, needle);
        let PlanError::Syntax {
            line: got, column, ..
        } = &err
        else {
            panic!("{to}: not a positioned error: {err}");
        };
        assert_eq!(*got, line, "{to}: {err}");
        assert!(*column >= 1);
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("line {line}, column {column}")),
            "{shown}"
        );
        assert!(shown.contains(expected), "{shown}");
    }
}

#[test]
fn semantic_errors_name_the_rule() {
    let base = shipped();
    let cases = [
        (
            "Quantity      = { to = \"WholeNumber\", fraction = \"round\" }",
            "Quantity      = { to = \"Integer\" }",
            "types.Quantity: target type 'Integer' is not a modern type",
        ),
        (
            "Picklist      = { to = \"OptionSet\", first_value = 100000000 }\n",
            "",
            "types.Picklist: missing: every classic type needs a rule",
        ),
        (
            "Date          = { to = \"DateTime\", date_only = true, floor = \"1753-01-01\" }",
            "Date          = { to = \"DateTime\", date_only = true, floor = \"1753-13-01\" }",
            "types.Date: floor '1753-13-01' is not a date (YYYY-MM-DD)",
        ),
        (
            "Quantity      = { to = \"WholeNumber\", fraction = \"round\" }",
            "Quantity      = { to = \"WholeNumber\" }",
            "types.Quantity: Quantity values may have fractions",
        ),
        (
            "Integer       = { to = \"WholeNumber\" }",
            "Integer       = { to = \"WholeNumber\", fraction = \"round\" }",
            "types.Integer: Integer values are whole numbers already",
        ),
        (
            "Text          = { to = \"SingleLineText\", format = \"Text\" }",
            "Text          = { to = \"SingleLineText\", format = \"Email\" }",
            "types.Text: a Text field cannot become SingleLineText with format Email",
        ),
        (
            "DateTime      = { to = \"DateTime\", floor = \"1753-01-01\" }",
            "DateTime      = { to = \"DateTime\", date_only = true }",
            "types.DateTime: a DateTime field cannot become DateTime with date_only = true",
        ),
        (
            "Boolean       = { to = \"TwoOptions\" }",
            "Boolean       = { to = \"Money\" }",
            "types.Boolean: a Boolean field cannot become Money (it can become TwoOptions)",
        ),
        (
            "Image         = { to = \"Image\" }",
            "Image         = { to = \"Image\", format = \"Text\" }",
            "types.Image: target type Image does not take `format`",
        ),
        (
            "Image         = { to = \"Image\" }",
            "Image         = { to = \"Image\", flatten = true }",
            "types.Image: give exactly one of",
        ),
        (
            "UserOrGroup   = { drop = true, reason = \"user and group fields are not upgraded\" }",
            "UserOrGroup   = { drop = true }",
            "types.UserOrGroup: a dropped type needs a `reason`",
        ),
        (
            "Currency      = { to = \"Money\" }",
            "Currency      = { flatten = true }",
            "types.Currency: only complex types whose parts are all text",
        ),
        (
            "[types]\n",
            "[types]\nFloat = { to = \"DecimalNumber\" }\n",
            "types.Float: 'Float' is not a classic type",
        ),
        (
            "ModifiedBy       = \"drop\"\n",
            "",
            "system_fields.ModifiedBy: missing",
        ),
        (
            "CreatedBy        = \"createdonbehalfby\"",
            "CreatedBy        = \"overriddencreatedon\"",
            "system_fields.CreatedBy: CreatedBy (UserOrGroup) cannot keep its value in overriddencreatedon (DateTime)",
        ),
        (
            "CreatedBy        = \"createdonbehalfby\"",
            "CreatedBy        = \"ownerid\"",
            "system_fields.CreatedBy: 'ownerid' is not a modern system field",
        ),
        (
            "SalesOrderTax            = { deprecated = true, reason = \"tax entities of orders are not upgraded\" }",
            "SalesOrderTax            = { deprecated = true }",
            "entities.SalesOrderTax: a deprecated entity needs a `reason`",
        ),
        (
            "rename = \"cdm_positionworkerassignmentmap\"",
            "rename = \"CDM_Map\"",
            "entities.PositionWorkerAssignment: 'CDM_Map' has upper-case letters",
        ),
        (
            "max_chars = 50",
            "max_chars = 60",
            "naming.max_chars: 60 is out of range 8..=50",
        ),
        (
            "custom_prefix = \"cr_\"",
            "custom_prefix = \"1x_\"",
            "naming.custom_prefix: '1x_' cannot start a name",
        ),
        (
            "flatten_template = \"{field}_{part}\"",
            "flatten_template = \"{field}\"",
            "naming.flatten_template",
        ),
        (
            "Delete = [\"Delete\"]",
            "Delete = [\"Remove\"]",
            "security.privileges.Delete: 'Remove' is not a modern privilege",
        ),
        (
            ", Delete = [\"Delete\"]",
            "",
            "security.privileges.Delete: missing",
        ),
        (
            "to = \"modern\"",
            "to = \"classic\"",
            "from: plans upgrade classic to modern",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(base.contains(from), "the shipped plan has no '{from}'");
        let err = parse_plan(&base.replacen(from, to, 1))
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, PlanError::Rule { .. }), "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "expected '{expected}', got '{err}'"
        );
    }
}
