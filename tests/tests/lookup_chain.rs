//! The full lookup chain (grid unit, building, address, nearest stations,
//! nearest grid) answered over HTTP agrees with PostGIS on the demo city.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt as _;

const STATION_KINDS: [&str; 4] = [
    "service_centre",
    "red_station",
    "grid_station",
    "rider_rest_stop",
];

async fn lookup(state: &gridmap_server::AppState, lon: f64, lat: f64) -> Value {
    let response = gridmap_server::app(state.clone(), None)
        .oneshot(
            Request::get(format!("/api/v1/lookup?lon={lon}&lat={lat}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

async fn grid_extent(pool: &PgPool) -> (f64, f64, f64, f64) {
    sqlx::query_as(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
           FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn building_address_and_grid_unit_match_postgis_covers() {
    let pool = gridmap_e2e::demo_pool().await;
    let state = gridmap_e2e::demo_state().await;
    // Every 400th building, probed at a point PostGIS puts on its surface.
    type Expected = (
        f64,
        f64,
        Option<String>,
        Option<i32>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Expected> = sqlx::query_as(
        "WITH probe AS (
              SELECT ST_PointOnSurface(geom) p FROM buildings
               WHERE ('x' || right(md5(code), 6))::bit(24)::int % 400 = 0)
         SELECT ST_X(p), ST_Y(p), b.code, b.floors, a.code, u.code
           FROM probe
           LEFT JOIN LATERAL (SELECT code, floors FROM buildings
                               WHERE ST_Covers(geom, p) ORDER BY code LIMIT 1) b ON true
           LEFT JOIN LATERAL (SELECT code FROM addresses
                               WHERE building_code = b.code ORDER BY code LIMIT 1) a ON true
           LEFT JOIN LATERAL (SELECT code FROM grid_units
                               WHERE ST_Covers(geom, p) ORDER BY code LIMIT 1) u ON true",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(rows.len() >= 30, "only {} probe buildings", rows.len());
    for (lon, lat, building, floors, address, unit) in rows {
        let json = lookup(&state, lon, lat).await;
        assert_eq!(
            json["building"]["code"].as_str(),
            building.as_deref(),
            "{json}"
        );
        assert_eq!(json["building"]["floors"].as_i64(), floors.map(i64::from));
        assert!(json["building"]["name"].is_string(), "{json}");
        assert_eq!(
            json["address"]["code"].as_str(),
            address.as_deref(),
            "{json}"
        );
        assert!(json["address"]["address"].is_string(), "{json}");
        assert_eq!(
            json["grid_unit"]["code"].as_str(),
            unit.as_deref(),
            "{json}"
        );
        // A building lies in its grid, so the point is in a grid.
        assert!(json["grid"].is_object() && json["nearest_grid"].is_null());
        let text = json.to_string();
        assert!(
            !text.contains("worker") && !text.contains("phone") && !text.contains("households"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn nearest_station_of_each_kind_matches_postgis_knn() {
    let pool = gridmap_e2e::demo_pool().await;
    let state = gridmap_e2e::demo_state().await;
    let (west, south, east, north) = grid_extent(&pool).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12_345);
    for _ in 0..50 {
        let (lon, lat) = (rng.gen_range(west..east), rng.gen_range(south..north));
        let json = lookup(&state, lon, lat).await;
        let stations = json["nearest_stations"].as_array().unwrap();
        assert_eq!(stations.len(), STATION_KINDS.len(), "{json}");
        for (kind, station) in STATION_KINDS.iter().zip(stations) {
            assert_eq!(station["kind"], *kind);
            let ours = station["code"].as_str().unwrap();
            let (best_code, best_m, ours_m): (String, f64, f64) = sqlx::query_as(
                "WITH q AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4490)::geography g)
                 SELECT s.code, ST_Distance(s.geom::geography, q.g),
                        (SELECT ST_Distance(o.geom::geography, q.g) FROM stations o
                          WHERE o.code = $4)
                   FROM stations s, q WHERE s.kind = $3
                  ORDER BY s.geom::geography <-> q.g LIMIT 1",
            )
            .bind(lon)
            .bind(lat)
            .bind(*kind)
            .bind(ours)
            .fetch_one(&pool)
            .await
            .unwrap();
            // PostGIS orders by distance on the sphere; ties within a metre
            // may go either way.
            assert!(
                ours_m <= best_m + 1.0,
                "({lon}, {lat}) {kind}: ours {ours} at {ours_m} m, PostGIS {best_code} at {best_m} m"
            );
            let reported = station["distance_m"].as_f64().unwrap();
            assert!((reported - ours_m).abs() < 0.1, "{reported} vs {ours_m}");
        }
    }
}

#[tokio::test]
async fn nearest_grid_outside_every_grid_matches_postgis() {
    let pool = gridmap_e2e::demo_pool().await;
    let state = gridmap_e2e::demo_state().await;
    // Points within 3 km outside the union of the grids.
    let points: Vec<(f64, f64)> = sqlx::query_as(
        "WITH city AS (SELECT ST_Union(geom) u FROM grids),
              ring AS (SELECT ST_Difference(ST_SetSRID(ST_Buffer(u::geography, 3000)::geometry, 4490), u) r
                         FROM city)
         SELECT ST_X(p), ST_Y(p)
           FROM ring, LATERAL (SELECT (ST_Dump(ST_GeneratePoints(r, 50, 20261124))).geom p) g",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(points.len(), 50);
    for (lon, lat) in points {
        let json = lookup(&state, lon, lat).await;
        assert!(
            json["grid"].is_null(),
            "({lon}, {lat}) is in a grid: {json}"
        );
        let ours = json["nearest_grid"]["code"].as_str().unwrap();
        let (best_code, best_m, ours_m): (String, f64, f64) = sqlx::query_as(
            "WITH q AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4490)::geography g)
             SELECT code, ST_Distance(geom::geography, q.g),
                    (SELECT ST_Distance(o.geom::geography, q.g) FROM grids o WHERE o.code = $3)
               FROM grids, q ORDER BY ST_Distance(geom::geography, q.g) LIMIT 1",
        )
        .bind(lon)
        .bind(lat)
        .bind(ours)
        .fetch_one(&pool)
        .await
        .unwrap();
        // Neighbouring grids share edges and vertices, so ties are common.
        assert!(
            ours_m <= best_m + 1.0,
            "({lon}, {lat}): ours {ours} at {ours_m} m, PostGIS {best_code} at {best_m} m"
        );
        let reported = json["nearest_grid"]["distance_m"].as_f64().unwrap();
        assert!(
            (reported - ours_m).abs() < 1.0 + 1e-3 * ours_m,
            "({lon}, {lat}): reported {reported} m, PostGIS {ours_m} m"
        );
    }
}

#[tokio::test]
async fn departmental_grids_match_postgis_intersects() {
    let pool = gridmap_e2e::demo_pool().await;
    let state = gridmap_e2e::demo_state().await;
    let (west, south, east, north) = grid_extent(&pool).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let mut with_all_three = 0;
    for _ in 0..300 {
        let lon = rng.gen_range(west..east);
        let lat = rng.gen_range(south..north);
        let answer = lookup(&state, lon, lat).await;
        let got: Vec<(String, String)> = answer["departments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["department"].as_str().unwrap().to_owned(),
                    d["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut expected: Vec<(String, String)> = sqlx::query_as(
            "SELECT department, code FROM department_grids
              WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint($1, $2), 4490))",
        )
        .bind(lon)
        .bind(lat)
        .fetch_all(&pool)
        .await
        .unwrap();
        // The answer lists them by department and code, compared as bytes.
        expected.sort();
        assert_eq!(got, expected, "({lon}, {lat})");
        if expected.len() == 3 {
            with_all_three += 1;
        }
    }
    assert!(
        with_all_three > 100,
        "only {with_all_three} points in all three departments"
    );
}

/// The largest `Actual Loops` of any node of an `EXPLAIN (ANALYZE, FORMAT
/// JSON)` plan.
fn most_loops(plan: &Value) -> i64 {
    let own = plan["Actual Loops"].as_i64().unwrap_or(0);
    plan["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(most_loops)
        .fold(own, i64::max)
}

/// The lookup index loads every building with its first address right
/// after an import, before autovacuum has analysed the tables. Without
/// statistics a subquery per building was planned as a walk of all
/// addresses per building (14.5 s for the demo city); the query must run no
/// part of its plan once per building, and still pick each building's
/// first address by code.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn buildings_load_with_their_first_address_in_one_pass_without_statistics(pool: PgPool) {
    sqlx::raw_sql(
        "INSERT INTO districts VALUES ('370681', '龙口市',
             ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.50, 37.70, 4490)));
         INSERT INTO streets VALUES ('370681001', '370681', '东莱街道',
             ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.50, 37.70, 4490)));
         INSERT INTO communities (code, street_code, name, geom) VALUES ('370681001001', '370681001',
             '南苑社区', ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.50, 37.70, 4490)));
         INSERT INTO grids (code, community_code, name, kind, geom) VALUES ('370681001001001',
             '370681001001', '南苑一网格', 'basic', ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.50, 37.70, 4490)));
         INSERT INTO buildings (code, grid_code, name, households, geom)
         SELECT '370681001001001' || lpad(i::text, 7, '0'), '370681001001001', i || '号楼', 10,
                ST_Multi(ST_MakeEnvelope(120.40 + i * 1e-5, 37.60, 120.40 + i * 1e-5 + 5e-6, 37.600005, 4490))
           FROM generate_series(1, 3000) i;
         -- Two addresses for every third building, none for every fifth.
         INSERT INTO addresses (code, building_code, address, geom)
         SELECT 'A' || lpad(i::text, 5, '0') || suffix, '370681001001001' || lpad(i::text, 7, '0'),
                '南苑路' || i || '号' || suffix, ST_SetSRID(ST_MakePoint(120.40 + i * 1e-5, 37.600002), 4490)
           FROM generate_series(1, 3000) i, unnest(ARRAY['b', 'a']) suffix
          WHERE i % 5 <> 0 AND (suffix = 'b' OR i % 3 = 0);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let analysed: Option<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_user_tables
          WHERE relname IN ('buildings', 'addresses')
            AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(analysed, Some(0), "the tables must not be analysed yet");

    let (plan,): (Value,) = sqlx::query_as(&format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {}",
        gridmap_store::queries::BUILDINGS_WITH_ADDRESSES
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let loops = most_loops(&plan[0]["Plan"]);
    assert_eq!(loops, 1, "a node runs {loops} times: {plan}");

    let loaded = gridmap_store::queries::load_buildings(&pool).await.unwrap();
    let expected: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT b.code, (SELECT min(a.code) FROM addresses a WHERE a.building_code = b.code)
           FROM buildings b ORDER BY b.code",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let got: Vec<(String, Option<String>)> = loaded
        .iter()
        .map(|b| {
            (
                b.code.clone(),
                b.address.as_ref().map(|(code, _)| code.clone()),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(got
        .iter()
        .any(|(_, a)| a.as_deref().is_some_and(|a| a.ends_with('a'))));
    assert!(got.iter().any(|(_, a)| a.is_none()));
}
