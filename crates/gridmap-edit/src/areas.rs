//! Edits of grid units (tiling their grid) and communities (tiling their
//! street): create, change name and shape, delete. The same seamless-cover
//! rule as for grids holds one level down or up (`cover.rs`), and a
//! community may not be reshaped so that one of its grids sticks out.

use crate::audit::{self, Entity, Record};
use crate::cover::{self, Layer, Shape};
use crate::grids::written;
use crate::{geometry, Actor, EditError, Expected, Parameters, Written};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// Which kind of area an edit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    GridUnit,
    Community,
}

impl AreaKind {
    fn layer(self) -> Layer {
        match self {
            AreaKind::GridUnit => Layer::GRID_UNITS,
            AreaKind::Community => Layer::COMMUNITIES,
        }
    }

    pub fn entity(self) -> Entity {
        match self {
            AreaKind::GridUnit => Entity::GridUnit,
            AreaKind::Community => Entity::Community,
        }
    }

    fn noun(self) -> &'static str {
        self.layer().member_noun
    }

    fn table(self) -> &'static str {
        match self {
            AreaKind::GridUnit => "grid_units",
            AreaKind::Community => "communities",
        }
    }

    fn parent_column(self) -> &'static str {
        match self {
            AreaKind::GridUnit => "grid_code",
            AreaKind::Community => "street_code",
        }
    }

    fn parent_table(self) -> &'static str {
        match self {
            AreaKind::GridUnit => "grids",
            AreaKind::Community => "streets",
        }
    }

    /// Digits of the parent's code and of the area's own code.
    fn code_lengths(self) -> (usize, usize) {
        match self {
            AreaKind::GridUnit => (15, 18),
            AreaKind::Community => (9, 12),
        }
    }

    /// What refers to an area and forbids deleting it.
    fn referrers(self) -> &'static str {
        match self {
            AreaKind::GridUnit => {
                "SELECT (SELECT count(*) FROM buildings WHERE unit_code = $1)::bigint"
            }
            AreaKind::Community => {
                "SELECT (SELECT count(*) FROM grids WHERE community_code = $1)
                      + (SELECT count(*) FROM stations WHERE community_code = $1)"
            }
        }
    }
}

/// The properties of a grid unit or community; for a create, `name` and
/// the parent (`grid_code` or `street_code`, or a full `code`) are needed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaFields {
    pub code: Option<String>,
    pub name: Option<String>,
    pub grid_code: Option<String>,
    pub street_code: Option<String>,
    /// Communities only: `urban` or `village`.
    pub kind: Option<String>,
}

/// The area as a GeoJSON Feature, or None.
///
/// # Errors
/// When the database cannot be read.
pub async fn get(pool: &PgPool, area: AreaKind, code: &str) -> Result<Option<Value>, EditError> {
    audit::current(pool, area.entity(), code).await
}

