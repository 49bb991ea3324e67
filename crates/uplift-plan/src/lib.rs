//! Upgrade plans: the declarative files that turn a catalog of one schema version into a
//! catalog of another, and everything that follows from applying one.
//!
//! Pure, like the model: no I/O (the shipped plans are compiled in with `include_str!`),
//! no async, no database. The upgrade runner reads a plan ([`parse_plan`]), applies it to
//! the production catalog ([`apply()`]) and gets back the target catalog, the change list
//! shown to the admin, and one row transform per entity ([`EntityTransform`]). The store
//! compiles those transforms to SQL (`INSERT … SELECT` on one engine) or evaluates them
//! in process with [`evaluate`] (copies across engines, change capture replay), so both
//! paths share one definition of what a row becomes.
//!
//! Modules, each named for what it owns:
//! - [`plan`]: a validated plan (the only way to get one is [`parse_plan`]);
//! - [`file`](mod@file): the TOML format and its validation;
//! - [`builtin`](mod@builtin): the plans shipped with the binary;
//! - [`apply`](mod@apply): plan + catalog → [`Upgrade`];
//! - [`changes`]: the change list (the step 1 report's schema half);
//! - [`transform`] (re-exported from the model): the row-transform IR and its
//!   in-process evaluator;
//! - [`security`]: roles and memberships carried to the target version;
//! - [`validate`]: the model's own validation run over a target catalog;
//! - [`rewrite`]: apps and flows rewritten for the target catalog, with findings;
//! - [`inverse`](mod@inverse): the row transforms run backwards, for a revert;
//! - [`translate`]: a record (as flows see it) carried across a switch, either way.

pub mod apply;
pub mod builtin;
pub mod changes;
mod convert;
pub mod file;
pub mod inverse;
mod naming;
pub mod plan;
pub mod rewrite;
pub mod security;
pub mod translate;
pub mod validate;

pub use apply::{ApplyError, Options, Upgrade, apply};
pub use builtin::{builtin, builtin_names};
pub use changes::{Action, ChangeList, EntityChange, FieldChange, Warning};
pub use file::{PlanError, parse_plan};
pub use inverse::{Inverse, LostField, inverse};
pub use plan::{
    Conversion, EntityRule, Fraction, LanguageRule, Naming, Plan, SecurityRules, SystemFieldRule,
    TypeRule,
};
pub use security::{SecurityOutcome, SecurityWarning, SourceSecurity, map_security};
pub use transform::{
    ColumnExpr, Condition, EntityTransform, RowCheck, Severity, TargetColumn, TimeKind,
};
pub use translate::Translator;
/// The row-transform IR lives in the model so the store can compile it without
/// knowing about plans; re-exported here for the plan's users.
pub use uplift_model::transform;
pub use uplift_model::transform::{EvalContext, EvalError, RowOutcome, SourceRow, evaluate};
