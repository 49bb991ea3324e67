//! Applying a plan to a catalog: the target catalog, the change list and one row
//! transform per upgraded entity, computed together so that they cannot disagree.

use std::collections::{BTreeMap, HashMap};

use uplift_model::entity::{KEY, audit_field_names, system_fields};
use uplift_model::layout::{VERSION_COLUMN, entity_columns, field_columns, table_name};
use uplift_model::{Catalog, Decimal, Entity, Field, FieldType, Origin, SchemaVersion, TextFormat};

use crate::changes::{Action, ChangeList, EntityChange, FieldChange, Warning};
use crate::convert::{Ctx, Outcome, Planned, convert_field, keep_labels, system_carry};
use crate::naming::{Fit, Scope, allocate, wanted};
use crate::plan::{EntityRule, Plan, SystemFieldRule};
use uplift_model::transform::{ColumnExpr, EntityTransform, RowCheck, TargetColumn};

/// What the admin picks when starting an upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The base language (`en`): its display names are the ones kept.
    pub language: String,
    /// The base currency (`EUR`): Money base values are in it, its rate is 1.
    pub currency: String,
    /// Currency code → how many units of the base currency one unit is worth
    /// (base value = value × rate). The base currency may be left out.
    pub exchange_rates: BTreeMap<String, Decimal>,
}

/// The result of applying a plan to a catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Upgrade {
    /// The catalog of the test database, valid by the model's rules.
    pub target: Catalog,
    /// What changed, per entity and field.
    pub changes: ChangeList,
    /// How to fill each target table, in target catalog order.
    pub entities: Vec<EntityTransform>,
}

impl Upgrade {
    /// The transform that fills the target of a source entity.
    pub fn transform(&self, source_entity: &str) -> Option<&EntityTransform> {
        self.entities
            .iter()
            .find(|t| t.source_entity == source_entity)
    }
}

/// Why a plan could not be applied. None of these is a data problem: those are row
/// checks in the transforms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("the plan upgrades {plan} catalogs, but this catalog is {catalog}")]
    VersionMismatch {
        plan: SchemaVersion,
        catalog: SchemaVersion,
    },
    #[error("upgrade options: {0}")]
    Options(String),
    /// The source catalog breaks a rule it should already meet.
    #[error("source catalog, {}", located(entity, field.as_deref(), message))]
    Source {
        entity: String,
        field: Option<String>,
        message: String,
    },
    /// The plan asks for something this catalog cannot become.
    #[error("{}", located(entity, field.as_deref(), message))]
    Impossible {
        entity: String,
        field: Option<String>,
        message: String,
    },
    /// The result failed the model's validation: a bug, reported rather than shipped.
    #[error("the upgraded catalog is not valid: {0}")]
    InvalidTarget(String),
}

fn located(entity: &str, field: Option<&str>, message: &str) -> String {
    match field {
        Some(f) => format!("entity '{entity}', field '{f}': {message}"),
        None => format!("entity '{entity}': {message}"),
    }
}

