//! A tile's bytes do not depend on how often its statement ran before on the
//! connection: `ST_AsMVT` writes rows in arrival order, and PostgreSQL would
//! otherwise switch a prepared statement to a generic plan (another scan,
//! another order) after five runs.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use gridmap_tiles::{find_layer, TileCoord};

#[tokio::test]
async fn a_tile_encodes_to_the_same_bytes_on_every_run_of_its_statement() {
    let url = std::env::var(gridmap_e2e::DEMO_URL_VAR).unwrap();
    // One connection, so every run reuses the same prepared statement.
    let pool = gridmap_store::connect_url(&url, 1).await.unwrap();
    let layers: Vec<_> = ["buildings", "roads", "stations", "addresses"]
        .into_iter()
        .map(|name| find_layer(name).unwrap())
        .collect();
    // The z15 tile holding the most buildings, so the order has room to vary.
    let (x, y): (i64, i64) = sqlx::query_as(
        "SELECT x, y FROM (
           SELECT floor((ST_X(c) + 20037508.342789244) / (40075016.68557849 / 32768))::bigint x,
                  floor((20037508.342789244 - ST_Y(c)) / (40075016.68557849 / 32768))::bigint y
             FROM (SELECT ST_Centroid(geom_3857) c FROM buildings) b) t
          GROUP BY x, y ORDER BY count(*) DESC, x, y LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let tile = TileCoord::new(15, u32::try_from(x).unwrap(), u32::try_from(y).unwrap()).unwrap();
    let first = gridmap_tiles::encode_tile(&pool, &layers, tile)
        .await
        .unwrap();
    assert!(first.len() > 1000, "the densest tile holds features");
    for run in 2..=10 {
        let again = gridmap_tiles::encode_tile(&pool, &layers, tile)
            .await
            .unwrap();
        assert!(
            again == first,
            "run {run} of tile {tile:?} gave other bytes"
        );
    }
}
