//! pgRouting as the oracle of the walking-distance tests (`circles.rs`,
//! `rider_reports.rs`): the demo city's roads copied into a per-test
//! database, pgRouting's vertex and edge tables built there in SQL
//! independently of `WalkGraph`, and snapping and distances by pgRouting.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use gridmap_circles::Coord;
use gridmap_store::topology_queries::AreaFilter;
use sqlx::PgPool;
use std::collections::HashMap;

/// Copies the demo city's roads (of one street and its surroundings, or all)
/// into `pool`, a fresh per-test database, so pgRouting can be installed there
/// without touching the shared demo database.
///
/// # Panics
/// On a database error.
pub async fn copy_demo_roads(pool: &PgPool, street: Option<&str>) -> usize {
    let demo = gridmap_e2e::demo_pool().await;
    let area = street.map(|code| AreaFilter::Street(code.to_owned()));
    let wkbs: Vec<Vec<u8>> = match &area {
        Some(area) => sqlx::query_scalar(
            "SELECT ST_AsBinary(r.geom) FROM roads r, streets s
              WHERE s.code = $1 AND ST_DWithin(r.geom_3857, s.geom_3857, 1500) ORDER BY r.id",
        )
        .bind(area.code())
        .fetch_all(&demo)
        .await
        .unwrap_or_else(|err| panic!("reading the demo roads: {err}")),
        None => sqlx::query_scalar("SELECT ST_AsBinary(geom) FROM roads ORDER BY id")
            .fetch_all(&demo)
            .await
            .unwrap_or_else(|err| panic!("reading the demo roads: {err}")),
    };
    sqlx::query(
        "INSERT INTO roads (class, geom)
         SELECT 'footway', ST_GeomFromWKB(wkb, 4490) FROM unnest($1::bytea[]) AS wkb",
    )
    .bind(&wkbs)
    .execute(pool)
    .await
    .unwrap_or_else(|err| panic!("copying the demo roads: {err}"));
    wkbs.len()
}

/// pgRouting's vertex and edge tables, built in SQL independently of
/// `WalkGraph`: vertices are road vertices keyed by their 1e-7° lattice
/// position, edges are segments with their geodesic length. They are plain
/// tables, not TEMP ones, because the pool may run the next query on another
/// connection; the per-test database is dropped afterwards anyway.
pub const PGR_TOPOLOGY: &str = "
    CREATE EXTENSION IF NOT EXISTS pgrouting;
    CREATE TABLE segment AS
        SELECT round(ST_X(ST_PointN(geom, i)) * 1e7)::bigint AS ax,
               round(ST_Y(ST_PointN(geom, i)) * 1e7)::bigint AS ay,
               round(ST_X(ST_PointN(geom, i + 1)) * 1e7)::bigint AS bx,
               round(ST_Y(ST_PointN(geom, i + 1)) * 1e7)::bigint AS by_,
               ST_Length(ST_MakeLine(ST_PointN(geom, i), ST_PointN(geom, i + 1))::geography) AS cost
          FROM roads, generate_series(1, ST_NPoints(geom) - 1) AS i;
    CREATE TABLE vertex AS
        SELECT row_number() OVER (ORDER BY x, y) AS id, x, y,
               ST_SetSRID(ST_MakePoint(x / 1e7, y / 1e7), 4490) AS geom
          FROM (SELECT ax AS x, ay AS y FROM segment UNION SELECT bx, by_ FROM segment) v;
    CREATE INDEX ON vertex USING gist (geom);
    CREATE TABLE edge AS
        SELECT row_number() OVER () AS id, a.id AS source, b.id AS target, s.cost, s.cost AS reverse_cost
          FROM segment s
          JOIN vertex a ON a.x = s.ax AND a.y = s.ay
          JOIN vertex b ON b.x = s.bx AND b.y = s.by_
         WHERE a.id <> b.id;";

/// A node's position on the 1e-7° lattice, the key of pgRouting's vertices.
#[must_use]
pub fn lattice_key(coord: Coord) -> (i64, i64) {
    #[allow(clippy::cast_possible_truncation, reason = "degrees × 1e7 fit in i64")]
    let key = (
        (coord.x * 1e7).round() as i64,
        (coord.y * 1e7).round() as i64,
    );
    key
}

