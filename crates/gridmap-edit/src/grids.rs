//! Edits of grids: create, update and reshape, delete, move a shared edge,
//! split, merge, revert. Each is one transaction: lock the community, lock
//! the grids and check their versions, settle the new shapes against the
//! seamless-cover rule (`cover.rs`), write, audit, commit.

use crate::audit::{self, Entity, Record};
use crate::children::{self, Change};
use crate::cover::{self, Layer, Shape};
use crate::{geometry, Actor, EditError, Expected, Parameters, Written};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

const KINDS: &[&str] = &["basic", "exclusive"];
const STATUSES: &[&str] = &["green", "blue", "yellow", "orange", "red"];

/// A new grid's properties. Without `code`, the grid gets the next free
/// number in its community (largest in use + 1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrid {
    pub code: Option<String>,
    pub community_code: Option<String>,
    pub name: String,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub worker_name: Option<String>,
    pub worker_phone: Option<String>,
}

/// Changes to a grid's properties; absent fields stay as they are, and an
/// empty worker name or phone clears it. A grid with a roster
/// (`grid_workers`) takes its worker from the roster: a different worker is
/// refused ([`update`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridChanges {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub worker_name: Option<String>,
    pub worker_phone: Option<String>,
}

/// The grid as a GeoJSON Feature (every column; the caller strips personal
/// data for roles that may not see it), or None.
///
/// # Errors
/// When the database cannot be read.
pub async fn get(pool: &PgPool, code: &str) -> Result<Option<Value>, EditError> {
    audit::current(pool, Entity::Grid, code).await
}

/// The community of an existing grid; None when there is no such grid.
///
/// # Errors
/// When the database cannot be read.
pub async fn community_of(pool: &PgPool, code: &str) -> Result<Option<String>, EditError> {
    community_of_conn(&mut *pool.acquire().await?, code).await
}

/// Creates a grid.
///
/// # Errors
/// [`EditError::Invalid`] for a malformed code, kind, status or geometry or
/// an unknown community; [`EditError::Conflict`] for a code in use;
/// [`EditError::Refused`] when the grid overlaps a neighbour or leaves its
/// community.
pub async fn create(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    grid: NewGrid,
    geometry: &Value,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let change_id = audit::new_change(&mut tx).await?;
    let feature = insert(&mut tx, params, &grid, geometry, None).await?;
    let code = feature["id"].as_str().unwrap_or_default().to_owned();
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "create",
    };
    audit_grid(&mut tx, &change, &code, None, Some(&feature)).await?;
    tx.commit().await?;
    Ok(written(change_id, vec![feature], Vec::new(), Vec::new()))
}

/// Changes a grid's properties and, with `geometry`, its shape.
///
/// # Errors
/// As [`create`], plus [`EditError::NotFound`] and [`EditError::Stale`], and
/// [`EditError::Conflict`] for a worker other than the roster's on a grid
/// with a roster.
pub async fn update(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    code: &str,
    expected: &Expected,
    changes: GridChanges,
    geometry: Option<&Value>,
) -> Result<Written, EditError> {
    check_properties(changes.kind.as_deref(), changes.status.as_deref())?;
    if changes.name.as_deref() == Some("") {
        return Err(EditError::Invalid("name must not be empty".into()));
    }
    let mut tx = pool.begin().await?;
    let community = lock_grids(&mut tx, &[code], expected).await?;
    refuse_worker_over_roster(&mut tx, code, &changes).await?;
    let change_id = audit::new_change(&mut tx).await?;
    let before = audit::snapshot(&mut tx, Entity::Grid, code).await?;
    if let Some(geometry) = geometry {
        let ewkb = geometry::polygon(&mut tx, geometry, &format!("grid {code}")).await?;
        let settled = cover::settle(
            &mut tx,
            Layer::GRIDS,
            &community,
            &[code.to_owned()],
            vec![Shape {
                code: code.to_owned(),
                ewkb,
            }],
            params,
        )
        .await?;
        write_shapes(&mut tx, &settled).await?;
    }
    sqlx::query(
        "UPDATE grids SET name = COALESCE($2, name), kind = COALESCE($3, kind),
                          status = COALESCE($4, status),
                          worker_name = CASE WHEN $5::text IS NULL THEN worker_name ELSE NULLIF($5, '') END,
                          worker_phone = CASE WHEN $6::text IS NULL THEN worker_phone ELSE NULLIF($6, '') END
          WHERE code = $1",
    )
    .bind(code)
    .bind(&changes.name)
    .bind(&changes.kind)
    .bind(&changes.status)
    .bind(&changes.worker_name)
    .bind(&changes.worker_phone)
    .execute(&mut *tx)
    .await?;
    let after = audit::snapshot(&mut tx, Entity::Grid, code).await?;
    let operation = if geometry.is_some() {
        "reshape"
    } else {
        "update"
    };
    let change = Change {
        change_id,
        actor: actor.name,
        operation,
    };
    audit_grid(&mut tx, &change, code, before.as_ref(), after.as_ref()).await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        after.into_iter().collect(),
        Vec::new(),
        Vec::new(),
    ))
}

