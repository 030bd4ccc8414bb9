//! Serving tiles: brotli and gzip checked with independent decoders (Debian's
//! `brotli` command, the reference implementation, and flate2), entity tags
//! and 304s, the label-point, address and rider-rest-stop layers against
//! PostGIS, and `style.json` against the layer catalogue.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use gdal::vector::LayerAccess as _;
use gdal::{Dataset, DatasetOptions};
use gridmap_tiles::{find_layer, TileCoord};
use http_body_util::BodyExt as _;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use tower::ServiceExt as _;

async fn fetch(
    app: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri).header("host", "gridmap.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

/// Decompresses with the `brotli` command (Debian package `brotli`).
fn unbrotli(compressed: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("brotli")
        .args(["--decompress", "--stdout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("running brotli (Debian package brotli): {err}"));
    child.stdin.take().unwrap().write_all(compressed).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "brotli failed");
    output.stdout
}

/// The demo city's z-level tile at the centre of its grids.
async fn centre_tile(pool: &sqlx::PgPool, z: u8) -> TileCoord {
    let (lon, lat): (f64, f64) = sqlx::query_as(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c FROM grids) x",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    TileCoord::containing(lon, lat, z)
}

#[tokio::test]
async fn brotli_and_gzip_decode_to_the_raw_tile_and_tags_revalidate() {
    let state = gridmap_e2e::demo_state().await;
    let tile = centre_tile(&state.pool, 13).await;
    let app = gridmap_server::app(state, None);
    let uri = format!(
        "/tiles/grids,roads,stations/{}/{}/{}",
        tile.z, tile.x, tile.y
    );

    let (status, raw_headers, raw) = fetch(&app, &uri, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(raw.len() > 1_000, "tile of {} bytes", raw.len());
    assert!(raw_headers.get("content-encoding").is_none());
    assert_eq!(
        raw_headers["cache-control"],
        "public, max-age=60, must-revalidate"
    );
    assert_eq!(raw_headers["vary"], "accept-encoding");
    let raw_tag = raw_headers["etag"].to_str().unwrap().to_owned();

    let (status, br_headers, br) =
        fetch(&app, &uri, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(br_headers["content-encoding"], "br");
    assert_eq!(unbrotli(&br), raw);
    assert!(
        br.len() < raw.len() / 2,
        "{} of {} bytes",
        br.len(),
        raw.len()
    );
    let br_tag = br_headers["etag"].to_str().unwrap().to_owned();

    let (status, gz_headers, gz) = fetch(&app, &uri, &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gz_headers["content-encoding"], "gzip");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, raw);
    let gz_tag = gz_headers["etag"].to_str().unwrap().to_owned();
    let distinct: BTreeSet<&str> = [&raw_tag, &br_tag, &gz_tag]
        .iter()
        .map(|tag| tag.as_str())
        .collect();
    assert_eq!(distinct.len(), 3, "{raw_tag} {br_tag} {gz_tag}");

    // Any encoding's tag revalidates: the content is the same.
    for tag in [&raw_tag, &br_tag, &gz_tag] {
        let (status, headers, body) = fetch(
            &app,
            &uri,
            &[("accept-encoding", "br"), ("if-none-match", tag.as_str())],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(body.is_empty());
        assert_eq!(headers["etag"].to_str().unwrap(), br_tag);
        assert_eq!(
            headers["cache-control"],
            "public, max-age=60, must-revalidate"
        );
    }
    let listed = format!("\"0000000000000000\", W/{gz_tag}");
    let (status, _, _) = fetch(&app, &uri, &[("if-none-match", listed.as_str())]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, body) =
        fetch(&app, &uri, &[("if-none-match", "\"0000000000000000-br\"")]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, raw.len()));
}

#[tokio::test]
async fn label_points_lie_inside_their_polygons() {
    let pool = gridmap_e2e::demo_pool().await;
    for table in ["districts", "streets", "communities", "grids"] {
        let (total, inside): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(*) FILTER (WHERE ST_Contains(geom_3857, label_3857)) FROM {table}"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(total > 0, "{table} is empty");
        assert_eq!(inside, total, "{table}: label points outside their polygon");
    }
}

/// The tile at zoom `z` holding the middle feature (by code) of a layer.
async fn middle_feature_tile(pool: &sqlx::PgPool, layer: &str, z: u8) -> TileCoord {
    let layer = find_layer(layer).unwrap();
    let filter = layer.filter.unwrap_or("true");
    let (lon, lat): (f64, f64) = sqlx::query_as(&format!(
        "SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_Transform({geometry}, 4326) p FROM {table} WHERE {filter}
             ORDER BY code OFFSET (SELECT count(*) / 2 FROM {table} WHERE {filter}) LIMIT 1) x",
        geometry = layer.geometry,
        table = layer.table,
    ))
    .fetch_one(pool)
    .await
    .unwrap();
    TileCoord::containing(lon, lat, z)
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridmap-tile-serving-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Decodes one layer of a tile with GDAL's MVT driver: feature count and the
/// field names of the layer.
fn decode_layer(
    scratch: &std::path::Path,
    tile: TileCoord,
    bytes: &[u8],
    layer_name: &str,
) -> (usize, BTreeSet<String>) {
    // GDAL georeferences a tile from a z/x/y.pbf path.
    let path = scratch.join(format!("{layer_name}/{}/{}/{}.pbf", tile.z, tile.x, tile.y));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let options = DatasetOptions {
        open_options: Some(&["CLIP=NO"]),
        ..DatasetOptions::default()
    };
    let dataset = Dataset::open_ex(&path, options).unwrap();
    let mut layer = dataset.layer_by_name(layer_name).unwrap();
    // GDAL adds the feature id as a field of its own.
    let fields = layer
        .defn()
        .fields()
        .map(|field| field.name())
        .filter(|name| name != "mvt_id")
        .collect();
    (layer.features().count(), fields)
}

#[tokio::test]
async fn point_layers_carry_as_many_features_as_postgis_finds() {
    let state = gridmap_e2e::demo_state().await;
    let pool = state.pool.clone();
    let app = gridmap_server::app(state, None);
    let scratch = scratch_dir();
    // (layer, z, PostGIS count over the buffered tile envelope, exact fields).
    // The tile is the one holding the middle feature of the layer by code.
    let cases = [
        (
            "grid_labels",
            14,
            "SELECT count(*) FROM grids WHERE label_3857 && ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)",
            &["code", "name", "status"][..],
        ),
        (
            "community_labels",
            13,
            "SELECT count(*) FROM communities WHERE label_3857 && ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)",
            &["code", "name"][..],
        ),
        (
            "addresses",
            16,
            "SELECT count(*) FROM addresses WHERE geom_3857 && ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)",
            &["address", "code"][..],
        ),
        (
            "rider_rest_stops",
            12,
            "SELECT count(*) FROM stations WHERE kind = 'rider_rest_stop' AND geom_3857 && ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)",
            &["amenities", "code", "community_code", "name", "opening_hours"][..],
        ),
    ];
    for (layer, z, postgis_count, fields) in cases {
        let tile = middle_feature_tile(&pool, layer, z).await;
        let uri = format!("/tiles/{layer}/{}/{}/{}", tile.z, tile.x, tile.y);
        let (status, _, bytes) = fetch(&app, &uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let expected: i64 = sqlx::query_scalar(postgis_count)
            .bind(i32::from(tile.z))
            .bind(i32::try_from(tile.x).unwrap())
            .bind(i32::try_from(tile.y).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(
            expected > 0,
            "{uri}: PostGIS finds no feature; pick another tile"
        );
        let (count, decoded_fields) = decode_layer(&scratch, tile, &bytes, layer);
        assert_eq!(i64::try_from(count).unwrap(), expected, "{uri}");
        let fields: BTreeSet<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        // GDAL lists only the fields some feature has; none beyond the catalogue.
        assert!(
            decoded_fields.is_subset(&fields),
            "{uri}: {decoded_fields:?}"
        );
        assert!(decoded_fields.contains("code"), "{uri}: {decoded_fields:?}");
    }
    std::fs::remove_dir_all(&scratch).ok();
}

#[tokio::test]
async fn style_json_names_only_catalogued_layers_and_its_own_tilejson() {
    let state = gridmap_e2e::demo_state().await;
    let app = gridmap_server::app(state, None);
    let (status, _, body) = fetch(&app, "/style.json", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let style: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(style["version"], 8);
    let url = style["sources"]["gridmap"]["url"].as_str().unwrap();
    let path = url.strip_prefix("http://gridmap.test").unwrap();
    let glyphs = style["glyphs"].as_str().unwrap();
    assert_eq!(glyphs, "http://gridmap.test/fonts/{fontstack}/{range}.pbf");

    let (status, _, body) = fetch(&app, path, &[]).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    let tilejson: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let in_source: BTreeSet<&str> = tilejson["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["id"].as_str().unwrap())
        .collect();
    let mut drawn = BTreeSet::new();
    for layer in style["layers"].as_array().unwrap() {
        let Some(source_layer) = layer["source-layer"].as_str() else {
            assert_eq!(layer["type"], "background");
            continue;
        };
        assert!(find_layer(source_layer).is_some(), "{source_layer}");
        assert!(in_source.contains(source_layer), "{source_layer}");
        if layer["type"] == "symbol" {
            let font = layer["layout"]["text-font"][0].as_str().unwrap();
            let glyph_path = format!("/fonts/{font}/0-255.pbf").replace(' ', "%20");
            let (status, headers, _) = fetch(&app, &glyph_path, &[]).await;
            assert_eq!(status, StatusCode::OK, "{glyph_path}");
            assert_eq!(headers["content-type"], "application/x-protobuf");
        }
        drawn.insert(source_layer);
    }
    assert_eq!(drawn, in_source);
    for layer in ["grid_labels", "addresses", "rider_rest_stops"] {
        assert!(drawn.contains(layer), "{layer} not drawn");
    }
}
