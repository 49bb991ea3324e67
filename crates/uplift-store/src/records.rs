//! Reading and writing records: the one write path every writer (the data API, and
//! later flows and the upgrade) goes through, so validation, system fields and row
//! versions are maintained the same way everywhere.

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use uplift_model::codec::{decode, parse_guid};
use uplift_model::entity::{KEY, audit_field_names};
use uplift_model::filter::{Expr, OrderItem, ScalarType};
use uplift_model::layout::{
    Column, PathTarget, VERSION_COLUMN, entity_columns, field_columns, resolve_path,
};
use uplift_model::{ColType, Entity, FieldType, SchemaVersion, Value};

use crate::engine::{Conn, Dialect};
use crate::envdb::EnvDb;
use crate::filter_sql::{compile, folded_param, order_sql};
use crate::gate::{Pass, WriteGate};
use crate::outbox::{self, Op};
use crate::sql::{SqlBuf, ident};
use crate::{Result, StoreError};

/// Who is writing; recorded in the created-by and modified-by system fields.
#[derive(Debug, Clone)]
pub struct Actor {
    pub email: String,
    /// How many flow runs deep this write is: 0 for a person, n + 1 for a step of a
    /// run started by a depth-n write. Carried into the outbox to stop loops.
    pub depth: u32,
    /// A rehearsal (a flow's dry run during an upgrade): every statement of the write
    /// runs, so it fails as the real one would, and then rolls back, leaving the
    /// database as it was and no outbox entry behind.
    pub dry_run: bool,
}

impl Actor {
    /// A person (or a client acting for one) writing through the API.
    pub fn person(email: impl Into<String>) -> Actor {
        Actor {
            email: email.into(),
            depth: 0,
            dry_run: false,
        }
    }
}

/// A full row: one value per column of [`entity_columns`].
pub type Record = Vec<Value>;

/// What a list request asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderItem>,
    /// Rows to skip before the first page (OData `$skip`).
    pub skip: u64,
    /// At most this many rows in this page.
    pub limit: u64,
    /// Keyset position: the order-key values (then `id`) of the last row already seen.
    pub after: Option<Vec<Value>>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// Rows aligned with the requested columns.
    pub rows: Vec<Vec<Value>>,
    /// The keyset position after the last row, when more rows follow.
    pub next: Option<Vec<Value>>,
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    let ms = u32::from(t.millisecond());
    t.replace_nanosecond(ms * 1_000_000).unwrap_or(t)
}

