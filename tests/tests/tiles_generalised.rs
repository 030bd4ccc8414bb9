//! Generalised polygon tiles at low zoom: decoded by GDAL's MVT driver, the
//! grids of a community still cover exactly what the community polygon of the
//! same tile covers (no gaps, no overlaps; the same measure is taken of
//! `ST_Simplify` per row, PostGIS-encoded); and every grid is present
//! wherever its outline reaches well into the tile.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use gdal::vector::LayerAccess as _;
use gridmap_tiles::generalise::tolerance;
use gridmap_tiles::TileCoord;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridmap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Per feature of `layer_name`: (`key` attribute, EPSG:3857 WKB), decoded by
/// GDAL from the tile written as `scratch/tag/z/x/y.pbf`.
fn decode(
    scratch: &Path,
    tag: &str,
    tile: TileCoord,
    bytes: &[u8],
    layer_name: &str,
    key: &str,
) -> Vec<(String, Vec<u8>)> {
    let Some(dataset) = gridmap_e2e::open_tile_with_gdal(scratch, tag, tile, bytes) else {
        return Vec::new();
    };
    let Ok(mut layer) = dataset.layer_by_name(layer_name) else {
        return Vec::new();
    };
    layer
        .features()
        .map(|feature| {
            let idx = feature.field_index(key).unwrap();
            let value = feature.field_as_string(idx).unwrap().unwrap_or_default();
            (value, feature.geometry().unwrap().wkb().unwrap())
        })
        .collect()
}

/// The largest area, in square tile units, by which the union of a
/// community's decoded grids differs from its decoded community polygon.
const MISMATCH: &str = "
    WITH c AS (
        SELECT code, ST_MakeValid(ST_GeomFromWKB(wkb, 3857)) AS geom
          FROM unnest($1::text[], $2::bytea[]) AS t(code, wkb)),
    g AS (
        SELECT community_code, ST_UnaryUnion(ST_Collect(ST_MakeValid(ST_GeomFromWKB(wkb, 3857)))) AS geom
          FROM unnest($3::text[], $4::bytea[]) AS t(community_code, wkb)
         GROUP BY community_code)
    SELECT COALESCE(max(ST_Area(ST_SymDifference(c.geom, g.geom))), 0) / ($5 * $5)
      FROM c JOIN g ON g.community_code = c.code";

/// The same two layers encoded by PostGIS after simplifying each polygon on
/// its own with the same tolerance.
const NAIVE_TILE: &str = "
    SELECT (SELECT COALESCE(ST_AsMVT(t, 'communities', 4096, 'geom'), ''::bytea) FROM (
              SELECT code, ST_AsMVTGeom(ST_Simplify(geom_3857, $4), ST_TileEnvelope($1, $2, $3), 4096, 64, true) AS geom
                FROM communities WHERE geom_3857 && ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)) t
             WHERE geom IS NOT NULL)
        || (SELECT COALESCE(ST_AsMVT(t, 'grids', 4096, 'geom'), ''::bytea) FROM (
              SELECT community_code, ST_AsMVTGeom(ST_Simplify(geom_3857, $4), ST_TileEnvelope($1, $2, $3), 4096, 64, true) AS geom
                FROM grids WHERE geom_3857 && ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)) t
             WHERE geom IS NOT NULL)";

async fn mismatch(
    pool: &sqlx::PgPool,
    communities: Vec<(String, Vec<u8>)>,
    grids: Vec<(String, Vec<u8>)>,
    unit: f64,
) -> f64 {
    let (codes, community_wkb): (Vec<String>, Vec<Vec<u8>>) = communities.into_iter().unzip();
    let (grid_codes, grid_wkb): (Vec<String>, Vec<Vec<u8>>) = grids.into_iter().unzip();
    sqlx::query_scalar(MISMATCH)
        .bind(codes)
        .bind(community_wkb)
        .bind(grid_codes)
        .bind(grid_wkb)
        .bind(unit)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Tiles of zoom `z` meeting the grids: the tile holding their centre and
/// its neighbours right and below.
async fn tiles_at(pool: &sqlx::PgPool, z: u8) -> Vec<TileCoord> {
    let (lon, lat): (f64, f64) = sqlx::query_as(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) c FROM grids) x",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let centre = TileCoord::containing(lon, lat, z);
    let mut tiles = Vec::new();
    for dx in 0..2 {
        for dy in 0..2 {
            tiles.push(TileCoord::new(u32::from(z), centre.x + dx, centre.y + dy).unwrap());
        }
    }
    tiles
}

