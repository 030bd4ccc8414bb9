//! `/api/v1/circles` at a kind's own minutes and the default speed answers
//! from the circles the `service_circles` tiles are drawn from; the answer
//! must equal computing the circles anew from the roads and stations, as the
//! endpoint does for any other parameters. Circles computed in another order
//! differ in the last bits of some coordinates (the Dijkstra scratch space
//! is reused from station to station), so PostGIS compares the geometries:
//! their symmetric difference must be a negligible share of the area.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::http::StatusCode;
use gridmap_circles::{service_circles, Coord, Parameters, WalkGraph};
use gridmap_store::circle_queries::{load_circle_stations, load_roads};
use gridmap_store::topology_queries::AreaFilter;
use serde_json::{json, Value};

/// 东莱街道, the densest street of the demo city.
const STREET: &str = "370681001";

/// The features the endpoint answers with, computed here from the tables.
async fn recomputed(
    pool: &sqlx::PgPool,
    kind: &str,
    area: Option<&AreaFilter>,
    parameters: &Parameters,
) -> Vec<Value> {
    let roads = load_roads(pool, area, parameters.limit_m() + parameters.frontage_m)
        .await
        .unwrap();
    let stations = load_circle_stations(pool, kind, area).await.unwrap();
    let graph = WalkGraph::new(&roads);
    let points: Vec<Coord> = stations
        .iter()
        .map(|station| Coord {
            x: station.lon,
            y: station.lat,
        })
        .collect();
    let circles = service_circles(&graph, &points, parameters);
    stations
        .iter()
        .zip(&circles)
        .map(|(station, circle)| {
            let rings = |polygon: &gridmap_circles::Polygon| -> Vec<Vec<[f64; 2]>> {
                std::iter::once(polygon.exterior())
                    .chain(polygon.interiors())
                    .map(|ring| ring.0.iter().map(|c| [c.x, c.y]).collect())
                    .collect()
            };
            json!({
                "type": "Feature",
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": circle.polygon.0.iter().map(rings).collect::<Vec<_>>(),
                },
                "properties": {
                    "code": station.code,
                    "name": station.name,
                    "kind": station.kind,
                    "minutes": parameters.minutes,
                    "speed_m_s": parameters.speed_m_s,
                    "distance_m": circle.distance_m,
                    "snap_m": circle.snap_m,
                    "method": circle.method.as_str(),
                },
            })
        })
        .collect()
}

/// Equal properties (the snap distance to a micrometre) and geometries
/// whose symmetric difference is under 1e-9 of the area.
async fn assert_same_circle(pool: &sqlx::PgPool, served: &Value, expected: &Value, uri: &str) {
    let (mut served_properties, mut expected_properties) =
        (served["properties"].clone(), expected["properties"].clone());
    let snap = |properties: &mut Value| properties["snap_m"].take().as_f64();
    match (snap(&mut served_properties), snap(&mut expected_properties)) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "{uri}: snap_m {a} vs {b}"),
        (a, b) => assert_eq!(a, b, "{uri}: snap_m"),
    }
    assert_eq!(served_properties, expected_properties, "{uri}");
    let (difference, area): (f64, f64) = sqlx::query_as(
        "WITH g AS (SELECT ST_GeomFromGeoJSON($1) AS a, ST_GeomFromGeoJSON($2) AS b)
         SELECT ST_Area(ST_SymDifference(a, b)), ST_Area(b) FROM g",
    )
    .bind(served["geometry"].to_string())
    .bind(expected["geometry"].to_string())
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(area > 0.0, "{uri}: {expected}");
    assert!(
        difference <= area * 1e-9,
        "{uri}: {} differs by {difference} of {area}",
        expected["properties"]["code"]
    );
}

#[tokio::test]
async fn default_circles_equal_recomputed_circles() {
    let demo = gridmap_e2e::demo_pool().await;
    let app = gridmap_server::app(gridmap_e2e::demo_state().await, None);
    let street = AreaFilter::Street(STREET.to_owned());
    let cases = [
        // The kinds' own minutes at the default speed: from the snapshot.
        ("red_station", 10.0, None, None, "snapshot"),
        ("grid_station", 15.0, None, None, "snapshot"),
        ("red_station", 10.0, None, Some(&street), "snapshot"),
        ("service_centre", 10.0, Some(1.2), Some(&street), "snapshot"),
        // Other parameters: recomputed per request.
        ("red_station", 15.0, None, Some(&street), "computed"),
        ("grid_station", 15.0, Some(0.9), None, "computed"),
    ];
    let mut n_features = 0;
    for (kind, minutes, speed, area, source) in cases {
        let parameters = Parameters {
            minutes,
            speed_m_s: speed.unwrap_or(Parameters::default().speed_m_s),
            ..Parameters::default()
        };
        let mut uri = format!("/api/v1/circles?kind={kind}&minutes={minutes}");
        if let Some(speed) = speed {
            uri.push_str(&format!("&speed_m_s={speed}"));
        }
        if let Some(area) = area {
            uri.push_str(&format!("&street={}", area.code()));
        }
        let (status, headers, body) = gridmap_e2e::send_for_headers(app.clone(), &uri).await;
        let served: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|err| panic!("{uri}: {err}: {}", String::from_utf8_lossy(&body)));
        assert_eq!(status, StatusCode::OK, "{uri}: {served}");
        assert_eq!(headers["x-circles-source"], source, "{uri}");
        let served = served["features"].as_array().unwrap();
        let expected = recomputed(&demo, kind, area, &parameters).await;
        assert!(!expected.is_empty(), "{uri}: no stations to compare");
        assert_eq!(served.len(), expected.len(), "{uri}");
        for (served, expected) in served.iter().zip(&expected) {
            assert_same_circle(&demo, served, expected, &uri).await;
        }
        n_features += expected.len();
    }
    assert!(n_features > 20, "{n_features} circles compared");
}