fn select_list(cols: &[Column]) -> String {
    cols.iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn types(cols: &[Column]) -> Vec<ColType> {
    cols.iter().map(|c| c.ty).collect()
}

fn param_list(buf: &mut SqlBuf, values: Vec<(Column, Value)>) -> Vec<Column> {
    let mut cols = Vec::new();
    for (i, (c, v)) in values.into_iter().enumerate() {
        if i > 0 {
            buf.push(", ");
        }
        buf.param(v, c.ty);
        cols.push(c);
    }
    cols
}

/// Decodes the client's JSON fields into column values, refusing unknown, read-only
/// and invalid fields. `creating` decides whether a missing required field is an error.
fn decode_input(
    entity: &Entity,
    version: SchemaVersion,
    input: &Map<String, Json>,
    creating: bool,
) -> Result<Vec<(Column, Value)>> {
    let mut out = Vec::new();
    for (name, json) in input {
        if name == KEY {
            continue;
        }
        let field = entity.field(version, name).ok_or_else(|| {
            StoreError::Invalid(format!(
                "'{name}' is not a field of entity '{}'",
                entity.name
            ))
        })?;
        if !field.is_writable() {
            return Err(StoreError::Invalid(format!(
                "field '{name}' is set by the platform and cannot be written"
            )));
        }
        if field.required && json.is_null() {
            return Err(field_error(name, format!("field '{name}' is required")));
        }
        let values = decode(field, json).map_err(|m| field_error(name, m))?;
        out.extend(field_columns(field).into_iter().zip(values));
    }
    if creating {
        for f in &entity.fields {
            if f.required && !input.contains_key(&f.name) && !f.ty.is_server_assigned() {
                return Err(field_error(
                    &f.name,
                    format!("field '{}' is required", f.name),
                ));
            }
        }
    }
    Ok(out)
}

fn field_error(field: &str, message: String) -> StoreError {
    StoreError::Field {
        field: field.to_string(),
        message,
    }
}

/// Refuses lookups to records that do not exist, inside the writing transaction.
async fn check_lookups(
    db: &EnvDb,
    conn: &mut Conn,
    entity: &Entity,
    version: SchemaVersion,
    values: &[(Column, Value)],
) -> Result<()> {
    let catalog = db.catalog();
    for (c, v) in values {
        let Value::Text(id) = v else { continue };
        let Some(field) = entity.field(version, &c.field) else {
            continue;
        };
        let FieldType::Lookup { target } = &field.ty else {
            continue;
        };
        let t = catalog
            .entity(target)
            .ok_or_else(|| StoreError::Corrupt(format!("lookup target {target} missing")))?;
        let mut buf = SqlBuf::new(db.dialect());
        buf.push("SELECT 1 FROM ")
            .push(&db.table(t))
            .push(" WHERE id = ");
        buf.param(Value::Text(id.clone()), ColType::Text);
        // PostgreSQL: hold the target until this write commits, so a delete of it
        // waits and then clears this lookup too, rather than leaving it dangling.
        // (SQLite's one writer already orders the two.)
        if db.dialect() == Dialect::Postgres {
            buf.push(" FOR KEY SHARE");
        }
        if conn
            .query_opt(&buf.sql, &buf.params, &[ColType::Int])
            .await?
            .is_none()
        {
            return Err(field_error(
                &c.field,
                format!("field '{}': there is no {target} with id {id}", c.field),
            ));
        }
    }
    Ok(())
}

fn system_values(version: SchemaVersion, actor: &Actor, creating: bool) -> Vec<(Column, Value)> {
    let [con, cby, mon, mby] = audit_field_names(version);
    let t = now();
    let col = |name: &str, ty| Column {
        name: uplift_model::names::physical(name, None),
        field: name.into(),
        part: None,
        ty,
    };
    let mut v = vec![
        (col(mon, ColType::DateTime), Value::DateTime(t)),
        (col(mby, ColType::Text), Value::Text(actor.email.clone())),
    ];
    if creating {
        v.push((col(con, ColType::DateTime), Value::DateTime(t)));
        v.push((col(cby, ColType::Text), Value::Text(actor.email.clone())));
    }
    v
}

/// Passes `db`'s write gate (waiting while step 3's switch holds it) for one write, which
/// must not be made if the switch retired the database meanwhile.
async fn enter<'g>(db: &EnvDb, gate: &'g WriteGate) -> Result<Pass<'g>> {
    let pass = gate.pass().await;
    match db.is_retired() {
        true => Err(StoreError::Retired),
        false => Ok(pass),
    }
}

