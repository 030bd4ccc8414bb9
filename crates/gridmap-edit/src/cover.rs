//! The seamless-cover rule every grid edit must keep, checked in PostGIS
//! inside the edit's transaction.
//!
//! An edit replaces the grids `replaced` (their current shapes) by the
//! `proposed` shapes (codes may repeat: a reshape replaces a grid by its new
//! shape). Against the community's other grids (the neighbours):
//!
//! 1. each proposed shape is snapped to the vertices of the community's and
//!    the neighbours' boundaries within the tolerance;
//! 2. the differences that matter are computed: parts of a proposed shape
//!    outside the community, overlaps with a neighbour or another proposed
//!    shape, and the **new gap**, area the replaced grids covered inside the
//!    community that nothing covers after the edit (gaps that existed before
//!    are not the edit's doing and are left to the gap report);
//! 3. a part wider than twice the tolerance (its inward buffer by the
//!    tolerance is not empty) refuses the edit; narrower parts are settled:
//!    proposed shapes are clipped to the community and off the neighbours,
//!    and new-gap slivers are given to the first proposed grid they touch.

use crate::{EditError, Parameters};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// One level of the hierarchy whose members must tile their container:
/// grids in a community, grid units in a grid, communities in a street.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layer {
    members: &'static str,
    parent_column: &'static str,
    container: &'static str,
    /// The finding kind of a member reaching out of its container.
    outside: &'static str,
    /// What a member and its container are called in messages.
    pub(crate) member_noun: &'static str,
    pub(crate) container_noun: &'static str,
}

impl Layer {
    pub(crate) const GRIDS: Layer = Layer {
        members: "grids",
        parent_column: "community_code",
        container: "communities",
        outside: "outside_community",
        member_noun: "grid",
        container_noun: "community",
    };
    pub(crate) const GRID_UNITS: Layer = Layer {
        members: "grid_units",
        parent_column: "grid_code",
        container: "grids",
        outside: "outside_grid",
        member_noun: "grid unit",
        container_noun: "grid",
    };
    pub(crate) const COMMUNITIES: Layer = Layer {
        members: "communities",
        parent_column: "street_code",
        container: "streets",
        outside: "outside_street",
        member_noun: "community",
        container_noun: "street",
    };

    /// A query template with this layer's tables and columns filled in;
    /// they come from the constants above, never from a request.
    fn sql(self, template: &str) -> String {
        template
            .replace("{members}", self.members)
            .replace("{parent}", self.parent_column)
            .replace("{container}", self.container)
            .replace("{outside}", self.outside)
    }
}

/// Metres per degree of latitude: tolerances in metres become degrees with
/// it. A degree of longitude is shorter, so the snap reaches a little less
/// than the tolerance east-west, never more.
const METRES_PER_DEGREE: f64 = 111_320.0;

/// A grid's new shape: code and EWKB MultiPolygon.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub code: String,
    pub ewkb: Vec<u8>,
}

/// Checks and settles an edit of the grids of `community` (whose row the
/// caller has locked). Returns the shapes to write, in the order given.
pub(crate) async fn settle(
    conn: &mut PgConnection,
    layer: Layer,
    community: &str,
    replaced: &[String],
    proposed: Vec<Shape>,
    params: Parameters,
) -> Result<Vec<Shape>, EditError> {
    let tolerance_m = params.snap_tolerance_m;
    let tolerance_deg = tolerance_m / METRES_PER_DEGREE;
    let excluded: Vec<String> = replaced
        .iter()
        .cloned()
        .chain(proposed.iter().map(|shape| shape.code.clone()))
        .collect();
    let drawn: Vec<Vec<u8>> = proposed.iter().map(|shape| shape.ewkb.clone()).collect();
    let snapped = snap(conn, layer, community, &excluded, proposed, tolerance_deg).await?;
    let mut findings = wide_findings(
        conn,
        layer,
        community,
        replaced,
        &excluded,
        &snapped,
        tolerance_m,
    )
    .await?;
    if params.allow_new_gap {
        findings.retain(|finding| finding.kind != "gap");
    }
    if !findings.is_empty() {
        return Err(refusal(findings));
    }
    let mut settled: Vec<Shape> = Vec::with_capacity(snapped.len());
    for shape in snapped {
        let earlier: Vec<Vec<u8>> = settled.iter().map(|s| s.ewkb.clone()).collect();
        let clipped: Option<Vec<u8>> = sqlx::query_scalar(&layer.sql(
            "SELECT ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_MakeValid(
                        ST_Difference(ST_Intersection(s.p, c.geom),
                                      COALESCE((SELECT ST_Union(others.geom) FROM (
                                                    SELECT geom FROM {members}
                                                     WHERE {parent} = $2 AND NOT (code = ANY($3))
                                                    UNION ALL
                                                    SELECT ST_GeomFromEWKB(g) FROM unnest($4::bytea[]) AS e(g)) others
                                                 WHERE ST_Intersects(others.geom, s.p)),
                                               ST_SetSRID('POLYGON EMPTY'::geometry, 4490)))), 3)))
               FROM {container} c, (SELECT ST_GeomFromEWKB($1) AS p) s
              WHERE c.code = $2"),
        )
        .bind(&shape.ewkb)
        .bind(community)
        .bind(&excluded)
        .bind(&earlier)
        .fetch_one(&mut *conn)
        .await?;
        let ewkb = clipped.unwrap_or_default();
        settled.push(Shape {
            code: shape.code,
            ewkb,
        });
    }
    fill_slivers(
        conn,
        layer,
        community,
        replaced,
        &excluded,
        &mut settled,
        tolerance_m,
    )
    .await?;
    // A shape that needed no settling is kept exactly as drawn (vertex
    // order and start included), so a revert restores the very bytes.
    for (shape, drawn) in settled.iter_mut().zip(drawn) {
        let unchanged: Option<bool> =
            sqlx::query_scalar("SELECT ST_Equals(ST_GeomFromEWKB($1), ST_GeomFromEWKB($2))")
                .bind(&shape.ewkb)
                .bind(&drawn)
                .fetch_one(&mut *conn)
                .await?;
        if unchanged == Some(true) {
            shape.ewkb = drawn;
        }
    }
    for shape in &settled {
        let (empty, valid): (bool, bool) = sqlx::query_as(&layer.sql(
            "SELECT ST_IsEmpty(g) OR ST_Area(g::geography) < 1.0, ST_IsValid(g)
               FROM (SELECT ST_GeomFromEWKB($1) AS g) s",
        ))
        .bind(&shape.ewkb)
        .fetch_one(&mut *conn)
        .await?;
        if empty {
            return Err(EditError::Invalid(format!(
                "{} {}: nothing is left of it inside its {} and off its neighbours",
                layer.member_noun, shape.code, layer.container_noun
            )));
        }
        if !valid {
            return Err(EditError::Invalid(format!(
                "{} {}: the settled shape is not valid; draw it again without spikes or self-touching rings",
                layer.member_noun, shape.code
            )));
        }
    }
    Ok(settled)
}

