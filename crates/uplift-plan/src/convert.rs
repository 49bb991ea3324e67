//! One source field → its target fields, the expressions that fill their columns and
//! the checks its values get. Names are only *wanted* here; the entity's scope decides
//! the final ones (see `naming`), so expressions refer to source columns only.

use std::collections::BTreeMap;

use uplift_model::layout::field_columns;
use uplift_model::types::SINGLE_LINE_MAX_CHARS;
use uplift_model::{Decimal, Field, FieldType, Labels, Origin, TextFormat};

use crate::apply::ApplyError;
use crate::file::{floor_of, native_format};
use crate::naming::wanted;
use crate::plan::{Conversion, Fraction, LanguageRule, Plan, TypeRule};
use uplift_model::transform::{ColumnExpr, Condition, RowCheck, Severity, TimeKind};

/// Longest part of a flattened Address or PersonName (`uplift_model::codec`'s limit).
const PART_MAX_CHARS: u32 = uplift_model::codec::PART_MAX_CHARS as u32;
/// Length of a Guid kept as text (hyphenated form, 36 characters, with room to spare).
const GUID_TEXT_CHARS: u32 = 100;
/// A decimal outside these does not round to a 64-bit whole number.
const WHOLE_MIN: Decimal = Decimal::from_parts(0, 0x8000_0000, 0, true, 0);
const WHOLE_MAX: Decimal = Decimal::from_parts(u32::MAX, 0x7FFF_FFFF, 0, false, 0);

/// What the rest of the entity needs to know while converting one field.
pub(crate) struct Ctx<'a> {
    pub plan: &'a Plan,
    /// The base language (display names of others are dropped under `LanguageRule::Base`).
    pub language: &'a str,
    /// Exchange rates, base currency included at 1, codes upper-case, sorted.
    pub rates: &'a [(String, Decimal)],
    /// The base currency's minor units: Money base values are rounded to them.
    pub base_scale: u32,
    /// Source entity name → target name, `None` for an entity that is not upgraded (with
    /// the plan's reason).
    pub entity_names: &'a BTreeMap<String, Result<String, String>>,
    /// The source entity's name, for error messages.
    pub entity: &'a str,
}

/// A field of the target entity, before its final name is known.
pub(crate) struct Planned {
    pub wanted: String,
    pub ty: FieldType,
    pub required: bool,
    pub display_name: Labels,
    /// One per column of the target field, in `layout::field_columns` order.
    pub exprs: Vec<ColumnExpr>,
}

/// What becomes of one source field.
pub(crate) enum Outcome {
    /// Upgraded into `targets` (one, or one per part when flattened).
    Mapped {
        targets: Vec<Planned>,
        flattened: bool,
        checks: Vec<RowCheck>,
        reason: Option<String>,
    },
    /// Not upgraded; `checks` warn about each value lost.
    Dropped {
        reason: String,
        checks: Vec<RowCheck>,
    },
}

/// The display names the plan keeps.
pub(crate) fn keep_labels(plan: &Plan, language: &str, labels: &Labels) -> Labels {
    match plan.language() {
        LanguageRule::All => labels.clone(),
        LanguageRule::Base => labels
            .iter()
            .filter(|(l, _)| l.as_str() == language)
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect(),
    }
}

fn source_column(field: &Field, part: Option<&str>) -> String {
    field_columns(field)
        .into_iter()
        .find(|c| c.part == part)
        .map(|c| c.name)
        .unwrap_or_default()
}

fn all_columns(field: &Field) -> Vec<String> {
    field_columns(field).into_iter().map(|c| c.name).collect()
}

fn warn(field: &Field, reason: String, condition: Condition) -> RowCheck {
    RowCheck {
        severity: Severity::Warning,
        field: field.name.clone(),
        reason,
        condition,
    }
}

fn error(field: &Field, reason: String, condition: Condition) -> RowCheck {
    RowCheck {
        severity: Severity::Error,
        field: field.name.clone(),
        reason,
        condition,
    }
}

