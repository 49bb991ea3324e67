//! Counting the source while it is copied, on SQLite: the scalar function
//! `uplift_tally(slot, id, rule flags…, values…)` sits in the copy's `INSERT … SELECT`
//! and sees every transformed row once. It counts the rows and each rule's matches,
//! keeps the smallest matching ids as samples, sums the checksum of the rows kept, and
//! answers whether the row goes in (no error rule matched). So the source is read and
//! transformed once, not once to count and again to copy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use uplift_model::transform::Severity;

use crate::checksum::hash_values;

/// The function's SQL name.
pub const FUNCTION: &str = "uplift_tally";

/// What the tally saw of one entity.
#[derive(Debug, Default)]
pub struct Tally {
    /// Each rule's severity and reason, in the order of the flags.
    pub rules: Vec<(Severity, String)>,
    pub rows: u64,
    /// Rows each rule matched.
    pub matched: Vec<u64>,
    pub errors: u64,
    pub warnings: u64,
    /// The smallest `(id, reason)` pairs per severity, at most `max_samples` each.
    pub error_samples: BTreeSet<(String, String)>,
    pub warning_samples: BTreeSet<(String, String)>,
    /// Wrapping sum of the hashes of the rows kept (see [`crate::checksum`]).
    pub checksum: u64,
    max_samples: usize,
}

impl Tally {
    pub fn new(rules: Vec<(Severity, String)>, max_samples: usize) -> Tally {
        Tally {
            matched: vec![0; rules.len()],
            rules,
            max_samples,
            ..Tally::default()
        }
    }

    /// Takes one row: `flags[i]` says whether rule `i` matched; `values` are the
    /// transformed columns. Returns whether the row is kept.
    pub fn row<'a>(
        &mut self,
        id: impl Fn() -> String,
        flags: impl Iterator<Item = bool>,
        values: impl Iterator<Item = ValueRef<'a>>,
    ) -> bool {
        self.rows += 1;
        let (mut refused, mut warned) = (false, false);
        for (i, hit) in flags.enumerate() {
            if !hit {
                continue;
            }
            self.matched[i] += 1;
            let (severity, reason) = &self.rules[i];
            let samples = match severity {
                Severity::Error => {
                    refused = true;
                    &mut self.error_samples
                }
                Severity::Warning => {
                    warned = true;
                    &mut self.warning_samples
                }
            };
            let id = id();
            let full = samples.len() >= self.max_samples;
            if !full || samples.last().is_some_and(|(last, _)| id < *last) {
                samples.insert((id, reason.clone()));
                if samples.len() > self.max_samples {
                    samples.pop_last();
                }
            }
        }
        self.errors += u64::from(refused);
        self.warnings += u64::from(warned);
        if !refused {
            self.checksum = self.checksum.wrapping_add(hash_values(values));
        }
        !refused
    }
}

/// Tallies of a copy, indexed by the `slot` argument.
pub type Tallies = Arc<Mutex<Vec<Tally>>>;

/// Registers `uplift_tally` on a connection, feeding `tallies`. Arguments: the slot,
/// the row's id, one 0/1 flag per rule of that slot, then the transformed values.
pub fn register(conn: &Connection, tallies: Tallies) -> rusqlite::Result<()> {
    // Not deterministic: it must run once per row, never be folded or moved.
    conn.create_scalar_function(FUNCTION, -1, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let bad = |m: &str| rusqlite::Error::UserFunctionError(m.into());
        let slot = ctx.get::<i64>(0)? as usize;
        let mut all = tallies.lock().map_err(|_| bad("tally lock poisoned"))?;
        let t = all.get_mut(slot).ok_or_else(|| bad("unknown tally slot"))?;
        let n = t.rules.len();
        if ctx.len() < 2 + n {
            return Err(bad("too few arguments"));
        }
        // Only a row some rule matched needs its id as a string.
        let id = || match ctx.get_raw(1) {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ValueRef::Integer(i) => i.to_string(),
            _ => String::new(),
        };
        let flags = (0..n).map(|i| matches!(ctx.get_raw(2 + i), ValueRef::Integer(v) if v != 0));
        let values = (2 + n..ctx.len()).map(|i| ctx.get_raw(i));
        Ok(i64::from(t.row(id, flags, values)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_refuses_and_keeps_the_smallest_samples() {
        let mut t = Tally::new(
            vec![
                (Severity::Error, "bad".into()),
                (Severity::Warning, "odd".into()),
            ],
            2,
        );
        let v = [ValueRef::Integer(1)];
        assert!(t.row(|| "d".into(), [false, false].into_iter(), v.into_iter()));
        assert!(!t.row(|| "c".into(), [true, true].into_iter(), v.into_iter()));
        assert!(t.row(|| "b".into(), [false, true].into_iter(), v.into_iter()));
        assert!(t.row(|| "a".into(), [false, true].into_iter(), v.into_iter()));
        assert_eq!((t.rows, t.errors, t.warnings), (4, 1, 3));
        assert_eq!(t.matched, [1, 3]);
        let ids: Vec<_> = t.warning_samples.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(
            ids,
            ["a", "b"],
            "the two smallest ids, whatever the order seen"
        );
        // Only the three kept rows are in the checksum.
        let one = hash_values(v.into_iter());
        assert_eq!(t.checksum, one.wrapping_mul(3));
    }
}
