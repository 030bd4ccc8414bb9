//! Tiles decode with an independent decoder (GDAL's MVT driver) and carry as
//! many grids as PostGIS finds in each tile.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gdal::vector::LayerAccess as _;
use gdal::{Dataset, DatasetOptions};
use gridmap_tiles::TileCoord;
use http_body_util::BodyExt as _;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tower::ServiceExt as _;

/// Grids PostGIS finds in a tile: those whose area meets the buffered tile
/// envelope in more than a line or a point.
const POSTGIS_COUNT: &str = "
    SELECT count(*) FROM grids
     WHERE ST_Relate(geom_3857, ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096), '2********')";

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridmap-tiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The centroid of all grids, where the tiles under test lie.
async fn grid_centre(pool: &sqlx::PgPool) -> (f64, f64) {
    sqlx::query_as(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Union(geom)) c FROM grids) x",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn grid_tiles_decode_and_match_postgis_counts() {
    let state = gridmap_e2e::demo_state().await;
    let pool = state.pool.clone();
    let app = gridmap_server::app(state, None);
    let (lon, lat) = grid_centre(&pool).await;
    let scratch = scratch_dir();
    let mut decoded_tiles = 0;
    for z in [10_u8, 12, 14, 16] {
        let centre = TileCoord::containing(lon, lat, z);
        for dx in 0..2 {
            for dy in 0..2 {
                let tile = TileCoord::new(u32::from(z), centre.x + dx, centre.y + dy).unwrap();
                let uri = format!("/tiles/grids,stations/{}/{}/{}", tile.z, tile.x, tile.y);
                let response = app
                    .clone()
                    .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{uri}");
                assert_eq!(
                    response.headers()["content-type"],
                    "application/vnd.mapbox-vector-tile"
                );
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                let expected: i64 = sqlx::query_scalar(POSTGIS_COUNT)
                    .bind(i32::from(tile.z))
                    .bind(i32::try_from(tile.x).unwrap())
                    .bind(i32::try_from(tile.y).unwrap())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                if expected == 0 {
                    continue;
                }
                // GDAL georeferences a tile from a z/x/y.pbf path.
                let path = scratch.join(format!("{}/{}/{}.pbf", tile.z, tile.x, tile.y));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &bytes).unwrap();
                // CLIP=NO keeps the features drawn only in the buffer around the tile.
                let options = DatasetOptions {
                    open_options: Some(&["CLIP=NO"]),
                    ..DatasetOptions::default()
                };
                let dataset = Dataset::open_ex(&path, options)
                    .unwrap_or_else(|err| panic!("{uri}: GDAL cannot open: {err}"));
                let mut layer = dataset.layer_by_name("grids").unwrap();
                let mut codes = BTreeSet::new();
                for feature in layer.features() {
                    let text = |name: &str| {
                        let idx = feature.field_index(name).unwrap();
                        feature.field_as_string(idx).unwrap().unwrap_or_default()
                    };
                    let (code, status) = (text("code"), text("status"));
                    assert!(
                        ["green", "blue", "yellow", "orange", "red"].contains(&status.as_str()),
                        "{uri}: status {status}"
                    );
                    let geometry = feature.geometry().unwrap();
                    assert!(!geometry.is_empty(), "{uri}: empty geometry for {code}");
                    assert_eq!(code.len(), 15, "{uri}: code {code}");
                    codes.insert(code);
                }
                let defn_fields: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
                assert!(
                    defn_fields
                        .iter()
                        .all(|f| !f.contains("worker") && !f.contains("phone")),
                    "{uri}: personal fields {defn_fields:?}"
                );
                assert_eq!(
                    i64::try_from(codes.len()).unwrap(),
                    expected,
                    "{uri}: decoded grids vs PostGIS"
                );
                decoded_tiles += 1;
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    assert!(decoded_tiles >= 12, "only {decoded_tiles} tiles had grids");
}

#[tokio::test]
async fn tiles_are_gzipped_on_request_and_revalidated_by_etag() {
    let state = gridmap_e2e::demo_state().await;
    let app = gridmap_server::app(state, None);
    let uri = "/tiles/grids/12/3419/1585";
    let fetch = |headers: Vec<(&'static str, String)>| {
        let app = app.clone();
        async move {
            let mut request = Request::get(uri);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = app
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, body)
        }
    };
    let (status, plain_headers, plain) = fetch(vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(plain.len() > 1_000, "tile of {} bytes", plain.len());
    assert!(plain_headers.get("content-encoding").is_none());
    let etag = plain_headers["etag"].to_str().unwrap().to_owned();

    let (status, gzip_headers, gzipped) =
        fetch(vec![("accept-encoding", "br;q=0.5, gzip;q=0.8".to_owned())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gzip_headers["content-encoding"], "gzip");
    // Each coding is its own representation with its own tag (RFC 9110 8.8.3).
    assert_eq!(
        gzip_headers["etag"].to_str().unwrap(),
        format!("{}-gz\"", etag.trim_end_matches('"'))
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain.to_vec());
    assert!(gzipped.len() < plain.len());

    let (status, _, body) = fetch(vec![("accept-encoding", "gzip;q=0".to_owned())]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, plain.len()));

    let (status, headers, body) = fetch(vec![("if-none-match", etag.clone())]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    let (status, _, _) = fetch(vec![("if-none-match", "\"0000000000000000\"".to_owned())]).await;
    assert_eq!(status, StatusCode::OK);
}

/// Spec 2.1 rings have no self-intersection or self-tangency: every polygon
/// of the polygon layers, decoded by GDAL, is valid by GEOS, including those
/// cut by the tile edge (where clipping alone would leave a ring running
/// along the edge and back).
#[tokio::test]
async fn polygons_in_tiles_are_valid() {
    let state = gridmap_e2e::demo_state().await;
    let pool = state.pool.clone();
    let app = gridmap_server::app(state, None);
    let (lon, lat) = grid_centre(&pool).await;
    let scratch = scratch_dir().join("valid");
    let layers = [
        "districts",
        "streets",
        "communities",
        "grids",
        "grid_units",
        "buildings",
    ];
    let mut checked = 0;
    for z in 10_u8..=15 {
        let centre = TileCoord::containing(lon, lat, z);
        for dx in 0..2 {
            for dy in 0..2 {
                let tile = TileCoord::new(u32::from(z), centre.x + dx, centre.y + dy).unwrap();
                let uri = format!(
                    "/tiles/{}/{}/{}/{}",
                    layers.join(","),
                    tile.z,
                    tile.x,
                    tile.y
                );
                let (status, bytes) = gridmap_e2e::send(app.clone(), &uri).await;
                assert_eq!(status, StatusCode::OK, "{uri}");
                let Some(dataset) =
                    gridmap_e2e::open_tile_with_gdal(&scratch, "valid", tile, &bytes)
                else {
                    continue;
                };
                for name in layers {
                    let Ok(mut layer) = dataset.layer_by_name(name) else {
                        continue;
                    };
                    for feature in layer.features() {
                        let geometry = feature.geometry().unwrap();
                        assert!(
                            geometry.is_valid(),
                            "{uri}: {name} feature {:?} is not valid: {}",
                            feature.fid(),
                            geometry.wkt().unwrap_or_default()
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    assert!(checked > 1_000, "only {checked} polygons checked");
}
