//! An order-independent checksum of rows, computed inside the engine: the sum of one
//! 64-bit hash per row. The same rows in any order give the same sum; a changed, lost
//! or extra row changes it (with overwhelming probability).

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::ValueRef;

/// The SQLite aggregate `uplift_checksum(col, ...)`.
pub const SQLITE_FUNCTION: &str = "uplift_checksum";

struct RowSum;

/// FNV-1a over a type tag and the bytes of each value, so that `NULL`, `''` and `0`
/// hash differently. Shared by the SQL aggregate and by rows read back in Rust, so
/// both give the same sum for the same rows.
pub fn hash_values<'a>(values: impl Iterator<Item = ValueRef<'a>>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for v in values {
        match v {
            ValueRef::Null => eat(&[0]),
            ValueRef::Integer(v) => {
                eat(&[1]);
                eat(&v.to_le_bytes());
            }
            ValueRef::Real(v) => {
                eat(&[2]);
                eat(&v.to_le_bytes());
            }
            ValueRef::Text(t) => {
                eat(&[3]);
                eat(&(t.len() as u64).to_le_bytes());
                eat(t);
            }
            ValueRef::Blob(b) => {
                eat(&[4]);
                eat(&(b.len() as u64).to_le_bytes());
                eat(b);
            }
        }
    }
    h
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