/// Creates a record from the client's JSON and returns it as stored.
pub async fn insert(
    db: &EnvDb,
    entity: &Entity,
    input: &Map<String, Json>,
    actor: &Actor,
) -> Result<Record> {
    let version = db.catalog().version;
    let id = match input.get(KEY) {
        None | Some(Json::Null) => uuid::Uuid::now_v7().hyphenated().to_string(),
        Some(Json::String(s)) => {
            parse_guid(s).ok_or_else(|| StoreError::Invalid(format!("id '{s}' is not a GUID")))?
        }
        Some(other) => {
            return Err(StoreError::Invalid(format!(
                "id must be a GUID string, got {other}"
            )));
        }
    };
    let mut values = decode_input(entity, version, input, true)?;
    let gate = db.gate();
    let _inside = enter(db, &gate).await?;
    let mut tx = db.pool().begin().await?;
    check_lookups(db, &mut tx, entity, version, &values).await?;
    values.push((
        Column {
            name: KEY.into(),
            field: KEY.into(),
            part: None,
            ty: ColType::Text,
        },
        Value::Text(id.clone()),
    ));
    values.extend(system_values(version, actor, true));
    let table = db.table(entity);
    let all = entity_columns(entity, version);
    let autonumbers: Vec<Column> = entity
        .fields
        .iter()
        .filter(|f| f.ty == FieldType::AutoNumber)
        .flat_map(field_columns)
        .collect();

    let mut buf = SqlBuf::new(db.dialect());
    buf.push("INSERT INTO ").push(&table).push(" (");
    let names: Vec<String> = values.iter().map(|(c, _)| ident(&c.name)).collect();
    buf.push(&names.join(", "));
    if db.dialect() == Dialect::Sqlite {
        for c in &autonumbers {
            buf.push(", ").ident(&c.name);
        }
    }
    buf.push(") VALUES (");
    param_list(&mut buf, values);
    if db.dialect() == Dialect::Sqlite {
        // SQLite has no identity columns; the write lock taken by BEGIN IMMEDIATE
        // makes MAX()+1 safe.
        for c in &autonumbers {
            buf.push(", (SELECT COALESCE(MAX(")
                .ident(&c.name)
                .push("), 0) + 1 FROM ")
                .push(&table)
                .push(")");
        }
    }
    buf.push(") RETURNING ").push(&select_list(&all));
    let row = match tx.query_opt(&buf.sql, &buf.params, &types(&all)).await {
        Ok(row) => row.ok_or_else(|| StoreError::Corrupt("insert returned nothing".into()))?,
        Err(e) if e.is_unique_violation() => {
            return Err(StoreError::Conflict(format!(
                "a {} with id {id} already exists",
                entity.name
            )));
        }
        Err(e) => return Err(e),
    };
    let watched = db.is_watched(&entity.name);
    if watched {
        let json = uplift_model::codec::record_json(entity, version, &row);
        outbox::append(
            &mut tx,
            db,
            &entity.name,
            Op::Created,
            &id,
            &json,
            actor.depth,
        )
        .await?;
    }
    if end(tx, actor).await? && watched {
        db.outbox_committed();
    }
    Ok(row)
}

async fn current_version(
    db: &EnvDb,
    conn: &mut Conn,
    entity: &Entity,
    id: &str,
    if_match: Option<i64>,
) -> Result<i64> {
    let mut buf = SqlBuf::new(db.dialect());
    buf.push("SELECT ")
        .ident(VERSION_COLUMN)
        .push(" FROM ")
        .push(&db.table(entity))
        .push(" WHERE id = ");
    buf.param(Value::Text(id.to_string()), ColType::Text);
    // PostgreSQL: lock the row, so the version checked is the version written over; a
    // second writer with the same ETag waits, then reads the new version (412) or no
    // row (404). SQLite's `BEGIN IMMEDIATE` already makes the check and write one.
    if db.dialect() == Dialect::Postgres {
        buf.push(" FOR UPDATE");
    }
    let row = conn
        .query_opt(&buf.sql, &buf.params, &[ColType::Int])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no {} with id {id}", entity.name)))?;
    let current = row[0].as_int().unwrap_or(0);
    if let Some(expected) = if_match
        && expected != current
    {
        return Err(StoreError::PreconditionFailed(format!(
            "the {} changed since it was read (ETag {expected}, now {current})",
            entity.name
        )));
    }
    Ok(current)
}

/// Changes the given fields of a record. With `if_match`, refuses (412) when the
/// record's version differs, so concurrent editors do not overwrite each other.
pub async fn update(
    db: &EnvDb,
    entity: &Entity,
    id: &str,
    input: &Map<String, Json>,
    if_match: Option<i64>,
    actor: &Actor,
) -> Result<Record> {
    let version = db.catalog().version;
    // An `id` may be sent back as read, but not changed, and not as another type.
    if let Some(given) = input.get(KEY)
        && given.as_str().and_then(parse_guid).as_deref() != Some(id)
    {
        return Err(StoreError::Invalid(format!(
            "the id of a record cannot be changed (got {given})"
        )));
    }
    let mut values = decode_input(entity, version, input, false)?;
    let gate = db.gate();
    let _inside = enter(db, &gate).await?;
    let mut tx = db.pool().begin().await?;
    let current = current_version(db, &mut tx, entity, id, if_match).await?;
    check_lookups(db, &mut tx, entity, version, &values).await?;
    values.extend(system_values(version, actor, false));
    let all = entity_columns(entity, version);
    let mut buf = SqlBuf::new(db.dialect());
    buf.push("UPDATE ").push(&db.table(entity)).push(" SET ");
    for (c, v) in values {
        buf.ident(&c.name).push(" = ");
        buf.param(v, c.ty).push(", ");
    }
    buf.ident(VERSION_COLUMN)
        .push(" = ")
        .ident(VERSION_COLUMN)
        .push(" + 1 WHERE id = ");
    buf.param(Value::Text(id.to_string()), ColType::Text);
    buf.push(" AND ").ident(VERSION_COLUMN).push(" = ");
    buf.param(Value::Int(current), ColType::Int);
    buf.push(" RETURNING ").push(&select_list(&all));
    let row = tx
        .query_opt(&buf.sql, &buf.params, &types(&all))
        .await?
        .ok_or_else(|| {
            StoreError::PreconditionFailed(format!(
                "the {} changed while it was being updated",
                entity.name
            ))
        })?;
    let watched = db.is_watched(&entity.name);
    if watched {
        let json = uplift_model::codec::record_json(entity, version, &row);
        outbox::append(
            &mut tx,
            db,
            &entity.name,
            Op::Updated,
            id,
            &json,
            actor.depth,
        )
        .await?;
    }
    if end(tx, actor).await? && watched {
        db.outbox_committed();
    }
    Ok(row)
}