/// A source field that is not upgraded: each non-empty value is a row warning.
fn dropped(field: &Field, reason: String) -> Outcome {
    let check = warn(
        field,
        format!("{}: the value is not upgraded ({reason})", field.name),
        Condition::AnyNotNull {
            columns: all_columns(field),
        },
    );
    Outcome::Dropped {
        reason,
        checks: vec![check],
    }
}

/// Converts one defined (non-system) field of a source entity.
pub(crate) fn convert_field(
    ctx: &Ctx,
    origin: Origin,
    field: &Field,
) -> Result<Outcome, ApplyError> {
    let plan = ctx.plan;
    let type_name = field.ty.type_name();
    let rule = plan
        .type_rule(type_name)
        .ok_or_else(|| ApplyError::Source {
            entity: ctx.entity.to_string(),
            field: Some(field.name.clone()),
            message: format!("type {type_name} is not a {} type", plan.from()),
        })?;
    let labels = keep_labels(plan, ctx.language, &field.display_name);
    let name = wanted(plan.naming(), &field.name, origin);
    let one = |ty: FieldType, exprs: Vec<ColumnExpr>| Planned {
        wanted: name.clone(),
        ty,
        required: field.required,
        display_name: labels.clone(),
        exprs,
    };
    let src = || ColumnExpr::Source {
        column: source_column(field, None),
    };
    let conv = match rule {
        TypeRule::Drop { reason } => return Ok(dropped(field, reason.clone())),
        TypeRule::Flatten => return Ok(flatten(ctx, origin, field, &labels)),
        TypeRule::Convert(conv) => conv,
    };
    if !crate::file::accepts(&field.ty, conv) {
        return Err(ApplyError::Source {
            entity: ctx.entity.to_string(),
            field: Some(field.name.clone()),
            message: format!("a {type_name} field cannot become {}", conv.type_name()),
        });
    }
    let mapped = |target: Planned, checks: Vec<RowCheck>, reason: Option<String>| Outcome::Mapped {
        targets: vec![target],
        flattened: false,
        checks,
        reason,
    };
    Ok(match conv {
        Conversion::SingleLineText { format } => {
            let max_length = field
                .ty
                .max_chars()
                .unwrap_or(GUID_TEXT_CHARS)
                .min(SINGLE_LINE_MAX_CHARS);
            let reason = (native_format(&field.ty) != Some(*format) && *format == TextFormat::Text)
                .then(|| "values are kept as plain text".to_string());
            mapped(
                one(
                    FieldType::SingleLineText {
                        format: *format,
                        max_length,
                    },
                    vec![src()],
                ),
                Vec::new(),
                reason,
            )
        }
        Conversion::MultipleLinesOfText => {
            let max_length = field
                .ty
                .max_chars()
                .unwrap_or(uplift_model::types::LARGE_TEXT_MAX_CHARS);
            mapped(
                one(FieldType::MultipleLinesOfText { max_length }, vec![src()]),
                Vec::new(),
                None,
            )
        }
        Conversion::WholeNumber { fraction } => match fraction {
            None => {
                let reason = field.ty.is_server_assigned().then(|| {
                    "numbers are kept; new records are no longer numbered automatically".to_string()
                });
                mapped(one(FieldType::WholeNumber, vec![src()]), Vec::new(), reason)
            }
            Some(fraction) => {
                let column = source_column(field, None);
                let fname = &field.name;
                let (check, reason) = match fraction {
                    Fraction::Round => (
                        warn(
                            field,
                            format!("{fname}: a fractional value was rounded to a whole number"),
                            Condition::Fractional {
                                column: column.clone(),
                            },
                        ),
                        "fractional values are rounded to whole numbers (a warning each)",
                    ),
                    Fraction::Reject => (
                        error(
                            field,
                            format!("{fname}: a fractional value cannot become a whole number"),
                            Condition::Fractional {
                                column: column.clone(),
                            },
                        ),
                        "rows with a fractional value are not copied (an error each)",
                    ),
                };
                let range = error(
                    field,
                    format!("{fname}: the value is too large for a whole number"),
                    Condition::OutOfRange {
                        column: column.clone(),
                        min: WHOLE_MIN,
                        max: WHOLE_MAX,
                    },
                );
                mapped(
                    one(FieldType::WholeNumber, vec![ColumnExpr::Round { column }]),
                    vec![check, range],
                    Some(reason.to_string()),
                )
            }
        },
        Conversion::DecimalNumber => {
            mapped(one(FieldType::DecimalNumber, vec![src()]), Vec::new(), None)
        }
        Conversion::TwoOptions => mapped(one(FieldType::TwoOptions, vec![src()]), Vec::new(), None),
        Conversion::Image => mapped(one(FieldType::Image, vec![src()]), Vec::new(), None),
        Conversion::UniqueIdentifier => mapped(
            one(FieldType::UniqueIdentifier, vec![src()]),
            Vec::new(),
            None,
        ),
        Conversion::OptionSet { first_value } => {
            let FieldType::Picklist { options } = &field.ty else {
                return Err(unsupported(ctx, field, conv));
            };
            let mut values = Vec::new();
            for (i, label) in options.iter().enumerate() {
                let value = i32::try_from(i)
                    .ok()
                    .and_then(|i| first_value.checked_add(i))
                    .ok_or_else(|| ApplyError::Impossible {
                        entity: ctx.entity.to_string(),
                        field: Some(field.name.clone()),
                        message: format!(
                            "{} options numbered from {first_value} overflow a 32-bit option value",
                            options.len()
                        ),
                    })?;
                values.push(uplift_model::OptionValue {
                    value,
                    label: label.clone(),
                });
            }
            let column = source_column(field, None);
            let check = error(
                field,
                format!(
                    "{}: the value is not one of the picklist's options",
                    field.name
                ),
                Condition::UnknownLabel {
                    column: column.clone(),
                    labels: options.clone(),
                },
            );
            let expr = ColumnExpr::Label {
                column,
                options: values
                    .iter()
                    .map(|o| (o.label.clone(), i64::from(o.value)))
                    .collect(),
            };
            mapped(
                one(FieldType::OptionSet { options: values }, vec![expr]),
                vec![check],
                Some(format!(
                    "options are numbered from {first_value} in their order"
                )),
            )
        }
        Conversion::Money => {
            let code = source_column(field, Some("code"));
            let value = source_column(field, Some("value"));
            let rates = ctx.rates.to_vec();
            let exprs = uplift_model::types::MONEY_PARTS
                .iter()
                .map(|part| match *part {
                    "value" => ColumnExpr::Source {
                        column: value.clone(),
                    },
                    "currency" => ColumnExpr::Source {
                        column: code.clone(),
                    },
                    "base_value" => ColumnExpr::Times {
                        value_column: value.clone(),
                        code_column: code.clone(),
                        rates: rates.clone(),
                        scale: ctx.base_scale,
                    },
                    "exchange_rate" => ColumnExpr::Rate {
                        code_column: code.clone(),
                        rates: rates.clone(),
                    },
                    _ => ColumnExpr::Null,
                })
                .collect();
            let check = error(
                field,
                format!(
                    "{}: no exchange rate for the value's currency (give one in the upgrade options)",
                    field.name
                ),
                Condition::MissingRate {
                    code_column: code,
                    codes: rates.iter().map(|(c, _)| c.clone()).collect(),
                },
            );
            mapped(
                one(FieldType::Money, exprs),
                vec![check],
                Some(format!(
                    "base value = value × exchange rate of its currency, rounded to {} decimal places",
                    ctx.base_scale
                )),
            )
        }
        Conversion::DateTime { date_only, floor } => {
            let column = source_column(field, None);
            let kind = if *date_only {
                TimeKind::Date
            } else {
                TimeKind::Instant
            };
            let (expr, checks, reason) = temporal(field, column, kind, *floor);
            mapped(
                one(
                    FieldType::ModernDateTime {
                        date_only: *date_only,
                    },
                    vec![expr],
                ),
                checks,
                reason,
            )
        }
        Conversion::Lookup => {
            let FieldType::Lookup { target } = &field.ty else {
                return Err(unsupported(ctx, field, conv));
            };
            match ctx.entity_names.get(target) {
                None => {
                    return Err(ApplyError::Source {
                        entity: ctx.entity.to_string(),
                        field: Some(field.name.clone()),
                        message: format!("looks up entity '{target}', which does not exist"),
                    });
                }
                Some(Err(why)) => dropped(
                    field,
                    format!("it looks up {target}, which is not upgraded ({why})"),
                ),
                Some(Ok(new)) => {
                    let reason = (!new.eq_ignore_ascii_case(target))
                        .then(|| format!("now looks up {new} (was {target})"));
                    mapped(
                        one(
                            FieldType::Lookup {
                                target: new.clone(),
                            },
                            vec![src()],
                        ),
                        Vec::new(),
                        reason,
                    )
                }
            }
        }
    })
}