/// Applies `plan` to `source`: the target catalog, its change list and row transforms.
pub fn apply(plan: &Plan, source: &Catalog, opts: &Options) -> Result<Upgrade, ApplyError> {
    if source.version != plan.from() {
        return Err(ApplyError::VersionMismatch {
            plan: plan.from(),
            catalog: source.version,
        });
    }
    let rates = check_options(opts)?;
    let mut seen = std::collections::HashSet::new();
    for e in &source.entities {
        if !seen.insert(e.name.to_ascii_lowercase()) {
            return Err(ApplyError::Source {
                entity: e.name.clone(),
                field: None,
                message: "is defined twice".into(),
            });
        }
    }
    let names = entity_names(plan, source)?;
    let mut changes = ChangeList::default();
    let mut target = Catalog::empty(plan.to());
    let mut transforms = Vec::new();
    let lookups: BTreeMap<String, Result<String, String>> = names
        .iter()
        .map(|(k, v)| (k.clone(), v.as_result()))
        .collect();
    for entity in &source.entities {
        match names.get(&entity.name) {
            Some(Named::Dropped(reason)) => {
                changes.entities.push(dropped_entity(plan, entity, reason));
                changes.warnings.push(Warning {
                    entity: entity.name.clone(),
                    field: None,
                    message: format!(
                        "the entity is not upgraded and its rows are not copied: {reason}"
                    ),
                });
            }
            Some(Named::Upgraded {
                name,
                reason,
                warning,
            }) => {
                if let Some(message) = warning {
                    changes.warnings.push(Warning {
                        entity: entity.name.clone(),
                        field: None,
                        message: message.clone(),
                    });
                }
                let ctx = Ctx {
                    plan,
                    language: &opts.language,
                    rates: &rates,
                    base_scale: uplift_model::decimal::minor_units(&opts.currency),
                    entity_names: &lookups,
                    entity: &entity.name,
                };
                let built = upgrade_entity(&ctx, entity, name)?;
                let mut change = built.change;
                change.reason = reason.clone();
                changes.entities.push(change);
                changes.warnings.extend(built.warnings);
                target.entities.push(built.entity);
                transforms.push(built.transform);
            }
            None => {
                return Err(ApplyError::Source {
                    entity: entity.name.clone(),
                    field: None,
                    message: "is listed twice".into(),
                });
            }
        }
    }
    crate::validate::validate(&target).map_err(ApplyError::InvalidTarget)?;
    Ok(Upgrade {
        target,
        changes,
        entities: transforms,
    })
}

/// Checks the options and returns the exchange rates, base currency included, codes
/// upper-case, sorted by code.
fn check_options(opts: &Options) -> Result<Vec<(String, Decimal)>, ApplyError> {
    let bad = |m: String| Err(ApplyError::Options(m));
    if opts.language.trim().is_empty() {
        return bad("the base language is empty".into());
    }
    let code = |c: &str| -> Result<String, ApplyError> {
        if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
            Ok(c.to_ascii_uppercase())
        } else {
            Err(ApplyError::Options(format!(
                "'{c}' is not an ISO 4217 currency code such as \"EUR\""
            )))
        }
    };
    let base = code(&opts.currency)?;
    let mut rates: BTreeMap<String, Decimal> = BTreeMap::new();
    for (c, rate) in &opts.exchange_rates {
        let c = code(c)?;
        if *rate <= Decimal::ZERO {
            return bad(format!(
                "the exchange rate of {c} must be a positive number, not {rate}"
            ));
        }
        if c == base && *rate != Decimal::ONE {
            return bad(format!(
                "{c} is the base currency, so its rate is 1, not {rate}"
            ));
        }
        if rates.insert(c.clone(), *rate).is_some() {
            return bad(format!("{c} has two exchange rates"));
        }
    }
    rates.insert(base, Decimal::ONE);
    Ok(rates.into_iter().collect())
}

/// What becomes of an entity's name.
enum Named {
    Upgraded {
        name: String,
        reason: Option<String>,
        /// Set when the name had to be shortened or made unique.
        warning: Option<String>,
    },
    Dropped(String),
}

impl Named {
    fn as_result(&self) -> Result<String, String> {
        match self {
            Named::Upgraded { name, .. } => Ok(name.clone()),
            Named::Dropped(reason) => Err(reason.clone()),
        }
    }
}