/// Moves the rosters (`grid_workers`) of the grids a merge deletes onto the
/// grid that stays, `codes[0]`: the people who served the parts serve the
/// whole. A person listed on two of the merged grids with the same phone is
/// listed once, with the row of the smallest code (the staying grid's when
/// it has one). The roster holds one person per name and grid, so the same
/// name with different phones on two of them is refused rather than
/// guessed at. The staying grid's worker columns follow by trigger.
///
/// # Errors
/// [`EditError::Conflict`] for such a name clash.
async fn merge_rosters(tx: &mut PgConnection, codes: &[String]) -> Result<(), EditError> {
    let clashes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT name FROM grid_workers WHERE grid_code = ANY($1)
                                GROUP BY name HAVING count(DISTINCT coalesce(phone, '')) > 1) c",
    )
    .bind(codes)
    .fetch_one(&mut *tx)
    .await?;
    if clashes > 0 {
        return Err(EditError::Conflict(format!(
            "the rosters of grids {} list {clashes} names with different phones on different \
             grids; a grid's roster holds one person per name: change the rosters \
             (gridmap-import --as grid_workers) before merging",
            codes.join(", ")
        )));
    }
    sqlx::query(
        "DELETE FROM grid_workers w
          WHERE w.grid_code = ANY($1)
            AND EXISTS (SELECT 1 FROM grid_workers v
                         WHERE v.name = w.name AND v.grid_code = ANY($1)
                           AND v.grid_code < w.grid_code)",
    )
    .bind(codes)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE grid_workers SET grid_code = $1 WHERE grid_code = ANY($2)")
        .bind(&codes[0])
        .bind(&codes[1..])
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Refuses `changes` to the worker of grid `code` when the grid has a roster
/// (`grid_workers`, migration 0008): the roster's primary worker is the
/// grid's worker, which a trigger keeps whatever is written, so another
/// value would be dropped without a word. Repeating the roster's worker (a
/// client sending back the whole feature) passes.
///
/// # Errors
/// [`EditError::Conflict`] naming the roster.
async fn refuse_worker_over_roster(
    tx: &mut PgConnection,
    code: &str,
    changes: &GridChanges,
) -> Result<(), EditError> {
    if changes.worker_name.is_none() && changes.worker_phone.is_none() {
        return Ok(());
    }
    let roster: Option<(Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT p.name, p.phone, (SELECT count(*) FROM grid_workers WHERE grid_code = $1)
           FROM gridmap_primary_worker($1) p",
    )
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((name, phone, people)) = roster else {
        return Ok(());
    };
    // An empty value clears the column, as in the UPDATE of `update`.
    let differs = |requested: &Option<String>, current: &Option<String>| {
        requested.as_deref().is_some_and(|requested| {
            Some(requested).filter(|v| !v.is_empty()) != current.as_deref()
        })
    };
    if differs(&changes.worker_name, &name) || differs(&changes.worker_phone, &phone) {
        return Err(EditError::Conflict(format!(
            "grid {code} takes its worker from its roster (grid_workers, {people} people: \
             the full-time worker first, then the grid leader, then part-time): change the \
             roster (gridmap-import --as grid_workers) instead of worker_name or worker_phone"
        )));
    }
    Ok(())
}