fn unsupported(ctx: &Ctx, field: &Field, conv: &Conversion) -> ApplyError {
    ApplyError::Source {
        entity: ctx.entity.to_string(),
        field: Some(field.name.clone()),
        message: format!(
            "a {} field cannot become {}",
            field.ty.type_name(),
            conv.type_name()
        ),
    }
}

/// A date or instant column as `kind`, raised to `floor` with a warning per value.
fn temporal(
    field: &Field,
    column: String,
    kind: TimeKind,
    floor: Option<time::Date>,
) -> (ColumnExpr, Vec<RowCheck>, Option<String>) {
    let is_date = matches!(field.ty, FieldType::Date);
    match floor {
        Some(floor) => {
            let shown = uplift_model::value::format_date(floor);
            let check = warn(
                field,
                format!("{}: a date before {shown} became {shown}", field.name),
                Condition::Before {
                    column: column.clone(),
                    floor,
                },
            );
            (
                ColumnExpr::Floor {
                    column,
                    floor,
                    kind,
                },
                vec![check],
                Some(format!(
                    "dates before {shown} become {shown} (a warning each)"
                )),
            )
        }
        None if is_date && kind == TimeKind::Instant => {
            (ColumnExpr::DateToInstant { column }, Vec::new(), None)
        }
        None => (ColumnExpr::Source { column }, Vec::new(), None),
    }
}