/// Target names of every entity: explicit renames first, then names that fit, then
/// truncated or colliding ones (see `naming`).
fn entity_names(plan: &Plan, source: &Catalog) -> Result<BTreeMap<String, Named>, ApplyError> {
    let naming = plan.naming();
    let mut scope = Scope::new(naming.max_chars, []);
    let mut out = BTreeMap::new();
    let mut rest: Vec<&Entity> = Vec::new();
    for e in &source.entities {
        let rule = match e.origin {
            Origin::Standard => plan.entity_rule(&e.name),
            _ => None,
        };
        match rule {
            Some(EntityRule::Deprecated { reason }) => {
                out.insert(e.name.clone(), Named::Dropped(reason.clone()));
            }
            Some(EntityRule::Rename { to, reason }) => {
                if !scope.try_claim(to) {
                    return Err(ApplyError::Impossible {
                        entity: e.name.clone(),
                        field: None,
                        message: format!("the plan renames it to '{to}', a name already taken"),
                    });
                }
                let reason = reason
                    .clone()
                    .unwrap_or_else(|| "renamed by the plan".to_string());
                out.insert(
                    e.name.clone(),
                    Named::Upgraded {
                        name: to.clone(),
                        reason: Some(reason),
                        warning: None,
                    },
                );
            }
            None => rest.push(e),
        }
    }
    let wanted_names: Vec<String> = rest
        .iter()
        .map(|e| wanted(naming, &e.name, e.origin))
        .collect();
    for ((e, w), (name, fit)) in rest
        .iter()
        .zip(&wanted_names)
        .zip(allocate(&mut scope, &wanted_names))
    {
        let why = name_reason(plan, (&e.name, e.origin, true), w, &name, fit);
        let reason = (!why.is_empty()).then(|| why.join("; "));
        let warning = (fit != Fit::Exact).then(|| why.last().cloned()).flatten();
        let named = Named::Upgraded {
            name,
            reason,
            warning,
        };
        if out.insert(e.name.clone(), named).is_some() {
            return Err(ApplyError::Source {
                entity: e.name.clone(),
                field: None,
                message: "is defined twice".into(),
            });
        }
    }
    Ok(out)
}

/// Why a name changed beyond letter case, if it did.
/// `explain_prefix` is off for the fields of a custom entity, where every name gains
/// it and saying so on each field would bury the reasons that matter.
fn name_reason(
    plan: &Plan,
    (source, origin, explain_prefix): (&str, Origin, bool),
    wanted: &str,
    got: &str,
    fit: Fit,
) -> Vec<String> {
    let naming = plan.naming();
    let mut why = Vec::new();
    if let Some(prefix) = &naming.custom_prefix
        && explain_prefix
        && origin == Origin::Custom
        && !source.to_ascii_lowercase().starts_with(prefix.as_str())
    {
        why.push(format!("custom name: publisher prefix {prefix} added"));
    }
    match fit {
        Fit::Exact => {}
        Fit::Truncated => why.push(format!(
            "'{wanted}' is longer than {} characters: truncated to '{got}'",
            naming.max_chars
        )),
        Fit::Suffixed if wanted.len() > naming.max_chars => why.push(format!(
            "'{wanted}' is longer than {} characters and its truncation is taken: made unique as '{got}'",
            naming.max_chars
        )),
        Fit::Suffixed => why.push(format!("'{wanted}' is taken: made unique as '{got}'")),
    }
    why
}

fn dropped_entity(plan: &Plan, entity: &Entity, reason: &str) -> EntityChange {
    let fields = entity
        .all_fields(plan.from())
        .map(|f| FieldChange {
            source: Some(f.name.clone()),
            targets: Vec::new(),
            action: Action::Dropped,
            source_type: Some(f.ty.type_name().to_string()),
            target_types: Vec::new(),
            reason: Some("the entity is not upgraded".into()),
        })
        .collect();
    EntityChange {
        source: Some(entity.name.clone()),
        target: None,
        action: Action::Dropped,
        reason: Some(reason.to_string()),
        fields,
    }
}

struct Built {
    entity: Entity,
    change: EntityChange,
    transform: EntityTransform,
    warnings: Vec<Warning>,
}

/// A planned target field with its final name.
struct Placed {
    field: Field,
    exprs: Vec<ColumnExpr>,
}

/// Default length of the primary name field a plan adds, as in the reference product.
const NAME_MAX_CHARS: u32 = 100;
/// Name of the primary name field added to entities without a text business key.
const PRIMARY_NAME: &str = "name";

