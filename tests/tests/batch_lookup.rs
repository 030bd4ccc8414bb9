//! `POST /api/v1/lookup/batch` in every input format answers the same grids
//! as single lookups, in input order, with an error row per bad row.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gridmap_server::AppState;
use http_body_util::BodyExt as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use std::fmt::Write as _;
use tower::ServiceExt as _;

async fn post(
    state: &AppState,
    uri: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, String) {
    let response = gridmap_server::app(state.clone(), None)
        .oneshot(
            Request::post(uri)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Points inside grids and uniform over the extent (some outside), each with
/// the grid code a single lookup answers.
async fn points_with_grids(state: &AppState, n_points: usize) -> Vec<(f64, f64, Option<String>)> {
    let pool = gridmap_e2e::demo_pool().await;
    let (west, south, east, north): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT ST_XMin(e) - 0.02, ST_YMin(e) - 0.02, ST_XMax(e) + 0.02, ST_YMax(e) + 0.02
           FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let index = state.grid_index.load();
    let crs = gridmap_crs::LonLatCrs::Cgcs2000;
    (0..n_points)
        .map(|_| {
            let (lon, lat) = (rng.gen_range(west..east), rng.gen_range(south..north));
            let single = gridmap_server::lookup_answer(&index, lon, lat, crs);
            (lon, lat, single.grid.map(|grid| grid.code.to_string()))
        })
        .collect()
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Checks NDJSON answers: `bad` rows carry an error, the others the grid of
/// the single lookup, all in order.
fn check_ndjson(answers: &[Value], points: &[(f64, f64, Option<String>)], bad: &[usize]) {
    assert_eq!(answers.len(), points.len() + bad.len());
    let mut expected = points.iter();
    for (row, answer) in answers.iter().enumerate() {
        if bad.contains(&row) {
            assert!(answer["error"].is_string(), "row {row}: {answer}");
            assert!(answer["grid_code"].is_null());
            continue;
        }
        let (_, _, grid) = expected.next().unwrap();
        assert!(answer.get("error").is_none(), "row {row}: {answer}");
        assert_eq!(answer["id"], json!(format!("p{row}")), "row {row}");
        assert_eq!(answer["grid_code"].as_str(), grid.as_deref(), "row {row}");
        if grid.is_some() {
            for key in [
                "grid_name",
                "community_code",
                "street_code",
                "district_code",
            ] {
                assert!(answer[key].is_string(), "row {row}: {answer}");
            }
        }
    }
}

#[tokio::test]
async fn every_format_answers_like_single_lookups_in_order() {
    let state = gridmap_e2e::demo_state().await;
    let points = points_with_grids(&state, 300).await;
    assert!(points.iter().any(|p| p.2.is_none()) && points.iter().any(|p| p.2.is_some()));

    // CSV with a non-numeric, an out-of-range and a short row.
    let mut csv = String::from("id,lon,lat\n");
    let bad = [3, 10, 20];
    let mut points_iter = points.iter();
    for row in 0..points.len() + bad.len() {
        match bad.iter().position(|&b| b == row) {
            Some(0) => writeln!(csv, "p{row},abc,37.6").unwrap(),
            Some(1) => writeln!(csv, "p{row},120.5,95").unwrap(),
            Some(_) => writeln!(csv, "p{row},120.5").unwrap(),
            None => {
                let (lon, lat, _) = points_iter.next().unwrap();
                writeln!(csv, "p{row},{lon},{lat}").unwrap();
            }
        }
    }
    let (status, text) = post(&state, "/api/v1/lookup/batch", "text/csv", csv).await;
    assert_eq!(status, StatusCode::OK);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,grid_code,grid_name,community_code,street_code,district_code,error")
    );
    let mut expected = points.iter();
    for (row, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0], format!("p{row}"));
        if bad.contains(&row) {
            assert!(!fields[6].is_empty(), "row {row}: {line}");
        } else {
            let grid = expected.next().unwrap().2.as_deref().unwrap_or_default();
            assert_eq!(fields[1], grid, "row {row}: {line}");
            assert_eq!(fields[6], "", "row {row}: {line}");
        }
    }
    assert!(expected.next().is_none(), "rows missing from the answer");

    // NDJSON, JSON array and GeoJSON with the same bad rows.
    let rows: Vec<Value> = {
        let mut points_iter = points.iter();
        (0..points.len() + bad.len())
            .map(|row| match bad.iter().position(|&b| b == row) {
                Some(0) => json!({"id": format!("p{row}"), "lon": "abc", "lat": 37.6}),
                Some(1) => json!({"id": format!("p{row}"), "lon": 120.5, "lat": 95}),
                Some(_) => json!({"id": format!("p{row}"), "lon": 120.5}),
                None => {
                    let (lon, lat, _) = points_iter.next().unwrap();
                    json!({"id": format!("p{row}"), "lon": lon, "lat": lat})
                }
            })
            .collect()
    };
    let body: String = rows.iter().map(|row| format!("{row}\n")).collect();
    let (status, text) = post(&state, "/api/v1/lookup/batch", "application/x-ndjson", body).await;
    assert_eq!(status, StatusCode::OK);
    check_ndjson(&ndjson(&text), &points, &bad);

    let body = Value::Array(rows.clone()).to_string();
    let (status, text) = post(&state, "/api/v1/lookup/batch", "application/json", body).await;
    assert_eq!(status, StatusCode::OK);
    check_ndjson(&ndjson(&text), &points, &bad);

    let features: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({"type": "Feature", "properties": {"id": row["id"]},
                   "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}})
        })
        .collect();
    let body = json!({"type": "FeatureCollection", "features": features}).to_string();
    let (status, text) = post(&state, "/api/v1/lookup/batch", "application/geo+json", body).await;
    assert_eq!(status, StatusCode::OK);
    check_ndjson(&ndjson(&text), &points, &bad);
}

