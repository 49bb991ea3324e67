//! The row-transform IR: how one target row is built from one source row of the same
//! entity. Small on purpose, so that it compiles to one `INSERT … SELECT` on SQLite and
//! on PostgreSQL (push-down when both databases share an engine) and evaluates in process
//! ([`evaluate`]) when they do not, with the same result.
//!
//! Every expression reads columns of the *source* row only (physical names from
//! `uplift_model::layout` of the source entity) and yields one value of the target
//! column's storage class ([`TargetColumn::ty`]). A NULL input gives NULL unless a
//! variant says otherwise. Text comparisons ignore ASCII letter case, like every text
//! comparison of the platform (SQLite `COLLATE NOCASE`, `lower()` on PostgreSQL).

use crate::{ColType, Decimal, Value};
use time::Date;

mod eval;

pub use eval::{EvalContext, EvalError, RowOutcome, SourceRow, evaluate};

/// How to build the rows of one target table from one source table.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityTransform {
    /// Logical names, for reports.
    pub source_entity: String,
    pub target_entity: String,
    /// Physical table names (`uplift_model::layout::table_name`).
    pub source_table: String,
    pub target_table: String,
    /// Every column of the target table, in `layout::entity_columns` order, `id` and
    /// `_version` included.
    pub columns: Vec<TargetColumn>,
    /// Conditions checked on each source row. A row for which an `Error` check holds is
    /// not copied; `Warning` checks are reported and the row is copied.
    pub checks: Vec<RowCheck>,
}

impl EntityTransform {
    /// The source columns the transform reads, each once, in first-use order: what a
    /// cross-engine copy must select.
    pub fn source_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let reads = self
            .columns
            .iter()
            .flat_map(|c| c.expr.reads())
            .chain(self.checks.iter().flat_map(|c| c.condition.reads()));
        for col in reads {
            if !out.contains(&col) {
                out.push(col);
            }
        }
        out
    }

    /// The target column of that name.
    pub fn column(&self, name: &str) -> Option<&TargetColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One column of the target table and how its value is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    pub name: String,
    /// The target column's storage class; every expression yields NULL or a value of it.
    pub ty: ColType,
    pub expr: ColumnExpr,
}

/// Whether an expression yields a date or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// `Value::Date`.
    Date,
    /// `Value::DateTime`, UTC.
    Instant,
}

/// How one target value is computed from the source row.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnExpr {
    /// The source column's value unchanged; source and target have the same storage
    /// class. NULL stays NULL.
    Source { column: String },
    /// This value on every row (e.g. `_version` = 1).
    Const(Value),
    /// NULL on every row (a new, empty field).
    Null,
    /// The upgrade's timestamp (`EvalContext::upgrade_time`), an instant, on every row;
    /// bound as a parameter so that every row of every table gets the same instant.
    UpgradeTime,
    /// The e-mail of the account running the upgrade (`EvalContext::actor`), text.
    UpgradeActor,
    /// A date or instant column raised to `floor`: a value before the floor (for an
    /// instant: before midnight UTC of the floor) becomes the floor; the result is of
    /// `kind` (a date becomes its midnight UTC when `kind` is `Instant`; an instant its
    /// UTC calendar date when `kind` is `Date`). NULL stays NULL.
    Floor {
        column: String,
        floor: Date,
        kind: TimeKind,
    },
    /// A date column as the instant of its midnight UTC. NULL stays NULL.
    DateToInstant { column: String },
    /// A float column rounded to the nearest whole number, halves away from zero (SQL:
    /// SQLite `round()`; PostgreSQL `round(x::numeric)`, not `round(double)`, which
    /// rounds halves to even), as an integer. NULL stays NULL. Values beyond ±9.2e18
    /// saturate; pair with [`Condition::OutOfRange`] to refuse them.
    Round { column: String },
    /// A text column matched against option labels, ignoring ASCII case, giving the
    /// option's integer value. NULL, and a label not in the list, give NULL (pair with
    /// [`Condition::UnknownLabel`] to refuse the latter).
    Label {
        column: String,
        options: Vec<(String, i64)>,
    },
    /// The exchange rate of the row's currency code, a decimal: `rates` maps ISO codes
    /// (upper-case, matched ignoring case) to "base currency per unit". NULL code, and a
    /// code without a rate, give NULL (pair with [`Condition::MissingRate`]).
    Rate {
        code_column: String,
        rates: Vec<(String, Decimal)>,
    },
    /// `value × rate` of the row's code, exact, rounded half away from zero to `scale`
    /// fractional digits (the base currency's minor units): the Money base value. NULL
    /// when the value or the code is NULL or the code has no rate.
    Times {
        value_column: String,
        code_column: String,
        rates: Vec<(String, Decimal)>,
        scale: u32,
    },
    /// An option value as its label (a revert's inverse of [`ColumnExpr::Label`]). NULL,
    /// and a value not in the list, give NULL.
    OptionLabel {
        column: String,
        options: Vec<(i64, String)>,
    },
    /// The first of these source columns that is not NULL, all of one storage class (a
    /// revert's classic creation time: the carried one, else the modern record's own).
    FirstOf { columns: Vec<String> },
    /// A whole number as an exact decimal (a revert's inverse of [`ColumnExpr::Round`]).
    /// NULL stays NULL.
    WholeToDecimal { column: String },
}

