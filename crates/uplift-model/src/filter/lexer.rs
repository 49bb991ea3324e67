//! Splitting query-option text into tokens.
//!
//! Tokens are produced lazily through [`Tokens`], so the first error reported
//! is always the leftmost one, whether it is lexical (an unterminated string)
//! or grammatical (a missing operator).

use super::ast::{Literal, Span};
use super::error::FilterError;
use super::literal::{classify_chunk, is_guid_shape, looks_like_guid_attempt};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokKind {
    /// A name or a `/`-joined path; keywords are words too, and the parser
    /// decides by position what they mean.
    Word(String),
    Lit(Literal),
    LParen,
    RParen,
    Comma,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokKind,
    pub span: Span,
}

impl TokKind {
    /// How a token is named in messages: quoted as written where possible so
    /// the user can search for it.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokKind::Word(w) => format!("'{w}'"),
            TokKind::Lit(Literal::String(_)) => format!("string {}", self.lit_text()),
            TokKind::Lit(Literal::Int(_) | Literal::Decimal(_)) => {
                format!("number {}", self.lit_text())
            }
            TokKind::Lit(Literal::Date(_)) => format!("date {}", self.lit_text()),
            TokKind::Lit(Literal::DateTimeOffset(_)) => format!("date-time {}", self.lit_text()),
            TokKind::Lit(Literal::Guid(_)) => format!("GUID {}", self.lit_text()),
            TokKind::Lit(_) => format!("'{}'", self.lit_text()),
            TokKind::LParen => "'('".into(),
            TokKind::RParen => "')'".into(),
            TokKind::Comma => "','".into(),
            TokKind::Eof => "end of input".into(),
        }
    }

    fn lit_text(&self) -> String {
        match self {
            TokKind::Lit(l) => l.to_string(),
            _ => String::new(),
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters that may continue a number, date, date-time or GUID. Taking
/// them all as one chunk means `5or` or `2021-13-01T` is reported whole
/// instead of being split into confusing pieces.
fn is_chunk_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-')
}

/// A hint for characters people bring from other query languages.
fn stray_char_message(c: char) -> String {
    let hint = match c {
        '=' => ", use eq to compare (or ne for 'not equal')",
        '!' => ", use ne for 'not equal' or not to negate",
        '<' | '>' => ", use lt, le, gt or ge to compare",
        '&' => ", use and to combine conditions",
        '|' => ", use or to combine conditions",
        '"' => ", strings are written in single quotes: 'text'",
        _ => "",
    };
    format!("unexpected character '{c}'{hint}")
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn char_after(&self, byte: usize) -> Option<char> {
        self.src.get(byte..).and_then(|s| s.chars().next())
    }

    fn err(&self, byte: usize, message: impl Into<String>) -> FilterError {
        FilterError::at(self.src, byte, message)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek_char() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.src[start..self.pos]
    }

    fn next_token(&mut self) -> Result<Token, FilterError> {
        self.take_while(char::is_whitespace);
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                kind: TokKind::Eof,
                span: Span { start, end: start },
            });
        };
        let kind = match c {
            '(' | ')' | ',' => {
                self.pos += 1;
                match c {
                    '(' => TokKind::LParen,
                    ')' => TokKind::RParen,
                    _ => TokKind::Comma,
                }
            }
            '\'' => TokKind::Lit(Literal::String(self.string()?)),
            _ if c.is_ascii_digit()
                || (c == '-'
                    && self
                        .char_after(start + 1)
                        .is_some_and(|d| d.is_ascii_digit())) =>
            {
                let chunk = self.take_while(is_chunk_char);
                TokKind::Lit(classify_chunk(chunk).map_err(|m| self.err(start, m))?)
            }
            _ if is_ident_start(c) => self.word_or_guid()?,
            _ => return Err(self.err(start, stray_char_message(c))),
        };
        Ok(Token {
            kind,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    /// A `'...'` string with `''` standing for one quote.
    fn string(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(self.err(open, "unterminated string literal"));
            };
            self.pos += c.len_utf8();
            if c == '\'' {
                if self.peek_char() == Some('\'') {
                    self.pos += 1;
                } else {
                    return Ok(value);
                }
            }
            value.push(c);
        }
    }

    /// A name, a `/`-joined path, or a GUID that starts with a letter.
    fn word_or_guid(&mut self) -> Result<TokKind, FilterError> {
        let start = self.pos;
        if let Some(candidate) = self.src.get(start..start + 36)
            && is_guid_shape(candidate)
            && !self.char_after(start + 36).is_some_and(is_chunk_char)
        {
            self.pos += 36;
            return classify_chunk(candidate)
                .map(TokKind::Lit)
                .map_err(|m| self.err(start, m));
        }
        loop {
            self.take_while(is_ident_char);
            if self.peek_char() != Some('/') {
                break;
            }
            if !self.char_after(self.pos + 1).is_some_and(is_ident_start) {
                return Err(self.err(self.pos + 1, "expected a property name after '/'"));
            }
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        if self.peek_char() == Some('-') {
            let end = start
                + self.src[start..]
                    .find(|c: char| !is_chunk_char(c))
                    .unwrap_or(self.src.len() - start);
            let chunk = &self.src[start..end];
            if looks_like_guid_attempt(chunk) {
                return Err(self.err(
                    start,
                    format!("invalid GUID '{chunk}': expected 8-4-4-4-12 hexadecimal digits"),
                ));
            }
        }
        Ok(TokKind::Word(word.to_string()))
    }
}

/// A token stream with one token of look-ahead, shared by the `$filter`
/// parser and the simpler option parsers.
pub(crate) struct Tokens<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Tokens {
            lexer: Lexer { src, pos: 0 },
            peeked: None,
        }
    }

    pub(crate) fn src(&self) -> &'a str {
        self.lexer.src
    }

    pub(crate) fn peek(&mut self) -> Result<&Token, FilterError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => Err(self.lexer.err(self.lexer.pos, "internal lexer error")),
        }
    }

    pub(crate) fn bump(&mut self) -> Result<Token, FilterError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    /// Whether the next token is the word `w` (used for keywords).
    pub(crate) fn peek_is_word(&mut self, w: &str) -> Result<bool, FilterError> {
        Ok(matches!(&self.peek()?.kind, TokKind::Word(x) if x == w))
    }

    pub(crate) fn err_at(&self, byte: usize, message: impl Into<String>) -> FilterError {
        self.lexer.err(byte, message)
    }
}
