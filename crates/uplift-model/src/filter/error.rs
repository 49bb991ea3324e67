//! The single error type of the query-option language, and the conversion
//! from byte offsets (what the code works with) to character columns (what a
//! person counts).

/// A syntax or type error in a query option.
///
/// The position is a 1-based *character* column rather than a byte offset
/// because it is shown to people, who count characters (including non-ASCII
/// ones inside string literals), and because it has to stay meaningful after
/// the text has been URL-decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct FilterError {
    /// 1-based character column of the offending token; one past the last
    /// character when the input ended too early.
    pub position: usize,
    /// What went wrong, naming the offending token.
    pub message: String,
}

impl FilterError {
    /// Builds an error pointing at byte offset `byte` of `src`.
    pub(crate) fn at(src: &str, byte: usize, message: impl Into<String>) -> Self {
        FilterError {
            position: column(src, byte),
            message: message.into(),
        }
    }
}

/// 1-based character column of byte offset `byte` in `src`.
///
/// Total on purpose: offsets past the end (or inside a character, for trees
/// that did not come from `src`) clamp instead of panicking.
pub(crate) fn column(src: &str, byte: usize) -> usize {
    src.char_indices().take_while(|(i, _)| *i < byte).count() + 1
}
