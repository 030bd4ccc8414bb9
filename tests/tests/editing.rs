//! The editing API against a real PostGIS: each operation's happy path and
//! refusals, versions and concurrent writers, history and revert, access
//! by role and scope, and the edit reaching lookups and tiles within a
//! second. Geometry outcomes are checked with PostGIS as the oracle.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// Two streets of one district; community 1 (120.40–120.43 E) holds grids A
/// (120.40–120.41) and B (120.41–120.42), its east third uncovered;
/// community 2 (120.43–120.46 E, street 2) holds one grid. B has a grid unit
/// with a building and address, and a building outside any unit near A.
const SETUP: &str = "
    INSERT INTO districts VALUES ('370681', '龙口市',
        ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.46 37.60,120.46 37.61,120.40 37.61,120.40 37.60))', 4490)));
    INSERT INTO streets VALUES
        ('370681001', '370681', '东莱街道',
         ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.43 37.60,120.43 37.61,120.40 37.61,120.40 37.60))', 4490))),
        ('370681002', '370681', '龙港街道',
         ST_Multi(ST_GeomFromText('POLYGON((120.43 37.60,120.46 37.60,120.46 37.61,120.43 37.61,120.43 37.60))', 4490)));
    INSERT INTO communities VALUES
        ('370681001001', '370681001', '南苑社区', 'urban',
         ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.43 37.60,120.43 37.61,120.40 37.61,120.40 37.60))', 4490))),
        ('370681002001', '370681002', '港城社区', 'urban',
         ST_Multi(ST_GeomFromText('POLYGON((120.43 37.60,120.46 37.60,120.46 37.61,120.43 37.61,120.43 37.60))', 4490)));
    INSERT INTO grids (code, community_code, name, kind, status, worker_name, worker_phone, geom) VALUES
        ('370681001001001', '370681001001', '南苑第一网格', 'basic', 'green', '王芳', '13800000001',
         ST_Multi(ST_GeomFromText('POLYGON((120.40 37.60,120.41 37.60,120.41 37.61,120.40 37.61,120.40 37.60))', 4490))),
        ('370681001001002', '370681001001', '南苑第二网格', 'basic', 'green', '李强', '13800000002',
         ST_Multi(ST_GeomFromText('POLYGON((120.41 37.60,120.42 37.60,120.42 37.61,120.41 37.61,120.41 37.60))', 4490))),
        ('370681002001001', '370681002001', '港城第一网格', 'basic', 'green', NULL, NULL,
         ST_Multi(ST_GeomFromText('POLYGON((120.43 37.60,120.46 37.60,120.46 37.61,120.43 37.61,120.43 37.60))', 4490)));
    INSERT INTO grid_units (code, grid_code, name, geom) VALUES
        ('370681001001002001', '370681001001002', '第二网格一单元',
         ST_Multi(ST_GeomFromText('POLYGON((120.415 37.602,120.417 37.602,120.417 37.604,120.415 37.604,120.415 37.602))', 4490)));
    INSERT INTO buildings (code, grid_code, unit_code, name, households, floors, geom) VALUES
        ('3706810010010020010001', '370681001001002', '370681001001002001', '1号楼', 40, 6,
         ST_Multi(ST_GeomFromText('POLYGON((120.4155 37.6025,120.4160 37.6025,120.4160 37.6030,120.4155 37.6030,120.4155 37.6025))', 4490))),
        ('3706810010010020000001', '370681001001002', NULL, '门卫室', 0, 1,
         ST_Multi(ST_GeomFromText('POLYGON((120.4102 37.605,120.4106 37.605,120.4106 37.606,120.4102 37.606,120.4102 37.605))', 4490)));
    INSERT INTO addresses (code, building_code, address, geom) VALUES
        ('370681001001002000000101', '3706810010010020000001', '山东省烟台市龙口市东莱街道南苑路1号门卫室',
         ST_SetSRID(ST_MakePoint(120.4104, 37.6055), 4490));";

/// Code, EWKB, name, status and worker of a grid.
type GridRow = (String, Vec<u8>, String, String, Option<String>);

const A: &str = "370681001001001";
const B: &str = "370681001001002";
const OTHER_STREET_GRID: &str = "370681002001001";

struct Fixture {
    pool: PgPool,
    app: axum::Router,
    admin: String,
    planner: String,
    other_planner: String,
    viewer: String,
    key: String,
}

use gridmap_e2e::{api_key_for, session_for};