#[tokio::test]
async fn batch_accepts_gcj02_points() {
    let state = gridmap_e2e::demo_state().await;
    let points = points_with_grids(&state, 100).await;
    let crs = gridmap_crs::LonLatCrs::Gcj02;
    let body: String = points
        .iter()
        .enumerate()
        .map(|(row, (lon, lat, _))| {
            let (x, y) = crs.from_cgcs2000(*lon, *lat);
            format!("{}\n", json!({"id": format!("p{row}"), "lon": x, "lat": y}))
        })
        .collect();
    let (status, text) = post(
        &state,
        "/api/v1/lookup/batch?crs=gcj02",
        "application/x-ndjson",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    check_ndjson(&ndjson(&text), &points, &[]);
}

#[tokio::test]
async fn a_100k_row_csv_streams_back_every_row() {
    let state = gridmap_e2e::demo_state().await;
    let points = points_with_grids(&state, 1_000).await;
    let mut csv = String::from("id,lon,lat\r\n");
    for row in 0..100_000 {
        let (lon, lat, _) = points[row % points.len()];
        write!(csv, "{row},{lon},{lat}\r\n").unwrap();
    }
    let (status, text) = post(&state, "/api/v1/lookup/batch", "text/csv", csv).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 100_001);
    for (row, line) in lines[1..].iter().enumerate() {
        let (id, rest) = line.split_once(',').unwrap();
        assert_eq!(id, row.to_string());
        let grid = points[row % points.len()].2.as_deref().unwrap_or_default();
        assert!(rest.starts_with(&format!("{grid},")), "row {row}: {line}");
    }
}

#[tokio::test]
async fn malformed_batches_are_client_errors() {
    let state = gridmap_e2e::demo_state().await;
    for (content_type, body, status) in [
        (
            "text/plain",
            "id,lon,lat\n",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/json",
            "{\"not\": \"rows\"}",
            StatusCode::BAD_REQUEST,
        ),
        ("application/json", "[1, 2", StatusCode::BAD_REQUEST),
    ] {
        let (got, text) = post(
            &state,
            "/api/v1/lookup/batch",
            content_type,
            body.to_owned(),
        )
        .await;
        assert_eq!(got, status, "{content_type} {body}: {text}");
        assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    }
    let (got, _) = post(
        &state,
        "/api/v1/lookup/batch?crs=3857",
        "text/csv",
        String::new(),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    // A header without coordinates answers one error row.
    let (got, text) = post(
        &state,
        "/api/v1/lookup/batch",
        "text/csv",
        "a,b\n1,2\n".to_owned(),
    )
    .await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("must name the columns"), "{text}");
}

/// A client that holds a large body back until the server says
/// `100 Continue` (curl does above a megabyte) hears it at once, over a real
/// socket, rather than waiting out its own timeout (a second for curl)
/// because the streamed answer's head went out first.
#[tokio::test]
async fn a_client_waiting_for_100_continue_is_told_to_go_on() {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};
    let state = gridmap_e2e::demo_state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = gridmap_server::app(state, None)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = tokio::task::spawn_blocking(move || {
        let body = "id,lon,lat\n1,120.45,37.62\n";
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            socket,
            "POST /api/v1/lookup/batch HTTP/1.1\r\nHost: gridmap.test\r\n\
             Content-Type: text/csv\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        let asked = Instant::now();
        let mut first = [0_u8; 64];
        let n = socket.read(&mut first).unwrap();
        let waited = asked.elapsed();
        let first = String::from_utf8_lossy(&first[..n]).into_owned();
        socket.write_all(body.as_bytes()).unwrap();
        let mut rest = String::new();
        socket.read_to_string(&mut rest).unwrap();
        (first, waited, rest)
    });
    let (first, waited, rest) = client.await.unwrap();
    server.abort();
    assert!(
        first.starts_with("HTTP/1.1 100 Continue\r\n"),
        "the first answer was {first:?}"
    );
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    assert!(rest.contains("HTTP/1.1 200 OK"), "{rest}");
    assert!(rest.contains("\n1,370681"), "the point's grid: {rest}");
}