async fn snap(
    conn: &mut PgConnection,
    layer: Layer,
    community: &str,
    excluded: &[String],
    proposed: Vec<Shape>,
    tolerance_deg: f64,
) -> Result<Vec<Shape>, EditError> {
    let codes: Vec<String> = proposed.iter().map(|s| s.code.clone()).collect();
    let shapes: Vec<Vec<u8>> = proposed.into_iter().map(|s| s.ewkb).collect();
    let rows: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(&layer.sql(
        "WITH reference AS (
             SELECT ST_Collect(ST_Boundary(geom)) AS geom FROM (
                 SELECT geom FROM {container} WHERE code = $1
                 UNION ALL
                 SELECT geom FROM {members} WHERE {parent} = $1 AND NOT (code = ANY($2))) parts)
         SELECT p.code,
                ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_MakeValid(
                    ST_Snap(ST_GeomFromEWKB(p.g), r.geom, $5)), 3)))
           FROM unnest($3::text[], $4::bytea[]) WITH ORDINALITY AS p(code, g, n), reference r
          ORDER BY p.n",
    ))
    .bind(community)
    .bind(excluded)
    .bind(&codes)
    .bind(&shapes)
    .bind(tolerance_deg)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(code, ewkb)| Shape {
            code,
            ewkb: ewkb.unwrap_or_default(),
        })
        .collect())
}

/// A part of the difference between the edit and the rule, wide enough to
/// refuse the edit.
struct Finding {
    kind: String,
    codes: Vec<String>,
    geometry: Value,
    area_m2: f64,
    point: Value,
}

