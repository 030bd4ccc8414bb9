//! Snapshots of objects as GeoJSON Features, and the audit log.

use crate::EditError;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// The kinds of object the audit log knows, with their tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Community,
    Grid,
    GridUnit,
    Building,
    Station,
}

impl Entity {
    pub fn name(self) -> &'static str {
        match self {
            Entity::Community => "community",
            Entity::Grid => "grid",
            Entity::GridUnit => "grid_unit",
            Entity::Building => "building",
            Entity::Station => "station",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Entity::Community => "communities",
            Entity::Grid => "grids",
            Entity::GridUnit => "grid_units",
            Entity::Building => "buildings",
            Entity::Station => "stations",
        }
    }
}

/// The object as a GeoJSON Feature with every stored column among its
/// properties (the generated Web Mercator copies left out)
/// (personal data included: callers strip it for roles that may not see it)
/// and, as the foreign member `ewkb`, the exact geometry in hex EWKB, so a
/// revert restores the very same coordinates.
pub(crate) async fn snapshot(
    conn: &mut PgConnection,
    entity: Entity,
    code: &str,
) -> Result<Option<Value>, EditError> {
    // The table name comes from the closed list above, never from a request.
    let sql = format!(
        "SELECT json_build_object(
                    'type', 'Feature',
                    'id', code,
                    'geometry', ST_AsGeoJSON(geom, 15)::json,
                    'properties', to_jsonb(t) - 'geom' - 'geom_3857' - 'label_3857',
                    'ewkb', encode(ST_AsEWKB(geom), 'hex'))::text
           FROM {} t WHERE code = $1",
        entity.table()
    );
    let text: Option<String> = sqlx::query_scalar(&sql)
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    text.as_deref().map(parse_json).transpose()
}

/// The object as callers see it: its snapshot without the exact-geometry
/// member, or None. Behind every `GET` of the editing API.
///
/// # Errors
/// When the database cannot be read.
pub async fn current(
    pool: &PgPool,
    entity: Entity,
    code: &str,
) -> Result<Option<Value>, EditError> {
    let mut conn = pool.acquire().await?;
    Ok(snapshot(&mut conn, entity, code).await?.map(without_ewkb))
}

/// The id shared by the audit rows of one write.
pub(crate) async fn new_change(conn: &mut PgConnection) -> Result<i64, EditError> {
    Ok(sqlx::query_scalar("SELECT nextval('gridmap_change_seq')")
        .fetch_one(&mut *conn)
        .await?)
}

/// One audit row.
pub(crate) struct Record<'a> {
    pub change_id: i64,
    pub actor: &'a str,
    pub operation: &'a str,
    pub entity: Entity,
    pub code: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
}

pub(crate) async fn record(conn: &mut PgConnection, row: Record<'_>) -> Result<(), EditError> {
    let version = |feature: Option<&Value>| {
        feature.and_then(|f| f.pointer("/properties/version").and_then(Value::as_i64))
    };
    sqlx::query(
        "INSERT INTO audit_log (change_id, actor, operation, entity, code,
                                version_before, version_after, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb)",
    )
    .bind(row.change_id)
    .bind(row.actor)
    .bind(row.operation)
    .bind(row.entity.name())
    .bind(row.code)
    .bind(version(row.before))
    .bind(version(row.after))
    .bind(row.before.map(Value::to_string))
    .bind(row.after.map(Value::to_string))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One write to one object, as `GET …/history` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub change_id: i64,
    /// RFC 3339 time of the write.
    pub at: String,
    pub actor: String,
    pub operation: String,
    pub version_before: Option<i64>,
    pub version_after: Option<i64>,
    /// The object before and after, as GeoJSON Features (null where it did
    /// not exist).
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The audit rows of one object, oldest first.
///
/// # Errors
/// When the database cannot be read.
pub async fn history(
    pool: &PgPool,
    entity: Entity,
    code: &str,
) -> Result<Vec<HistoryEntry>, EditError> {
    type Row = (
        i64,
        i64,
        String,
        String,
        String,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, change_id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                actor, operation, version_before, version_after, before::text, after::text
           FROM audit_log WHERE entity = $1 AND code = $2 ORDER BY id",
    )
    .bind(entity.name())
    .bind(code)
    .fetch_all(pool)
    .await?;
    let parse = |text: Option<String>| text.as_deref().map(parse_json).transpose();
    rows.into_iter()
        .map(
            |(
                id,
                change_id,
                at,
                actor,
                operation,
                version_before,
                version_after,
                before,
                after,
            )| {
                Ok(HistoryEntry {
                    id,
                    change_id,
                    at,
                    actor,
                    operation,
                    version_before,
                    version_after,
                    before: parse(before)?,
                    after: parse(after)?,
                })
            },
        )
        .collect()
}

/// The state of an object at `version`, from the audit log: the `after` of
/// the write that made it, or the `before` of the write that ended it (for
/// a version made by an import, which the log never saw being made).
pub(crate) async fn state_at(
    conn: &mut PgConnection,
    entity: Entity,
    code: &str,
    version: i64,
) -> Result<Option<Value>, EditError> {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT state::text FROM (
             SELECT after AS state, 0 AS pick, id FROM audit_log
              WHERE entity = $1 AND code = $2 AND version_after = $3
             UNION ALL
             SELECT before, 1, id FROM audit_log
              WHERE entity = $1 AND code = $2 AND version_before = $3) states
          ORDER BY pick, id LIMIT 1",
    )
    .bind(entity.name())
    .bind(code)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await?;
    text.as_deref().map(parse_json).transpose()
}

/// The state of an object at `version` from the audit log (see
/// `state_at`), for checks before a revert such as the caller's scope.
///
/// # Errors
/// When the database cannot be read.
pub async fn state_of(
    pool: &PgPool,
    entity: Entity,
    code: &str,
    version: i64,
) -> Result<Option<Value>, EditError> {
    let mut conn = pool.acquire().await?;
    state_at(&mut conn, entity, code, version).await
}

/// A snapshot without its exact-geometry member, as answers show it.
pub(crate) fn without_ewkb(mut feature: Value) -> Value {
    if let Some(object) = feature.as_object_mut() {
        object.remove("ewkb");
    }
    feature
}

/// Parses a JSON column read as text.
pub(crate) fn parse_json(text: &str) -> Result<Value, EditError> {
    serde_json::from_str(text)
        .map_err(|err| EditError::Invalid(format!("unreadable audit JSON: {err}")))
}
