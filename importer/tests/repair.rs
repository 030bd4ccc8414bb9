//! `--repair`: invalid areas are repaired by PostGIS `ST_MakeValid` and every
//! repair is reported; without it they are rejected (tests/import.rs).

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportOptions};
use serde_json::json;
use sqlx::PgPool;

fn repairing() -> ImportOptions {
    ImportOptions {
        repair: true,
        ..ImportOptions::default()
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn bow_tie_grid_is_repaired_into_two_triangles(pool: PgPool) {
    let dir = TempDir::new("repair");
    let chain = dir.chain();
    import(
        &pool,
        &sources_before(&chain, Entity::Grids),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let grids = dir.layer(
        Entity::Grids,
        &[
            grid(GRID, COMMUNITY, square(120.30, 37.60, 120.31, 37.62)),
            grid("370681001001002", COMMUNITY, bow_tie()),
        ],
    );

    let report = import(&pool, &[grids], &repairing()).await.unwrap();

    assert_eq!(report.rows(), 2);
    assert_eq!(report.repaired.len(), 1, "{:?}", report.repaired);
    let repair = &report.repaired[0];
    assert_eq!(
        (repair.layer.as_str(), repair.feature),
        ("grids.geojson", 2)
    );
    assert!(
        repair
            .reason
            .starts_with("Self-intersection at (120.31 37.61) repaired into 2 polygons of "),
        "{repair}"
    );
    // The bow tie over the 0.02° square crosses at its centre: two
    // triangles, each a quarter of the square.
    let (valid, parts, area): (bool, i32, f64) = sqlx::query_as(
        "SELECT ST_IsValid(geom), ST_NumGeometries(geom), ST_Area(geom) FROM grids \
         WHERE code = '370681001001002'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(valid);
    assert_eq!(parts, 2);
    assert!((area - 0.02 * 0.02 / 2.0).abs() < 1e-12, "{area}");
    // The area in the report is PostGIS's geodesic area of the result.
    let geodesic: f64 = sqlx::query_scalar(
        "SELECT ST_Area(geom::geography) FROM grids WHERE code = '370681001001002'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        repair.reason.ends_with(&format!("{geodesic:.1} m² in all")),
        "{repair} vs {geodesic}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn an_area_that_repairs_to_nothing_is_still_rejected(pool: PgPool) {
    let dir = TempDir::new("repair-nothing");
    let chain = dir.chain();
    import(
        &pool,
        &sources_before(&chain, Entity::Grids),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    // A ring that goes out and back along one line encloses no area.
    let flat = json!({
        "type": "Polygon",
        "coordinates": [[[120.30, 37.60], [120.31, 37.61], [120.32, 37.62], [120.31, 37.61], [120.30, 37.60]]],
    });
    let grids = dir.layer(Entity::Grids, &[grid(GRID, COMMUNITY, flat)]);
    let before = counts(&pool).await;

    let err = import(&pool, &[grids], &repairing()).await.unwrap_err();

    let ImportError::Rejected { problems, .. } = err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].reason.starts_with("invalid geometry: ")
            && problems[0]
                .reason
                .ends_with("; --repair leaves nothing of it"),
        "{}",
        problems[0]
    );
    assert_eq!(counts(&pool).await, before);
}
