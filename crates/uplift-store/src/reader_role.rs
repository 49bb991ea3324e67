//! On PostgreSQL, step 1's copy reads production and writes the test database in one
//! `INSERT … SELECT`, so its transactions cannot be `READ ONLY`. What keeps production
//! unwritable is a role instead: the copy's lanes run as a role that may only read the
//! production schema and owns the target's tables while they are loaded, so a write to
//! production is refused by the engine, not merely absent from the code.
//!
//! The role is per production schema (`uplift_copy_` and a hash of the database and
//! schema names), `NOLOGIN`, created when a copy starts and dropped when it ends; one a
//! killed server left behind is dropped and made again by the next copy. Creating a
//! role needs `CREATEROLE` (or a superuser); a database user without it copies without
//! the guard, with a warning, as the README says.

use uplift_model::{ColType, Value};

use crate::engine::{Conn, Pool};
use crate::sql::{SqlBuf, ident};
use crate::{Result, StoreError};

/// The read-only role of one copy, or `None` where the database user may not create one.
#[derive(Clone)]
pub struct ReaderRole {
    name: Option<String>,
}

impl ReaderRole {
    /// Creates the role for a copy from `source` into `target` (schemas of `pool`'s
    /// database): `SELECT` on the source's tables, ownership of the target's.
    pub async fn create(pool: &Pool, source: &str, target: &str) -> Result<ReaderRole> {
        let mut conn = pool.conn().await?;
        if !may_create_roles(&mut conn).await? {
            tracing::warn!(
                "the database user may not create roles: step 1 copies without a read-only role guarding production"
            );
            return Ok(ReaderRole { name: None });
        }
        let name = role_name(&mut conn, source).await?;
        drop_role(&mut conn, &name).await?;
        let role = ident(&name);
        conn.batch(&format!(
            "CREATE ROLE {role} NOLOGIN; GRANT {role} TO CURRENT_USER; \
             GRANT USAGE ON SCHEMA {src} TO {role}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA {src} TO {role}; \
             GRANT USAGE, CREATE ON SCHEMA {tgt} TO {role}",
            src = ident(source),
            tgt = ident(target),
        ))
        .await?;
        for table in tables_of(&mut conn, target).await? {
            conn.batch(&format!(
                "ALTER TABLE {}.{} OWNER TO {role}",
                ident(target),
                ident(&table)
            ))
            .await?;
        }
        Ok(ReaderRole { name: Some(name) })
    }

    /// Makes the rest of the transaction run as the role (`SET LOCAL ROLE`).
    pub async fn enter(&self, conn: &mut Conn) -> Result<()> {
        match &self.name {
            Some(name) => conn.batch(&format!("SET LOCAL ROLE {}", ident(name))).await,
            None => Ok(()),
        }
    }

    /// Gives the target's tables back to the database user and drops the role. Called
    /// whether the copy succeeded or not.
    pub async fn finish(self, pool: &Pool) -> Result<()> {
        let Some(name) = self.name else {
            return Ok(());
        };
        let mut conn = pool.conn().await?;
        drop_role(&mut conn, &name).await
    }
}

async fn may_create_roles(conn: &mut Conn) -> Result<bool> {
    let row = conn
        .query_opt(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
            &[],
            &[ColType::Bool],
        )
        .await?;
    Ok(row.is_some_and(|r| r[0] == Value::Bool(true)))
}

/// One name per database and production schema, within PostgreSQL's 63 bytes.
async fn role_name(conn: &mut Conn, source: &str) -> Result<String> {
    let mut b = SqlBuf::new(crate::engine::Dialect::Postgres);
    b.push("SELECT 'uplift_copy_' || left(md5(current_database() || '/' || ")
        .param(Value::Text(source.into()), ColType::Text)
        .push("), 20)");
    conn.query_opt(&b.sql, &b.params, &[ColType::Text])
        .await?
        .and_then(|r| r[0].as_text().map(str::to_string))
        .ok_or_else(|| StoreError::Corrupt("no role name".into()))
}

async fn tables_of(conn: &mut Conn, schema: &str) -> Result<Vec<String>> {
    let mut b = SqlBuf::new(crate::engine::Dialect::Postgres);
    b.push("SELECT tablename::text FROM pg_tables WHERE schemaname = ")
        .param(Value::Text(schema.into()), ColType::Text);
    let rows = conn.query(&b.sql, &b.params, &[ColType::Text]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r[0].as_text().map(str::to_string))
        .collect())
}

/// Drops the role if it exists, first giving what it owns back to the database user.
async fn drop_role(conn: &mut Conn, name: &str) -> Result<()> {
    let mut b = SqlBuf::new(crate::engine::Dialect::Postgres);
    b.push("SELECT rolname::text FROM pg_roles WHERE rolname = ")
        .param(Value::Text(name.into()), ColType::Text);
    if conn
        .query_opt(&b.sql, &b.params, &[ColType::Text])
        .await?
        .is_none()
    {
        return Ok(());
    }
    let role = ident(name);
    conn.batch(&format!(
        "REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role}"
    ))
    .await
}
