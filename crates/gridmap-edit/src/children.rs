//! Moving grid units, buildings and stations to another grid when a split,
//! merge or edge move hands area over.
//!
//! Codes nest (grid 15 digits → unit + 3 → building + 4), and the schema
//! checks that a unit's and a building's code starts with its grid's. So an
//! object that changes grid gets a new code under its new grid:
//! - a grid unit: the new grid's code and the next free unit number
//!   (largest in use + 1); its buildings keep their own 4 digits under it;
//! - a building outside any unit: the new grid's code and the next free
//!   7-digit number;
//! - standard addresses keep their codes (they are permanent identifiers)
//!   and follow their building; stations only change `grid_code`.
//!
//! Rows are copied under the new code and the old ones deleted, in the
//! edit's transaction, so every constraint holds after each statement. Each
//! move is in the audit log (the old code deleted, the new one created).
//!
//! A unit moves whole, to the grid where its point-on-surface falls; units
//! are not cut by a split line or an edge move.

use crate::audit::{self, Entity, Record};
use crate::EditError;
use sqlx::PgConnection;

/// The write the moves belong to, for the audit log.
pub(crate) struct Change<'a> {
    pub change_id: i64,
    pub actor: &'a str,
    pub operation: &'a str,
}

/// Moves to grid `to` what lies in `region` (EWKB) among the children of
/// grid `from`; with no region, every child. Returns `(old, new)` codes.
pub(crate) async fn move_children(
    conn: &mut PgConnection,
    change: &Change<'_>,
    from: &str,
    to: &str,
    region: Option<&[u8]>,
) -> Result<Vec<(String, String)>, EditError> {
    let mut recoded = Vec::new();
    let units: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM grid_units
          WHERE grid_code = $1
            AND ($2::bytea IS NULL OR ST_Intersects(ST_PointOnSurface(geom), ST_GeomFromEWKB($2)))
          ORDER BY code",
    )
    .bind(from)
    .bind(region)
    .fetch_all(&mut *conn)
    .await?;
    for unit in units {
        recoded.extend(move_unit(conn, change, &unit, to).await?);
    }
    let buildings: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM buildings
          WHERE grid_code = $1 AND unit_code IS NULL
            AND ($2::bytea IS NULL OR ST_Intersects(ST_PointOnSurface(geom), ST_GeomFromEWKB($2)))
          ORDER BY code",
    )
    .bind(from)
    .bind(region)
    .fetch_all(&mut *conn)
    .await?;
    for building in buildings {
        let new_code = next_building_code(conn, to).await?;
        recode_buildings(
            conn,
            change,
            &[(building.clone(), new_code.clone())],
            to,
            None,
        )
        .await?;
        recoded.push((building, new_code));
    }
    let stations: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM stations
          WHERE grid_code = $1
            AND ($2::bytea IS NULL OR ST_Intersects(geom, ST_GeomFromEWKB($2)))
          ORDER BY code",
    )
    .bind(from)
    .bind(region)
    .fetch_all(&mut *conn)
    .await?;
    for station in stations {
        let before = audit::snapshot(conn, Entity::Station, &station).await?;
        sqlx::query("UPDATE stations SET grid_code = $2 WHERE code = $1")
            .bind(&station)
            .bind(to)
            .execute(&mut *conn)
            .await?;
        let after = audit::snapshot(conn, Entity::Station, &station).await?;
        audit::record(
            conn,
            Record {
                change_id: change.change_id,
                actor: change.actor,
                operation: change.operation,
                entity: Entity::Station,
                code: &station,
                before: before.as_ref(),
                after: after.as_ref(),
            },
        )
        .await?;
    }
    Ok(recoded)
}