async fn fixture(pool: PgPool) -> Fixture {
    sqlx::raw_sql(SETUP).execute(&pool).await.unwrap();
    let admin = session_for(&pool, "admin", "admin", &[]).await;
    let planner = session_for(&pool, "planner-donglai", "planner", &["370681001"]).await;
    let other_planner = session_for(&pool, "planner-longgang", "planner", &["370681002001"]).await;
    let viewer = session_for(&pool, "viewer", "viewer", &[]).await;
    let key = api_key_for(&pool, "hotline").await;
    let state = gridmap_server::AppState::load(pool.clone(), 1 << 20)
        .await
        .unwrap();
    Fixture {
        app: gridmap_server::app(state, None),
        pool,
        admin,
        planner,
        other_planner,
        viewer,
        key,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn etag(&self) -> String {
        self.headers
            .get("etag")
            .unwrap_or_else(|| panic!("no ETag: {}", self.body))
            .to_str()
            .unwrap()
            .to_owned()
    }
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    if_match: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn rectangle(west: f64, south: f64, east: f64, north: f64) -> Value {
    json!({
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]
    })
}

async fn etag_of(fx: &Fixture, code: &str) -> String {
    let answer = call(
        &fx.app,
        Method::GET,
        &format!("/api/v1/grids/{code}"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.etag()
}

/// Area in m² of a PostGIS expression over the table `grids`.
async fn area_m2(pool: &PgPool, sql_geometry: &str) -> f64 {
    sqlx::query_scalar::<_, Option<f64>>(&format!("SELECT ST_Area(({sql_geometry})::geography)"))
        .fetch_one(pool)
        .await
        .unwrap()
        .unwrap_or(0.0)
}

/// Area of the community not covered by its grids, and of overlaps between them.
async fn cover_defects_m2(pool: &PgPool) -> (f64, f64) {
    let gap = area_m2(
        pool,
        "SELECT ST_Difference(c.geom, (SELECT ST_Union(geom) FROM grids WHERE community_code = c.code))
           FROM communities c WHERE c.code = '370681001001'",
    )
    .await;
    let overlap = area_m2(
        pool,
        "SELECT ST_Union(ST_Intersection(a.geom, b.geom)) FROM grids a JOIN grids b
            ON a.code < b.code AND a.community_code = b.community_code AND ST_Intersects(a.geom, b.geom)",
    )
    .await;
    (gap, overlap)
}

async fn create_east_grid(fx: &Fixture, west: f64) -> Answer {
    call(
        &fx.app,
        Method::POST,
        "/api/v1/grids",
        Some(&fx.admin),
        None,
        Some(json!({
            "type": "Feature",
            "properties": {"community_code": "370681001001", "name": "南苑第三网格",
                           "worker_name": "赵敏", "worker_phone": "13800000003"},
            "geometry": rectangle(west, 37.60, 120.43, 37.61),
        })),
    )
    .await
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_hand_drawn_grid_is_snapped_to_its_neighbours_and_shows_within_a_second(pool: PgPool) {
    let fx = fixture(pool).await;
    let listener = gridmap_server::subscribe(&fx.pool).await.unwrap();
    let state = gridmap_server::AppState::load(fx.pool.clone(), 1 << 20)
        .await
        .unwrap();
    let follower = tokio::spawn(gridmap_server::follow_changes(listener, state.clone()));
    let live_app = gridmap_server::app(state, None);

    // The west edge is drawn 0.2 m into grid B, as a hand on a map would.
    let created = create_east_grid(&fx, 120.42 - 0.000_002).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers["location"], "370681001001003");
    let etag = created.etag();
    assert_eq!(etag_of(&fx, "370681001001003").await, etag);
    let (gap, overlap) = cover_defects_m2(&fx.pool).await;
    assert!(gap < 0.01, "gap of {gap} m² left");
    assert!(overlap < 0.01, "overlap of {overlap} m² left");

    // Lookups and tiles of another server state show it within a second.
    let started = Instant::now();
    loop {
        let answer = call(
            &live_app,
            Method::GET,
            "/api/v1/lookup?lon=120.425&lat=37.605",
            None,
            None,
            None,
        )
        .await;
        if answer.body["grid"]["code"] == "370681001001003" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "lookup still says {}",
            answer.body["grid"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The tile follows its own rebuild of the drawn polygons, so it is
    // polled like the lookup, against the same one-second budget.
    let tile = gridmap_tiles::TileCoord::containing(120.425, 37.605, 15);
    let uri = format!("/tiles/grids/{}/{}/{}", tile.z, tile.x, tile.y);
    loop {
        let bytes = live_app
            .clone()
            .oneshot(Request::get(uri.as_str()).body(Body::empty()).unwrap())
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        if bytes.windows(15).any(|w| w == b"370681001001003") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "tile {uri} still lacks the new grid after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    follower.abort();
    let _ = follower.await;

    // Personal data: only for roles that may see it.
    let path = "/api/v1/grids/370681001001003";
    for (token, shows) in [
        (None, false),
        (Some(fx.viewer.as_str()), false),
        (Some(fx.planner.as_str()), true),
        (Some(fx.key.as_str()), true),
    ] {
        let answer = call(&fx.app, Method::GET, path, token, None, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body["properties"].get("worker_name").is_some(),
            shows,
            "{token:?}"
        );
        assert!(!answer.body.to_string().contains("ewkb"));
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn refusals_say_what_and_where_and_change_nothing(pool: PgPool) {
    let fx = fixture(pool).await;
    let tag = etag_of(&fx, A).await;
    let patch = |geometry: Value| json!({"type": "Feature", "properties": {"status": "red"}, "geometry": geometry});
    let uri = format!("/api/v1/grids/{A}");

    // 100 m into B: an overlap, measured as PostGIS measures it.
    let into_b = rectangle(120.40, 37.60, 120.411, 37.61);
    let refused = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.admin),
        Some(&tag),
        Some(patch(into_b)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let finding = &refused.body["findings"]["features"][0];
    assert_eq!(finding["properties"]["kind"], "overlap");
    assert_eq!(finding["properties"]["codes"], json!([A, B]));
    let expected = area_m2(
        &fx.pool,
        &format!("SELECT ST_Intersection(geom, ST_GeomFromText('POLYGON((120.40 37.60,120.411 37.60,120.411 37.61,120.40 37.61,120.40 37.60))', 4490)) FROM grids WHERE code = '{B}'"),
    )
    .await;
    let reported = finding["properties"]["area_m2"].as_f64().unwrap();
    assert!(
        (reported - expected).abs() < 0.01 * expected,
        "{reported} vs {expected}"
    );
    assert_eq!(finding["geometry"]["type"], "Polygon");

    // Shrinking A uncovers area nobody takes: a gap.
    let shrunk = rectangle(120.40, 37.60, 120.409, 37.61);
    let refused = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.admin),
        Some(&tag),
        Some(patch(shrunk)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["kind"],
        "gap"
    );

    // Out of the community to the west.
    let outside = rectangle(120.399, 37.60, 120.41, 37.61);
    let refused = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.admin),
        Some(&tag),
        Some(patch(outside)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["kind"],
        "outside_community"
    );

    // A self-crossing ring, swapped axes, projected metres.
    let bowtie = json!({"type": "Polygon", "coordinates": [[[120.40, 37.60], [120.41, 37.61], [120.41, 37.60], [120.40, 37.61], [120.40, 37.60]]]});
    let refused = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.admin),
        Some(&tag),
        Some(patch(bowtie)),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("Self-intersection"),
        "{}",
        refused.body
    );
    let swapped = rectangle(37.60, 120.40, 37.61, 120.41);
    let refused = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.admin),
        Some(&tag),
        Some(patch(swapped)),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("[lat, lon]"),
        "{}",
        refused.body
    );

    // Codes: ill-formed, of another community, already in use.
    for (code, status) in [
        ("37068100100100X", StatusCode::BAD_REQUEST),
        ("370681002001009", StatusCode::BAD_REQUEST),
        (A, StatusCode::CONFLICT),
    ] {
        let answer = call(
            &fx.app,
            Method::POST,
            "/api/v1/grids",
            Some(&fx.admin),
            None,
            Some(json!({
                "type": "Feature",
                "properties": {"code": code, "community_code": "370681001001", "name": "新网格"},
                "geometry": rectangle(120.42, 37.60, 120.43, 37.61),
            })),
        )
        .await;
        assert_eq!(answer.status, status, "{code}: {}", answer.body);
    }

    // Deleting a grid with buildings, or one whose area nobody else covers.
    let answer = call(
        &fx.app,
        Method::DELETE,
        &format!("/api/v1/grids/{B}"),
        Some(&fx.admin),
        Some(&etag_of(&fx, B).await),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    let answer = call(
        &fx.app,
        Method::DELETE,
        &uri,
        Some(&fx.admin),
        Some(&tag),
        None,
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );

    // Nothing of it reached the database.
    assert_eq!(etag_of(&fx, A).await, tag);
    let untouched: bool = sqlx::query_scalar(&format!(
        "SELECT ST_Equals(geom, ST_GeomFromText('MULTIPOLYGON(((120.40 37.60,120.41 37.60,120.41 37.61,120.40 37.61,120.40 37.60)))', 4490)) AND status = 'green' FROM grids WHERE code = '{A}'"
    ))
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert!(untouched);
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&fx.pool)
        .await
        .unwrap();
    assert_eq!(audited, 0);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn stale_writes_get_412_and_concurrent_writers_lose_nothing(pool: PgPool) {
    let fx = fixture(pool).await;
    let uri = format!("/api/v1/grids/{A}");
    let status = |s: &str| json!({"type": "Feature", "properties": {"status": s}});
    let missing = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.planner),
        None,
        Some(status("red")),
    )
    .await;
    assert_eq!(missing.status, StatusCode::PRECONDITION_REQUIRED);

    // Two planners change the same grid from the same version at once.
    let tag = etag_of(&fx, A).await;
    let (first, second) = tokio::join!(
        call(
            &fx.app,
            Method::PATCH,
            &uri,
            Some(&fx.planner),
            Some(&tag),
            Some(status("red"))
        ),
        call(
            &fx.app,
            Method::PATCH,
            &uri,
            Some(&fx.admin),
            Some(&tag),
            Some(status("blue"))
        ),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "{} / {}",
        first.body,
        second.body
    );
    let (winner, loser) = if first.status == StatusCode::OK {
        (&first, &second)
    } else {
        (&second, &first)
    };
    let now = call(&fx.app, Method::GET, &uri, None, None, None).await;
    assert_eq!(
        now.body["properties"]["status"],
        winner.body["features"][0]["properties"]["status"]
    );
    assert_eq!(loser.body["current"][A], now.body["properties"]["version"]);

    // Neighbouring edits at once: a shared-edge move (A and B) and a change of B.
    let (gap_before, _) = cover_defects_m2(&fx.pool).await;
    let (tag_a, tag_b) = (etag_of(&fx, A).await, etag_of(&fx, B).await);
    let both = format!("{tag_a}, {tag_b}");
    let (move_uri, b_uri) = (
        format!("/api/v1/grids/{A}/move-edge"),
        format!("/api/v1/grids/{B}"),
    );
    let (moved, changed) = tokio::join!(
        call(
            &fx.app,
            Method::POST,
            &move_uri,
            Some(&fx.planner),
            Some(&both),
            Some(json!({"neighbour": B, "geometry": rectangle(120.40, 37.60, 120.412, 37.61)}))
        ),
        call(
            &fx.app,
            Method::PATCH,
            &b_uri,
            Some(&fx.admin),
            Some(&tag_b),
            Some(json!({"type": "Feature", "properties": {"name": "南苑二网格"}}))
        ),
    );
    let mut statuses = [moved.status, changed.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "{} / {}",
        moved.body,
        changed.body
    );
    let (gap, overlap) = cover_defects_m2(&fx.pool).await;
    assert!(
        (gap - gap_before).abs() < 0.01 && overlap < 0.01,
        "gap {gap} (was {gap_before}), overlap {overlap}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn shared_edges_splits_and_merges_keep_the_cover_and_move_the_buildings(pool: PgPool) {
    let fx = fixture(pool).await;
    let union_before: Vec<u8> = sqlx::query_scalar(
        "SELECT ST_AsEWKB(ST_Union(geom)) FROM grids WHERE community_code = '370681001001'",
    )
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    let same_union = |pool: PgPool, union: Vec<u8>| async move {
        let difference = area_m2(&pool, &format!(
            "SELECT ST_SymDifference(ST_GeomFromEWKB('\\x{}'::bytea), (SELECT ST_Union(geom) FROM grids WHERE community_code = '370681001001'))",
            union.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )).await;
        assert!(difference < 0.01, "the cover changed by {difference} m²");
    };

    // Move the A|B edge 90 m east: the gatehouse (unitless, in B) goes to A.
    let both = format!("{}, {}", etag_of(&fx, A).await, etag_of(&fx, B).await);
    let moved = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/grids/{A}/move-edge"),
        Some(&fx.planner),
        Some(&both),
        Some(json!({"neighbour": B, "geometry": rectangle(120.40, 37.60, 120.411, 37.61)})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["features"].as_array().unwrap().len(), 2);
    assert_eq!(
        moved.body["recoded"],
        json!([["3706810010010020000001", "3706810010010010000001"]])
    );
    same_union(fx.pool.clone(), union_before.clone()).await;
    let address_follows: String = sqlx::query_scalar(
        "SELECT building_code FROM addresses WHERE code = '370681001001002000000101'",
    )
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert_eq!(address_follows, "3706810010010010000001");
    let b_west: f64 = sqlx::query_scalar(&format!(
        "SELECT ST_XMin(geom) FROM grids WHERE code = '{B}'"
    ))
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert!((b_west - 120.411).abs() < 1e-9, "{b_west}");

    // Split B at 120.418 E: the larger west part keeps B's code, with the unit.
    let line = json!({"type": "LineString", "coordinates": [[120.418, 37.599], [120.418, 37.611]]});
    let split = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/grids/{B}/split"),
        Some(&fx.planner),
        Some(&etag_of(&fx, B).await),
        Some(json!({"line": line})),
    )
    .await;
    assert_eq!(split.status, StatusCode::OK, "{}", split.body);
    let codes: Vec<&str> = split.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(codes, [B, "370681001001003"]);
    same_union(fx.pool.clone(), union_before.clone()).await;
    let unit_grid: String =
        sqlx::query_scalar("SELECT grid_code FROM grid_units WHERE code = '370681001001002001'")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(unit_grid, B);
    let new_area = area_m2(
        &fx.pool,
        "SELECT geom FROM grids WHERE code = '370681001001003'",
    )
    .await;
    let oracle = area_m2(&fx.pool, "SELECT ST_GeomFromText('POLYGON((120.418 37.60,120.42 37.60,120.42 37.61,120.418 37.61,120.418 37.60))', 4490)").await;
    assert!((new_area - oracle).abs() < 0.01, "{new_area} vs {oracle}");

    // A line that misses the grid cuts nothing.
    let astray = json!({"line": {"type": "LineString", "coordinates": [[120.45, 37.599], [120.45, 37.611]]}});
    let refused = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/grids/{A}/split"),
        Some(&fx.planner),
        Some(&etag_of(&fx, A).await),
        Some(astray),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    // Merge the two back: the smaller code survives, the other is gone.
    let tags = format!(
        "{}, {}",
        etag_of(&fx, B).await,
        etag_of(&fx, "370681001001003").await
    );
    let merged = call(
        &fx.app,
        Method::POST,
        "/api/v1/grids/merge",
        Some(&fx.planner),
        Some(&tags),
        Some(json!({"codes": ["370681001001003", B]})),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.body["deleted"], json!(["370681001001003"]));
    same_union(fx.pool.clone(), union_before).await;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM grids WHERE community_code = '370681001001'")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(count, 2);
    // Grids that do not touch are not merged.
    let tags = format!(
        "{}, {}",
        etag_of(&fx, A).await,
        etag_of(&fx, OTHER_STREET_GRID).await
    );
    let refused = call(
        &fx.app,
        Method::POST,
        "/api/v1/grids/merge",
        Some(&fx.admin),
        Some(&tags),
        Some(json!({"codes": [A, OTHER_STREET_GRID]})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    let history = call(
        &fx.app,
        Method::GET,
        &format!("/api/v1/grids/{B}/history"),
        Some(&fx.viewer),
        None,
        None,
    )
    .await;
    assert_eq!(history.status, StatusCode::OK);
    let operations: Vec<&str> = history.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["move_edge", "split", "merge"]);
    assert!(
        history.body["entries"][0]["before"]["properties"]
            .get("worker_name")
            .is_none(),
        "viewers see no workers"
    );
    assert_eq!(history.body["entries"][0]["actor"], "planner-donglai");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_revert_restores_exactly(pool: PgPool) {
    let fx = fixture(pool).await;
    let original: Vec<GridRow> = sqlx::query_as(
        "SELECT code, ST_AsEWKB(geom), name, status, worker_name FROM grids ORDER BY code",
    )
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    let first_version: i64 = etag_of(&fx, A).await.trim_matches('"').parse().unwrap();

    let renamed = call(&fx.app, Method::PATCH, &format!("/api/v1/grids/{A}"), Some(&fx.admin), Some(&etag_of(&fx, A).await),
        Some(json!({"type": "Feature", "properties": {"name": "改名网格", "status": "orange", "worker_name": ""}}))).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let both = format!("{}, {}", etag_of(&fx, A).await, etag_of(&fx, B).await);
    let moved = call(&fx.app, Method::POST, &format!("/api/v1/grids/{A}/move-edge"), Some(&fx.admin), Some(&both),
        Some(json!({"neighbour": B, "geometry": {"type": "Polygon", "coordinates": [[[120.40, 37.60], [120.4123456789, 37.60], [120.4087654321, 37.61], [120.40, 37.61], [120.40, 37.60]]]}}))).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);

    // Undo the edge move (both grids at once), then A's rename.
    let change = moved.body["change_id"].as_i64().unwrap();
    let undone = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/changes/{change}/revert"),
        Some(&fx.admin),
        None,
        None,
    )
    .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);
    // The same change cannot be undone twice: its grids moved on.
    let again = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/changes/{change}/revert"),
        Some(&fx.admin),
        None,
        None,
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        again.body
    );
    let reverted = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/grids/{A}/revert"),
        Some(&fx.admin),
        Some(&etag_of(&fx, A).await),
        Some(json!({"version": first_version})),
    )
    .await;
    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.body);

    // Undoing a growth into uncovered land uncovers it again, as before.
    let grown = call(
        &fx.app,
        Method::PATCH,
        &format!("/api/v1/grids/{B}"),
        Some(&fx.admin),
        Some(&etag_of(&fx, B).await),
        Some(json!({"type": "Feature", "geometry": rectangle(120.41, 37.60, 120.425, 37.61)})),
    )
    .await;
    assert_eq!(grown.status, StatusCode::OK, "{}", grown.body);
    let change = grown.body["change_id"].as_i64().unwrap();
    let undone = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/changes/{change}/revert"),
        Some(&fx.admin),
        None,
        None,
    )
    .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);

    let now: Vec<GridRow> = sqlx::query_as(
        "SELECT code, ST_AsEWKB(geom), name, status, worker_name FROM grids ORDER BY code",
    )
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    assert_eq!(
        now, original,
        "geometry bytes and properties restored exactly"
    );
    let operations: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT operation FROM audit_log WHERE code = '{A}' ORDER BY id"
    ))
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    assert_eq!(operations, ["update", "move_edge", "revert", "revert"]);
    let operations: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT operation FROM audit_log WHERE code = '{B}' ORDER BY id"
    ))
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    assert_eq!(operations, ["move_edge", "revert", "reshape", "revert"]);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn writes_need_a_role_and_a_scope(pool: PgPool) {
    let fx = fixture(pool).await;
    let body = json!({"type": "Feature", "properties": {"status": "red"}});
    let tag = etag_of(&fx, A).await;
    let uri = format!("/api/v1/grids/{A}");
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (
            Some("gms_not-a-session-token-of-this-server-0000000000"),
            StatusCode::UNAUTHORIZED,
        ),
        (Some(fx.viewer.as_str()), StatusCode::FORBIDDEN),
        (Some(fx.key.as_str()), StatusCode::FORBIDDEN),
        (Some(fx.other_planner.as_str()), StatusCode::FORBIDDEN),
    ] {
        let answer = call(
            &fx.app,
            Method::PATCH,
            &uri,
            token,
            Some(&tag),
            Some(body.clone()),
        )
        .await;
        assert_eq!(answer.status, status, "{token:?}: {}", answer.body);
    }
    // A street scope covers its communities; a community scope only its own.
    let in_scope = call(
        &fx.app,
        Method::PATCH,
        &uri,
        Some(&fx.planner),
        Some(&tag),
        Some(body.clone()),
    )
    .await;
    assert_eq!(in_scope.status, StatusCode::OK, "{}", in_scope.body);
    let other = format!("/api/v1/grids/{OTHER_STREET_GRID}");
    let other_tag = etag_of(&fx, OTHER_STREET_GRID).await;
    let answer = call(
        &fx.app,
        Method::PATCH,
        &other,
        Some(&fx.planner),
        Some(&other_tag),
        Some(body.clone()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = call(
        &fx.app,
        Method::PATCH,
        &other,
        Some(&fx.other_planner),
        Some(&other_tag),
        Some(body),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // Leaving a gap is an administrator's decision.
    let created = create_east_grid(&fx, 120.42).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let east = "/api/v1/grids/370681001001003?leave_gap=true";
    let answer = call(
        &fx.app,
        Method::DELETE,
        east,
        Some(&fx.planner),
        Some(&created.etag()),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = call(
        &fx.app,
        Method::DELETE,
        east,
        Some(&fx.admin),
        Some(&created.etag()),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let history = call(
        &fx.app,
        Method::GET,
        "/api/v1/grids/370681001001003/history",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(history.status, StatusCode::UNAUTHORIZED);

    // A building straddling A|B, filed under B, is assigned to A.
    sqlx::query(
        "INSERT INTO buildings (code, grid_code, name, households, geom) VALUES
            ('3706810010010020000007', '370681001001002', '跨界楼', 12,
             ST_Multi(ST_GeomFromText('POLYGON((120.4098 37.607,120.4103 37.607,120.4103 37.608,120.4098 37.608,120.4098 37.607))', 4490)))",
    )
    .execute(&fx.pool)
    .await
    .unwrap();
    let assign = |codes: &[&str]| json!({ "buildings": codes });
    let uri = format!("/api/v1/grids/{A}/buildings");
    let answer = call(
        &fx.app,
        Method::POST,
        &uri,
        Some(&fx.other_planner),
        None,
        Some(assign(&["3706810010010020000007"])),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = call(
        &fx.app,
        Method::POST,
        &uri,
        Some(&fx.planner),
        None,
        Some(assign(&["3706810010010020010001"])),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "a building far from A: {}",
        answer.body
    );
    let answer = call(
        &fx.app,
        Method::POST,
        &uri,
        Some(&fx.planner),
        None,
        Some(assign(&["3706810010010020000007"])),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["recoded"],
        json!([["3706810010010020000007", "3706810010010010000001"]])
    );
    let households: i32 = sqlx::query_scalar("SELECT households FROM buildings WHERE code = '3706810010010010000001' AND grid_code = '370681001001001'")
        .fetch_one(&fx.pool).await.unwrap();
    assert_eq!(households, 12);

    // Stations: in scope, inside their community, grid derived from the point.
    let station = json!({"type": "Feature",
        "properties": {"code": "HZ-001", "kind": "rider_rest_stop", "name": "骑手驿站", "community_code": "370681001001"},
        "geometry": {"type": "Point", "coordinates": [120.405, 37.605]}});
    let answer = call(
        &fx.app,
        Method::POST,
        "/api/v1/stations",
        Some(&fx.other_planner),
        None,
        Some(station.clone()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = call(
        &fx.app,
        Method::POST,
        "/api/v1/stations",
        Some(&fx.planner),
        None,
        Some(station),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["features"][0]["properties"]["grid_code"], A);
    let moved = call(&fx.app, Method::PATCH, "/api/v1/stations/HZ-001", Some(&fx.planner), Some(&answer.etag()),
        Some(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.45, 37.605]}}))).await;
    assert_eq!(
        moved.status,
        StatusCode::BAD_REQUEST,
        "outside its community: {}",
        moved.body
    );

    // A deleted station comes back by reverting to its last version.
    let version = answer.etag().trim_matches('"').parse::<i64>().unwrap();
    let deleted = call(
        &fx.app,
        Method::DELETE,
        "/api/v1/stations/HZ-001",
        Some(&fx.planner),
        Some(&answer.etag()),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let revert = json!({ "version": version });
    let refused = call(
        &fx.app,
        Method::POST,
        "/api/v1/stations/HZ-001/revert",
        Some(&fx.other_planner),
        None,
        Some(revert.clone()),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "out of scope: {}",
        refused.body
    );
    let restored = call(
        &fx.app,
        Method::POST,
        "/api/v1/stations/HZ-001/revert",
        Some(&fx.planner),
        None,
        Some(revert),
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    let same: bool = sqlx::query_scalar("SELECT ST_Equals(geom, ST_SetSRID(ST_MakePoint(120.405, 37.605), 4490)) AND name = '骑手驿站' FROM stations WHERE code = 'HZ-001'")
        .fetch_one(&fx.pool).await.unwrap();
    assert!(same);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn grid_units_and_communities_keep_their_covers(pool: PgPool) {
    let fx = fixture(pool).await;
    let unit = |geometry: Value| json!({"type": "Feature", "properties": {"grid_code": B, "name": "第二网格二单元"}, "geometry": geometry});
    let post = |uri: &'static str, body: Value| {
        let app = fx.app.clone();
        let token = fx.planner.clone();
        async move { call(&app, Method::POST, uri, Some(&token), None, Some(body)).await }
    };
    // Over the existing unit, then out of grid B into A, then fine.
    let refused = post(
        "/api/v1/grid-units",
        unit(rectangle(120.416, 37.603, 120.418, 37.605)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["kind"],
        "overlap"
    );
    let refused = post(
        "/api/v1/grid-units",
        unit(rectangle(120.409, 37.606, 120.412, 37.608)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["kind"],
        "outside_grid"
    );
    let created = post(
        "/api/v1/grid-units",
        unit(rectangle(120.411, 37.606, 120.413, 37.608)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers["location"], "370681001001002002");
    let unit_uri = "/api/v1/grid-units/370681001001002002";
    let first = created.etag();
    let renamed = call(
        &fx.app,
        Method::PATCH,
        unit_uri,
        Some(&fx.planner),
        Some(&first),
        Some(json!({"type": "Feature", "properties": {"name": "改名单元"}})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let stale = call(
        &fx.app,
        Method::PATCH,
        unit_uri,
        Some(&fx.planner),
        Some(&first),
        Some(json!({"type": "Feature", "properties": {"name": "再改"}})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let reverted = call(
        &fx.app,
        Method::POST,
        &format!("{unit_uri}/revert"),
        Some(&fx.planner),
        Some(&renamed.etag()),
        Some(json!({"version": first.trim_matches('"').parse::<i64>().unwrap()})),
    )
    .await;
    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.body);
    assert_eq!(
        reverted.body["features"][0]["properties"]["name"],
        "第二网格二单元"
    );

    // Shrinking community 1 opens a gap in its street: refused, unless an
    // administrator accepts it; cutting into grid B is refused either way.
    let community = "/api/v1/communities/370681001001";
    let tag = call(&fx.app, Method::GET, community, None, None, None)
        .await
        .etag();
    let shape =
        |east: f64| json!({"type": "Feature", "geometry": rectangle(120.40, 37.60, east, 37.61)});
    let refused = call(
        &fx.app,
        Method::PATCH,
        community,
        Some(&fx.planner),
        Some(&tag),
        Some(shape(120.425)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["kind"],
        "gap"
    );
    let admin_uri = format!("{community}?leave_gap=true");
    let refused = call(
        &fx.app,
        Method::PATCH,
        &admin_uri,
        Some(&fx.admin),
        Some(&tag),
        Some(shape(120.415)),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["kind"],
        "grid_outside_community"
    );
    assert_eq!(
        refused.body["findings"]["features"][0]["properties"]["codes"],
        json!([B, "370681001001"])
    );
    let shrunk = call(
        &fx.app,
        Method::PATCH,
        &admin_uri,
        Some(&fx.admin),
        Some(&tag),
        Some(shape(120.425)),
    )
    .await;
    assert_eq!(shrunk.status, StatusCode::OK, "{}", shrunk.body);
    let east: f64 =
        sqlx::query_scalar("SELECT ST_XMax(geom) FROM communities WHERE code = '370681001001'")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert!((east - 120.425).abs() < 1e-12);

    // A community with grids is not deleted.
    let other = "/api/v1/communities/370681002001";
    let tag = call(&fx.app, Method::GET, other, None, None, None)
        .await
        .etag();
    let answer = call(
        &fx.app,
        Method::DELETE,
        other,
        Some(&fx.admin),
        Some(&tag),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
}

/// A grid with a roster (`grid_workers`) takes its worker from the roster:
/// a PATCH that would set another worker is refused with 409 naming the
/// roster, and changes nothing; one that repeats the roster's worker (a
/// client sending back the whole feature) passes, and a grid without a
/// roster still takes its worker from the PATCH.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_worker_patch_of_a_grid_with_a_roster_is_refused(pool: PgPool) {
    let fx = fixture(pool).await;
    sqlx::query(
        "INSERT INTO grid_workers (grid_code, name, phone, role) VALUES
            ($1, '赵敏', '13800000005', 'full_time'), ($1, '钱七', '13800000007', 'part_time')",
    )
    .bind(A)
    .execute(&fx.pool)
    .await
    .unwrap();
    let worker = |code: &'static str| {
        let pool = fx.pool.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<String>, i64)>(
                "SELECT worker_name, worker_phone, version FROM grids WHERE code = $1",
            )
            .bind(code)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let before = worker(A).await;
    assert_eq!(
        (before.0.as_deref(), before.1.as_deref()),
        (Some("赵敏"), Some("13800000005"))
    );
    let audit_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log")
            .fetch_one(&fx.pool)
            .await
            .unwrap()
    };
    let audited = audit_rows().await;

    for properties in [
        json!({"worker_name": "钱七"}),
        json!({"worker_phone": "13800000009"}),
        json!({"name": "新名字", "worker_name": ""}),
    ] {
        let answer = call(
            &fx.app,
            Method::PATCH,
            &format!("/api/v1/grids/{A}"),
            Some(&fx.admin),
            Some(&etag_of(&fx, A).await),
            Some(json!({"type": "Feature", "properties": properties})),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
        let message = answer.body["error"].as_str().unwrap();
        assert!(
            message.contains(&format!("grid {A} takes its worker from its roster"))
                && message.contains("grid_workers"),
            "{message}"
        );
        assert_eq!(worker(A).await, before, "nothing changed");
        assert_eq!(audit_rows().await, audited, "nothing audited");
    }

    // The roster's own worker, sent back with a rename: accepted.
    let answer = call(
        &fx.app,
        Method::PATCH,
        &format!("/api/v1/grids/{A}"),
        Some(&fx.admin),
        Some(&etag_of(&fx, A).await),
        Some(json!({"type": "Feature", "properties":
            {"name": "南苑新网格", "worker_name": "赵敏", "worker_phone": "13800000005"}})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["features"][0]["properties"]["name"],
        "南苑新网格"
    );
    let after = worker(A).await;
    assert_eq!((&after.0, &after.1), (&before.0, &before.1));

    // B has no roster: its worker is the PATCH's.
    let answer = call(
        &fx.app,
        Method::PATCH,
        &format!("/api/v1/grids/{B}"),
        Some(&fx.admin),
        Some(&etag_of(&fx, B).await),
        Some(json!({"type": "Feature", "properties": {"worker_name": "孙八", "worker_phone": "13800000008"}})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let b = worker(B).await;
    assert_eq!(
        (b.0.as_deref(), b.1.as_deref()),
        (Some("孙八"), Some("13800000008"))
    );
}

/// Merging grids merges their rosters onto the grid that stays; deleting a
/// grid with a roster is refused; a name listed with two phones blocks the
/// merge and changes nothing.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_merge_moves_the_rosters_and_a_delete_keeps_them(pool: PgPool) {
    let fx = fixture(pool).await;
    sqlx::query(
        "INSERT INTO grid_workers (grid_code, name, phone, role) VALUES
            ($1, '钱七', '13800000007', 'part_time'),
            ($2, '赵敏', '13800000005', 'full_time'), ($2, '钱七', '13800000007', 'grid_leader')",
    )
    .bind(A)
    .bind(B)
    .execute(&fx.pool)
    .await
    .unwrap();
    let roster = |code: &'static str| {
        let pool = fx.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>, String)>(
                "SELECT name, phone, role FROM grid_workers WHERE grid_code = $1 ORDER BY name",
            )
            .bind(code)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };

    // A grid with a roster is not deleted (its people would be lost). A
    // has nothing else that refers to it.
    let refused = call(
        &fx.app,
        Method::DELETE,
        &format!("/api/v1/grids/{A}"),
        Some(&fx.admin),
        Some(&etag_of(&fx, A).await),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("0 stations and 1 people on its roster"),
        "{}",
        refused.body
    );
    assert_eq!(roster(A).await.len(), 1);

    // A second 赵敏 with another phone on A: the merge is refused whole.
    sqlx::query(
        "INSERT INTO grid_workers (grid_code, name, phone) VALUES ($1, '赵敏', '13900000009')",
    )
    .bind(A)
    .execute(&fx.pool)
    .await
    .unwrap();
    let (rosters_before, grids_before): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM grid_workers), (SELECT count(*) FROM grids)")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    let merge = || async {
        let tags = format!("{}, {}", etag_of(&fx, A).await, etag_of(&fx, B).await);
        call(
            &fx.app,
            Method::POST,
            "/api/v1/grids/merge",
            Some(&fx.planner),
            Some(&tags),
            Some(json!({"codes": [A, B]})),
        )
        .await
    };
    let clash = merge().await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.body);
    assert!(
        clash.body["error"]
            .as_str()
            .unwrap()
            .contains("1 names with different phones"),
        "{}",
        clash.body
    );
    let (rosters_after, grids_after): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM grid_workers), (SELECT count(*) FROM grids)")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!((rosters_after, grids_after), (rosters_before, grids_before));

    // Without the clash: B's people join A's roster; 钱七, on both with
    // the same phone, stays once with A's row; A's worker is now the
    // full-time 赵敏 from B.
    sqlx::query("DELETE FROM grid_workers WHERE phone = '13900000009'")
        .execute(&fx.pool)
        .await
        .unwrap();
    let merged = merge().await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.body["deleted"], json!([B]));
    assert_eq!(
        roster(A).await,
        [
            (
                "赵敏".to_owned(),
                Some("13800000005".to_owned()),
                "full_time".to_owned()
            ),
            (
                "钱七".to_owned(),
                Some("13800000007".to_owned()),
                "part_time".to_owned()
            ),
        ]
    );
    assert!(roster(B).await.is_empty());
    let worker: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT worker_name, worker_phone FROM grids WHERE code = $1")
            .bind(A)
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(
        worker,
        (Some("赵敏".to_owned()), Some("13800000005".to_owned()))
    );
}

/// A revert restores a grid whose roster (`grid_workers`) now names its
/// worker: the shape and the other properties come back, the worker stays
/// the roster's (the trigger of migration 0008 keeps it) and the answer
/// says so in `notes`. Undoing the creation of a grid that has people on
/// its roster since is refused like one with buildings, and changes nothing.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_revert_keeps_the_roster_worker_and_says_so(pool: PgPool) {
    let fx = fixture(pool).await;
    let first_version: i64 = etag_of(&fx, A).await.trim_matches('"').parse().unwrap();
    let revert_a = |version: i64| {
        let fx = &fx;
        async move {
            call(
                &fx.app,
                Method::POST,
                &format!("/api/v1/grids/{A}/revert"),
                Some(&fx.admin),
                Some(&etag_of(fx, A).await),
                Some(json!({ "version": version })),
            )
            .await
        }
    };
    let state_of_a = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT name, worker_name, worker_phone FROM grids WHERE code = $1",
        )
        .bind(A)
        .fetch_one(&fx.pool)
        .await
        .unwrap()
    };
    let rename = || async {
        let renamed = call(
            &fx.app,
            Method::PATCH,
            &format!("/api/v1/grids/{A}"),
            Some(&fx.admin),
            Some(&etag_of(&fx, A).await),
            Some(json!({"type": "Feature", "properties": {"name": "改名网格"}})),
        )
        .await;
        assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    };

    // Without a roster a revert restores the worker too and has no notes.
    rename().await;
    let plain = revert_a(first_version).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert!(plain.body.get("notes").is_none(), "{}", plain.body);
    assert_eq!(
        state_of_a().await,
        (
            "南苑第一网格".to_owned(),
            Some("王芳".to_owned()),
            Some("13800000001".to_owned())
        )
    );

    // With a roster naming 赵敏, the name comes back and the worker stays.
    rename().await;
    sqlx::query(
        "INSERT INTO grid_workers (grid_code, name, phone, role)
         VALUES ($1, '赵敏', '13800000005', 'full_time')",
    )
    .bind(A)
    .execute(&fx.pool)
    .await
    .unwrap();
    let kept = revert_a(first_version).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    let notes = kept.body["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{}", kept.body);
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .contains("keeps the worker of its roster (grid_workers, 1 people)"),
        "{}",
        kept.body
    );
    assert_eq!(
        state_of_a().await,
        (
            "南苑第一网格".to_owned(),
            Some("赵敏".to_owned()),
            Some("13800000005".to_owned())
        )
    );

    // A grid created by a change and staffed since: undoing the change
    // would delete the grid and its roster, so it is refused.
    let created = create_east_grid(&fx, 120.42).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let new_code = "370681001001003";
    // The roster repeats the grid's worker, so the grid's row and version
    // stay as the change left them and the revert gets past its staleness
    // check to the roster.
    sqlx::query(
        "INSERT INTO grid_workers (grid_code, name, phone, role)
         VALUES ($1, '赵敏', '13800000003', 'full_time')",
    )
    .bind(new_code)
    .execute(&fx.pool)
    .await
    .unwrap();
    let change = created.body["change_id"].as_i64().unwrap();
    let refused = call(
        &fx.app,
        Method::POST,
        &format!("/api/v1/changes/{change}/revert"),
        Some(&fx.admin),
        None,
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("people on its roster"),
        "{}",
        refused.body
    );
    let (grids, people): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM grids WHERE code = $1),
                (SELECT count(*) FROM grid_workers WHERE grid_code = $1)",
    )
    .bind(new_code)
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    assert_eq!((grids, people), (1, 1));
}
