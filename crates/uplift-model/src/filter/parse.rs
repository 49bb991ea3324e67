//! The `$filter` parser: recursive descent over the precedence levels
//! `or` < `and` < `not` < comparison < primary.
//!
//! `and`/`or` chains are parsed with loops (left-associative), so only
//! parentheses, `not` and function calls recurse; those are counted against
//! [`MAX_DEPTH`] so hostile input cannot overflow the stack.

use super::ast::{CompareOp, Expr, ExprKind, Func, Literal};
use super::error::{FilterError, column};
use super::lexer::{TokKind, Token, Tokens};

/// How deeply parentheses, `not` and function calls may nest.
///
/// Far beyond what a person writes, far below what would exhaust a thread's
/// stack while parsing, checking or printing. `and`/`or` chains are not
/// counted: they are handled with loops, and their length is bounded by the
/// caller's limit on the input length.
pub const MAX_DEPTH: usize = 100;

/// Words that are operators or keyword literals: they cannot stand alone as
/// a property name, which keeps errors like `Name eq and` precise instead of
/// turning into "unknown property 'and'".
pub(crate) const RESERVED: [&str; 12] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "null", "true", "false",
];

pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

const EXPECTED_OPERATOR: &str = "expected an operator such as eq, ne, gt, ge, lt, le, and, or";

/// Parses `$filter` text into a syntax tree.
///
/// Only syntax is checked here; whether the properties exist and the types
/// fit is [`check_filter`]'s job, so that the text can be parsed (and
/// canonicalised) without a catalog at hand.
///
/// [`check_filter`]: super::check_filter
pub fn parse_filter(src: &str) -> Result<Expr, FilterError> {
    let mut p = Parser {
        tokens: Tokens::new(src),
        depth: 0,
    };
    if p.tokens.peek()?.kind == TokKind::Eof {
        return Err(FilterError::at(src, 0, "empty filter expression"));
    }
    let expr = p.parse_or()?;
    let t = p.tokens.bump()?;
    match &t.kind {
        TokKind::Eof => Ok(expr),
        TokKind::RParen => Err(p.err(&t, "unexpected ')' without a matching '('")),
        other => Err(p.err(
            &t,
            format!(
                "unexpected {} after the end of the expression",
                other.describe()
            ),
        )),
    }
}