/// pgRouting's vertex ids by lattice key.
///
/// # Panics
/// On a database error.
pub async fn pgr_vertex_ids(pool: &PgPool) -> HashMap<(i64, i64), i64> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as("SELECT id, x, y FROM vertex")
        .fetch_all(pool)
        .await
        .unwrap_or_else(|err| panic!("reading the vertices: {err}"));
    rows.into_iter().map(|(id, x, y)| ((x, y), id)).collect()
}

/// Shortest distance from the nearest source to every node within `limit_m`,
/// by one many-source `pgr_drivingDistance` call.
///
/// # Panics
/// On a database error.
pub async fn pgr_distances(pool: &PgPool, sources: &[i64], limit_m: f64) -> HashMap<i64, f64> {
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT node, min(agg_cost) FROM pgr_drivingDistance(
             'SELECT id, source, target, cost, reverse_cost FROM edge', $1::bigint[], $2,
             directed => false)
          GROUP BY node",
    )
    .bind(sources)
    .bind(limit_m)
    .fetch_all(pool)
    .await
    .unwrap_or_else(|err| panic!("pgr_drivingDistance: {err}"));
    rows.into_iter().collect()
}

/// For each of `sources`, the distance to every node within `limit_m`:
/// (source, node) → metres, by one `pgr_drivingDistance` call that keeps the
/// sources apart (`equicost => false`).
///
/// # Panics
/// On a database error.
pub async fn pgr_distances_from_each(
    pool: &PgPool,
    sources: &[i64],
    limit_m: f64,
) -> HashMap<(i64, i64), f64> {
    let rows: Vec<(i64, i64, f64)> = sqlx::query_as(
        "SELECT from_v, node, agg_cost FROM pgr_drivingDistance(
             'SELECT id, source, target, cost, reverse_cost FROM edge', $1::bigint[], $2,
             directed => false, equicost => false)",
    )
    .bind(sources)
    .bind(limit_m)
    .fetch_all(pool)
    .await
    .unwrap_or_else(|err| panic!("pgr_drivingDistance per source: {err}"));
    rows.into_iter()
        .map(|(source, node, cost)| ((source, node), cost))
        .collect()
}

/// For each point, the vertices of pgRouting's table nearest to it by
/// geodesic distance, with every vertex within `slack_m` of the nearest (the
/// 16 nearest by the planar index, re-ranked on the ellipsoid), nearest first.
///
/// # Panics
/// On a database error, or a point with no vertex near it.
pub async fn pgr_snap_all(pool: &PgPool, points: &[Coord], slack_m: f64) -> Vec<Vec<(i64, f64)>> {
    let lons: Vec<f64> = points.iter().map(|point| point.x).collect();
    let lats: Vec<f64> = points.iter().map(|point| point.y).collect();
    let rows: Vec<(i64, i64, f64)> = sqlx::query_as(
        "SELECT p.n, near.id, ST_Distance(near.geom::geography, p.geom::geography)
           FROM (SELECT n, ST_SetSRID(ST_MakePoint(lon, lat), 4490) AS geom
                   FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS t(lon, lat, n)) p
          CROSS JOIN LATERAL (
                SELECT v.id, v.geom FROM vertex v ORDER BY v.geom <-> p.geom LIMIT 16) near
          ORDER BY 1, 3, 2",
    )
    .bind(&lons)
    .bind(&lats)
    .fetch_all(pool)
    .await
    .unwrap_or_else(|err| panic!("snapping points to the vertices: {err}"));
    let mut snaps: Vec<Vec<(i64, f64)>> = vec![Vec::new(); points.len()];
    for (n, id, distance) in rows {
        let index = usize::try_from(n - 1).unwrap_or_else(|err| panic!("ordinal {n}: {err}"));
        snaps[index].push((id, distance));
    }
    for near in &mut snaps {
        let best = near
            .first()
            .unwrap_or_else(|| panic!("a point with no vertex near it"))
            .1;
        near.retain(|(_, distance)| *distance <= best + slack_m);
    }
    snaps
}

/// The vertices nearest to one point, ties within a millimetre included.
///
/// # Panics
/// As [`pgr_snap_all`].
pub async fn pgr_snap(pool: &PgPool, lon: f64, lat: f64) -> Vec<(i64, f64)> {
    pgr_snap_all(pool, &[Coord { x: lon, y: lat }], 1e-3)
        .await
        .remove(0)
}
