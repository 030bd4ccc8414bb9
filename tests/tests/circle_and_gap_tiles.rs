//! The computed tile layers over the demo city: `service_circles` (public)
//! and `gap_findings` (internal), decoded by GDAL and measured by PostGIS.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use gdal::vector::LayerAccess as _;
use gridmap_e2e::{api_key_for, session_for};
use gridmap_tiles::TileCoord;
use http_body_util::BodyExt as _;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// 东莱街道, the densest street of the demo city.
const STREET: &str = "370681001";

/// One GET with an optional bearer token: status, headers, body.
async fn get(
    app: &axum::Router,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri).header("host", "gridmap.test");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridmap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A feature decoded by GDAL: its fields, geometry type name, area in Web
/// Mercator square metres and WKT (EPSG:3857).
struct Decoded {
    fields: BTreeMap<String, String>,
    kind: String,
    area: f64,
    wkt: String,
}

/// Decodes one layer of a tile with GDAL's MVT driver (the clip buffer
/// kept, `CLIP=NO`); empty when the layer is absent.
fn decode(scratch: &Path, tile: TileCoord, bytes: &[u8], layer_name: &str) -> Vec<Decoded> {
    let Some(dataset) = gridmap_e2e::open_tile_with_gdal(scratch, layer_name, tile, bytes) else {
        return Vec::new();
    };
    let Ok(mut layer) = dataset.layer_by_name(layer_name) else {
        return Vec::new();
    };
    let names: Vec<String> = layer.defn().fields().map(|field| field.name()).collect();
    layer
        .features()
        .map(|feature| {
            let fields = names
                .iter()
                .filter_map(|name| {
                    let idx = feature.field_index(name).ok()?;
                    Some((name.clone(), feature.field_as_string(idx).ok()??))
                })
                .collect();
            let geometry = feature.geometry().unwrap();
            Decoded {
                fields,
                kind: geometry.geometry_name(),
                area: geometry.area(),
                wkt: geometry.wkt().unwrap(),
            }
        })
        .collect()
}

