//! An order-independent checksum of rows, computed inside the engine: the sum of one
//! 64-bit hash per row. The same rows in any order give the same sum; a changed, lost
//! or extra row changes it (with overwhelming probability).

use std::cell::RefCell;

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::ValueRef;
use xxhash_rust::xxh3::xxh3_64;

/// The SQLite aggregate `uplift_checksum(col, ...)`.
pub const SQLITE_FUNCTION: &str = "uplift_checksum";

struct RowSum;

/// XXH3 over a type tag and the bytes of each value, so that `NULL`, `''` and `0`
/// hash differently. Shared by the SQL aggregate, the copy's tally and rows read back
/// in Rust, so all give the same sum for the same rows. The row is laid out in a
/// reused per-thread buffer and hashed in one call: hashing runs once per copied row.
pub fn hash_values<'a>(values: impl Iterator<Item = ValueRef<'a>>) -> u64 {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        for v in values {
            match v {
                ValueRef::Null => buf.push(0),
                ValueRef::Integer(v) => {
                    buf.push(1);
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                ValueRef::Real(v) => {
                    buf.push(2);
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                ValueRef::Text(t) => {
                    buf.push(3);
                    buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
                    buf.extend_from_slice(t);
                }
                ValueRef::Blob(b) => {
                    buf.push(4);
                    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
                    buf.extend_from_slice(b);
                }
            }
        }
        xxh3_64(buf)
    })
}

fn hash_row(ctx: &Context<'_>) -> u64 {
    hash_values((0..ctx.len()).map(|i| ctx.get_raw(i)))
}

impl Aggregate<u64, i64> for RowSum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<u64> {
        Ok(0)
    }
    fn step(&self, ctx: &mut Context<'_>, sum: &mut u64) -> rusqlite::Result<()> {
        *sum = sum.wrapping_add(hash_row(ctx));
        Ok(())
    }
    fn finalize(&self, _: &mut Context<'_>, sum: Option<u64>) -> rusqlite::Result<i64> {
        Ok(sum.unwrap_or(0) as i64)
    }
}

/// Registers the checksum aggregate on a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_aggregate_function(
        SQLITE_FUNCTION,
        -1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        RowSum,
    )
}