fn upgrade_entity(ctx: &Ctx, source: &Entity, target_name: &str) -> Result<Built, ApplyError> {
    let plan = ctx.plan;
    let to = plan.to();
    let mut warnings = Vec::new();

    // 1. Each defined field's outcome, with the names its targets want.
    let mut outcomes = Vec::new();
    for f in &source.fields {
        outcomes.push(convert_field(ctx, field_origin(source, f), f)?);
    }
    let mut wanted_names = Vec::new();
    for o in &outcomes {
        if let Outcome::Mapped { targets, .. } = o {
            wanted_names.extend(targets.iter().map(|t| t.wanted.clone()));
        }
    }

    // 2. Final names: the target's system fields and the key are taken already.
    let reserved: Vec<&str> = system_fields(to)
        .iter()
        .map(|f| f.name.as_str())
        .chain([KEY])
        .collect();
    let mut scope = Scope::new(plan.naming().max_chars, reserved);
    let mut names = allocate(&mut scope, &wanted_names).into_iter();

    // 3. Target fields, field changes and checks, in source order.
    let mut placed: Vec<Placed> = Vec::new();
    let mut field_changes = Vec::new();
    let mut checks: Vec<RowCheck> = Vec::new();
    let mut key_target: Option<String> = None;
    for (f, outcome) in source.fields.iter().zip(outcomes) {
        match outcome {
            Outcome::Dropped { reason, checks: c } => {
                checks.extend(c);
                warnings.push(Warning {
                    entity: source.name.clone(),
                    field: Some(f.name.clone()),
                    message: format!("dropped: {reason}"),
                });
                field_changes.push(FieldChange {
                    source: Some(f.name.clone()),
                    targets: Vec::new(),
                    action: Action::Dropped,
                    source_type: Some(f.ty.type_name().to_string()),
                    target_types: Vec::new(),
                    reason: Some(reason),
                });
            }
            Outcome::Mapped {
                targets,
                flattened,
                checks: c,
                reason,
            } => {
                checks.extend(c);
                let mut reasons: Vec<String> = reason.into_iter().collect();
                let mut target_names = Vec::new();
                let mut target_types = Vec::new();
                let mut target_type_names = Vec::new();
                let single = targets.len() == 1;
                let origin = field_origin(source, f);
                for Planned {
                    wanted,
                    ty,
                    required,
                    display_name,
                    exprs,
                } in targets
                {
                    let (name, fit) = names
                        .next()
                        .ok_or_else(|| internal(source, "field names ran out"))?;
                    let why = name_reason(
                        plan,
                        (&f.name, origin, source.origin != Origin::Custom),
                        &wanted,
                        &name,
                        fit,
                    );
                    if fit != Fit::Exact {
                        warnings.push(Warning {
                            entity: source.name.clone(),
                            field: Some(f.name.clone()),
                            message: why
                                .last()
                                .cloned()
                                .unwrap_or_else(|| format!("'{wanted}' became '{name}'")),
                        });
                    }
                    for w in why {
                        if !reasons.contains(&w) {
                            reasons.push(w);
                        }
                    }
                    if single
                        && source.business_key.as_deref() == Some(f.name.as_str())
                        && ty.is_text()
                    {
                        key_target = Some(name.clone());
                    }
                    target_names.push(name.clone());
                    target_types.push(ty.type_label());
                    target_type_names.push(ty.type_name());
                    placed.push(Placed {
                        field: Field {
                            name,
                            display_name,
                            ty,
                            required,
                            origin,
                        },
                        exprs,
                    });
                }
                let action = if flattened {
                    Action::Flattened
                } else if target_type_names.first() != Some(&f.ty.type_name()) {
                    Action::Retyped
                } else if target_names
                    .first()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&f.name))
                {
                    Action::Kept
                } else {
                    Action::Renamed
                };
                field_changes.push(FieldChange {
                    source: Some(f.name.clone()),
                    targets: target_names,
                    action,
                    source_type: Some(f.ty.type_name().to_string()),
                    target_types,
                    reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
                });
            }
        }
    }

    // 4. The primary name: the business key when it stays single-line text, else a new
    //    empty `name` field.
    let mut added = Vec::new();
    let business_key = match key_target {
        Some(k) => k,
        None => {
            let (name, _) = scope.claim(PRIMARY_NAME);
            let field = Field {
                name: name.clone(),
                display_name: keep_labels(
                    plan,
                    ctx.language,
                    &uplift_model::Labels::from([(ctx.language.to_string(), "Name".to_string())]),
                ),
                ty: FieldType::SingleLineText {
                    format: TextFormat::Text,
                    max_length: NAME_MAX_CHARS,
                },
                required: false,
                origin: source.origin,
            };
            let why = match &source.business_key {
                Some(k) => format!(
                    "primary name field (the business key {k} is not single-line text after the upgrade); empty on existing rows"
                ),
                None => {
                    "primary name field (the entity has no business key); empty on existing rows"
                        .to_string()
                }
            };
            added.push(added_change(&field, why));
            placed.push(Placed {
                field,
                exprs: vec![ColumnExpr::Null],
            });
            name
        }
    };

    // 5. System fields: carried values, then the platform's own.
    let system = carry_system_fields(plan, source)?;
    field_changes.extend(system.changes);
    checks.extend(system.checks);
    added.extend(system.added);
    field_changes.extend(added);

    // 6. The target entity and the expression of every one of its columns.
    let entity = Entity {
        name: target_name.to_string(),
        display_name: keep_labels(plan, ctx.language, &source.display_name),
        set_name: Entity::default_set_name(target_name),
        business_key: Some(business_key),
        origin: source.origin,
        fields: placed.iter().map(|p| p.field.clone()).collect(),
    };
    let columns = target_columns(source, &entity, to, placed, system.exprs)?;
    let action = if target_name.eq_ignore_ascii_case(&source.name) {
        Action::Kept
    } else {
        Action::Renamed
    };
    let transform = EntityTransform {
        source_entity: source.name.clone(),
        target_entity: entity.name.clone(),
        source_table: table_name(source),
        target_table: table_name(&entity),
        columns,
        checks,
    };
    Ok(Built {
        change: EntityChange {
            source: Some(source.name.clone()),
            target: Some(entity.name.clone()),
            action,
            reason: None,
            fields: field_changes,
        },
        entity,
        transform,
        warnings,
    })
}