/// Deletes a grid that nothing refers to and whose area stays covered.
///
/// # Errors
/// [`EditError::Conflict`] while grid units, buildings or stations belong to
/// it (merge it into a neighbour instead); [`EditError::Refused`] when its
/// deletion would open a gap in the community's cover.
pub async fn delete(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    code: &str,
    expected: &Expected,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let community = lock_grids(&mut tx, &[code], expected).await?;
    let (units, buildings, stations, workers): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM grid_units WHERE grid_code = $1),
                (SELECT count(*) FROM buildings WHERE grid_code = $1),
                (SELECT count(*) FROM stations WHERE grid_code = $1),
                (SELECT count(*) FROM grid_workers WHERE grid_code = $1)",
    )
    .bind(code)
    .fetch_one(&mut *tx)
    .await?;
    if units + buildings + stations + workers > 0 {
        return Err(EditError::Conflict(format!(
            "grid {code} still has {units} grid units, {buildings} buildings, {stations} stations and {workers} people on its roster: merge it into a neighbour instead"
        )));
    }
    cover::settle(
        &mut tx,
        Layer::GRIDS,
        &community,
        &[code.to_owned()],
        Vec::new(),
        params,
    )
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    let before = audit::snapshot(&mut tx, Entity::Grid, code).await?;
    sqlx::query("DELETE FROM grids WHERE code = $1")
        .bind(code)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "delete",
    };
    audit_grid(&mut tx, &change, code, before.as_ref(), None).await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        Vec::new(),
        vec![code.to_owned()],
        Vec::new(),
    ))
}

/// Moves the edge grid `code` shares with `neighbour`: `code` takes the
/// shape `geometry`, and `neighbour` gets whatever of the two grids' former
/// area `code` no longer holds (and loses what `code` took from it). Units,
/// buildings and stations on the handed-over area change grid.
///
/// # Errors
/// As [`update`], for both grids; [`EditError::Invalid`] when the grids are
/// in different communities or nothing would be left of the neighbour.
pub async fn move_shared_edge(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    code: &str,
    neighbour: &str,
    expected: &Expected,
    geometry: &Value,
) -> Result<Written, EditError> {
    if code == neighbour {
        return Err(EditError::Invalid(
            "a grid cannot share an edge with itself".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let community = lock_grids(&mut tx, &[code, neighbour], expected).await?;
    let ewkb = geometry::polygon(&mut tx, geometry, &format!("grid {code}")).await?;
    let (shares_edge, rest): (bool, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT ST_Intersects(a.geom, b.geom),
                ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_MakeValid(
                    ST_Difference(ST_Union(a.geom, b.geom), ST_GeomFromEWKB($3))), 3)))
           FROM grids a, grids b WHERE a.code = $1 AND b.code = $2",
    )
    .bind(code)
    .bind(neighbour)
    .bind(&ewkb)
    .fetch_one(&mut *tx)
    .await?;
    if !shares_edge {
        return Err(EditError::Invalid(format!(
            "grids {code} and {neighbour} do not touch: there is no shared edge to move"
        )));
    }
    let codes = [code.to_owned(), neighbour.to_owned()];
    let settled = cover::settle(
        &mut tx,
        Layer::GRIDS,
        &community,
        &codes,
        vec![
            Shape {
                code: code.to_owned(),
                ewkb,
            },
            Shape {
                code: neighbour.to_owned(),
                ewkb: rest.unwrap_or_default(),
            },
        ],
        params,
    )
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    let befores = snapshots(&mut tx, &codes).await?;
    write_shapes(&mut tx, &settled).await?;
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "move_edge",
    };
    let mut recoded = Vec::new();
    for (from, to) in [(code, neighbour), (neighbour, code)] {
        let region = settled
            .iter()
            .find(|shape| shape.code == to)
            .map(|shape| shape.ewkb.as_slice());
        recoded.extend(children::move_children(&mut tx, &change, from, to, region).await?);
    }
    let afters = snapshots(&mut tx, &codes).await?;
    for ((code, before), after) in codes.iter().zip(&befores).zip(&afters) {
        audit_grid(&mut tx, &change, code, before.as_ref(), after.as_ref()).await?;
    }
    tx.commit().await?;
    Ok(written(
        change_id,
        afters.into_iter().flatten().collect(),
        Vec::new(),
        recoded,
    ))
}

