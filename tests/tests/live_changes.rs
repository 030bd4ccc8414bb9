//! A committed change reaches lookups and tiles within a second, through
//! PostgreSQL's NOTIFY, with no restart.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::Request;
use gridmap_tiles::TileCoord;
use http_body_util::BodyExt as _;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

const SETUP: &str = "
    INSERT INTO districts VALUES ('370681', '龙口市',
        ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.5 37.6,120.5 37.7,120.4 37.7,120.4 37.6))', 4490)));
    INSERT INTO streets VALUES ('370681001', '370681', '东莱街道',
        ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.5 37.6,120.5 37.7,120.4 37.7,120.4 37.6))', 4490)));
    INSERT INTO communities VALUES ('370681001001', '370681001', '南苑社区', 'urban',
        ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.5 37.6,120.5 37.7,120.4 37.7,120.4 37.6))', 4490)));
    INSERT INTO grids (code, community_code, name, kind, status, geom) VALUES
        ('370681001001001', '370681001001', '南苑社区第一网格', 'basic', 'green',
         ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.45 37.6,120.45 37.7,120.4 37.7,120.4 37.6))', 4490)));";

async fn lookup_code(app: &axum::Router, lon: f64, lat: f64) -> Option<String> {
    let response = app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/lookup?lon={lon}&lat={lat}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["grid"]["code"].as_str().map(str::to_owned)
}

async fn tile_bytes(app: &axum::Router, tile: TileCoord) -> Vec<u8> {
    layer_tile_bytes(app, "grids", tile).await
}

async fn layer_tile_bytes(app: &axum::Router, layer: &str, tile: TileCoord) -> Vec<u8> {
    let uri = format!("/tiles/{layer}/{}/{}/{}", tile.z, tile.x, tile.y);
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Polls `probe` until it holds or a second has passed; returns the wait.
async fn within_a_second<F, Fut>(mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !probe().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "change not visible after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn committed_edits_reach_lookups_and_tiles_within_a_second(pool: PgPool) {
    sqlx::raw_sql(SETUP).execute(&pool).await.unwrap();
    let listener = gridmap_server::subscribe(&pool).await.unwrap();
    let state = gridmap_server::AppState::load(pool.clone(), 1 << 20)
        .await
        .unwrap();
    let follower = tokio::spawn(gridmap_server::follow_changes(listener, state.clone()));
    let app = gridmap_server::app(state, None);

    // East half of the community has no grid yet.
    assert_eq!(lookup_code(&app, 120.475, 37.65).await, None);
    let tile = TileCoord::containing(120.475, 37.65, 14);
    assert!(!contains(&tile_bytes(&app, tile).await, b"370681001001002"));

    sqlx::query(
        "INSERT INTO grids (code, community_code, name, kind, status, geom) VALUES
            ('370681001001002', '370681001001', '南苑社区第二网格', 'basic', 'red',
             ST_Multi(ST_GeomFromText('POLYGON((120.45 37.6,120.5 37.6,120.5 37.7,120.45 37.7,120.45 37.6))', 4490)))",
    )
    .execute(&pool)
    .await
    .unwrap();
    within_a_second(|| async {
        lookup_code(&app, 120.475, 37.65).await.as_deref() == Some("370681001001002")
    })
    .await;
    // The cached tile was dropped: the new grid shows without waiting for the TTL.
    within_a_second(|| async { contains(&tile_bytes(&app, tile).await, b"370681001001002") }).await;

    // A rolled-back edit is never announced and never shows.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("DELETE FROM grids WHERE code = '370681001001002'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        lookup_code(&app, 120.475, 37.65).await.as_deref(),
        Some("370681001001002")
    );
    // Buildings are drawn from the server's copy of their rows: an insert,
    // a rename and a move each show in the building tiles within a second.
    let building_tile = TileCoord::containing(120.4205, 37.6505, 16);
    let moved_tile = TileCoord::containing(120.4305, 37.6505, 16);
    assert_ne!(building_tile, moved_tile);
    let shows = |tile: TileCoord, name: &'static str| {
        let app = app.clone();
        async move {
            contains(
                &layer_tile_bytes(&app, "buildings", tile).await,
                name.as_bytes(),
            )
        }
    };
    assert!(!shows(building_tile, "甲楼").await);
    sqlx::query(
        "INSERT INTO buildings (code, grid_code, name, households, floors, geom) VALUES
            ('3706810010010010000001', '370681001001001', '甲楼', 24, 6,
             ST_Multi(ST_GeomFromText('POLYGON((120.4203 37.6503,120.4207 37.6503,120.4207 37.6507,120.4203 37.6507,120.4203 37.6503))', 4490)))",
    )
    .execute(&pool)
    .await
    .unwrap();
    within_a_second(|| shows(building_tile, "甲楼")).await;
    sqlx::query("UPDATE buildings SET name = '乙楼' WHERE code = '3706810010010010000001'")
        .execute(&pool)
        .await
        .unwrap();
    within_a_second(|| async {
        shows(building_tile, "乙楼").await && !shows(building_tile, "甲楼").await
    })
    .await;
    sqlx::query(
        "UPDATE buildings SET geom = ST_Translate(geom, 0.01, 0) WHERE code = '3706810010010010000001'",
    )
    .execute(&pool)
    .await
    .unwrap();
    within_a_second(|| async {
        shows(moved_tile, "乙楼").await && !shows(building_tile, "乙楼").await
    })
    .await;

    // The listener holds a connection of its own; release it so the test
    // database can be dropped at once.
    follower.abort();
    let _ = follower.await;
}