/// Creates a grid unit or community.
///
/// # Errors
/// [`EditError::Invalid`] for a missing or malformed field or geometry,
/// [`EditError::Conflict`] for a code in use, [`EditError::Refused`] when
/// it overlaps a neighbour or leaves its parent.
pub async fn create(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    area: AreaKind,
    fields: AreaFields,
    geometry: &Value,
) -> Result<Written, EditError> {
    let (parent_len, code_len) = area.code_lengths();
    let parent = match area {
        AreaKind::GridUnit => fields.grid_code.clone(),
        AreaKind::Community => fields.street_code.clone(),
    }
    .or_else(|| {
        fields
            .code
            .as_ref()
            .and_then(|c| c.get(..parent_len))
            .map(str::to_owned)
    })
    .ok_or_else(|| {
        EditError::Invalid(format!(
            "a new {} needs its parent's code or its own code",
            area.noun()
        ))
    })?;
    let name = fields
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| EditError::Invalid(format!("a new {} needs a name", area.noun())))?;
    check_kind(area, fields.kind.as_deref())?;
    let mut tx = pool.begin().await?;
    lock_parent(&mut tx, area, &parent).await?;
    let code = match fields.code {
        Some(code) => code,
        None => {
            sqlx::query_scalar(&format!(
                "SELECT $1 || lpad((COALESCE(max(substr(code, {}, 3)::int), 0) + 1)::text, 3, '0')
                   FROM {} WHERE {} = $1",
                parent_len + 1,
                area.table(),
                area.parent_column()
            ))
            .bind(&parent)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    if code.len() != code_len
        || !code.bytes().all(|b| b.is_ascii_digit())
        || !code.starts_with(&parent)
    {
        return Err(EditError::Invalid(format!(
            "{} code {code:?} is not {code_len} digits starting with its parent's code {parent}",
            area.noun()
        )));
    }
    let taken: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE code = $1)",
        area.table()
    ))
    .bind(&code)
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(EditError::Conflict(format!(
            "{} code {code} is in use",
            area.noun()
        )));
    }
    let ewkb = geometry::polygon(&mut tx, geometry, &format!("{} {code}", area.noun())).await?;
    let settled = cover::settle(
        &mut tx,
        area.layer(),
        &parent,
        &[],
        vec![Shape {
            code: code.clone(),
            ewkb,
        }],
        params,
    )
    .await?;
    let sql = match area {
        AreaKind::GridUnit => {
            "INSERT INTO grid_units (code, grid_code, name, geom)
             VALUES ($1, $2, $3, ST_GeomFromEWKB($4))"
        }
        AreaKind::Community => {
            "INSERT INTO communities (code, street_code, name, geom, kind)
             VALUES ($1, $2, $3, ST_GeomFromEWKB($4), COALESCE($5, 'urban'))"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(&code)
        .bind(&parent)
        .bind(&name)
        .bind(&settled[0].ewkb);
    if area == AreaKind::Community {
        query = query.bind(&fields.kind);
    }
    query.execute(&mut *tx).await?;
    let change_id = audit::new_change(&mut tx).await?;
    let after = audit::snapshot(&mut tx, area.entity(), &code).await?;
    record(
        &mut tx,
        change_id,
        actor,
        "create",
        area,
        &code,
        None,
        after.as_ref(),
    )
    .await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        after.into_iter().collect(),
        Vec::new(),
        Vec::new(),
    ))
}

/// Changes a grid unit's or community's name (and a community's kind) and,
/// with `geometry`, its shape.
///
/// # Errors
/// As [`create`], plus [`EditError::NotFound`], [`EditError::Stale`], and
/// [`EditError::Refused`] with `grid_outside_community` when a reshaped
/// community would leave part of one of its grids outside.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors grids::update plus the kind of area; each argument is a distinct input"
)]
pub async fn update(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    area: AreaKind,
    code: &str,
    expected: &Expected,
    fields: AreaFields,
    geometry: Option<&Value>,
) -> Result<Written, EditError> {
    if fields.code.as_deref().is_some_and(|c| c != code)
        || fields.grid_code.is_some()
        || fields.street_code.is_some()
    {
        return Err(EditError::Invalid(format!(
            "a {}'s code and parent cannot change",
            area.noun()
        )));
    }
    if fields.name.as_deref() == Some("") {
        return Err(EditError::Invalid("name must not be empty".into()));
    }
    check_kind(area, fields.kind.as_deref())?;
    let mut tx = pool.begin().await?;
    let parent = lock(&mut tx, area, code, expected).await?;
    let before = audit::snapshot(&mut tx, area.entity(), code).await?;
    if let Some(geometry) = geometry {
        let ewkb = geometry::polygon(&mut tx, geometry, &format!("{} {code}", area.noun())).await?;
        let settled = cover::settle(
            &mut tx,
            area.layer(),
            &parent,
            &[code.to_owned()],
            vec![Shape {
                code: code.to_owned(),
                ewkb,
            }],
            params,
        )
        .await?;
        if area == AreaKind::Community {
            keep_grids_inside(&mut tx, code, &settled[0].ewkb, params.snap_tolerance_m).await?;
        }
        sqlx::query(&format!(
            "UPDATE {} SET geom = ST_GeomFromEWKB($2) WHERE code = $1",
            area.table()
        ))
        .bind(code)
        .bind(&settled[0].ewkb)
        .execute(&mut *tx)
        .await?;
    }
    if fields.name.is_some() || fields.kind.is_some() {
        let sql = match area {
            AreaKind::GridUnit => "UPDATE grid_units SET name = COALESCE($2, name) WHERE code = $1",
            AreaKind::Community => {
                "UPDATE communities SET name = COALESCE($2, name), kind = COALESCE($3, kind)
                  WHERE code = $1"
            }
        };
        let mut query = sqlx::query(sql).bind(code).bind(&fields.name);
        if area == AreaKind::Community {
            query = query.bind(&fields.kind);
        }
        query.execute(&mut *tx).await?;
    }
    let change_id = audit::new_change(&mut tx).await?;
    let after = audit::snapshot(&mut tx, area.entity(), code).await?;
    let operation = if geometry.is_some() {
        "reshape"
    } else {
        "update"
    };
    record(
        &mut tx,
        change_id,
        actor,
        operation,
        area,
        code,
        before.as_ref(),
        after.as_ref(),
    )
    .await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        after.into_iter().collect(),
        Vec::new(),
        Vec::new(),
    ))
}