/// How to split a grid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// A LineString crossing the grid once, from edge to edge.
    pub line: Value,
    /// Code of the new grid; the next free number in the community if absent.
    pub code: Option<String>,
    /// Name of the new grid; the old name with "（二）" if absent.
    pub name: Option<String>,
}

/// Splits a grid by a line into two. **Code rule:** the larger part (by
/// area) keeps the grid's code, name, worker and version history; the
/// smaller part becomes a new grid with `split.code` or the community's
/// next free number, the same kind and status, and no worker (一网一员: the
/// new grid needs its own). Units, buildings and stations on the smaller
/// part move to the new grid.
///
/// # Errors
/// [`EditError::Invalid`] when the line does not cut the grid into exactly
/// two parts; as [`create`] for the new code.
pub async fn split(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    code: &str,
    expected: &Expected,
    split: Split,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let community = lock_grids(&mut tx, &[code], expected).await?;
    let line = geometry::line(&mut tx, &split.line, "split line").await?;
    let parts: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT ST_AsEWKB(ST_Multi(part.geom))
           FROM grids g, ST_Dump(ST_Split(g.geom, ST_GeomFromEWKB($2))) AS part
          WHERE g.code = $1
          ORDER BY ST_Area(part.geom) DESC",
    )
    .bind(code)
    .bind(&line)
    .fetch_all(&mut *tx)
    .await?;
    let [larger, smaller] = <[Vec<u8>; 2]>::try_from(parts).map_err(|parts| {
        EditError::Invalid(format!(
            "the split line must cross grid {code} once, from edge to edge; it cuts it into {} parts",
            parts.len()
        ))
    })?;
    let before = audit::snapshot(&mut tx, Entity::Grid, code).await?;
    let name: String = match split.name {
        Some(name) => name,
        None => {
            sqlx::query_scalar("SELECT name || '（二）' FROM grids WHERE code = $1")
                .bind(code)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    let new_code = match split.code {
        Some(new_code) => {
            check_code(&new_code, &community)?;
            new_code
        }
        None => next_code(&mut tx, &community).await?,
    };
    ensure_free(&mut tx, &new_code).await?;
    let settled = cover::settle(
        &mut tx,
        Layer::GRIDS,
        &community,
        &[code.to_owned()],
        vec![
            Shape {
                code: code.to_owned(),
                ewkb: larger,
            },
            Shape {
                code: new_code.clone(),
                ewkb: smaller,
            },
        ],
        params,
    )
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    sqlx::query(
        "INSERT INTO grids (code, community_code, name, kind, status, geom)
         SELECT $2, community_code, $3, kind, status, ST_GeomFromEWKB($4) FROM grids WHERE code = $1",
    )
    .bind(code)
    .bind(&new_code)
    .bind(&name)
    .bind(&settled[1].ewkb)
    .execute(&mut *tx)
    .await?;
    write_shapes(&mut tx, &settled[..1]).await?;
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "split",
    };
    let recoded =
        children::move_children(&mut tx, &change, code, &new_code, Some(&settled[1].ewkb)).await?;
    let codes = [code.to_owned(), new_code.clone()];
    let afters = snapshots(&mut tx, &codes).await?;
    audit_grid(&mut tx, &change, code, before.as_ref(), afters[0].as_ref()).await?;
    audit_grid(&mut tx, &change, &new_code, None, afters[1].as_ref()).await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        afters.into_iter().flatten().collect(),
        Vec::new(),
        recoded,
    ))
}