#[tokio::test]
async fn generalised_neighbours_leave_no_gaps() {
    let state = gridmap_e2e::demo_state().await;
    let pool = state.pool.clone();
    let app = gridmap_server::app(state, None);
    let scratch = scratch_dir("generalised");
    let mut naive_worst: f64 = 0.0;
    let mut compared = 0;
    for z in [10_u8, 11, 12] {
        let unit = tolerance(z) / gridmap_tiles::generalise::TOLERANCE_UNITS;
        for tile in tiles_at(&pool, z).await {
            let uri = format!("/tiles/communities,grids/{}/{}/{}", tile.z, tile.x, tile.y);
            let (status, bytes) = gridmap_e2e::send(app.clone(), &uri).await;
            assert_eq!(status, axum::http::StatusCode::OK, "{uri}");
            let communities = decode(&scratch, "ours", tile, &bytes, "communities", "code");
            let grids = decode(&scratch, "ours", tile, &bytes, "grids", "community_code");
            if grids.is_empty() {
                continue;
            }
            compared += 1;
            let ours = mismatch(&pool, communities, grids, unit).await;
            // Shared edges are identical: only GEOS rounding remains.
            assert!(
                ours < 0.01,
                "{uri}: grids and community differ by {ours} units²"
            );

            let naive: Vec<u8> = sqlx::query_scalar(NAIVE_TILE)
                .bind(i32::from(tile.z))
                .bind(i32::try_from(tile.x).unwrap())
                .bind(i32::try_from(tile.y).unwrap())
                .bind(tolerance(z))
                .fetch_one(&pool)
                .await
                .unwrap();
            let communities = decode(&scratch, "naive", tile, &naive, "communities", "code");
            let grids = decode(&scratch, "naive", tile, &naive, "grids", "community_code");
            naive_worst = naive_worst.max(mismatch(&pool, communities, grids, unit).await);
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    assert!(compared >= 6, "only {compared} tiles had grids");
    // On the demo city per-polygon simplification at this tolerance also
    // leaves no gap (the lattice grids have few vertices between nodes), so
    // the naive comparison is measured but cannot be asserted here.
    assert!(naive_worst >= 0.0);
}

/// Grids whose outline meets the tile grown by `margin` tile units in more
/// than a line or a point.
const GRIDS_MEETING: &str = "
    SELECT code FROM grids
     WHERE ST_Relate(geom_3857, ST_TileEnvelope($1, $2, $3, margin => $4 / 4096.0), '2********')";

#[tokio::test]
async fn every_grid_reaching_into_a_generalised_tile_is_drawn() {
    let state = gridmap_e2e::demo_state().await;
    let pool = state.pool.clone();
    let app = gridmap_server::app(state, None);
    let scratch = scratch_dir("tiny-features");
    for z in [10_u8, 12, 14] {
        for tile in tiles_at(&pool, z).await {
            let uri = format!("/tiles/grids/{}/{}/{}", tile.z, tile.x, tile.y);
            let (status, bytes) = gridmap_e2e::send(app.clone(), &uri).await;
            assert_eq!(status, axum::http::StatusCode::OK, "{uri}");
            let drawn: BTreeSet<String> = decode(&scratch, "grids", tile, &bytes, "grids", "code")
                .into_iter()
                .map(|(code, _)| code)
                .collect();
            let meeting = |margin: f64| {
                let pool = pool.clone();
                async move {
                    sqlx::query_scalar::<_, String>(GRIDS_MEETING)
                        .bind(i32::from(tile.z))
                        .bind(i32::try_from(tile.x).unwrap())
                        .bind(i32::try_from(tile.y).unwrap())
                        .bind(margin)
                        .fetch_all(&pool)
                        .await
                        .unwrap()
                        .into_iter()
                        .collect::<BTreeSet<String>>()
                }
            };
            // Simplification moves an outline by at most the tolerance, and
            // snapping by half a unit: a grid reaching deeper than that into
            // the buffered tile is drawn, and nothing beyond it is.
            let slack = gridmap_tiles::generalise::TOLERANCE_UNITS + 1.0;
            let must = meeting(64.0 - slack).await;
            let may = meeting(64.0 + slack).await;
            let missing: Vec<&String> = must.difference(&drawn).collect();
            assert!(missing.is_empty(), "{uri}: grids missing {missing:?}");
            let extra: Vec<&String> = drawn.difference(&may).collect();
            assert!(extra.is_empty(), "{uri}: grids not in the tile {extra:?}");
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
}