async fn wide_findings(
    conn: &mut PgConnection,
    layer: Layer,
    community: &str,
    replaced: &[String],
    excluded: &[String],
    proposed: &[Shape],
    tolerance_m: f64,
) -> Result<Vec<Finding>, EditError> {
    let codes: Vec<String> = proposed.iter().map(|s| s.code.clone()).collect();
    let shapes: Vec<Vec<u8>> = proposed.iter().map(|s| s.ewkb.clone()).collect();
    let rows: Vec<(String, Vec<String>, String, f64, String)> = sqlx::query_as(&layer.sql(
        "WITH community AS (SELECT geom FROM {container} WHERE code = $1),
              proposed AS (SELECT code, ST_GeomFromEWKB(g) AS geom
                             FROM unnest($3::text[], $4::bytea[]) AS p(code, g)),
              neighbours AS (SELECT code, geom FROM {members}
                              WHERE {parent} = $1 AND NOT (code = ANY($5))),
              before AS (SELECT ST_Union(geom) AS geom FROM {members} WHERE code = ANY($2)),
              after AS (SELECT ST_Union(geom) AS geom FROM (
                            SELECT geom FROM proposed
                            UNION ALL
                            SELECT n.geom FROM neighbours n, before b
                             WHERE ST_Intersects(n.geom, b.geom)) covering),
              raw AS (
                  SELECT '{outside}' AS kind, ARRAY[p.code] AS codes,
                         ST_Difference(p.geom, c.geom) AS geom
                    FROM proposed p, community c
                  UNION ALL
                  SELECT 'overlap', ARRAY[p.code, n.code], ST_Intersection(p.geom, n.geom)
                    FROM proposed p JOIN neighbours n ON ST_Intersects(p.geom, n.geom)
                  UNION ALL
                  SELECT 'overlap', ARRAY[a.code, b.code], ST_Intersection(a.geom, b.geom)
                    FROM proposed a JOIN proposed b
                      ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
                  UNION ALL
                  SELECT 'gap', $2, ST_Difference(ST_Intersection(b.geom, c.geom),
                                                  COALESCE(a.geom, ST_SetSRID('POLYGON EMPTY'::geometry, 4490)))
                    FROM before b, community c, after a
                   WHERE b.geom IS NOT NULL),
              parts AS (SELECT kind, codes, (ST_Dump(ST_CollectionExtract(geom, 3))).geom AS geom
                          FROM raw)
         SELECT kind, codes, ST_AsGeoJSON(geom, 9), ST_Area(geom::geography),
                ST_AsGeoJSON(ST_PointOnSurface(geom), 9)
           FROM parts
          WHERE NOT ST_IsEmpty(ST_Buffer(geom::geography, -$6)::geometry)
          ORDER BY kind, codes"),
    )
    .bind(community)
    .bind(replaced)
    .bind(&codes)
    .bind(&shapes)
    .bind(excluded)
    .bind(tolerance_m)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(kind, codes, geometry, area_m2, point)| {
            Ok(Finding {
                kind,
                codes,
                geometry: serde_json::from_str(&geometry).map_err(|err| {
                    EditError::Invalid(format!("unreadable finding geometry: {err}"))
                })?,
                area_m2,
                point: serde_json::from_str(&point).map_err(|err| {
                    EditError::Invalid(format!("unreadable finding point: {err}"))
                })?,
            })
        })
        .collect()
}

/// Gives each sliver of new gap (narrower than twice the tolerance) to the
/// first settled shape it touches, so the cover stays seamless to the last
/// vertex. Wider gaps only get here when the edit may leave them.
async fn fill_slivers(
    conn: &mut PgConnection,
    layer: Layer,
    community: &str,
    replaced: &[String],
    excluded: &[String],
    settled: &mut [Shape],
    tolerance_m: f64,
) -> Result<(), EditError> {
    if replaced.is_empty() || settled.is_empty() {
        return Ok(());
    }
    let shapes: Vec<Vec<u8>> = settled.iter().map(|s| s.ewkb.clone()).collect();
    let slivers: Vec<Vec<u8>> = sqlx::query_scalar(&layer.sql(
        "WITH community AS (SELECT geom FROM {container} WHERE code = $1),
              before AS (SELECT ST_Union(geom) AS geom FROM {members} WHERE code = ANY($2)),
              after AS (SELECT ST_Union(geom) AS geom FROM (
                            SELECT ST_GeomFromEWKB(g) AS geom FROM unnest($4::bytea[]) AS s(g)
                            UNION ALL
                            SELECT geom FROM {members}
                             WHERE {parent} = $1 AND NOT (code = ANY($3))) covering)
         SELECT ST_AsEWKB(part.geom)
           FROM before b, community c, after a,
                ST_Dump(ST_CollectionExtract(
                    ST_Difference(ST_Intersection(b.geom, c.geom), a.geom), 3)) AS part
          WHERE ST_Area(part.geom) > 0
            AND ST_IsEmpty(ST_Buffer(part.geom::geography, -$5)::geometry)",
    ))
    .bind(community)
    .bind(replaced)
    .bind(excluded)
    .bind(&shapes)
    .bind(tolerance_m)
    .fetch_all(&mut *conn)
    .await?;
    for sliver in slivers {
        for shape in settled.iter_mut() {
            let merged: Option<Vec<u8>> = sqlx::query_scalar(&layer.sql(
                "SELECT ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Union(a, b)), 3)))
                   FROM (SELECT ST_GeomFromEWKB($1) AS a, ST_GeomFromEWKB($2) AS b) s
                  WHERE ST_Intersects(a, b)",
            ))
            .bind(&shape.ewkb)
            .bind(&sliver)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
            if let Some(merged) = merged {
                shape.ewkb = merged;
                break;
            }
        }
    }
    Ok(())
}

fn refusal(findings: Vec<Finding>) -> EditError {
    let summary: Vec<String> = findings
        .iter()
        .map(|f| format!("{} of {} ({:.1} m²)", f.kind, f.codes.join(", "), f.area_m2))
        .collect();
    let features: Vec<Value> = findings
        .into_iter()
        .map(|f| {
            json!({
                "type": "Feature",
                "geometry": f.geometry,
                "properties": {
                    "kind": f.kind,
                    "codes": f.codes,
                    "area_m2": (f.area_m2 * 10.0).round() / 10.0,
                    "point": f.point,
                }
            })
        })
        .collect();
    EditError::Refused {
        message: format!(
            "the edit would break the seamless cover: {}",
            summary.join("; ")
        ),
        findings: json!({ "type": "FeatureCollection", "features": features }),
    }
}