/// Every column of the target table with its expression, in layout order: `id` is
/// and `_version` are copied, every other column comes from a placed field or a
/// system field; a column without one is a bug, reported rather than left NULL.
fn target_columns(
    source: &Entity,
    entity: &Entity,
    to: SchemaVersion,
    placed: Vec<Placed>,
    mut system_exprs: HashMap<String, ColumnExpr>,
) -> Result<Vec<TargetColumn>, ApplyError> {
    let mut by_column: HashMap<String, ColumnExpr> = HashMap::new();
    for p in placed {
        let cols = field_columns(&p.field);
        if cols.len() != p.exprs.len() {
            return Err(internal(
                source,
                &format!(
                    "field {} has {} columns but {} expressions",
                    p.field.name,
                    cols.len(),
                    p.exprs.len()
                ),
            ));
        }
        for (c, e) in cols.into_iter().zip(p.exprs) {
            by_column.insert(c.name, e);
        }
    }
    for tf in system_fields(to) {
        if let (Some(c), Some(e)) = (field_columns(tf).pop(), system_exprs.remove(&tf.name)) {
            by_column.insert(c.name, e);
        }
    }
    let mut columns = Vec::new();
    for c in entity_columns(entity, to) {
        let expr = if c.name == KEY {
            ColumnExpr::Source {
                column: KEY.to_string(),
            }
        } else if c.name == VERSION_COLUMN {
            // Kept, so that an ETag read before step 3's switch still guards a write
            // after it (a version started again at 1 would match a stale one).
            ColumnExpr::Source {
                column: VERSION_COLUMN.to_string(),
            }
        } else {
            by_column
                .remove(&c.name)
                .ok_or_else(|| internal(source, &format!("no expression for column {}", c.name)))?
        };
        columns.push(TargetColumn {
            name: c.name,
            ty: c.ty,
            expr,
        });
    }
    Ok(columns)
}

/// The system fields of an entity across the upgrade.
struct SystemPart {
    /// One change per source system field.
    changes: Vec<FieldChange>,
    /// One change per target system field no source field fills.
    added: Vec<FieldChange>,
    /// Target system field name → its expression.
    exprs: HashMap<String, ColumnExpr>,
    checks: Vec<RowCheck>,
}