struct Parser<'a> {
    tokens: Tokens<'a>,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, t: &Token, message: impl Into<String>) -> FilterError {
        self.tokens.err_at(t.span.start, message)
    }

    fn enter(&mut self, t: &Token) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                t,
                format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.parse_and()?;
        while self.tokens.peek_is_word("or")? {
            self.tokens.bump()?;
            let right = self.parse_and()?;
            let span = left.span.to(right.span);
            left = Expr::new(ExprKind::Or(Box::new(left), Box::new(right)), span);
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.parse_not()?;
        while self.tokens.peek_is_word("and")? {
            self.tokens.bump()?;
            let right = self.parse_not()?;
            let span = left.span.to(right.span);
            left = Expr::new(ExprKind::And(Box::new(left), Box::new(right)), span);
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Expr, FilterError> {
        if !self.tokens.peek_is_word("not")? {
            return self.parse_comparison();
        }
        let t = self.tokens.bump()?;
        self.enter(&t)?;
        let inner = self.parse_not()?;
        self.leave();
        let span = t.span.to(inner.span);
        Ok(Expr::new(ExprKind::Not(Box::new(inner)), span))
    }

    fn parse_comparison(&mut self) -> Result<Expr, FilterError> {
        let left = self.parse_primary()?;
        let op = match &self.tokens.peek()?.kind {
            TokKind::Word(w) => CompareOp::from_word(w),
            _ => None,
        };
        let Some(op) = op else {
            self.expect_after_operand(false)?;
            return Ok(left);
        };
        self.tokens.bump()?;
        let right = self.parse_primary()?;
        let next = self.tokens.peek()?.clone();
        if let TokKind::Word(w) = &next.kind
            && let Some(op2) = CompareOp::from_word(w)
        {
            return Err(self.err(
                &next,
                format!(
                    "comparison operators cannot be chained: put parentheses around \
                     one comparison, e.g. '(a {op} b) {op2} c'"
                ),
            ));
        }
        self.expect_after_operand(true)?;
        let span = left.span.to(right.span);
        Ok(Expr::new(
            ExprKind::Compare {
                op,
                left: Box::new(left),
                right: Box::new(right),
            },
            span,
        ))
    }

    /// After an operand only an operator, a closing token or the end may
    /// follow; checking here (rather than at the end of the input) names the
    /// token the user got wrong, e.g. the `eqq` in `Name eqq 'x'`.
    fn expect_after_operand(&mut self, after_comparison: bool) -> Result<(), FilterError> {
        let t = self.tokens.peek()?.clone();
        match &t.kind {
            TokKind::Eof | TokKind::RParen | TokKind::Comma => Ok(()),
            TokKind::Word(w) if w == "and" || w == "or" => Ok(()),
            other => {
                let mut message = format!("unexpected {}, ", other.describe());
                if after_comparison {
                    message.push_str("expected and, or, or the end of the expression");
                } else {
                    message.push_str(EXPECTED_OPERATOR);
                }
                if let TokKind::Word(w) = other {
                    let lower = w.to_ascii_lowercase();
                    if lower != *w && (is_reserved(&lower)) {
                        message.push_str(&format!(" (operators are lower-case: write '{lower}')"));
                    }
                }
                Err(self.err(&t, message))
            }
        }
    }

    fn parse_primary(&mut self) -> Result<Expr, FilterError> {
        let t = self.tokens.bump()?;
        let span = t.span;
        let lit =
            |l: Literal| -> Result<Expr, FilterError> { Ok(Expr::new(ExprKind::Literal(l), span)) };
        match &t.kind {
            TokKind::Lit(l) => lit(l.clone()),
            TokKind::Word(w) => match w.as_str() {
                "null" => lit(Literal::Null),
                "true" => lit(Literal::Bool(true)),
                "false" => lit(Literal::Bool(false)),
                "not" => Err(self.err(
                    &t,
                    "unexpected 'not' here: put parentheses around it, e.g. 'a eq (not b)'",
                )),
                _ if is_reserved(w) => Err(self.err(
                    &t,
                    format!(
                        "unexpected '{w}', expected a value (a property, a literal or a function call)"
                    ),
                )),
                _ if self.tokens.peek()?.kind == TokKind::LParen => self.parse_call(&t, w),
                _ => Ok(Expr::new(
                    ExprKind::Property(w.split('/').map(str::to_string).collect()),
                    t.span,
                )),
            },
            TokKind::LParen => {
                self.enter(&t)?;
                let inner = self.parse_or()?;
                let close = self.tokens.bump()?;
                if close.kind != TokKind::RParen {
                    let open_col = column(self.tokens.src(), t.span.start);
                    return Err(self.err(
                        &close,
                        format!(
                            "expected ')' to close the '(' at position {open_col}, found {}",
                            close.kind.describe()
                        ),
                    ));
                }
                self.leave();
                Ok(Expr::new(inner.kind, t.span.to(close.span)))
            }
            other => Err(self.err(
                &t,
                format!(
                    "unexpected {}, expected a value (a property, a literal or a function call)",
                    other.describe()
                ),
            )),
        }
    }

    /// `name(arg, ...)`; the name token has been consumed and `(` is next.
    fn parse_call(&mut self, name: &Token, word: &str) -> Result<Expr, FilterError> {
        let Some(func) = Func::from_name(word) else {
            let known: Vec<&str> = Func::ALL.iter().map(Func::name).collect();
            let mut message = format!(
                "unknown function '{word}'; supported functions are {}",
                known.join(", ")
            );
            if let Some(f) = Func::from_name(&word.to_ascii_lowercase()) {
                message.push_str(&format!(" (names are lower-case: write '{f}')"));
            }
            return Err(self.err(name, message));
        };
        self.enter(name)?;
        self.tokens.bump()?; // the '('
        let mut args = Vec::new();
        let close = if self.tokens.peek()?.kind == TokKind::RParen {
            self.tokens.bump()?
        } else {
            loop {
                args.push(self.parse_or()?);
                let t = self.tokens.bump()?;
                match &t.kind {
                    TokKind::RParen => break t,
                    TokKind::Comma => {}
                    other => {
                        return Err(self.err(
                            &t,
                            format!(
                                "unexpected {} in the arguments of {func}(), expected ',' or ')'",
                                other.describe()
                            ),
                        ));
                    }
                }
            }
        };
        self.leave();
        if args.len() != func.arity() {
            return Err(self.err(
                name,
                format!(
                    "{func}() takes exactly {} arguments, got {}",
                    func.arity(),
                    args.len()
                ),
            ));
        }
        Ok(Expr::new(
            ExprKind::Call { func, args },
            name.span.to(close.span),
        ))
    }
}
