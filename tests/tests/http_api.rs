//! The HTTP API answered by the real router over the demo city, one request
//! at a time with no socket (axum's `oneshot`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::http::StatusCode;
use serde_json::Value;

async fn get(uri: &str) -> (StatusCode, Vec<u8>) {
    gridmap_e2e::send(
        gridmap_server::app(gridmap_e2e::demo_state().await, None),
        uri,
    )
    .await
}

async fn get_json(uri: &str) -> (StatusCode, Value) {
    gridmap_e2e::send_json(
        gridmap_server::app(gridmap_e2e::demo_state().await, None),
        uri,
    )
    .await
}

#[tokio::test]
async fn lookup_returns_the_chain_of_an_interior_point() {
    let pool = gridmap_e2e::demo_pool().await;
    // A point inside one grid, chosen by PostGIS, with the chain PostGIS joins.
    let (lon, lat, grid, community, street, district): (f64, f64, String, String, String, String) =
        sqlx::query_as(
            "SELECT ST_X(p), ST_Y(p), g.code, c.code, s.code, s.district_code
               FROM (SELECT code, community_code, ST_PointOnSurface(geom) p FROM grids
                      ORDER BY code OFFSET 100 LIMIT 1) g
               JOIN communities c ON c.code = g.community_code
               JOIN streets s ON s.code = c.street_code",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    let (status, json) = get_json(&format!("/api/v1/lookup?lon={lon}&lat={lat}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["grid"]["code"], grid.as_str());
    assert_eq!(json["community"]["code"], community.as_str());
    assert_eq!(json["street"]["code"], street.as_str());
    assert_eq!(json["district"]["code"], district.as_str());
    assert_eq!(json["district"]["name"], "龙口市");
    assert!(json["grid"]["name"]
        .as_str()
        .is_some_and(|name| !name.is_empty()));
    for field in ["kind", "status"] {
        assert!(
            json["grid"][field].is_string(),
            "grid.{field} missing: {json}"
        );
    }
    // Personal data never reaches this unauthenticated endpoint.
    let text = json.to_string();
    assert!(
        !text.contains("worker") && !text.contains("phone"),
        "{text}"
    );
}

#[tokio::test]
async fn lookup_outside_every_grid_is_null() {
    let (status, json) = get_json("/api/v1/lookup?lon=116.4&lat=39.9").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        json["grid"].is_null() && json["community"].is_null(),
        "{json}"
    );
}

#[tokio::test]
async fn lookup_rejects_bad_coordinates_with_json_errors() {
    for (uri, fragment) in [
        ("/api/v1/lookup?lat=37.6", "missing query parameter lon"),
        (
            "/api/v1/lookup?lon=abc&lat=37.6",
            "lon must be a finite number",
        ),
        ("/api/v1/lookup?lon=37.6&lat=120.4", "look swapped"),
        ("/api/v1/lookup?lon=200&lat=37.6", "lon must be within"),
    ] {
        let (status, json) = get_json(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let message = json["error"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "{uri}: {message}");
    }
}

#[tokio::test]
async fn livez_answers_without_touching_anything() {
    let (status, body) = get("/livez").await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ok".as_slice())
    );
}