/// A complex text field → one single-line text field per part.
fn flatten(ctx: &Ctx, origin: Origin, field: &Field, labels: &Labels) -> Outcome {
    let naming = ctx.plan.naming();
    let parts = field.ty.parts().unwrap_or_default();
    let targets = parts
        .iter()
        .map(|part| Planned {
            wanted: wanted(
                naming,
                &naming.flatten_template.render(&field.name, part),
                origin,
            ),
            ty: FieldType::SingleLineText {
                format: TextFormat::Text,
                max_length: PART_MAX_CHARS,
            },
            required: false,
            display_name: labels
                .iter()
                .map(|(l, s)| (l.clone(), format!("{s} ({part})")))
                .collect(),
            exprs: vec![ColumnExpr::Source {
                column: source_column(field, Some(part)),
            }],
        })
        .collect();
    Outcome::Mapped {
        targets,
        flattened: true,
        checks: Vec::new(),
        reason: Some(format!(
            "split into one text field per part ({})",
            parts.join(", ")
        )),
    }
}

/// The expression (and checks) that carries a source system field into the target
/// system field that keeps its value: dates are clamped by the plan's floor for their
/// type, everything else is copied.
pub(crate) fn system_carry(
    plan: &Plan,
    source: &Field,
    target: &Field,
) -> (ColumnExpr, Vec<RowCheck>, Option<String>) {
    let column = source_column(source, None);
    match (&source.ty, &target.ty) {
        (FieldType::DateTime, FieldType::ModernDateTime { date_only }) => {
            let kind = if *date_only {
                TimeKind::Date
            } else {
                TimeKind::Instant
            };
            temporal(source, column, kind, floor_of(plan.type_rule("DateTime")))
        }
        _ => (ColumnExpr::Source { column }, Vec::new(), None),
    }
}
