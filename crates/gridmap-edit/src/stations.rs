//! Edits of stations (service centres, red stations, grid stations, rider
//! rest stops): points that must lie in their community. A station's grid is
//! not sent but derived: the grid covering its point by the lookup's
//! boundary rule (smallest code), so it can never disagree with the map.

use crate::audit::{self, Entity, Record};
use crate::{geometry, Actor, EditError, Expected, Written};
use serde::Deserialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

const KINDS: &[&str] = &[
    "service_centre",
    "red_station",
    "grid_station",
    "rider_rest_stop",
];

/// A station's properties, for a create (all but the optional ones
/// required) or an update (absent fields unchanged).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationFields {
    pub code: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub community_code: Option<String>,
    pub area_m2: Option<f64>,
    pub amenities: Option<Vec<String>>,
    pub opening_hours: Option<String>,
}

/// The station as a GeoJSON Feature, or None.
///
/// # Errors
/// When the database cannot be read.
pub async fn get(pool: &PgPool, code: &str) -> Result<Option<Value>, EditError> {
    audit::current(pool, Entity::Station, code).await
}

/// The community of an existing station.
///
/// # Errors
/// When the database cannot be read.
pub async fn community_of(pool: &PgPool, code: &str) -> Result<Option<String>, EditError> {
    community_of_conn(&mut *pool.acquire().await?, code).await
}

/// Creates a station.
///
/// # Errors
/// [`EditError::Invalid`] for a missing or wrong field, a point outside its
/// community or an unknown community; [`EditError::Conflict`] for a code in
/// use.
pub async fn create(
    pool: &PgPool,
    actor: Actor<'_>,
    fields: StationFields,
    geometry: &Value,
) -> Result<Written, EditError> {
    let code = fields
        .code
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| EditError::Invalid("a new station needs a code".into()))?;
    let community = fields
        .community_code
        .clone()
        .ok_or_else(|| EditError::Invalid("a new station needs its community_code".into()))?;
    let kind = fields
        .kind
        .clone()
        .ok_or_else(|| EditError::Invalid("a new station needs a kind".into()))?;
    let name = fields
        .name
        .clone()
        .ok_or_else(|| EditError::Invalid("a new station needs a name".into()))?;
    check_fields(Some(&kind), Some(&name), fields.area_m2)?;
    let mut tx = pool.begin().await?;
    let point = geometry::point(&mut tx, geometry, &format!("station {code}")).await?;
    check_inside(&mut tx, &community, &point, &code).await?;
    let taken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM stations WHERE code = $1)")
        .bind(&code)
        .fetch_one(&mut *tx)
        .await?;
    if taken {
        return Err(EditError::Conflict(format!(
            "station code {code} is in use"
        )));
    }
    sqlx::query(
        "INSERT INTO stations (code, kind, name, community_code, grid_code, area_m2, amenities,
                               opening_hours, geom)
         SELECT $1, $2, $3, $4,
                (SELECT code FROM grids WHERE ST_Intersects(geom, ST_GeomFromEWKB($8))
                  ORDER BY code LIMIT 1),
                $5, COALESCE($6, '{}'), $7, ST_GeomFromEWKB($8)",
    )
    .bind(&code)
    .bind(&kind)
    .bind(&name)
    .bind(&community)
    .bind(fields.area_m2)
    .bind(&fields.amenities)
    .bind(&fields.opening_hours)
    .bind(&point)
    .execute(&mut *tx)
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    let after = audit::snapshot(&mut tx, Entity::Station, &code).await?;
    record(
        &mut tx,
        change_id,
        actor,
        "create",
        &code,
        None,
        after.as_ref(),
    )
    .await?;
    tx.commit().await?;
    Ok(done(change_id, after, None))
}