/// Deletes a grid unit no building refers to, or a community with no grids
/// and stations, when its area stays covered (or `allow_new_gap`).
///
/// # Errors
/// [`EditError::Conflict`] while referred to; [`EditError::Refused`] for a gap.
pub async fn delete(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    area: AreaKind,
    code: &str,
    expected: &Expected,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let parent = lock(&mut tx, area, code, expected).await?;
    let referrers: i64 = sqlx::query_scalar(area.referrers())
        .bind(code)
        .fetch_one(&mut *tx)
        .await?;
    if referrers > 0 {
        return Err(EditError::Conflict(format!(
            "{} {code} still has {referrers} buildings, grids or stations",
            area.noun()
        )));
    }
    cover::settle(
        &mut tx,
        area.layer(),
        &parent,
        &[code.to_owned()],
        Vec::new(),
        params,
    )
    .await?;
    let before = audit::snapshot(&mut tx, area.entity(), code).await?;
    sqlx::query(&format!("DELETE FROM {} WHERE code = $1", area.table()))
        .bind(code)
        .execute(&mut *tx)
        .await?;
    let change_id = audit::new_change(&mut tx).await?;
    record(
        &mut tx,
        change_id,
        actor,
        "delete",
        area,
        code,
        before.as_ref(),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        Vec::new(),
        vec![code.to_owned()],
        Vec::new(),
    ))
}

fn check_kind(area: AreaKind, kind: Option<&str>) -> Result<(), EditError> {
    match (area, kind) {
        (_, None) | (AreaKind::Community, Some("urban" | "village")) => Ok(()),
        (AreaKind::Community, Some(other)) => Err(EditError::Invalid(format!(
            "community kind {other:?} is not urban or village"
        ))),
        (AreaKind::GridUnit, Some(_)) => Err(EditError::Invalid("a grid unit has no kind".into())),
    }
}

/// Locks the parent row (the grid of a unit, the street of a community):
/// edits of siblings run one after the other.
async fn lock_parent(
    conn: &mut PgConnection,
    area: AreaKind,
    parent: &str,
) -> Result<(), EditError> {
    let found: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM {} WHERE code = $1 FOR UPDATE",
        area.parent_table()
    ))
    .bind(parent)
    .fetch_optional(&mut *conn)
    .await?;
    found.map(|_| ()).ok_or_else(|| {
        EditError::Invalid(format!(
            "{} {parent} does not exist",
            area.layer().container_noun
        ))
    })
}

/// Locks an area and its parent and checks its version; returns the parent.
async fn lock(
    conn: &mut PgConnection,
    area: AreaKind,
    code: &str,
    expected: &Expected,
) -> Result<String, EditError> {
    let parent: String = sqlx::query_scalar(&format!(
        "SELECT {} FROM {} WHERE code = $1",
        area.parent_column(),
        area.table()
    ))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| EditError::not_found(area.entity().name(), code))?;
    lock_parent(conn, area, &parent).await?;
    let version: i64 = sqlx::query_scalar(&format!(
        "SELECT version FROM {} WHERE code = $1 FOR UPDATE",
        area.table()
    ))
    .bind(code)
    .fetch_one(&mut *conn)
    .await?;
    if !expected.admits(version) {
        return Err(EditError::Stale {
            message: format!(
                "{} {code} changed since the version you edited",
                area.noun()
            ),
            current: json!({ code: version }),
        });
    }
    Ok(parent)
}

