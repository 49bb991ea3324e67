//! The OData v4 query-option language used by the data API: `$filter`,
//! `$orderby`, `$select` and `$expand`.
//!
//! This module is deliberately pure (no I/O, no catalog types) so the same
//! code can validate a request in the server, render a saved view back to
//! text, and be tested exhaustively without a database. The pipeline is:
//!
//! 1. [`parse_filter`] turns text into an [`Expr`] tree (syntax only),
//! 2. [`check_filter`] checks that tree against the catalog through the
//!    [`PropertyResolver`] trait,
//! 3. the store layer translates the checked tree into SQL, and
//!    [`print_filter`] renders it back to canonical text (logs, saved views).
//!
//! Every error is a [`FilterError`] carrying a 1-based character column so a
//! person can find the mistake in the text they typed.

mod ast;
mod check;
mod error;
mod eval;
mod lexer;
mod literal;
mod options;
mod parse;
mod print;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use ast::{CompareOp, Expr, ExprKind, Func, Literal, Span};
pub use check::{PropertyResolver, PropertyType, ScalarType, check_filter};
pub use error::FilterError;
pub use eval::eval_filter;
pub use options::{ExpandItem, ExpandOption, OrderItem, parse_expand, parse_orderby, parse_select};
pub use parse::{MAX_DEPTH, parse_filter};
pub use print::print_filter;