/// Changes a station's fields and, with `geometry`, moves it.
///
/// # Errors
/// As [`create`], plus [`EditError::NotFound`] and [`EditError::Stale`].
pub async fn update(
    pool: &PgPool,
    actor: Actor<'_>,
    code: &str,
    expected: &Expected,
    fields: StationFields,
    geometry: Option<&Value>,
) -> Result<Written, EditError> {
    if fields.code.as_deref().is_some_and(|c| c != code) {
        return Err(EditError::Invalid(
            "a station's code cannot change; create a new station instead".into(),
        ));
    }
    check_fields(
        fields.kind.as_deref(),
        fields.name.as_deref(),
        fields.area_m2,
    )?;
    let mut tx = pool.begin().await?;
    let (community, _) = lock(&mut tx, code, expected).await?;
    let community = fields.community_code.clone().unwrap_or(community);
    let before = audit::snapshot(&mut tx, Entity::Station, code).await?;
    let point = match geometry {
        Some(geometry) => {
            Some(geometry::point(&mut tx, geometry, &format!("station {code}")).await?)
        }
        None => None,
    };
    let current: Vec<u8> =
        sqlx::query_scalar("SELECT ST_AsEWKB(geom) FROM stations WHERE code = $1")
            .bind(code)
            .fetch_one(&mut *tx)
            .await?;
    check_inside(
        &mut tx,
        &community,
        point.as_deref().unwrap_or(&current),
        code,
    )
    .await?;
    sqlx::query(
        "UPDATE stations SET kind = COALESCE($2, kind), name = COALESCE($3, name),
                community_code = $4, area_m2 = COALESCE($5, area_m2),
                amenities = COALESCE($6, amenities), opening_hours = COALESCE($7, opening_hours),
                geom = COALESCE(ST_GeomFromEWKB($8), geom),
                grid_code = (SELECT g.code FROM grids g
                              WHERE ST_Intersects(g.geom, COALESCE(ST_GeomFromEWKB($8), stations.geom))
                              ORDER BY g.code LIMIT 1)
          WHERE code = $1",
    )
    .bind(code)
    .bind(&fields.kind)
    .bind(&fields.name)
    .bind(&community)
    .bind(fields.area_m2)
    .bind(&fields.amenities)
    .bind(&fields.opening_hours)
    .bind(&point)
    .execute(&mut *tx)
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    let after = audit::snapshot(&mut tx, Entity::Station, code).await?;
    let operation = if point.is_some() { "move" } else { "update" };
    record(
        &mut tx,
        change_id,
        actor,
        operation,
        code,
        before.as_ref(),
        after.as_ref(),
    )
    .await?;
    tx.commit().await?;
    Ok(done(change_id, after, None))
}

/// Deletes a station.
///
/// # Errors
/// [`EditError::NotFound`], [`EditError::Stale`].
pub async fn delete(
    pool: &PgPool,
    actor: Actor<'_>,
    code: &str,
    expected: &Expected,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, code, expected).await?;
    let before = audit::snapshot(&mut tx, Entity::Station, code).await?;
    sqlx::query("DELETE FROM stations WHERE code = $1")
        .bind(code)
        .execute(&mut *tx)
        .await?;
    let change_id = audit::new_change(&mut tx).await?;
    record(
        &mut tx,
        change_id,
        actor,
        "delete",
        code,
        before.as_ref(),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(done(change_id, None, Some(code)))
}

fn check_fields(
    kind: Option<&str>,
    name: Option<&str>,
    area: Option<f64>,
) -> Result<(), EditError> {
    if let Some(kind) = kind {
        if !KINDS.contains(&kind) {
            return Err(EditError::Invalid(format!(
                "station kind {kind:?} is not one of {}",
                KINDS.join(", ")
            )));
        }
    }
    if name == Some("") {
        return Err(EditError::Invalid("name must not be empty".into()));
    }
    if area.is_some_and(|a| !(a.is_finite() && a > 0.0)) {
        return Err(EditError::Invalid(
            "area_m2 must be a positive number".into(),
        ));
    }
    Ok(())
}

async fn check_inside(
    conn: &mut PgConnection,
    community: &str,
    point: &[u8],
    code: &str,
) -> Result<(), EditError> {
    let inside: Option<bool> = sqlx::query_scalar(
        "SELECT ST_Intersects(geom, ST_GeomFromEWKB($2)) FROM communities WHERE code = $1",
    )
    .bind(community)
    .bind(point)
    .fetch_optional(&mut *conn)
    .await?;
    match inside {
        None => Err(EditError::Invalid(format!(
            "community {community} does not exist"
        ))),
        Some(false) => Err(EditError::Invalid(format!(
            "station {code} lies outside its community {community}"
        ))),
        Some(true) => Ok(()),
    }
}