/// Deletes a record, and clears lookups that pointed at it (in the same transaction),
/// so no record is left referring to something that is gone.
pub async fn delete(
    db: &EnvDb,
    entity: &Entity,
    id: &str,
    if_match: Option<i64>,
    actor: &Actor,
) -> Result<()> {
    let catalog = db.catalog();
    let gate = db.gate();
    let _inside = enter(db, &gate).await?;
    let mut tx = db.pool().begin().await?;
    current_version(db, &mut tx, entity, id, if_match).await?;
    let watched = db.is_watched(&entity.name);
    if watched {
        // The record as it was, for flows reacting to its deletion.
        let layout = db.layout(entity);
        let row = tx
            .query_opt(
                &layout.by_id_sql,
                &[Value::Text(id.to_string())],
                &layout.types,
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no {} with id {id}", entity.name)))?;
        let json = uplift_model::codec::record_json(entity, catalog.version, &row);
        outbox::append(
            &mut tx,
            db,
            &entity.name,
            Op::Deleted,
            id,
            &json,
            actor.depth,
        )
        .await?;
    }
    for other in &catalog.entities {
        for f in &other.fields {
            if f.ty.lookup_target() == Some(entity.name.as_str()) {
                let col = &field_columns(f)[0];
                let mut buf = SqlBuf::new(db.dialect());
                buf.push("UPDATE ")
                    .push(&db.table(other))
                    .push(" SET ")
                    .ident(&col.name)
                    .push(" = NULL, ");
                buf.ident(VERSION_COLUMN)
                    .push(" = ")
                    .ident(VERSION_COLUMN)
                    .push(" + 1 WHERE ")
                    .ident(&col.name)
                    .push(" = ");
                buf.param(Value::Text(id.to_string()), ColType::Text);
                tx.execute(&buf.sql, &buf.params).await?;
            }
        }
    }
    let mut buf = SqlBuf::new(db.dialect());
    buf.push("DELETE FROM ")
        .push(&db.table(entity))
        .push(" WHERE id = ");
    buf.param(Value::Text(id.to_string()), ColType::Text);
    tx.execute(&buf.sql, &buf.params).await?;
    if end(tx, actor).await? && watched {
        db.outbox_committed();
    }
    Ok(())
}

/// Ends a write's transaction: commits it, or rolls a rehearsal back. Whether it was
/// committed.
async fn end(tx: crate::engine::Tx, actor: &Actor) -> Result<bool> {
    if actor.dry_run {
        tx.rollback().await?;
        Ok(false)
    } else {
        tx.commit().await?;
        Ok(true)
    }
}

/// The statement [`get`] runs, exposed so benchmarks can time the engine alone on
/// exactly the same SQL.
pub fn get_sql(
    dialect: Dialect,
    table: &str,
    entity: &Entity,
    version: SchemaVersion,
    id: &str,
) -> (SqlBuf, Vec<ColType>) {
    let all = entity_columns(entity, version);
    let mut buf = SqlBuf::new(dialect);
    buf.push("SELECT ")
        .push(&select_list(&all))
        .push(" FROM ")
        .push(table)
        .push(" WHERE id = ");
    buf.param(Value::Text(id.to_string()), ColType::Text);
    (buf, types(&all))
}

/// One record by id, all columns.
pub async fn get(db: &EnvDb, entity: &Entity, id: &str) -> Result<Option<Record>> {
    let layout = db.layout(entity);
    let mut conn = db.pool().conn().await?;
    conn.query_opt(
        &layout.by_id_sql,
        &[Value::Text(id.to_string())],
        &layout.types,
    )
    .await
}

/// Several records by id (for `$expand`), all columns, in no particular order.
pub async fn get_many(db: &EnvDb, entity: &Entity, ids: &[String]) -> Result<Vec<Record>> {
    let all = entity_columns(entity, db.catalog().version);
    let mut out = Vec::new();
    let mut conn = db.pool().conn().await?;
    // Bounded IN lists keep statements small and their plans cacheable.
    for chunk in ids.chunks(100) {
        let mut buf = SqlBuf::new(db.dialect());
        buf.push("SELECT ")
            .push(&select_list(&all))
            .push(" FROM ")
            .push(&db.table(entity))
            .push(" WHERE id IN (");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                buf.push(", ");
            }
            buf.param(Value::Text(id.clone()), ColType::Text);
        }
        buf.push(")");
        out.extend(conn.query(&buf.sql, &buf.params, &types(&all)).await?);
    }
    Ok(out)
}

