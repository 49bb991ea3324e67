//! Type checking a parsed filter against an entity set's properties.
//!
//! The catalog is reached only through [`PropertyResolver`], so this module
//! does not depend on how the catalog is stored, and tests can use a table.

use std::fmt;

use super::ast::{CompareOp, Expr, ExprKind, Func, Literal, Span};
use super::error::FilterError;
use super::print::print_filter;

/// The value types a filter can talk about.
///
/// Coarser than the catalog's types on purpose: the filter language only
/// needs to know which comparisons make sense, not storage widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Int,
    Decimal,
    Bool,
    Date,
    DateTimeOffset,
    Guid,
    Binary,
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScalarType::String => "String",
            ScalarType::Int => "Int",
            ScalarType::Decimal => "Decimal",
            ScalarType::Bool => "Bool",
            ScalarType::Date => "Date",
            ScalarType::DateTimeOffset => "DateTimeOffset",
            ScalarType::Guid => "Guid",
            ScalarType::Binary => "Binary",
        })
    }
}

/// What a property path refers to.
///
/// Complex properties are reported rather than hidden so that using one as a
/// value can be answered with the paths the user probably meant.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyType {
    Scalar(ScalarType),
    /// A structured property; `parts` are the names of its sub-properties
    /// (`city`, or the full path `Site/city`: both are understood).
    Complex {
        parts: Vec<String>,
    },
}

/// Looks up property paths of the entity set being filtered.
///
/// A trait, not a catalog type, so the filter language stays independent of
/// the catalog and its tests can use a plain table.
pub trait PropertyResolver {
    /// The type at `path` (one element per `/` segment), or `None` when the
    /// entity set has no such property (or the caller may not see it).
    fn resolve(&self, path: &[String]) -> Option<PropertyType>;
}

/// Checks that every property exists, that comparisons and function calls
/// have compatible operand types, and that the whole filter is a condition.
///
/// Run before translating to SQL so users get a precise message pointing into
/// their text instead of a database error. `src` must be the text `e` was
/// parsed from; it is only used to turn spans into character positions.
pub fn check_filter(
    e: &Expr,
    src: &str,
    resolver: &dyn PropertyResolver,
) -> Result<(), FilterError> {
    Checker { src, resolver }.check_condition(e)
}

/// The type of an operand: `null` fits any type, so it is kept apart.
#[derive(Clone, Copy, PartialEq)]
enum ValueType {
    Null,
    Scalar(ScalarType),
}

/// Which operators a pair of types supports.
enum Comparable {
    All,
    EqualityOnly,
    No,
}

struct Checker<'a> {
    src: &'a str,
    resolver: &'a dyn PropertyResolver,
}