async fn lock(
    conn: &mut PgConnection,
    code: &str,
    expected: &Expected,
) -> Result<(String, i64), EditError> {
    let (community, version): (String, i64) =
        sqlx::query_as("SELECT community_code, version FROM stations WHERE code = $1 FOR UPDATE")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| EditError::not_found("station", code))?;
    if !expected.admits(version) {
        return Err(EditError::Stale {
            message: format!("station {code} changed since the version you edited"),
            current: serde_json::json!({ code: version }),
        });
    }
    Ok((community, version))
}

async fn record(
    conn: &mut PgConnection,
    change_id: i64,
    actor: Actor<'_>,
    operation: &str,
    code: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), EditError> {
    audit::record(
        conn,
        Record {
            change_id,
            actor: actor.name,
            operation,
            entity: Entity::Station,
            code,
            before,
            after,
        },
    )
    .await
}

fn done(change_id: i64, after: Option<Value>, deleted: Option<&str>) -> Written {
    Written {
        change_id,
        features: after.map(audit::without_ewkb).into_iter().collect(),
        deleted: deleted.map(str::to_owned).into_iter().collect(),
        recoded: Vec::new(),
        notes: Vec::new(),
    }
}

/// Restores a station to its state at `version` (from the audit log), as a
/// new audited write; a deleted station is created again.
///
/// # Errors
/// [`EditError::NotFound`] when the log has no such state; as [`update`].
pub async fn revert(
    pool: &PgPool,
    actor: Actor<'_>,
    code: &str,
    expected: &Expected,
    version: i64,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let state = audit::state_at(&mut tx, Entity::Station, code, version)
        .await?
        .ok_or_else(|| EditError::NotFound {
            entity: "station version",
            code: format!("{code}@{version}"),
        })?;
    let text = |name: &str| crate::grids::property_of(&state, name);
    let point = crate::grids::shape_of(&state).ok_or_else(|| {
        EditError::Invalid(format!("station {code}@{version}: no point in the log"))
    })?;
    let community = text("community_code").unwrap_or_default();
    let exists = community_of_conn(&mut tx, code).await?;
    if exists.is_some() {
        lock(&mut tx, code, expected).await?;
    }
    check_inside(&mut tx, &community, &point, code).await?;
    let before = audit::snapshot(&mut tx, Entity::Station, code).await?;
    let amenities: Vec<String> = state
        .pointer("/properties/amenities")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO stations (code, kind, name, community_code, area_m2, amenities, opening_hours,
                               geom, grid_code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, ST_GeomFromEWKB($8),
                 (SELECT code FROM grids WHERE ST_Intersects(geom, ST_GeomFromEWKB($8))
                   ORDER BY code LIMIT 1))
         ON CONFLICT (code) DO UPDATE SET
             kind = EXCLUDED.kind, name = EXCLUDED.name, community_code = EXCLUDED.community_code,
             area_m2 = EXCLUDED.area_m2, amenities = EXCLUDED.amenities,
             opening_hours = EXCLUDED.opening_hours, geom = EXCLUDED.geom,
             grid_code = EXCLUDED.grid_code",
    )
    .bind(code)
    .bind(text("kind"))
    .bind(text("name"))
    .bind(&community)
    .bind(state.pointer("/properties/area_m2").and_then(Value::as_f64))
    .bind(&amenities)
    .bind(text("opening_hours"))
    .bind(&point)
    .execute(&mut *tx)
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    let after = audit::snapshot(&mut tx, Entity::Station, code).await?;
    record(
        &mut tx,
        change_id,
        actor,
        "revert",
        code,
        before.as_ref(),
        after.as_ref(),
    )
    .await?;
    tx.commit().await?;
    Ok(done(change_id, after, None))
}

async fn community_of_conn(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<String>, EditError> {
    Ok(
        sqlx::query_scalar("SELECT community_code FROM stations WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
