//! The imported demo city keeps the promises of 多网合一 (seamless cover),
//! checked by PostGIS as the independent oracle.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use sqlx::PgPool;

async fn scalar_i64(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// Parents whose children's union differs from them: a gap or a spill, with
/// the area of the difference. Areas are planar, in square degrees (1e-12 deg²
/// ≈ 0.01 m² here): geodesic areas would count the bulge of a geodesic edge
/// against a straight one split by a vertex as a sliver that is not in the data.
async fn untiled_parents(
    pool: &PgPool,
    parent_table: &str,
    child_table: &str,
    parent_key: &str,
) -> Vec<(String, f64)> {
    sqlx::query_as(&format!(
        "SELECT p.code, ST_Area(ST_SymDifference(p.geom, u.geom))
           FROM {parent_table} p
           JOIN (SELECT {parent_key} AS parent, ST_Union(geom) geom
                   FROM {child_table} GROUP BY {parent_key}) u ON u.parent = p.code
          WHERE ST_Area(ST_SymDifference(p.geom, u.geom)) > 1e-12"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn demo_city_has_realistic_scale() {
    let pool = gridmap_e2e::demo_pool().await;
    let check = |table: &'static str, at_least: i64| {
        let pool = pool.clone();
        async move {
            let n = scalar_i64(&pool, &format!("SELECT count(*) FROM {table}")).await;
            assert!(
                n >= at_least,
                "{table}: {n} rows, expected at least {at_least}"
            );
        }
    };
    check("streets", 14).await;
    check("communities", 473).await;
    check("grids WHERE kind = 'basic'", 450).await;
    check("grids WHERE kind = 'exclusive'", 1).await;
    check("grid_units", 2_000).await;
    check("buildings", 20_000).await;
    check("stations WHERE kind = 'rider_rest_stop'", 25).await;
    check("stations WHERE kind = 'red_station'", 1).await;
    check("stations WHERE kind = 'grid_station'", 1).await;
    let centres_per_community = scalar_i64(
        &pool,
        "SELECT count(*) FROM communities c
          WHERE (SELECT count(*) FROM stations s
                  WHERE s.community_code = c.code AND s.kind = 'service_centre') <> 1",
    )
    .await;
    assert_eq!(
        centres_per_community, 0,
        "communities without exactly one service centre"
    );
    let colours = scalar_i64(&pool, "SELECT count(DISTINCT status) FROM grids").await;
    assert_eq!(colours, 5, "all five status colours are in use");
    let addresses = scalar_i64(
        &pool,
        "SELECT count(*) FROM buildings b
          WHERE (SELECT count(*) FROM addresses a WHERE a.building_code = b.code) <> 1",
    )
    .await;
    assert_eq!(
        addresses, 0,
        "buildings without exactly one standard address"
    );
}

#[tokio::test]
async fn grids_tile_their_community_without_gap_or_overlap() {
    let pool = gridmap_e2e::demo_pool().await;
    // Overlap: the interiors of two grids meet (a shared edge is not an overlap).
    let overlaps = scalar_i64(
        &pool,
        "SELECT count(*) FROM grids a JOIN grids b
             ON a.code < b.code AND a.geom && b.geom
            AND ST_Relate(a.geom, b.geom, '2********')",
    )
    .await;
    assert_eq!(overlaps, 0, "grid pairs whose interiors overlap");
    let mismatched = untiled_parents(&pool, "communities", "grids", "community_code").await;
    assert!(
        mismatched.is_empty(),
        "communities whose grids leave a gap or spill (deg²): {mismatched:?}"
    );
    let without_grid = scalar_i64(
        &pool,
        "SELECT count(*) FROM communities c WHERE NOT EXISTS (SELECT 1 FROM grids g WHERE g.community_code = c.code)",
    )
    .await;
    assert_eq!(without_grid, 0);
    let mismatched = untiled_parents(&pool, "grids", "grid_units", "grid_code").await;
    assert!(
        mismatched.is_empty(),
        "grids whose units leave a gap or spill (deg²): {mismatched:?}"
    );
}

#[tokio::test]
async fn communities_tile_their_street_and_streets_nest_in_the_district() {
    let pool = gridmap_e2e::demo_pool().await;
    let mismatched = untiled_parents(&pool, "streets", "communities", "street_code").await;
    assert!(
        mismatched.is_empty(),
        "streets not tiled by their communities (deg²): {mismatched:?}"
    );
    let outside_district: f64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(ST_Area(ST_Difference(s.geom, d.geom)::geography)), 0)
           FROM streets s JOIN districts d ON d.code = s.district_code",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        outside_district < 1.0,
        "streets spill {outside_district} m² outside their district"
    );
}

#[tokio::test]
async fn every_building_lies_in_exactly_one_grid() {
    let pool = gridmap_e2e::demo_pool().await;
    let misplaced = scalar_i64(
        &pool,
        "SELECT count(*) FROM buildings b
          WHERE (SELECT count(*) FROM grids g WHERE ST_Intersects(g.geom, b.geom)
                   AND ST_Relate(g.geom, b.geom, '2********')) <> 1
             OR NOT EXISTS (SELECT 1 FROM grids g WHERE g.code = b.grid_code AND ST_Covers(g.geom, b.geom))",
    )
    .await;
    assert_eq!(misplaced, 0, "buildings not inside exactly their own grid");
}