impl ColumnExpr {
    /// The source columns this expression reads.
    pub fn reads(&self) -> Vec<&str> {
        match self {
            ColumnExpr::Source { column }
            | ColumnExpr::Floor { column, .. }
            | ColumnExpr::DateToInstant { column }
            | ColumnExpr::Round { column }
            | ColumnExpr::Label { column, .. }
            | ColumnExpr::OptionLabel { column, .. }
            | ColumnExpr::WholeToDecimal { column } => vec![column],
            ColumnExpr::FirstOf { columns } => columns.iter().map(String::as_str).collect(),
            ColumnExpr::Rate { code_column, .. } => vec![code_column],
            ColumnExpr::Times {
                value_column,
                code_column,
                ..
            } => vec![value_column, code_column],
            ColumnExpr::Const(_)
            | ColumnExpr::Null
            | ColumnExpr::UpgradeTime
            | ColumnExpr::UpgradeActor => Vec::new(),
        }
    }
}

/// How bad a check's condition is when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The row is not copied; it counts as an error of its entity.
    Error,
    /// The row is copied; the change (a clamped date, a dropped value) is reported.
    Warning,
}

/// A condition on the source row that the upgrade reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RowCheck {
    pub severity: Severity,
    /// The source field it concerns, for grouping in the report.
    pub field: String,
    /// What happened, in words, for the report (`Birthday: a date before 1753-01-01
    /// became 1753-01-01`).
    pub reason: String,
    pub condition: Condition,
}

/// A predicate over the source row. Every variant is false when its column is NULL,
/// so an empty value never warns or fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A date before `floor`, or an instant before midnight UTC of `floor`.
    Before { column: String, floor: Date },
    /// Any of the columns is non-NULL (a value the upgrade drops).
    AnyNotNull { columns: Vec<String> },
    /// A decimal with a fractional part (`x <> trunc(x)`).
    Fractional { column: String },
    /// A decimal below `min` or above `max` (a value no whole number holds).
    OutOfRange {
        column: String,
        min: Decimal,
        max: Decimal,
    },
    /// Text that matches none of `labels`, ignoring ASCII case.
    UnknownLabel { column: String, labels: Vec<String> },
    /// A currency code that matches none of `codes`, ignoring ASCII case.
    MissingRate {
        code_column: String,
        codes: Vec<String>,
    },
}

impl Condition {
    /// The source columns this condition reads.
    pub fn reads(&self) -> Vec<&str> {
        match self {
            Condition::Before { column, .. }
            | Condition::Fractional { column }
            | Condition::OutOfRange { column, .. }
            | Condition::UnknownLabel { column, .. } => vec![column],
            Condition::MissingRate { code_column, .. } => vec![code_column],
            Condition::AnyNotNull { columns } => columns.iter().map(String::as_str).collect(),
        }
    }
}