/// Refuses a community shape that would leave part of one of its grids
/// outside, wider than twice the tolerance (grids are not cut to fit).
async fn keep_grids_inside(
    conn: &mut PgConnection,
    community: &str,
    shape: &[u8],
    tolerance_m: f64,
) -> Result<(), EditError> {
    let outside: Vec<(String, String, f64)> = sqlx::query_as(
        "SELECT g.code, ST_AsGeoJSON(part.geom, 9), ST_Area(part.geom::geography)
           FROM grids g,
                ST_Dump(ST_CollectionExtract(ST_Difference(g.geom, ST_GeomFromEWKB($2)), 3)) AS part
          WHERE g.community_code = $1
            AND NOT ST_IsEmpty(ST_Buffer(part.geom::geography, -$3)::geometry)
          ORDER BY g.code",
    )
    .bind(community)
    .bind(shape)
    .bind(tolerance_m)
    .fetch_all(&mut *conn)
    .await?;
    if outside.is_empty() {
        return Ok(());
    }
    let codes: Vec<&str> = outside.iter().map(|(code, ..)| code.as_str()).collect();
    let features: Vec<Value> = outside
        .iter()
        .map(|(code, geometry, area)| {
            json!({
                "type": "Feature",
                "geometry": serde_json::from_str::<Value>(geometry).unwrap_or(Value::Null),
                "properties": {"kind": "grid_outside_community", "codes": [code, community],
                               "area_m2": (area * 10.0).round() / 10.0},
            })
        })
        .collect();
    Err(EditError::Refused {
        message: format!(
            "community {community} would leave parts of grids {} outside: reshape the grids first",
            codes.join(", ")
        ),
        findings: json!({"type": "FeatureCollection", "features": features}),
    })
}

#[allow(
    clippy::too_many_arguments,
    reason = "one audit row's fields, named at each call"
)]
async fn record(
    conn: &mut PgConnection,
    change_id: i64,
    actor: Actor<'_>,
    operation: &str,
    area: AreaKind,
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
            entity: area.entity(),
            code,
            before,
            after,
        },
    )
    .await
}

/// Restores a grid unit or community to its state at `version` (from the
/// audit log): name, kind and exact shape, validated like any reshape, as a
/// new audited write; a deleted one is created again.
///
/// # Errors
/// [`EditError::NotFound`] when the log has no such state; as [`update`].
pub async fn revert(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    area: AreaKind,
    code: &str,
    expected: &Expected,
    version: i64,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let state = audit::state_at(&mut tx, area.entity(), code, version)
        .await?
        .ok_or_else(|| EditError::NotFound {
            entity: "version",
            code: format!("{code}@{version}"),
        })?;
    let text = |name: &str| crate::grids::property_of(&state, name);
    let shape = crate::grids::shape_of(&state)
        .ok_or_else(|| EditError::Invalid(format!("{code}@{version}: no shape in the log")))?;
    let parent = text(area.parent_column()).unwrap_or_default();
    let exists: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE code = $1)",
        area.table()
    ))
    .bind(code)
    .fetch_one(&mut *tx)
    .await?;
    if exists {
        lock(&mut tx, area, code, expected).await?;
    } else {
        lock_parent(&mut tx, area, &parent).await?;
    }
    let before = audit::snapshot(&mut tx, area.entity(), code).await?;
    let replaced: Vec<String> = before.iter().map(|_| code.to_owned()).collect();
    let settled = cover::settle(
        &mut tx,
        area.layer(),
        &parent,
        &replaced,
        vec![Shape {
            code: code.to_owned(),
            ewkb: shape,
        }],
        params,
    )
    .await?;
    if area == AreaKind::Community && exists {
        keep_grids_inside(&mut tx, code, &settled[0].ewkb, params.snap_tolerance_m).await?;
    }
    let sql = match area {
        AreaKind::GridUnit => {
            "INSERT INTO grid_units (code, grid_code, name, geom)
             VALUES ($1, $2, $3, ST_GeomFromEWKB($4))
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom"
        }
        AreaKind::Community => {
            "INSERT INTO communities (code, street_code, name, geom, kind)
             VALUES ($1, $2, $3, ST_GeomFromEWKB($4), COALESCE($5, 'urban'))
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom,
                                              kind = EXCLUDED.kind"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(code)
        .bind(&parent)
        .bind(text("name"))
        .bind(&settled[0].ewkb);
    if area == AreaKind::Community {
        query = query.bind(text("kind"));
    }
    query.execute(&mut *tx).await?;
    let change_id = audit::new_change(&mut tx).await?;
    let after = audit::snapshot(&mut tx, area.entity(), code).await?;
    record(
        &mut tx,
        change_id,
        actor,
        "revert",
        area,
        code,
        before.as_ref(),
        after.as_ref(),
    )
    .await?;
    tx.commit().await?;
    Ok(written(
        change_id,
        after.into_iter().collect(),
        Vec::new(),
        Vec::new(),
    ))
}
