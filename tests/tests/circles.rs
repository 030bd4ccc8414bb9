//! Walking service circles: Dijkstra distances against pgRouting on the demo
//! city's roads, circle polygons checked by PostGIS, and the HTTP endpoints.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

mod pgrouting;

use axum::http::StatusCode;
use gridmap_circles::{service_circles, Coord, MultiPolygon, Parameters, ShortestPaths, WalkGraph};
use gridmap_store::circle_queries::{load_circle_stations, load_roads};
use gridmap_store::topology_queries::AreaFilter;
use pgrouting::{
    copy_demo_roads, lattice_key, pgr_distances, pgr_snap, pgr_vertex_ids, PGR_TOPOLOGY,
};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// 东莱街道, the densest street of the demo city.
const STREET: &str = "370681001";

/// The 10-minute circle at the default speed: 720 m.
fn ten_minutes() -> Parameters {
    Parameters {
        minutes: 10.0,
        ..Parameters::default()
    }
}

async fn street_red_stations(pool: &PgPool, street: Option<&str>) -> Vec<Coord> {
    let area = street.map(|code| AreaFilter::Street(code.to_owned()));
    load_circle_stations(pool, "red_station", area.as_ref())
        .await
        .unwrap()
        .iter()
        .map(|station| Coord {
            x: station.lon,
            y: station.lat,
        })
        .collect()
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn circles_dijkstra_agrees_with_pgrouting(pool: PgPool) {
    let n_roads = copy_demo_roads(&pool, Some(STREET)).await;
    assert!(n_roads > 500, "{n_roads} roads");
    sqlx::raw_sql(PGR_TOPOLOGY).execute(&pool).await.unwrap();
    let graph = WalkGraph::new(&load_roads(&pool, None, 0.0).await.unwrap());
    let vertex_ids = pgr_vertex_ids(&pool).await;
    assert_eq!(vertex_ids.len(), graph.node_count());

    let stations = street_red_stations(&gridmap_e2e::demo_pool().await, Some(STREET)).await;
    assert!(stations.len() >= 3, "{} red stations", stations.len());
    let source_nodes: Vec<usize> = stations
        .iter()
        .map(|&station| graph.snap(station).unwrap().node)
        .collect();
    let limit_m = ten_minutes().limit_m();
    let mut paths = ShortestPaths::new(&graph);
    let sources: Vec<(usize, f64)> = source_nodes.iter().map(|&node| (node, 0.0)).collect();
    let ours: HashMap<i64, f64> = paths
        .run(&sources, limit_m)
        .to_vec()
        .into_iter()
        .map(|node| {
            let id = vertex_ids[&lattice_key(graph.node(node))];
            (id, paths.distance(node).unwrap())
        })
        .collect();
    let pgr_sources: Vec<i64> = source_nodes
        .iter()
        .map(|&node| vertex_ids[&lattice_key(graph.node(node))])
        .collect();
    let theirs = pgr_distances(&pool, &pgr_sources, limit_m).await;

    assert!(ours.len() > 100, "{} nodes reached", ours.len());
    let mut worst: f64 = 0.0;
    for (node, &distance) in &ours {
        match theirs.get(node) {
            Some(&expected) => worst = worst.max((distance - expected).abs()),
            // Only a node within rounding of the limit may be missed by one.
            None => assert!(distance > limit_m - 0.5, "node {node} at {distance} m"),
        }
    }
    for (node, &expected) in &theirs {
        assert!(
            ours.contains_key(node) || expected > limit_m - 0.5,
            "pgRouting reaches node {node} at {expected} m, we do not"
        );
    }
    println!(
        "{} nodes within {limit_m} m of {} sources; largest difference from pgRouting {worst} m",
        ours.len(),
        pgr_sources.len()
    );
    assert!(worst < 0.5, "largest difference {worst} m");
}

fn wkt(polygon: &MultiPolygon) -> String {
    let polygons: Vec<String> = polygon
        .0
        .iter()
        .map(|part| {
            let rings: Vec<String> = std::iter::once(part.exterior())
                .chain(part.interiors())
                .map(|ring| {
                    let coords: Vec<String> =
                        ring.0.iter().map(|c| format!("{} {}", c.x, c.y)).collect();
                    format!("({})", coords.join(","))
                })
                .collect();
            format!("({})", rings.join(","))
        })
        .collect();
    format!("MULTIPOLYGON({})", polygons.join(","))
}

/// Whether PostGIS finds each point inside (or on) the polygon.
async fn covered_by(pool: &PgPool, polygon: &MultiPolygon, points: &[Coord]) -> Vec<bool> {
    let lons: Vec<f64> = points.iter().map(|point| point.x).collect();
    let lats: Vec<f64> = points.iter().map(|point| point.y).collect();
    sqlx::query_scalar(
        "SELECT ST_Covers(ST_GeomFromText($1, 4490), ST_SetSRID(ST_MakePoint(lon, lat), 4490))
           FROM unnest($2::float8[], $3::float8[]) WITH ORDINALITY AS p(lon, lat, n)
          ORDER BY n",
    )
    .bind(wkt(polygon))
    .bind(&lons)
    .bind(&lats)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn circles_contain_reached_nodes_and_nothing_beyond_the_limit() {
    let demo = gridmap_e2e::demo_pool().await;
    let street = AreaFilter::Street(STREET.to_owned());
    let parameters = ten_minutes();
    let limit_m = parameters.limit_m();
    let roads = load_roads(&demo, Some(&street), limit_m + parameters.frontage_m)
        .await
        .unwrap();
    let graph = WalkGraph::new(&roads);
    let stations = street_red_stations(&demo, Some(STREET)).await;
    let circles = service_circles(&graph, &stations, &parameters);
    let mut paths = ShortestPaths::new(&graph);
    let mut n_checked = 0;
    for (station, circle) in stations.iter().zip(&circles).take(8) {
        let Some(snap_m) = circle.snap_m else {
            continue;
        };
        let snap = graph.snap(*station).unwrap();
        assert!((snap.distance_m - snap_m).abs() < 1e-9);
        let reached: Vec<Coord> = paths
            .run(&[(snap.node, snap.distance_m)], limit_m)
            .iter()
            .map(|&node| graph.node(node))
            .collect();
        assert!(!reached.is_empty());
        let inside = covered_by(&demo, &circle.polygon, &reached).await;
        assert!(inside.iter().all(|&is_inside| is_inside), "{station:?}");

        // Straight-line distance never exceeds network distance, so no point
        // of the circle lies farther than limit + frontage from the station.
        // The 2 m slack covers the local projection and the buffer's arcs.
        let far_sql = "SELECT ST_X(p), ST_Y(p) FROM (
                 SELECT DISTINCT ST_StartPoint(geom) AS p FROM roads
                  WHERE ST_DWithin(geom_3857, ST_Transform(ST_SetSRID(ST_MakePoint($1, $2), 4490), 3857), 2500)) v
                WHERE ST_Distance(p::geography, ST_SetSRID(ST_MakePoint($1, $2), 4490)::geography) > $3";
        let far: Vec<(f64, f64)> = sqlx::query_as(far_sql)
            .bind(station.x)
            .bind(station.y)
            .bind(limit_m + parameters.frontage_m + 2.0)
            .fetch_all(&demo)
            .await
            .unwrap();
        assert!(!far.is_empty());
        let far: Vec<Coord> = far.into_iter().map(|(x, y)| Coord { x, y }).collect();
        let inside = covered_by(&demo, &circle.polygon, &far).await;
        assert!(inside.iter().all(|&is_inside| !is_inside), "{station:?}");
        n_checked += 1;
    }
    assert!(n_checked >= 3, "{n_checked} network circles checked");
}

async fn get_json(uri: &str) -> (StatusCode, Value) {
    gridmap_e2e::send_json(
        gridmap_server::app(gridmap_e2e::demo_state().await, None),
        uri,
    )
    .await
}

#[tokio::test]
async fn circles_endpoints_answer_on_the_demo_city() {
    let demo = gridmap_e2e::demo_pool().await;
    let n_stations = street_red_stations(&demo, Some(STREET)).await.len();
    let (status, json) = get_json(&format!(
        "/api/v1/circles?kind=red_station&minutes=10&street={STREET}"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["type"], "FeatureCollection");
    let features = json["features"].as_array().unwrap();
    assert_eq!(features.len(), n_stations);
    for feature in features {
        let properties = &feature["properties"];
        assert_eq!(properties["kind"], "red_station");
        assert_eq!(properties["minutes"], 10.0);
        assert!((properties["distance_m"].as_f64().unwrap() - 720.0).abs() < 1e-9);
        assert!(
            ["network", "straight_line_fallback"].contains(&properties["method"].as_str().unwrap())
        );
        assert_eq!(feature["geometry"]["type"], "MultiPolygon");
        assert!(!feature["geometry"]["coordinates"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    let total: i64 = sqlx::query_scalar(
        "SELECT sum(households)::bigint FROM buildings WHERE starts_with(code, $1)",
    )
    .bind(STREET)
    .fetch_one(&demo)
    .await
    .unwrap();
    let (status, json) = get_json(&format!(
        "/api/v1/coverage?kind=red_station&minutes=10&street={STREET}&new_sites=3"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["total_households"].as_i64().unwrap(), total);
    let covered = json["covered_households"].as_i64().unwrap();
    assert!(covered > 0 && covered < total, "{covered} of {total}");
    let per_community = json["per_community"].as_array().unwrap();
    let sum: i64 = per_community
        .iter()
        .map(|community| community["covered_households"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, covered);
    let gains: Vec<i64> = json["best_new_sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| site["gained_households"].as_i64().unwrap())
        .collect();
    assert_eq!(gains.len(), 3, "{json}");
    assert!(gains.windows(2).all(|pair| pair[0] >= pair[1]), "{gains:?}");
    assert!(gains.iter().sum::<i64>() <= total - covered);
    // Public answer: totals only, so no building code (22 digits) anywhere.
    let text = json.to_string();
    let longest_digit_run = text
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_digit_run < 22, "{text}");

    for bad in [
        "/api/v1/circles?kind=bus_stop&minutes=10",
        "/api/v1/circles?kind=red_station",
        "/api/v1/circles?kind=red_station&minutes=ten",
        "/api/v1/circles?kind=red_station&minutes=10&speed_m_s=-1",
        "/api/v1/circles?kind=red_station&minutes=10&street=12",
        "/api/v1/coverage?kind=red_station&minutes=10",
        "/api/v1/coverage?kind=red_station&minutes=10&street=370681001&new_sites=99",
    ] {
        let (status, json) = get_json(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
        assert!(json["error"].is_string(), "{bad}: {json}");
    }
    let (status, _) =
        get_json("/api/v1/coverage?kind=red_station&minutes=10&street=370681999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Run by hand in release mode; prints medians of three runs.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
#[ignore = "timing, run by hand in release mode"]
async fn circles_timing_all_red_stations_vs_pgrouting(pool: PgPool) {
    let n_roads = copy_demo_roads(&pool, None).await;
    sqlx::raw_sql(PGR_TOPOLOGY).execute(&pool).await.unwrap();
    let vertex_ids = pgr_vertex_ids(&pool).await;
    let roads = load_roads(&pool, None, 0.0).await.unwrap();
    let stations = street_red_stations(&gridmap_e2e::demo_pool().await, None).await;
    let parameters = ten_minutes();
    let limit_m = parameters.limit_m();

    let mut build = Vec::new();
    let mut dijkstra = Vec::new();
    let mut circles = Vec::new();
    let mut pgr = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let graph = WalkGraph::new(&roads);
        build.push(started.elapsed());

        let started = Instant::now();
        let mut paths = ShortestPaths::new(&graph);
        let snaps: Vec<usize> = stations
            .iter()
            .map(|&station| graph.snap(station).unwrap().node)
            .collect();
        let mut n_reached = 0;
        for &node in &snaps {
            n_reached += paths.run(&[(node, 0.0)], limit_m).len();
        }
        dijkstra.push(started.elapsed());
        assert!(n_reached > 0);

        let started = Instant::now();
        let polygons = service_circles(&graph, &stations, &parameters);
        circles.push(started.elapsed());
        assert_eq!(polygons.len(), stations.len());

        let sources: Vec<i64> = snaps
            .iter()
            .map(|&node| vertex_ids[&lattice_key(graph.node(node))])
            .collect();
        let started = Instant::now();
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pgr_drivingDistance(
                 'SELECT id, source, target, cost, reverse_cost FROM edge', $1::bigint[], $2,
                 directed => false)",
        )
        .bind(&sources)
        .bind(limit_m)
        .fetch_one(&pool)
        .await
        .unwrap();
        pgr.push(started.elapsed());
        assert!(rows > 0);
    }
    println!(
        "{} roads, {} red stations, {limit_m} m: graph build {:?}, per-station Dijkstra {:?}, \
         circles with polygons {:?}, pgr_drivingDistance {:?} (medians of 3)",
        n_roads,
        stations.len(),
        median(build),
        median(dijkstra),
        median(circles),
        median(pgr),
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn lookup_walking_distances_agree_with_pgrouting(pool: PgPool) {
    copy_demo_roads(&pool, None).await;
    sqlx::raw_sql(PGR_TOPOLOGY).execute(&pool).await.unwrap();
    let demo = gridmap_e2e::demo_pool().await;
    let state = gridmap_e2e::demo_state().await;
    let index = state.grid_index.load_full();
    let stations = load_circle_stations(&demo, "red_station", None)
        .await
        .unwrap();
    // (vertex, station index, metres from the station to the vertex)
    let mut starts: Vec<(i64, usize, f64)> = Vec::new();
    for (position, station) in stations.iter().enumerate() {
        for (vertex, metres) in pgr_snap(&pool, station.lon, station.lat).await {
            starts.push((vertex, position, metres));
        }
    }
    let start_ids: Vec<i64> = starts.iter().map(|(id, ..)| *id).collect();
    // Points spread over the city: every 97th building's point on surface.
    let points: Vec<(f64, f64)> = sqlx::query_as(
        "SELECT ST_X(p), ST_Y(p) FROM (
             SELECT ST_PointOnSurface(geom) AS p, row_number() OVER (ORDER BY code) AS n
               FROM buildings) b
          WHERE n % 97 = 0 LIMIT 40",
    )
    .fetch_all(&demo)
    .await
    .unwrap();
    assert!(points.len() >= 20);
    let mut compared = 0;
    for (lon, lat) in points {
        let answer =
            gridmap_server::lookup_answer(&index, lon, lat, gridmap_crs::LonLatCrs::Cgcs2000);
        let answer = serde_json::to_value(&answer).unwrap();
        let red = answer["nearest_stations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "red_station")
            .unwrap();
        let ends = pgr_snap(&pool, lon, lat).await;
        if ends[0].1 > 500.0 {
            assert!(red["walking"].is_null(), "off the network: {red}");
            continue;
        }
        let end_ids: Vec<i64> = ends.iter().map(|(id, _)| *id).collect();
        let costs: Vec<(i64, i64, f64)> = sqlx::query_as(
            "SELECT start_vid, end_vid, agg_cost FROM pgr_dijkstraCost(
                 'SELECT id, source, target, cost, reverse_cost FROM edge', $1::bigint[], $2::bigint[],
                 directed => false)",
        )
        .bind(&start_ids)
        .bind(&end_ids)
        .fetch_all(&pool)
        .await
        .unwrap();
        let cost: HashMap<(i64, i64), f64> =
            costs.into_iter().map(|(a, b, c)| ((a, b), c)).collect();
        let mut oracle = f64::INFINITY;
        let mut best = String::new();
        for (start, position, to_start) in &starts {
            for (end, to_end) in &ends {
                let network = if start == end {
                    Some(0.0)
                } else {
                    cost.get(&(*start, *end)).copied()
                };
                if let Some(network) = network {
                    let total = to_start + network + to_end;
                    if total < oracle {
                        oracle = total;
                        best.clone_from(&stations[*position].code);
                    }
                }
            }
        }
        let walked = red["walking"]["distance_m"].as_f64().unwrap();
        assert!(
            (walked - oracle).abs() <= 0.051,
            "({lon}, {lat}): gridmap walks {walked} m to {}, pgRouting {oracle} m to {best}",
            red["walking"]["code"]
        );
        assert!(
            walked + 0.051 >= red["distance_m"].as_f64().unwrap(),
            "a walk is never shorter than the straight line"
        );
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} points were on the network");
}
