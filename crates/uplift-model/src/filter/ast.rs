//! The `$filter` syntax tree.
//!
//! The tree is untyped: it records what was written, and [`check_filter`]
//! decides whether it makes sense for an entity set. Keeping the two apart lets
//! the parser run without a catalog (e.g. to canonicalise saved views).
//!
//! [`check_filter`]: super::check_filter

use std::fmt;

/// A byte range of the source text (0-based, end exclusive).
///
/// Bytes rather than characters because that is what slicing `&str` needs;
/// errors convert to character columns only when they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The range from the start of `self` to the end of `other`, used to give
    /// a compound expression the extent of its first and last parts.
    pub(crate) fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end,
        }
    }
}

/// One node of a `$filter` expression together with where it was written.
///
/// Equality ignores the span: two expressions are equal when they mean the
/// same thing, so `parse_filter(&print_filter(&e)) == Ok(e)` can hold even
/// though printing normalises whitespace and parentheses.
#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

impl Expr {
    /// Builds a node; handy for code that synthesises filters (e.g. row-level
    /// security predicates) and has no source text to point into.
    pub fn new(kind: ExprKind, span: Span) -> Self {
        Expr { kind, span }
    }
}

impl Expr {
    /// `contains(Name,'x') eq true`, `(Qty gt 5) ne false` and the like, which the
    /// grammar allows: a predicate (a function call, every one of which is boolean, a
    /// comparison or a combination) compared by `eq`/`ne` with a boolean literal. Returns the predicate and
    /// whether the comparison holds when the predicate does (`false` means it is the
    /// predicate's negation). The tree keeps what was written; checking, SQL and
    /// evaluation read it through this.
    pub fn boolean_comparison(&self) -> Option<(&Expr, bool)> {
        let ExprKind::Compare { op, left, right } = &self.kind else {
            return None;
        };
        let is_predicate = |e: &Expr| {
            matches!(
                e.kind,
                ExprKind::Call { .. }
                    | ExprKind::Compare { .. }
                    | ExprKind::Not(_)
                    | ExprKind::And(..)
                    | ExprKind::Or(..)
            )
        };
        let (pred, value) = match (&left.kind, &right.kind) {
            (_, ExprKind::Literal(Literal::Bool(b))) if is_predicate(left) => (left, *b),
            (ExprKind::Literal(Literal::Bool(b)), _) if is_predicate(right) => (right, *b),
            _ => return None,
        };
        match op {
            CompareOp::Eq => Some((pred, value)),
            CompareOp::Ne => Some((pred, !value)),
            _ => None,
        }
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl fmt::Display for Expr {
    /// Canonical `$filter` text, so a tree can be logged or stored and parsed
    /// back to the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::print_filter(self))
    }
}

/// The shapes a `$filter` expression can take.
///
/// Parentheses leave no node behind: grouping is already captured by the tree
/// shape, and the printer adds back exactly the parentheses it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Literal),
    /// A property path, one element per `/`-separated segment, so that
    /// complex properties (`Site/city`) need no string splitting downstream.
    Property(Vec<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        op: CompareOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
    },
}

/// The comparison operators; a closed set so the SQL translation is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Every operator, for tables and tests that must not miss one.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The OData keyword, which is also what the printer writes.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Inverse of [`CompareOp::as_str`]; case-sensitive as OData is.
    pub(crate) fn from_word(word: &str) -> Option<CompareOp> {
        CompareOp::ALL.into_iter().find(|op| op.as_str() == word)
    }

    /// Whether the operator only asks "same or not", which is all that some
    /// types (Bool, Guid, null) support.
    pub(crate) fn is_equality(&self) -> bool {
        matches!(self, CompareOp::Eq | CompareOp::Ne)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The supported functions: the string predicates users actually need for
/// search boxes; more can be added without changing the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Contains,
    StartsWith,
    EndsWith,
}

impl Func {
    /// Every function, for error messages that list the alternatives.
    pub const ALL: [Func; 3] = [Func::Contains, Func::StartsWith, Func::EndsWith];

    /// The OData function name, which is also what the printer writes.
    pub fn name(&self) -> &'static str {
        match self {
            Func::Contains => "contains",
            Func::StartsWith => "startswith",
            Func::EndsWith => "endswith",
        }
    }

    /// How many arguments the function takes (the parser and checker both
    /// enforce it, the latter for trees built by hand).
    pub fn arity(&self) -> usize {
        2
    }

    /// Inverse of [`Func::name`]; case-sensitive as OData is.
    pub(crate) fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A constant written in the filter.
///
/// Dates and date-times are kept as `time` values rather than text so the
/// checker and the SQL layer never re-parse them, and so invalid calendar
/// dates are rejected at the position where they were written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    /// Exact, as written (`12.10`); the parser refuses what a decimal cannot hold.
    Decimal(crate::Decimal),
    String(String),
    Date(time::Date),
    DateTimeOffset(time::OffsetDateTime),
    Guid(uuid::Uuid),
}

impl fmt::Display for Literal {
    /// The literal as it would be written in a filter, used in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        super::literal::write_literal(self, &mut out);
        f.write_str(&out)
    }
}