#[tokio::test]
async fn health_reports_the_indexed_grids() {
    let (status, json) = get_json("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "ok");
    assert!(json["grids"].as_u64().unwrap_or_default() >= 450, "{json}");
}

#[tokio::test]
async fn tilejson_describes_each_layer() {
    for layer in ["grids", "communities", "streets", "buildings", "stations"] {
        for uri in [format!("/tiles/{layer}"), format!("/tiles/{layer}.json")] {
            let (status, json) = get_json(&uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(json["tilejson"], "3.0.0");
            assert_eq!(
                json["tiles"][0],
                format!("http://gridmap.test/tiles/{layer}/{{z}}/{{x}}/{{y}}")
            );
            assert_eq!(json["vector_layers"][0]["id"], layer);
            let bounds = json["bounds"].as_array().unwrap();
            assert!(
                (120.0..121.0).contains(&bounds[0].as_f64().unwrap()),
                "{json}"
            );
        }
    }
    let (status, json) = get_json("/tiles/workers").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json["error"].as_str().unwrap().contains("grids"));
}

#[tokio::test]
async fn bad_tile_coordinates_are_client_errors() {
    for uri in [
        "/tiles/grids/14/99999/1",
        "/tiles/grids/x/1/1",
        "/tiles/grids/30/0/0",
    ] {
        let (status, _) = get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    }
}

#[tokio::test]
async fn lookup_accepts_points_digitised_on_gcj02_and_bd09_maps() {
    let pool = gridmap_e2e::demo_pool().await;
    let (lon, lat, grid): (f64, f64, String) = sqlx::query_as(
        "SELECT ST_X(p), ST_Y(p), code
           FROM (SELECT code, ST_PointOnSurface(geom) p FROM grids ORDER BY code OFFSET 7 LIMIT 1) g",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    for (name, crs) in [
        ("gcj02", gridmap_crs::LonLatCrs::Gcj02),
        ("bd09", gridmap_crs::LonLatCrs::Bd09),
    ] {
        let (x, y) = crs.from_cgcs2000(lon, lat);
        let (status, json) = get_json(&format!("/api/v1/lookup?lon={x}&lat={y}&crs={name}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["grid"]["code"], grid.as_str(), "{name}: {json}");
        let back = json["query"]["cgcs2000"].as_array().unwrap();
        assert!((back[0].as_f64().unwrap() - lon).abs() < 1e-9, "{json}");
    }
    let (status, json) = get_json(&format!("/api/v1/lookup?lon={lon}&lat={lat}&crs=3857")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["error"].as_str().unwrap().contains("gcj02"), "{json}");
}

#[tokio::test]
async fn lookup_fields_answer_exactly_the_parts_asked_for() {
    let pool = gridmap_e2e::demo_pool().await;
    // Points inside a building (so every part has a value) and outside
    // every grid (so nearest_grid has one), chosen by PostGIS.
    let inside: (f64, f64) = sqlx::query_as(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM buildings
                                       ORDER BY code OFFSET 50 LIMIT 1) b",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let keys_of = |parts: &[&str]| -> Vec<&'static str> {
        let mut keys = vec!["query"];
        for part in parts {
            keys.extend_from_slice(match *part {
                "grid" => &["grid", "community", "street", "district", "nearest_grid"][..],
                "grid_unit" => &["grid_unit"],
                "building" => &["building", "address"],
                "stations" => &["nearest_stations"],
                "departments" => &["departments"],
                other => panic!("unknown part {other}"),
            });
        }
        keys
    };
    for (lon, lat) in [inside, (120.0, 37.9)] {
        let (status, full) = get_json(&format!("/api/v1/lookup?lon={lon}&lat={lat}")).await;
        assert_eq!(status, StatusCode::OK);
        let full = full.as_object().unwrap().clone();
        assert_eq!(
            full.len(),
            keys_of(&["grid", "grid_unit", "building", "stations", "departments"]).len()
        );
        for parts in [
            &["grid"][..],
            &["stations"],
            &["building", "grid_unit"],
            &["departments", "grid"],
            &["grid", "grid_unit", "building", "stations", "departments"],
        ] {
            let (status, json) = get_json(&format!(
                "/api/v1/lookup?lon={lon}&lat={lat}&fields={}",
                parts.join(",")
            ))
            .await;
            assert_eq!(status, StatusCode::OK, "{parts:?}");
            let answer = json.as_object().unwrap();
            let mut expected_keys = keys_of(parts);
            expected_keys.sort_unstable();
            let mut keys: Vec<&str> = answer.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, expected_keys, "{parts:?}");
            for key in keys {
                assert_eq!(answer[key], full[key], "{key} with fields={parts:?}");
            }
        }
    }
    let (status, json) = get_json("/api/v1/lookup?lon=120.4&lat=37.6&fields=grid,phone").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["error"].as_str().unwrap().contains("\"phone\""),
        "{json}"
    );
    let (status, _) = get_json("/api/v1/lookup?lon=120.4&lat=37.6&fields=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