/// Source system fields go where the plan says (or are dropped); the target's audit
/// fields that nothing fills take the upgrade's time and account; the rest stay empty.
fn carry_system_fields(plan: &Plan, source: &Entity) -> Result<SystemPart, ApplyError> {
    let (from, to) = (plan.from(), plan.to());
    let mut changes = Vec::new();
    let mut added = Vec::new();
    let mut checks = Vec::new();
    let mut system_exprs: HashMap<String, ColumnExpr> = HashMap::new();
    let target_system = system_fields(to);
    let [_, _, from_mod_on, from_mod_by] = audit_field_names(from);
    let [to_con, to_cby, to_mon, to_mby] = audit_field_names(to);
    for sf in system_fields(from) {
        let change = match plan.system_field(&sf.name) {
            Some(SystemFieldRule::Keep(t)) => {
                let tf = target_system
                    .iter()
                    .find(|x| x.name == *t)
                    .ok_or_else(|| internal(source, &format!("no {to} system field {t}")))?;
                let (expr, c, why) = system_carry(plan, sf, tf);
                checks.extend(c);
                system_exprs.insert(tf.name.clone(), expr);
                let mut reasons = vec![format!("value kept in {t}")];
                reasons.extend(why);
                FieldChange {
                    source: Some(sf.name.clone()),
                    targets: vec![tf.name.clone()],
                    action: if tf.ty.type_name() != sf.ty.type_name() {
                        Action::Retyped
                    } else if tf.name.eq_ignore_ascii_case(&sf.name) {
                        Action::Kept
                    } else {
                        Action::Renamed
                    },
                    source_type: Some(sf.ty.type_name().to_string()),
                    target_types: vec![tf.ty.type_label()],
                    reason: Some(reasons.join("; ")),
                }
            }
            _ => {
                let why = if sf.name == from_mod_on {
                    format!("not carried: {to_mon} is set to the upgrade time")
                } else if sf.name == from_mod_by {
                    format!("not carried: {to_mby} is set to the account running the upgrade")
                } else {
                    "not carried".to_string()
                };
                FieldChange {
                    source: Some(sf.name.clone()),
                    targets: Vec::new(),
                    action: Action::Dropped,
                    source_type: Some(sf.ty.type_name().to_string()),
                    target_types: Vec::new(),
                    reason: Some(why),
                }
            }
        };
        changes.push(change);
    }
    for tf in target_system {
        if system_exprs.contains_key(&tf.name) {
            continue;
        }
        let (expr, why) = if tf.name == to_con || tf.name == to_mon {
            (
                ColumnExpr::UpgradeTime,
                "set to the upgrade time".to_string(),
            )
        } else if tf.name == to_cby || tf.name == to_mby {
            (
                ColumnExpr::UpgradeActor,
                "set to the account running the upgrade".to_string(),
            )
        } else {
            (
                ColumnExpr::Null,
                "empty: no source field keeps its value here".to_string(),
            )
        };
        system_exprs.insert(tf.name.clone(), expr);
        added.push(added_change(tf, why));
    }
    Ok(SystemPart {
        changes,
        added,
        exprs: system_exprs,
        checks,
    })
}

fn added_change(f: &Field, reason: String) -> FieldChange {
    FieldChange {
        source: None,
        targets: vec![f.name.clone()],
        action: Action::Added,
        source_type: None,
        target_types: vec![f.ty.type_label()],
        reason: Some(reason),
    }
}

fn internal(entity: &Entity, message: &str) -> ApplyError {
    ApplyError::Impossible {
        entity: entity.name.clone(),
        field: None,
        message: format!("internal: {message}"),
    }
}

/// Which origin decides a field's naming: its own, except that every field of a custom
/// entity counts as custom (all of it is the user's).
fn field_origin(entity: &Entity, f: &Field) -> Origin {
    match entity.origin {
        Origin::Custom => Origin::Custom,
        _ => f.origin,
    }
}