/// Merges adjacent grids of one community into one. **Code rule:** the
/// smallest code survives, with its name unless `name` is given, and its
/// worker (or, if it has none, the first worker among the others by code);
/// the others' units, buildings and stations move to it and they are
/// deleted.
///
/// # Errors
/// [`EditError::Invalid`] for fewer than two grids, grids of different
/// communities, or grids whose union is not one piece.
pub async fn merge(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    codes: &[String],
    expected: &Expected,
    name: Option<&str>,
) -> Result<Written, EditError> {
    let mut codes: Vec<String> = codes.to_vec();
    codes.sort();
    codes.dedup();
    if codes.len() < 2 {
        return Err(EditError::Invalid(
            "a merge needs at least two different grids".into(),
        ));
    }
    if name == Some("") {
        return Err(EditError::Invalid("name must not be empty".into()));
    }
    let code_refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let mut tx = pool.begin().await?;
    let community = lock_grids(&mut tx, &code_refs, expected).await?;
    let (pieces, union): (i32, Vec<u8>) = sqlx::query_as(
        "SELECT ST_NumGeometries(u), ST_AsEWKB(ST_Multi(u))
           FROM (SELECT ST_Union(geom) AS u FROM grids WHERE code = ANY($1)) merged",
    )
    .bind(&codes)
    .fetch_one(&mut *tx)
    .await?;
    if pieces != 1 {
        return Err(EditError::Invalid(format!(
            "grids {} do not form one piece (their union has {pieces} parts): merge only grids that share edges",
            codes.join(", ")
        )));
    }
    let target = codes[0].clone();
    let settled = cover::settle(
        &mut tx,
        Layer::GRIDS,
        &community,
        &codes,
        vec![Shape {
            code: target.clone(),
            ewkb: union,
        }],
        params,
    )
    .await?;
    let change_id = audit::new_change(&mut tx).await?;
    let befores = snapshots(&mut tx, &codes).await?;
    write_shapes(&mut tx, &settled).await?;
    sqlx::query("UPDATE grids SET name = COALESCE($2, name) WHERE code = $1")
        .bind(&target)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE grids t SET worker_name = o.worker_name, worker_phone = o.worker_phone
           FROM (SELECT worker_name, worker_phone FROM grids
                  WHERE code = ANY($2) AND worker_name IS NOT NULL ORDER BY code LIMIT 1) o
          WHERE t.code = $1 AND t.worker_name IS NULL",
    )
    .bind(&target)
    .bind(&codes[1..])
    .execute(&mut *tx)
    .await?;
    merge_rosters(&mut tx, &codes).await?;
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "merge",
    };
    let mut recoded = Vec::new();
    for other in &codes[1..] {
        recoded.extend(children::move_children(&mut tx, &change, other, &target, None).await?);
        sqlx::query("DELETE FROM grids WHERE code = $1")
            .bind(other)
            .execute(&mut *tx)
            .await?;
    }
    let afters = snapshots(&mut tx, &codes).await?;
    for ((code, before), after) in codes.iter().zip(&befores).zip(&afters) {
        audit_grid(&mut tx, &change, code, before.as_ref(), after.as_ref()).await?;
    }
    tx.commit().await?;
    Ok(written(
        change_id,
        afters.into_iter().flatten().collect(),
        codes[1..].to_vec(),
        recoded,
    ))
}

/// Restores grid `code` to its state at `version` (properties and exact
/// shape, from the audit log): an ordinary write, validated and audited as
/// `revert`. A deleted grid is created again (`expected` is then ignored).
/// Units, buildings and stations that a split or merge moved stay where
/// they are.
///
/// # Errors
/// [`EditError::NotFound`] when the log has no state of the grid at that
/// version; otherwise as [`update`] and [`create`].
pub async fn revert(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    code: &str,
    expected: &Expected,
    version: i64,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let state = audit::state_at(&mut tx, Entity::Grid, code, version)
        .await?
        .ok_or_else(|| EditError::NotFound {
            entity: "grid version",
            code: format!("{code}@{version}"),
        })?;
    let ewkb = shape_of(&state)
        .ok_or_else(|| EditError::Invalid(format!("grid {code}@{version}: no shape in the log")))?;
    let exists = community_of_conn(&mut tx, code).await?.is_some();
    let community = match exists {
        true => lock_grids(&mut tx, &[code], expected).await?,
        false => {
            let community = property_of(&state, "community_code").unwrap_or_default();
            lock_community(&mut tx, &community).await?;
            community
        }
    };
    let change_id = audit::new_change(&mut tx).await?;
    let before = audit::snapshot(&mut tx, Entity::Grid, code).await?;
    let replaced: Vec<String> = before.iter().map(|_| code.to_owned()).collect();
    let settled = cover::settle(
        &mut tx,
        Layer::GRIDS,
        &community,
        &replaced,
        vec![Shape {
            code: code.to_owned(),
            ewkb,
        }],
        params,
    )
    .await?;
    restore(&mut tx, code, &state, &settled[0].ewkb, exists).await?;
    let notes = roster_note(&mut tx, code, &state).await?;
    let after = audit::snapshot(&mut tx, Entity::Grid, code).await?;
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "revert",
    };
    audit_grid(&mut tx, &change, code, before.as_ref(), after.as_ref()).await?;
    tx.commit().await?;
    Ok(Written {
        notes: notes.into_iter().collect(),
        ..written(
            change_id,
            after.into_iter().collect(),
            Vec::new(),
            Vec::new(),
        )
    })
}