impl Checker<'_> {
    fn err(&self, span: Span, message: impl Into<String>) -> FilterError {
        FilterError::at(self.src, span.start, message)
    }

    /// Checks that `e` is a boolean condition.
    ///
    /// `and`/`or`/`not` are walked with an explicit stack: their chains are as
    /// long as the input, while the nesting that does recurse (operands in
    /// parentheses) is bounded by the parser.
    fn check_condition(&self, e: &Expr) -> Result<(), FilterError> {
        let mut stack = vec![e];
        while let Some(e) = stack.pop() {
            if let Some((pred, _)) = e.boolean_comparison() {
                stack.push(pred);
                continue;
            }
            match &e.kind {
                ExprKind::And(l, r) | ExprKind::Or(l, r) => {
                    // Right first onto the stack so errors are found left to right.
                    stack.push(r);
                    stack.push(l);
                }
                ExprKind::Not(inner) => stack.push(inner),
                ExprKind::Compare { op, left, right } => self.check_compare(*op, left, right)?,
                ExprKind::Call { func, args } => self.check_call(e, *func, args)?,
                ExprKind::Property(path) => {
                    let ty = self.property_type(e, path)?;
                    if ty != ScalarType::Bool {
                        let p = path.join("/");
                        return Err(self.err(
                            e.span,
                            format!(
                                "'{p}' is {ty}, not a condition: compare it with a value, \
                                 e.g. '{p} eq ...'"
                            ),
                        ));
                    }
                }
                ExprKind::Literal(Literal::Bool(_)) => {}
                ExprKind::Literal(l) => {
                    return Err(self.err(
                        e.span,
                        format!(
                            "expected a condition, found {}",
                            self.describe(e, literal_type(l))
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn property_type(&self, e: &Expr, path: &[String]) -> Result<ScalarType, FilterError> {
        let p = path.join("/");
        match self.resolver.resolve(path) {
            None => Err(self.err(e.span, format!("unknown property '{p}'"))),
            Some(PropertyType::Scalar(t)) => Ok(t),
            Some(PropertyType::Complex { parts }) => {
                let prefix = format!("{p}/");
                let listed: Vec<String> = parts
                    .iter()
                    .map(|part| {
                        if part.starts_with(&prefix) {
                            part.clone()
                        } else {
                            format!("{prefix}{part}")
                        }
                    })
                    .collect();
                let hint = if listed.is_empty() {
                    String::new()
                } else {
                    format!("; use one of its parts: {}", listed.join(", "))
                };
                Err(self.err(
                    e.span,
                    format!("'{p}' is a complex value and cannot be used directly{hint}"),
                ))
            }
        }
    }

    /// The type of a comparison or function operand; a nested condition
    /// (e.g. `(a eq 1) eq true`) is checked and counts as Bool.
    fn operand_type(&self, e: &Expr) -> Result<ValueType, FilterError> {
        match &e.kind {
            ExprKind::Literal(l) => Ok(literal_type(l)),
            ExprKind::Property(path) => Ok(ValueType::Scalar(self.property_type(e, path)?)),
            _ => {
                self.check_condition(e)?;
                Ok(ValueType::Scalar(ScalarType::Bool))
            }
        }
    }

    /// How an operand is named in messages: its type and its text.
    fn describe(&self, e: &Expr, ty: ValueType) -> String {
        match (&e.kind, ty) {
            (_, ValueType::Null) => "null".into(),
            (ExprKind::Property(path), ValueType::Scalar(t)) => {
                format!("{t} '{}'", path.join("/"))
            }
            (ExprKind::Literal(l), ValueType::Scalar(t)) => format!("{t} {l}"),
            (_, ValueType::Scalar(t)) => format!("{t} ({})", print_filter(e)),
        }
    }

    fn check_compare(&self, op: CompareOp, left: &Expr, right: &Expr) -> Result<(), FilterError> {
        // A complex value as a whole can be tested for null (all of its parts null).
        let complex_vs_null = |a: &Expr, b: &Expr| {
            matches!(&b.kind, ExprKind::Literal(Literal::Null))
                && matches!(&a.kind, ExprKind::Property(p)
                    if matches!(self.resolver.resolve(p), Some(PropertyType::Complex { .. })))
        };
        if op.is_equality() && (complex_vs_null(left, right) || complex_vs_null(right, left)) {
            return Ok(());
        }
        // A condition as an operand is allowed only against true or false with eq/ne
        // (see `Expr::boolean_comparison`, checked before this).
        let leaf = |e: &Expr| matches!(e.kind, ExprKind::Literal(_) | ExprKind::Property(_));
        if let Some(cond) = [left, right].into_iter().find(|e| !leaf(e)) {
            self.check_condition(cond)?;
            return Err(self.err(
                cond.span,
                format!(
                    "'{}' is a condition: it can only be compared with true or false, using eq or ne",
                    print_filter(cond)
                ),
            ));
        }
        let lt = self.operand_type(left)?;
        let rt = self.operand_type(right)?;
        let (a, b) = match (lt, rt) {
            (ValueType::Null, _) | (_, ValueType::Null) => {
                if op.is_equality() {
                    return Ok(());
                }
                let null_side = if lt == ValueType::Null { left } else { right };
                return Err(self.err(
                    null_side.span,
                    format!("cannot use {op} with null: null can only be compared with eq or ne"),
                ));
            }
            (ValueType::Scalar(a), ValueType::Scalar(b)) => (a, b),
        };
        if a == ScalarType::Binary || b == ScalarType::Binary {
            let (side, ty) = if a == ScalarType::Binary {
                (left, lt)
            } else {
                (right, rt)
            };
            return Err(self.err(
                side.span,
                format!(
                    "{} cannot be compared: Binary values only support 'eq null' and 'ne null'",
                    self.describe(side, ty)
                ),
            ));
        }
        use ScalarType as T;
        let comparable = match (a, b) {
            (T::String, T::String) => Comparable::All,
            (T::Int | T::Decimal, T::Int | T::Decimal) => Comparable::All,
            (T::Date | T::DateTimeOffset, T::Date | T::DateTimeOffset) => Comparable::All,
            (T::Bool, T::Bool) => Comparable::EqualityOnly,
            (T::Guid, T::Guid | T::String) | (T::String, T::Guid) => Comparable::EqualityOnly,
            _ => Comparable::No,
        };
        // Blame the literal when there is exactly one: that is what the user
        // typed against a property whose type they cannot change.
        let blame = match (&left.kind, &right.kind) {
            (ExprKind::Literal(_), ExprKind::Literal(_)) => right,
            (ExprKind::Literal(_), _) => left,
            _ => right,
        };
        match comparable {
            Comparable::No => Err(self.err(
                blame.span,
                format!(
                    "cannot compare {} with {}",
                    self.describe(left, lt),
                    self.describe(right, rt)
                ),
            )),
            Comparable::EqualityOnly if !op.is_equality() => Err(self.err(
                blame.span,
                format!(
                    "cannot use {op} to compare {} with {}: {} values can only be compared with eq or ne",
                    self.describe(left, lt),
                    self.describe(right, rt),
                    if a == T::Bool { "Bool" } else { "Guid" }
                ),
            )),
            _ => self.check_guid_text(a, b, left, right),
        }
    }

    /// A Guid compared with a string literal: the text must be a GUID, or the
    /// comparison could only ever be false (or fail in the database).
    fn check_guid_text(
        &self,
        a: ScalarType,
        b: ScalarType,
        left: &Expr,
        right: &Expr,
    ) -> Result<(), FilterError> {
        let text_side = match (a, b) {
            (ScalarType::Guid, ScalarType::String) => right,
            (ScalarType::String, ScalarType::Guid) => left,
            _ => return Ok(()),
        };
        if let ExprKind::Literal(Literal::String(s)) = &text_side.kind
            && uuid::Uuid::parse_str(s).is_err()
        {
            return Err(self.err(
                text_side.span,
                format!("'{s}' is not a valid GUID (expected 8-4-4-4-12 hexadecimal digits)"),
            ));
        }
        Ok(())
    }

    fn check_call(&self, call: &Expr, func: Func, args: &[Expr]) -> Result<(), FilterError> {
        if args.len() != func.arity() {
            return Err(self.err(
                call.span,
                format!(
                    "{func}() takes exactly {} arguments, got {}",
                    func.arity(),
                    args.len()
                ),
            ));
        }
        for (i, arg) in args.iter().enumerate() {
            let ty = self.operand_type(arg)?;
            if ty != ValueType::Scalar(ScalarType::String) {
                return Err(self.err(
                    arg.span,
                    format!(
                        "{func}() needs String arguments, but argument {} is {}",
                        i + 1,
                        self.describe(arg, ty)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn literal_type(l: &Literal) -> ValueType {
    ValueType::Scalar(match l {
        Literal::Null => return ValueType::Null,
        Literal::Bool(_) => ScalarType::Bool,
        Literal::Int(_) => ScalarType::Int,
        Literal::Decimal(_) => ScalarType::Decimal,
        Literal::String(_) => ScalarType::String,
        Literal::Date(_) => ScalarType::Date,
        Literal::DateTimeOffset(_) => ScalarType::DateTimeOffset,
        Literal::Guid(_) => ScalarType::Guid,
    })
}