async fn move_unit(
    conn: &mut PgConnection,
    change: &Change<'_>,
    unit: &str,
    to: &str,
) -> Result<Vec<(String, String)>, EditError> {
    let new_unit: String = sqlx::query_scalar(
        "SELECT $1 || lpad((COALESCE(max(substr(code, 16, 3)::int), 0) + 1)::text, 3, '0')
           FROM grid_units WHERE grid_code = $1",
    )
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    if new_unit.len() != 18 {
        return Err(EditError::Conflict(format!(
            "grid {to} has no free grid-unit number left for unit {unit}"
        )));
    }
    let before = audit::snapshot(conn, Entity::GridUnit, unit).await?;
    sqlx::query(
        "INSERT INTO grid_units (code, grid_code, name, geom)
         SELECT $2, $3, name, geom FROM grid_units WHERE code = $1",
    )
    .bind(unit)
    .bind(&new_unit)
    .bind(to)
    .execute(&mut *conn)
    .await?;
    let buildings: Vec<String> =
        sqlx::query_scalar("SELECT code FROM buildings WHERE unit_code = $1 ORDER BY code")
            .bind(unit)
            .fetch_all(&mut *conn)
            .await?;
    let pairs: Vec<(String, String)> = buildings
        .into_iter()
        .map(|code| {
            let suffix = code.get(18..).unwrap_or_default().to_owned();
            (code, format!("{new_unit}{suffix}"))
        })
        .collect();
    recode_buildings(conn, change, &pairs, to, Some(&new_unit)).await?;
    sqlx::query("DELETE FROM grid_units WHERE code = $1")
        .bind(unit)
        .execute(&mut *conn)
        .await?;
    let after = audit::snapshot(conn, Entity::GridUnit, &new_unit).await?;
    record_recode(
        conn,
        change,
        Entity::GridUnit,
        unit,
        &new_unit,
        before.as_ref(),
        after.as_ref(),
    )
    .await?;
    let mut recoded = vec![(unit.to_owned(), new_unit)];
    recoded.extend(pairs);
    Ok(recoded)
}

/// Copies buildings under new codes in grid `to` (and unit), moves their
/// addresses over and deletes the old rows.
async fn recode_buildings(
    conn: &mut PgConnection,
    change: &Change<'_>,
    pairs: &[(String, String)],
    to: &str,
    unit: Option<&str>,
) -> Result<(), EditError> {
    for (old, new) in pairs {
        let before = audit::snapshot(conn, Entity::Building, old).await?;
        sqlx::query(
            "INSERT INTO buildings (code, grid_code, unit_code, name, households, floors, geom)
             SELECT $2, $3, $4, name, households, floors, geom FROM buildings WHERE code = $1",
        )
        .bind(old)
        .bind(new)
        .bind(to)
        .bind(unit)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE addresses SET building_code = $2 WHERE building_code = $1")
            .bind(old)
            .bind(new)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM buildings WHERE code = $1")
            .bind(old)
            .execute(&mut *conn)
            .await?;
        let after = audit::snapshot(conn, Entity::Building, new).await?;
        record_recode(
            conn,
            change,
            Entity::Building,
            old,
            new,
            before.as_ref(),
            after.as_ref(),
        )
        .await?;
    }
    Ok(())
}

/// Moves the named buildings to grid `to` as buildings outside any unit,
/// each under the next free 7-digit number of the grid. A building must
/// meet the grid: assigning one that lies elsewhere is refused.
pub(crate) async fn assign_buildings(
    conn: &mut PgConnection,
    change: &Change<'_>,
    buildings: &[String],
    to: &str,
) -> Result<Vec<(String, String)>, EditError> {
    let mut recoded = Vec::new();
    for building in buildings {
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT b.grid_code, ST_Intersects(b.geom, g.geom)
               FROM buildings b, grids g WHERE b.code = $1 AND g.code = $2",
        )
        .bind(building)
        .bind(to)
        .fetch_optional(&mut *conn)
        .await?;
        let (grid, meets) = found.ok_or_else(|| EditError::not_found("building", building))?;
        if grid == to {
            continue;
        }
        if !meets {
            return Err(EditError::Invalid(format!(
                "building {building} does not meet grid {to}: assign a building to a grid it stands in"
            )));
        }
        let new_code = next_building_code(conn, to).await?;
        recode_buildings(
            conn,
            change,
            &[(building.clone(), new_code.clone())],
            to,
            None,
        )
        .await?;
        recoded.push((building.clone(), new_code));
    }
    Ok(recoded)
}

/// The next free code of a building outside any unit in grid `grid`.
async fn next_building_code(conn: &mut PgConnection, grid: &str) -> Result<String, EditError> {
    Ok(sqlx::query_scalar(
        "SELECT $1 || lpad((COALESCE(max(substr(code, 16)::bigint), 0) + 1)::text, 7, '0')
           FROM buildings WHERE grid_code = $1 AND unit_code IS NULL",
    )
    .bind(grid)
    .fetch_one(&mut *conn)
    .await?)
}

/// The two audit rows of a recode: the old code deleted, the new created.
async fn record_recode(
    conn: &mut PgConnection,
    change: &Change<'_>,
    entity: Entity,
    old: &str,
    new: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), EditError> {
    for (code, before, after) in [(old, before, None), (new, None, after)] {
        audit::record(
            conn,
            Record {
                change_id: change.change_id,
                actor: change.actor,
                operation: change.operation,
                entity,
                code,
                before,
                after,
            },
        )
        .await?;
    }
    Ok(())
}