/// Says so when grid `code`, just restored from `state`, kept its roster's
/// worker (the trigger of migration 0008 keeps it whatever is written)
/// instead of the worker `state` recorded: the rest of the revert stands, and
/// the caller learns which part did not.
pub(crate) async fn roster_note(
    conn: &mut PgConnection,
    code: &str,
    state: &Value,
) -> Result<Option<String>, EditError> {
    let row: Option<(Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT g.worker_name, g.worker_phone,
                (SELECT count(*) FROM grid_workers w WHERE w.grid_code = g.code)
           FROM grids g WHERE g.code = $1",
    )
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((name, phone, people)) = row.filter(|(_, _, people)| *people > 0) else {
        return Ok(None);
    };
    let recorded = (
        property_of(state, "worker_name"),
        property_of(state, "worker_phone"),
    );
    Ok((recorded != (name, phone)).then(|| {
        format!(
            "grid {code} keeps the worker of its roster (grid_workers, {people} people), not \
             the one of the version restored: change the roster (gridmap-import --as \
             grid_workers) to change the worker"
        )
    }))
}

/// A string property of a snapshot.
pub(crate) fn property_of(state: &Value, name: &str) -> Option<String> {
    state
        .pointer(&format!("/properties/{name}"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The exact shape of a snapshot (its `ewkb` member).
pub(crate) fn shape_of(state: &Value) -> Option<Vec<u8>> {
    state
        .get("ewkb")
        .and_then(Value::as_str)
        .and_then(decode_hex)
}

/// Writes a grid's properties from a snapshot and the shape `ewkb`,
/// updating the row or, when it does not exist, inserting it.
pub(crate) async fn restore(
    conn: &mut PgConnection,
    code: &str,
    state: &Value,
    ewkb: &[u8],
    exists: bool,
) -> Result<(), EditError> {
    let sql = if exists {
        "UPDATE grids SET name = $2, kind = $3, status = $4, worker_name = $5, worker_phone = $6,
                          geom = ST_GeomFromEWKB($7)
          WHERE code = $1 AND community_code = $8"
    } else {
        "INSERT INTO grids (code, name, kind, status, worker_name, worker_phone, geom, community_code)
         VALUES ($1, $2, $3, $4, $5, $6, ST_GeomFromEWKB($7), $8)"
    };
    sqlx::query(sql)
        .bind(code)
        .bind(property_of(state, "name"))
        .bind(property_of(state, "kind"))
        .bind(property_of(state, "status"))
        .bind(property_of(state, "worker_name"))
        .bind(property_of(state, "worker_phone"))
        .bind(ewkb)
        .bind(property_of(state, "community_code"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Inserts a grid after checking it; `ewkb` (a shape from the log) takes
/// the place of `geometry` when given. Returns its snapshot.
async fn insert(
    conn: &mut PgConnection,
    params: Parameters,
    grid: &NewGrid,
    geometry: &Value,
    ewkb: Option<Vec<u8>>,
) -> Result<Value, EditError> {
    check_properties(grid.kind.as_deref(), grid.status.as_deref())?;
    if grid.name.is_empty() {
        return Err(EditError::Invalid("name must not be empty".into()));
    }
    let community = match (&grid.community_code, &grid.code) {
        (Some(community), _) => community.clone(),
        (None, Some(code)) => code.get(..12).unwrap_or_default().to_owned(),
        (None, None) => {
            return Err(EditError::Invalid(
                "a new grid needs its community_code or its code".into(),
            ))
        }
    };
    lock_community(conn, &community).await?;
    let code = match &grid.code {
        Some(code) => {
            check_code(code, &community)?;
            code.clone()
        }
        None => next_code(conn, &community).await?,
    };
    ensure_free(conn, &code).await?;
    let ewkb = match ewkb {
        Some(ewkb) => ewkb,
        None => geometry::polygon(conn, geometry, &format!("grid {code}")).await?,
    };
    let settled = cover::settle(
        conn,
        Layer::GRIDS,
        &community,
        &[],
        vec![Shape {
            code: code.clone(),
            ewkb,
        }],
        params,
    )
    .await?;
    sqlx::query(
        "INSERT INTO grids (code, community_code, name, kind, status, worker_name, worker_phone, geom)
         VALUES ($1, $2, $3, COALESCE($4, 'basic'), COALESCE($5, 'green'), NULLIF($6, ''), NULLIF($7, ''),
                 ST_GeomFromEWKB($8))",
    )
    .bind(&code)
    .bind(&community)
    .bind(&grid.name)
    .bind(&grid.kind)
    .bind(&grid.status)
    .bind(&grid.worker_name)
    .bind(&grid.worker_phone)
    .bind(&settled[0].ewkb)
    .execute(&mut *conn)
    .await?;
    audit::snapshot(conn, Entity::Grid, &code)
        .await?
        .ok_or_else(|| EditError::not_found("grid", &code))
}

fn check_properties(kind: Option<&str>, status: Option<&str>) -> Result<(), EditError> {
    if let Some(kind) = kind {
        if !KINDS.contains(&kind) {
            return Err(EditError::Invalid(format!(
                "kind {kind:?} is not one of {}",
                KINDS.join(", ")
            )));
        }
    }
    if let Some(status) = status {
        if !STATUSES.contains(&status) {
            return Err(EditError::Invalid(format!(
                "status {status:?} is not one of {}",
                STATUSES.join(", ")
            )));
        }
    }
    Ok(())
}

/// A grid code is its community's 12 digits and 3 more.
fn check_code(code: &str, community: &str) -> Result<(), EditError> {
    if code.len() != 15 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EditError::Invalid(format!(
            "grid code {code:?} is not 15 digits"
        )));
    }
    if !code.starts_with(community) {
        return Err(EditError::Invalid(format!(
            "grid code {code} does not start with its community's code {community}"
        )));
    }
    Ok(())
}

async fn next_code(conn: &mut PgConnection, community: &str) -> Result<String, EditError> {
    let code: String = sqlx::query_scalar(
        "SELECT $1 || lpad((COALESCE(max(substr(code, 13, 3)::int), 0) + 1)::text, 3, '0')
           FROM grids WHERE community_code = $1",
    )
    .bind(community)
    .fetch_one(&mut *conn)
    .await?;
    if code.len() != 15 {
        return Err(EditError::Conflict(format!(
            "community {community} has no free grid number left"
        )));
    }
    Ok(code)
}

async fn ensure_free(conn: &mut PgConnection, code: &str) -> Result<(), EditError> {
    let taken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM grids WHERE code = $1)")
        .bind(code)
        .fetch_one(&mut *conn)
        .await?;
    if taken {
        return Err(EditError::Conflict(format!("grid code {code} is in use")));
    }
    Ok(())
}

/// Locks a community's row: every edit of its grids takes this lock first,
/// so two edits of neighbouring grids never validate against each other's
/// uncommitted shapes.
pub(crate) async fn lock_community(
    conn: &mut PgConnection,
    community: &str,
) -> Result<(), EditError> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM communities WHERE code = $1 FOR UPDATE")
            .bind(community)
            .fetch_optional(&mut *conn)
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| EditError::Invalid(format!("community {community} does not exist")))
}

pub(crate) async fn community_of_conn(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<String>, EditError> {
    Ok(
        sqlx::query_scalar("SELECT community_code FROM grids WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Locks the community of `codes` (which must all be in one) and the grids,
/// and checks their versions. Returns the community code.
async fn lock_grids(
    conn: &mut PgConnection,
    codes: &[&str],
    expected: &Expected,
) -> Result<String, EditError> {
    let mut community: Option<String> = None;
    for code in codes {
        let found = community_of_conn(conn, code)
            .await?
            .ok_or_else(|| EditError::not_found("grid", code))?;
        match &community {
            Some(first) if *first != found => {
                return Err(EditError::Invalid(format!(
                    "grids {} are in different communities ({first} and {found})",
                    codes.join(", ")
                )))
            }
            _ => community = Some(found),
        }
    }
    let community = community.ok_or_else(|| EditError::Invalid("no grid named".into()))?;
    lock_community(conn, &community).await?;
    let owned: Vec<String> = codes.iter().map(|c| (*c).to_owned()).collect();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT code, community_code, version FROM grids WHERE code = ANY($1) ORDER BY code FOR UPDATE",
    )
    .bind(&owned)
    .fetch_all(&mut *conn)
    .await?;
    for code in codes {
        let Some((_, grid_community, _)) = rows.iter().find(|(c, _, _)| c == code) else {
            // Deleted between the look-up and the lock.
            return Err(EditError::not_found("grid", code));
        };
        if *grid_community != community {
            return Err(EditError::Stale {
                message: format!("grid {code} moved to another community meanwhile"),
                current: json!({}),
            });
        }
    }
    if rows
        .iter()
        .any(|(_, _, version)| !expected.admits(*version))
    {
        let current: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(code, _, version)| (code.clone(), json!(version)))
            .collect();
        return Err(EditError::Stale {
            message: format!(
                "{} changed since the version you edited: reload and apply your edit again",
                rows.iter()
                    .filter(|(_, _, v)| !expected.admits(*v))
                    .map(|(c, _, _)| format!("grid {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            current: Value::Object(current),
        });
    }
    Ok(community)
}

pub(crate) async fn write_shapes(
    conn: &mut PgConnection,
    shapes: &[Shape],
) -> Result<(), EditError> {
    for shape in shapes {
        sqlx::query("UPDATE grids SET geom = ST_GeomFromEWKB($2) WHERE code = $1")
            .bind(&shape.code)
            .bind(&shape.ewkb)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn snapshots(
    conn: &mut PgConnection,
    codes: &[String],
) -> Result<Vec<Option<Value>>, EditError> {
    let mut out = Vec::with_capacity(codes.len());
    for code in codes {
        out.push(audit::snapshot(conn, Entity::Grid, code).await?);
    }
    Ok(out)
}

pub(crate) async fn audit_grid(
    conn: &mut PgConnection,
    change: &Change<'_>,
    code: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), EditError> {
    audit::record(
        conn,
        Record {
            change_id: change.change_id,
            actor: change.actor,
            operation: change.operation,
            entity: Entity::Grid,
            code,
            before,
            after,
        },
    )
    .await
}

pub(crate) fn written(
    change_id: i64,
    features: Vec<Value>,
    deleted: Vec<String>,
    recoded: Vec<(String, String)>,
) -> Written {
    Written {
        change_id,
        features: features.into_iter().map(audit::without_ewkb).collect(),
        deleted,
        recoded,
        notes: Vec::new(),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Assigns buildings to grid `code` (a building straddling two grids, say):
/// each gets a code under the grid, outside any unit (see `children.rs`),
/// its addresses follow. The grid's own version is not involved, but the
/// community is locked like any grid edit.
///
/// # Errors
/// [`EditError::NotFound`] for an unknown grid or building;
/// [`EditError::Invalid`] for a building that does not meet the grid.
pub async fn assign_buildings(
    pool: &PgPool,
    actor: Actor<'_>,
    code: &str,
    buildings: &[String],
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    lock_grids(&mut tx, &[code], &Expected::Any).await?;
    let change_id = audit::new_change(&mut tx).await?;
    let change = Change {
        change_id,
        actor: actor.name,
        operation: "assign_buildings",
    };
    let recoded = children::assign_buildings(&mut tx, &change, buildings, code).await?;
    tx.commit().await?;
    Ok(written(change_id, Vec::new(), Vec::new(), recoded))
}