/// Area (Web Mercator m²) of `geometry_sql` (an expression over `$4`, a
/// text parameter, in EPSG:3857) within the buffered tile `($1, $2, $3)`.
async fn area_in_tile(pool: &PgPool, tile: TileCoord, geometry_sql: &str, parameter: &str) -> f64 {
    sqlx::query_scalar(&format!(
        "SELECT ST_Area(ST_Intersection({geometry_sql},
                 ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096)))"
    ))
    .bind(i32::from(tile.z))
    .bind(i32::try_from(tile.x).unwrap())
    .bind(i32::try_from(tile.y).unwrap())
    .bind(parameter)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn service_circle_tiles_match_the_circles_endpoint_measured_by_postgis() {
    let state = gridmap_e2e::demo_state().await;
    let pool = state.pool.clone();
    let app = gridmap_server::app(state, None);
    // The whole city's circles, over the whole road network as the layer
    // computes them.
    let (status, _, body) = get(&app, "/api/v1/circles?kind=red_station&minutes=10", None).await;
    assert_eq!(status, StatusCode::OK);
    let circles: Value = serde_json::from_slice(&body).unwrap();
    let circles: BTreeMap<String, String> = circles["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|feature| {
            (
                feature["properties"]["code"].as_str().unwrap().to_owned(),
                feature["geometry"].to_string(),
            )
        })
        .collect();
    assert!(circles.len() >= 3, "{} red stations", circles.len());
    let (lon, lat): (f64, f64) = sqlx::query_as(
        "SELECT ST_X(geom), ST_Y(geom) FROM stations
          WHERE kind = 'red_station' AND starts_with(community_code, $1) ORDER BY code LIMIT 1",
    )
    .bind(STREET)
    .fetch_one(&pool)
    .await
    .unwrap();
    let circle_3857 = "ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($4), 4490), 3857)";
    let scratch = scratch_dir("service-circles");
    let mut n_compared = 0;
    for z in [15_u8, 16] {
        let centre = TileCoord::containing(lon, lat, z);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            let tile = TileCoord::new(u32::from(z), centre.x + dx, centre.y + dy).unwrap();
            let uri = format!(
                "/tiles/grids,service_circles/{}/{}/{}",
                tile.z, tile.x, tile.y
            );
            let (status, headers, bytes) = get(&app, &uri, None).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert!(
                headers["cache-control"]
                    .to_str()
                    .unwrap()
                    .starts_with("public"),
                "{uri}"
            );
            let features = decode(&scratch, tile, &bytes, "service_circles");
            // Every red station whose circle meets the tile by
            // more than a sliver is drawn, with its area as PostGIS measures
            // the endpoint's circle clipped to the tile.
            for (code, geojson) in &circles {
                let expected = area_in_tile(&pool, tile, circle_3857, geojson).await;
                let drawn: Vec<&Decoded> = features
                    .iter()
                    .filter(|feature| feature.fields.get("code") == Some(code))
                    .collect();
                if expected < 50.0 {
                    continue;
                }
                assert_eq!(drawn.len(), 1, "{uri}: circle of {code}");
                let feature = drawn[0];
                assert_eq!(feature.fields["kind"], "red_station");
                assert_eq!(feature.fields["minutes"], "10");
                assert_eq!(feature.fields["distance_m"], "720");
                assert!(["network", "straight_line_fallback"]
                    .contains(&feature.fields["method"].as_str()));
                assert!(feature.kind.contains("POLYGON"), "{}", feature.kind);
                let relative = (feature.area - expected).abs() / expected;
                assert!(
                    relative < 0.01,
                    "{uri}: {code} drawn {} m², PostGIS {expected} m² ({})",
                    feature.area,
                    feature.wkt
                );
                n_compared += 1;
            }
            // Nothing personal rides along.
            for feature in &features {
                assert!(feature
                    .fields
                    .keys()
                    .all(|key| !key.contains("worker") && !key.contains("household")));
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    assert!(n_compared >= 3, "only {n_compared} circles compared");
}

/// A small city of one community (120.40–120.43 E, 37.60–37.61 N) covered
/// by three grids, a road network of north–south and east–west lines every
/// 0.002°, and one red station.
const SETUP: &str = "
    INSERT INTO districts VALUES ('370681', '龙口市',
        ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.43 37.60,120.43 37.61,120.40 37.61,120.40 37.60))', 4490)));
    INSERT INTO streets VALUES ('370681001', '370681', '东莱街道',
        ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.43 37.60,120.43 37.61,120.40 37.61,120.40 37.60))', 4490)));
    INSERT INTO communities VALUES ('370681001001', '370681001', '南苑社区', 'urban',
        ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.43 37.60,120.43 37.61,120.40 37.61,120.40 37.60))', 4490)));
    INSERT INTO grids (code, community_code, name, kind, status, worker_name, geom) VALUES
        ('370681001001001', '370681001001', '南苑第一网格', 'basic', 'green', '王芳',
         ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.41 37.60,120.41 37.61,120.40 37.61,120.40 37.60))', 4490))),
        ('370681001001002', '370681001001', '南苑第二网格', 'basic', 'green', '李强',
         ST_Multi(ST_GeomFromText('POLYGON((120.41 37.60,120.42 37.60,120.42 37.61,120.41 37.61,120.41 37.60))', 4490))),
        ('370681001001003', '370681001001', '南苑第三网格', 'basic', 'green', '赵敏',
         ST_Multi(ST_GeomFromText('POLYGON((120.42 37.60,120.43 37.60,120.43 37.61,120.42 37.61,120.42 37.60))', 4490)));
    INSERT INTO roads (class, geom)
        SELECT 'residential', ST_MakeLine(ST_SetSRID(ST_MakePoint(120.40 + i * 0.002, 37.600), 4490),
                                          ST_SetSRID(ST_MakePoint(120.40 + i * 0.002, 37.610), 4490))
          FROM generate_series(0, 15) AS i;
    INSERT INTO roads (class, geom)
        SELECT 'residential', ST_MakeLine(ST_SetSRID(ST_MakePoint(120.400, 37.60 + i * 0.002), 4490),
                                          ST_SetSRID(ST_MakePoint(120.430, 37.60 + i * 0.002), 4490))
          FROM generate_series(0, 5) AS i;
    INSERT INTO stations (code, kind, name, community_code, geom) VALUES
        ('RS-1', 'red_station', '南苑红色驿站', '370681001001',
         ST_SetSRID(ST_MakePoint(120.4051, 37.6051), 4490));";

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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_moved_station_moves_its_circle_in_the_tiles_within_a_second(pool: PgPool) {
    sqlx::raw_sql(SETUP).execute(&pool).await.unwrap();
    let listener = gridmap_server::subscribe(&pool).await.unwrap();
    let state = gridmap_server::AppState::load(pool.clone(), 1 << 20)
        .await
        .unwrap();
    let follower = tokio::spawn(gridmap_server::follow_changes(listener, state.clone()));
    let app = gridmap_server::app(state, None);
    let tile_uri =
        |tile: TileCoord| format!("/tiles/service_circles/{}/{}/{}", tile.z, tile.x, tile.y);
    let west = TileCoord::containing(120.4051, 37.6051, 16);
    let east = TileCoord::containing(120.4251, 37.6051, 16);
    assert_ne!(west, east);
    let (_, _, bytes) = get(&app, &tile_uri(west), None).await;
    assert!(
        contains(&bytes, b"RS-1"),
        "the circle is drawn around the station"
    );
    let (_, _, bytes) = get(&app, &tile_uri(east), None).await;
    assert!(
        !contains(&bytes, b"RS-1"),
        "1.7 km away is beyond 720 m + 50 m"
    );

    sqlx::query("UPDATE stations SET geom = ST_SetSRID(ST_MakePoint(120.4251, 37.6051), 4490) WHERE code = 'RS-1'")
        .execute(&pool)
        .await
        .unwrap();
    let waited =
        within_a_second(|| async { contains(&get(&app, &tile_uri(east), None).await.2, b"RS-1") })
            .await;
    within_a_second(|| async { !contains(&get(&app, &tile_uri(west), None).await.2, b"RS-1") })
        .await;
    println!("the moved circle showed after {waited:?}");
    follower.abort();
    let _ = follower.await;
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gap_findings_are_internal_and_show_an_injected_gap_within_a_second(pool: PgPool) {
    sqlx::raw_sql(SETUP).execute(&pool).await.unwrap();
    let admin = session_for(&pool, "admin", "admin", &[]).await;
    let planner = session_for(&pool, "planner", "planner", &["370681001"]).await;
    let viewer = session_for(&pool, "viewer", "viewer", &[]).await;
    let key = api_key_for(&pool, "hotline").await;
    let listener = gridmap_server::subscribe(&pool).await.unwrap();
    let state = gridmap_server::AppState::load(pool.clone(), 1 << 20)
        .await
        .unwrap();
    let follower = tokio::spawn(gridmap_server::follow_changes(listener, state.clone()));
    let app = gridmap_server::app(state, None);

    // The third grid's place, where the gap will open.
    let tile = TileCoord::containing(120.425, 37.605, 14);
    let uri = format!("/tiles/grids,gap_findings/{}/{}/{}", tile.z, tile.x, tile.y);
    for path in [uri.clone(), "/tiles/gap_findings.json".to_owned()] {
        let (status, headers, _) = get(&app, &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(headers.contains_key("www-authenticate"), "{path}");
        let (status, _, _) = get(&app, &path, Some(&key)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{path}: API keys are for lookups"
        );
        for token in [&admin, &planner, &viewer] {
            let (status, headers, _) = get(&app, &path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                headers["cache-control"]
                    .to_str()
                    .unwrap()
                    .starts_with("private"),
                "{path}"
            );
        }
    }
    // Public layers stay public, and the public catalogue does not list it.
    let (status, _, _) = get(&app, "/tiles/grids.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = get(&app, "/tiles/nothing.json", None).await;
    assert!(!contains(&body, b"gap_findings"));
    let (_, _, style) = get(&app, "/style.json", None).await;
    assert!(!contains(&style, b"gap_findings"));

    let scratch = scratch_dir("gap-findings");
    let gaps_in = |bytes: &[u8]| {
        decode(&scratch, tile, bytes, "gap_findings")
            .into_iter()
            .filter(|feature| feature.fields.get("kind").map(String::as_str) == Some("gap"))
            .collect::<Vec<_>>()
    };
    let (_, _, bytes) = get(&app, &uri, Some(&viewer)).await;
    assert!(gaps_in(&bytes).is_empty(), "fully covered at first");

    // Inject a gap: the third grid goes.
    sqlx::query("DELETE FROM grids WHERE code = '370681001001003'")
        .execute(&pool)
        .await
        .unwrap();
    within_a_second(|| async { !gaps_in(&get(&app, &uri, Some(&viewer)).await.2).is_empty() })
        .await;
    let (_, _, bytes) = get(&app, &uri, Some(&planner)).await;
    let gaps = gaps_in(&bytes);
    assert_eq!(gaps.len(), 1, "one gap");
    let gap = &gaps[0];
    // The community first, then the grids along the hole.
    let codes: Vec<&str> = gap.fields["codes"].split(',').collect();
    assert_eq!(codes[0], "370681001001", "{codes:?}");
    assert!(gap.kind.contains("POLYGON"), "{}", gap.kind);
    // Its area attribute is the geodesic area PostGIS finds for the hole,
    // and its drawn shape the hole clipped to the tile.
    let hole = "ST_Difference(c.geom, (SELECT ST_Union(geom) FROM grids))";
    let geodesic: f64 = sqlx::query_scalar(&format!(
        "SELECT ST_Area(({hole})::geography) FROM communities c"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let attribute: f64 = gap.fields["area_m2"].parse().unwrap();
    assert!(
        (attribute - geodesic).abs() / geodesic < 1e-3,
        "area_m2 {attribute}, PostGIS {geodesic}"
    );
    let hole_wkt: String = sqlx::query_scalar(&format!(
        "SELECT ST_AsText(ST_Transform({hole}, 3857)) FROM communities c"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let expected = area_in_tile(&pool, tile, "ST_GeomFromText($4, 3857)", &hole_wkt).await;
    assert!(
        (gap.area - expected).abs() / expected < 0.01,
        "drawn {} m², PostGIS {expected} m² ({})",
        gap.area,
        gap.wkt
    );
    std::fs::remove_dir_all(&scratch).ok();
    follower.abort();
    let _ = follower.await;
}

/// Run by hand: how long the demo city's circles and gap findings take.
#[tokio::test]
#[ignore = "timing, run by hand"]
async fn computed_layers_timing_of_the_demo_city() {
    let demo = gridmap_e2e::demo_pool().await;
    let started = Instant::now();
    let inputs = gridmap_tiles::fetch_circle_inputs(&demo, true)
        .await
        .unwrap();
    let read = started.elapsed();
    let n_stations = inputs.stations.len();
    let started = Instant::now();
    let snapshot = gridmap_tiles::CircleSnapshot::build(inputs.clone());
    let circles = started.elapsed();
    // One station moved: the update a station edit costs.
    let mut moved = inputs;
    moved.roads = None;
    moved.stations[0].lon += 0.001;
    let started = Instant::now();
    let updated = snapshot.update(moved, &[]);
    let update = started.elapsed();
    assert_eq!(updated.circle_count(), n_stations);
    let started = Instant::now();
    let gap_inputs = gridmap_tiles::fetch_gap_inputs(&demo, None).await.unwrap();
    let gap_read = started.elapsed();
    let started = Instant::now();
    let gaps = gridmap_tiles::GapSnapshot::build(gap_inputs);
    let gap_build = started.elapsed();
    println!(
        "{n_stations} circles: read {read:?}, computed and drawn {circles:?}, \
         one station moved {update:?}; gap findings: read {gap_read:?}, checked {gap_build:?}, \
         {} findings",
        gaps.layer().feature_count()
    );
}