fn where_filter(
    buf: &mut SqlBuf,
    entity: &Entity,
    version: SchemaVersion,
    filter: Option<&Expr>,
) -> Result<bool> {
    match filter {
        Some(f) => {
            buf.push(" WHERE ");
            compile(buf, entity, version, f)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// How many records match a filter.
pub async fn count(db: &EnvDb, entity: &Entity, filter: Option<&Expr>) -> Result<u64> {
    let version = db.catalog().version;
    let mut buf = SqlBuf::new(db.dialect());
    buf.push("SELECT COUNT(*) FROM ").push(&db.table(entity));
    where_filter(&mut buf, entity, version, filter)?;
    let mut conn = db.pool().conn().await?;
    let row = conn
        .query_opt(&buf.sql, &buf.params, &[ColType::Int])
        .await?;
    Ok(row.and_then(|r| r[0].as_int()).unwrap_or(0) as u64)
}

/// The keys a list is ordered by: the requested ones, then `id` so the order is total
/// and a keyset position identifies exactly one place.
pub fn order_keys(
    entity: &Entity,
    version: SchemaVersion,
    orderby: &[OrderItem],
) -> Result<Vec<(PathTarget, bool)>> {
    let mut keys = Vec::new();
    for o in orderby {
        let t = resolve_path(entity, version, &o.path).ok_or_else(|| {
            StoreError::Invalid(format!(
                "cannot order by '{}': not a property with a single value",
                o.path.join("/")
            ))
        })?;
        if t.column.ty == ColType::Bytes {
            return Err(StoreError::Invalid(format!(
                "cannot order by '{}': images have no order",
                o.path.join("/")
            )));
        }
        if t.column.name != KEY {
            keys.push((t, o.descending));
        }
    }
    let id = resolve_path(entity, version, &[KEY.to_string()])
        .ok_or_else(|| StoreError::Corrupt("no id".into()))?;
    // The tie-breaker runs the way the last key does, so `Name desc` is the key
    // index walked backwards rather than a sort.
    let id_desc = match orderby.iter().find(|o| o.path == [KEY]) {
        Some(o) => o.descending,
        None => keys.last().is_some_and(|(_, desc)| *desc),
    };
    keys.push((id, id_desc));
    Ok(keys)
}

/// Rows strictly after `after` in the order of `keys`. Nulls sort first ascending and
/// last descending on both engines.
fn keyset(buf: &mut SqlBuf, keys: &[(PathTarget, bool)], after: &[Value]) {
    buf.push("(");
    for i in 0..keys.len() {
        if i > 0 {
            buf.push(" OR ");
        }
        buf.push("(");
        for j in 0..i {
            let (t, _) = &keys[j];
            match &after[j] {
                Value::Null => buf.ident(&t.column.name).push(" IS NULL AND "),
                v => {
                    buf.push(&order_sql(buf.dialect, t)).push(" = ");
                    folded_param(buf, v.clone(), t.column.ty, t.scalar == ScalarType::String);
                    buf.push(" AND ")
                }
            };
        }
        let (t, desc) = &keys[i];
        let col = order_sql(buf.dialect, t);
        match (&after[i], desc) {
            (Value::Null, false) => {
                buf.ident(&t.column.name).push(" IS NOT NULL");
            }
            (Value::Null, true) => {
                buf.push("1 = 0");
            }
            (v, false) => {
                buf.push(&col).push(" > ");
                folded_param(buf, v.clone(), t.column.ty, t.scalar == ScalarType::String);
            }
            (v, true) => {
                buf.push("(").push(&col).push(" < ");
                folded_param(buf, v.clone(), t.column.ty, t.scalar == ScalarType::String);
                buf.push(" OR ").ident(&t.column.name).push(" IS NULL)");
            }
        }
        buf.push(")");
    }
    buf.push(")");
}

/// The direction of one order key, spelled so that the indexes serve it. Nulls sort
/// first ascending and last descending on both engines: SQLite does so by default
/// (and its planner matches an index only to the default spelling); on PostgreSQL a
/// nullable key says so, matching the `NULLS FIRST` its index is declared with, and a
/// key that is never null (`id`, the row version) says nothing, matching a default
/// index column. Either way a descending order is the index walked backwards.
pub fn direction(dialect: Dialect, column: &str, descending: bool) -> &'static str {
    let never_null = column == KEY || column == VERSION_COLUMN;
    match (dialect, descending) {
        (Dialect::Sqlite, false) => " ASC",
        (Dialect::Sqlite, true) => " DESC",
        (Dialect::Postgres, false) if never_null => " ASC",
        (Dialect::Postgres, true) if never_null => " DESC",
        (Dialect::Postgres, false) => " ASC NULLS FIRST",
        (Dialect::Postgres, true) => " DESC NULLS LAST",
    }
}

/// The statement [`list`] runs and the types of its result columns (the requested
/// columns, then the order keys), exposed for benchmarks.
pub fn list_sql(
    dialect: Dialect,
    table: &str,
    entity: &Entity,
    version: SchemaVersion,
    cols: &[Column],
    q: &ListQuery,
) -> Result<(SqlBuf, Vec<ColType>)> {
    let keys = order_keys(entity, version, &q.orderby)?;
    let mut buf = SqlBuf::new(dialect);
    buf.push("SELECT ").push(&select_list(cols));
    for (t, _) in &keys {
        buf.push(", ").ident(&t.column.name);
    }
    buf.push(" FROM ").push(table);
    let has_where = where_filter(&mut buf, entity, version, q.filter.as_ref())?;
    if let Some(after) = &q.after {
        if after.len() != keys.len() {
            return Err(StoreError::Invalid(
                "the $skiptoken does not belong to this query".into(),
            ));
        }
        buf.push(if has_where { " AND " } else { " WHERE " });
        keyset(&mut buf, &keys, after);
    }
    buf.push(" ORDER BY ");
    for (i, (t, desc)) in keys.iter().enumerate() {
        if i > 0 {
            buf.push(", ");
        }
        buf.push(&order_sql(dialect, t));
        buf.push(direction(dialect, &t.column.name, *desc));
    }
    buf.push(" LIMIT ");
    buf.param(Value::Int(q.limit as i64 + 1), ColType::Int);
    buf.push(" OFFSET ");
    buf.param(Value::Int(q.skip as i64), ColType::Int);
    let mut tys = types(cols);
    tys.extend(keys.iter().map(|(t, _)| t.column.ty));
    Ok((buf, tys))
}

/// One page of records: `cols` of each, filtered, ordered, after a keyset position.
pub async fn list(db: &EnvDb, entity: &Entity, cols: &[Column], q: &ListQuery) -> Result<Page> {
    let version = db.catalog().version;
    let (buf, tys) = list_sql(db.dialect(), &db.table(entity), entity, version, cols, q)?;
    let mut conn = db.pool().conn().await?;
    let mut rows = conn.query(&buf.sql, &buf.params, &tys).await?;
    let more = rows.len() as u64 > q.limit;
    rows.truncate(q.limit as usize);
    let next = if more {
        rows.last().map(|r| r[cols.len()..].to_vec())
    } else {
        None
    };
    for r in &mut rows {
        r.truncate(cols.len());
    }
    Ok(Page { rows, next })
}
