//! `GET /api/v1/gaps`: seamless-cover findings checked against PostGIS as the
//! oracle, on a small tessellation with injected defects and on the demo city.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Instant;

/// One street of two communities, each tiled exactly by rectangular grids,
/// with one building of 100 households per grid and a service centre each.
///
/// ```text
/// 37.62 ┌────────────┬──────┬──────┐
///       │  ..001003  │      │      │
/// 37.61 ├─────┬──────┤ 002  │ 002  │
///       │ 001 │ 002  │ 001  │ 002  │
/// 37.60 └─────┴──────┴──────┴──────┘
///     120.40 120.41 120.42 120.43 120.44
/// ```
const CLEAN: &str = "
    INSERT INTO districts VALUES ('370681', '龙口市', ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.44, 37.62, 4490)));
    INSERT INTO streets VALUES ('370681001', '370681', '东莱街道', ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.44, 37.62, 4490)));
    INSERT INTO communities (code, street_code, name, geom) VALUES
        ('370681001001', '370681001', '南苑社区', ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.42, 37.62, 4490))),
        ('370681001002', '370681001', '北苑社区', ST_Multi(ST_MakeEnvelope(120.42, 37.60, 120.44, 37.62, 4490)));
    INSERT INTO grids (code, community_code, name, kind, worker_name, geom) VALUES
        ('370681001001001', '370681001001', '南苑一网格', 'basic', '王芳', ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.41, 37.61, 4490))),
        ('370681001001002', '370681001001', '南苑二网格', 'basic', '李强', ST_Multi(ST_MakeEnvelope(120.41, 37.60, 120.42, 37.61, 4490))),
        ('370681001001003', '370681001001', '南苑三网格', 'basic', '张伟', ST_Multi(ST_MakeEnvelope(120.40, 37.61, 120.42, 37.62, 4490))),
        ('370681001002001', '370681001002', '北苑一网格', 'basic', '刘洋', ST_Multi(ST_MakeEnvelope(120.42, 37.60, 120.43, 37.62, 4490))),
        ('370681001002002', '370681001002', '北苑二网格', 'basic', '陈静', ST_Multi(ST_MakeEnvelope(120.43, 37.60, 120.44, 37.62, 4490)));
    INSERT INTO buildings (code, grid_code, name, households, geom) VALUES
        ('3706810010010010000001', '370681001001001', '1号楼', 100, ST_Multi(ST_MakeEnvelope(120.401, 37.601, 120.4015, 37.6015, 4490))),
        ('3706810010010020000001', '370681001001002', '1号楼', 100, ST_Multi(ST_MakeEnvelope(120.411, 37.601, 120.4115, 37.6015, 4490))),
        ('3706810010010030000001', '370681001001003', '1号楼', 100, ST_Multi(ST_MakeEnvelope(120.401, 37.615, 120.4015, 37.6155, 4490))),
        ('3706810010020010000001', '370681001002001', '1号楼', 100, ST_Multi(ST_MakeEnvelope(120.421, 37.601, 120.4215, 37.6015, 4490))),
        ('3706810010020020000001', '370681001002002', '1号楼', 100, ST_Multi(ST_MakeEnvelope(120.435, 37.601, 120.4355, 37.6015, 4490)));
    INSERT INTO stations (code, kind, name, community_code, area_m2, geom) VALUES
        ('C370681001001', 'service_centre', '南苑党群服务中心', '370681001001', 300, ST_SetSRID(ST_MakePoint(120.405, 37.605), 4490)),
        ('C370681001002', 'service_centre', '北苑党群服务中心', '370681001002', 300, ST_SetSRID(ST_MakePoint(120.425, 37.605), 4490));";

/// One defect of each kind, injected into [`CLEAN`].
const DEFECTS: &str = "
    -- A hole: the first grid gives up its eastern 0.001°.
    UPDATE grids SET geom = ST_Multi(ST_MakeEnvelope(120.40, 37.60, 120.409, 37.61, 4490)) WHERE code = '370681001001001';
    -- An overlap: the second grid of 北苑 grows 0.005° west into the first.
    UPDATE grids SET geom = ST_Multi(ST_MakeEnvelope(120.425, 37.60, 120.44, 37.62, 4490)) WHERE code = '370681001002002';
    -- A spill: the third grid of 南苑 reaches 0.005° north of its community.
    UPDATE grids SET geom = ST_Multi(ST_MakeEnvelope(120.40, 37.61, 120.42, 37.625, 4490)) WHERE code = '370681001001003';
    -- A worker's name that is only blanks counts as no worker.
    UPDATE grids SET worker_name = '  ' WHERE code = '370681001002001';
    -- Service centre of 北苑: 200 households need 60 m².
    UPDATE stations SET area_m2 = 50 WHERE code = 'C370681001002';
    INSERT INTO buildings (code, grid_code, name, households, geom) VALUES
        -- In the hole, so in no grid.
        ('3706810010010010000002', '370681001001001', '2号楼', 5, ST_Multi(ST_MakeEnvelope(120.4092, 37.605, 120.4098, 37.6055, 4490))),
        -- Astride the edge between 南苑 二 and 三.
        ('3706810010010020000002', '370681001001002', '2号楼', 10, ST_Multi(ST_MakeEnvelope(120.415, 37.6098, 120.4155, 37.6102, 4490))),
        -- Takes 南苑 二 to 560 households.
        ('3706810010010020000003', '370681001001002', '3号楼', 450, ST_Multi(ST_MakeEnvelope(120.412, 37.602, 120.4125, 37.6025, 4490)));";

/// One GET as `token`'s holder (anonymous without one), the body as JSON.
async fn get_json(app: axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let (status, _, body) = gridmap_e2e::send_as(app, uri, token).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|err| panic!("{uri}: {err}: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// The findings `GET /api/v1/gaps?{query}` answers a viewer (the report is
/// staff only), in a test database of its own.
async fn findings(pool: &PgPool, query: &str) -> Vec<Value> {
    let viewer = gridmap_e2e::session_for(pool, &format!("viewer-{query}"), "viewer", &[]).await;
    let state = gridmap_server::AppState::load(pool.clone(), 1 << 20)
        .await
        .unwrap();
    let (status, json) = get_json(
        gridmap_server::app(state, None),
        &format!("/api/v1/gaps?{query}"),
        Some(&viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["type"], "FeatureCollection");
    json["features"].as_array().unwrap().clone()
}

/// The findings of a street of the demo city, which tests only read: from
/// `gaps::report`, the function behind the endpoint, with no user to create.
async fn demo_findings(pool: &PgPool, street: &str) -> Vec<Value> {
    let filter = gridmap_store::topology_queries::AreaFilter::Street(street.to_owned());
    let report =
        gridmap_server::gaps::report(pool, &filter, gridmap_topology::Parameters::default())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no street {street}"));
    report["features"].as_array().unwrap().clone()
}

fn kind_and_codes(feature: &Value) -> (String, Vec<String>) {
    let properties = &feature["properties"];
    let codes = properties["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    (properties["kind"].as_str().unwrap().to_owned(), codes)
}

fn find<'a>(features: &'a [Value], kind: &str) -> &'a Value {
    features
        .iter()
        .find(|feature| feature["properties"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in {features:?}"))
}

async fn assert_area_matches(pool: &PgPool, feature: &Value, oracle_sql: &str) {
    let expected: f64 = sqlx::query_scalar(oracle_sql)
        .fetch_one(pool)
        .await
        .unwrap();
    let got = feature["properties"]["area_m2"].as_f64().unwrap();
    assert!(
        (got - expected).abs() <= 0.01 * expected,
        "{}: {got} m², PostGIS says {expected} m²",
        feature["properties"]["kind"]
    );
}

const GEOMETRIC: [&str; 3] = ["gap", "overlap", "outside_community"];

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gaps_of_a_clean_tessellation_are_none(pool: PgPool) {
    sqlx::raw_sql(CLEAN).execute(&pool).await.unwrap();
    for query in [
        "street=370681001",
        "community=370681001001",
        "community=370681001002",
    ] {
        let features = findings(&pool, query).await;
        assert!(features.is_empty(), "{query}: {features:?}");
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gaps_finds_each_injected_defect_with_its_codes_and_area(pool: PgPool) {
    sqlx::raw_sql(CLEAN).execute(&pool).await.unwrap();
    sqlx::raw_sql(DEFECTS).execute(&pool).await.unwrap();
    let features = findings(&pool, "street=370681001").await;
    let got: BTreeSet<(String, Vec<String>)> = features.iter().map(kind_and_codes).collect();
    let expected: BTreeSet<(String, Vec<String>)> = [
        (
            "gap",
            &[
                "370681001001",
                "370681001001001",
                "370681001001002",
                "370681001001003",
            ][..],
        ),
        ("overlap", &["370681001002001", "370681001002002"]),
        ("outside_community", &["370681001001003", "370681001001"]),
        ("building_in_no_grid", &["3706810010010010000002"]),
        (
            "building_in_several_grids",
            &[
                "3706810010010020000002",
                "370681001001002",
                "370681001001003",
            ],
        ),
        ("grid_without_worker", &["370681001002001"]),
        ("grid_over_household_limit", &["370681001001002"]),
        (
            "service_centre_below_standard",
            &["C370681001002", "370681001002"],
        ),
    ]
    .into_iter()
    .map(|(kind, codes)| {
        (
            kind.to_owned(),
            codes.iter().map(|&code| code.to_owned()).collect(),
        )
    })
    .collect();
    assert_eq!(got, expected);
    assert_eq!(features.len(), expected.len(), "one finding per defect");

    assert_area_matches(
        &pool,
        find(&features, "gap"),
        "SELECT ST_Area(ST_Difference(c.geom, (SELECT ST_Union(geom) FROM grids
                                                WHERE community_code = c.code))::geography)
           FROM communities c WHERE code = '370681001001'",
    )
    .await;
    assert_area_matches(
        &pool,
        find(&features, "overlap"),
        "SELECT ST_Area(ST_Intersection(a.geom, b.geom)::geography) FROM grids a, grids b
          WHERE a.code = '370681001002001' AND b.code = '370681001002002'",
    )
    .await;
    assert_area_matches(
        &pool,
        find(&features, "outside_community"),
        "SELECT ST_Area(ST_Difference(g.geom, c.geom)::geography)
           FROM grids g JOIN communities c ON c.code = g.community_code
          WHERE g.code = '370681001001003'",
    )
    .await;
    assert_area_matches(
        &pool,
        find(&features, "building_in_no_grid"),
        "SELECT ST_Area(geom::geography) FROM buildings WHERE code = '3706810010010010000002'",
    )
    .await;

    // The zoom point of a gap lies inside the gap, by PostGIS.
    let point = find(&features, "gap")["properties"]["point"].clone();
    let inside: bool = sqlx::query_scalar(
        "SELECT ST_Contains(ST_MakeEnvelope(120.409, 37.60, 120.41, 37.61, 4490),
                            ST_SetSRID(ST_MakePoint($1, $2), 4490))",
    )
    .bind(point[0].as_f64().unwrap())
    .bind(point[1].as_f64().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(inside, "gap zoom point {point} is outside the gap");
    let centre = find(&features, "service_centre_below_standard");
    assert_eq!(centre["geometry"]["type"], "Point");
    assert_eq!(centre["properties"]["area_m2"], 50.0);

    // A community filter sees only its own part; a larger tolerance hides
    // the 88 m × 1.1 km gap (≈ 98,000 m²); a lower limit flags more grids.
    let community = findings(&pool, "community=370681001002").await;
    let kinds: BTreeSet<String> = community.iter().map(|f| kind_and_codes(f).0).collect();
    assert_eq!(
        kinds,
        [
            "grid_without_worker",
            "overlap",
            "service_centre_below_standard"
        ]
        .map(str::to_owned)
        .into()
    );
    let tolerant = findings(&pool, "street=370681001&min_area_m2=100000").await;
    assert!(!tolerant.iter().any(|f| f["properties"]["kind"] == "gap"));
    let strict = findings(&pool, "street=370681001&household_limit=105").await;
    let crowded = strict
        .iter()
        .filter(|f| f["properties"]["kind"] == "grid_over_household_limit")
        .count();
    assert_eq!(crowded, 1, "only 南苑二 has more than 105 households");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gaps_rejects_bad_filters(pool: PgPool) {
    sqlx::raw_sql(CLEAN).execute(&pool).await.unwrap();
    let state = gridmap_server::AppState::load(pool.clone(), 1 << 20)
        .await
        .unwrap();
    let app = gridmap_server::app(state, None);
    let viewer = gridmap_e2e::session_for(&pool, "viewer", "viewer", &[]).await;

    // Staff only, like the gap_findings tiles: anonymous callers get 401,
    // API keys (for lookups) 403, every user role the report.
    let uri = "/api/v1/gaps?street=370681001";
    let (status, json) = get_json(app.clone(), uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    let key = gridmap_e2e::api_key_for(&pool, "hotline").await;
    let (status, json) = get_json(app.clone(), uri, Some(&key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    let planner = gridmap_e2e::session_for(&pool, "planner", "planner", &["370681002"]).await;
    let admin = gridmap_e2e::session_for(&pool, "admin", "admin", &[]).await;
    for token in [&viewer, &planner, &admin] {
        let (status, headers, _) = gridmap_e2e::send_as(app.clone(), uri, Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private"));
    }

    for (uri, status) in [
        ("/api/v1/gaps", StatusCode::BAD_REQUEST),
        (
            "/api/v1/gaps?street=370681001&community=370681001001",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/gaps?street=3706810", StatusCode::BAD_REQUEST),
        (
            "/api/v1/gaps?community=37068100100x",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/gaps?street=370681001&min_area_m2=-3",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/gaps?street=370681999", StatusCode::NOT_FOUND),
        ("/api/v1/gaps?community=370681001009", StatusCode::NOT_FOUND),
    ] {
        let (got, json) = get_json(app.clone(), uri, Some(&viewer)).await;
        assert_eq!(got, status, "{uri}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{uri}: {json}"
        );
    }
}

#[tokio::test]
async fn gaps_finds_no_gap_overlap_or_spill_in_the_demo_city() {
    let pool = gridmap_e2e::demo_pool().await;
    let street: String = sqlx::query_scalar("SELECT code FROM streets ORDER BY code LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let features = demo_findings(&pool, &street).await;
    let geometric: Vec<_> = features
        .iter()
        .filter(|f| GEOMETRIC.contains(&f["properties"]["kind"].as_str().unwrap()))
        .map(kind_and_codes)
        .collect();
    assert!(geometric.is_empty(), "{street}: {geometric:?}");
}

/// PostGIS's answer to the same question: gap pieces, overlapping pairs and
/// spilling grids of at least 1 m² in one street.
const POSTGIS_GEOMETRIC: &str = "
    WITH gap_pieces AS (
        SELECT (ST_Dump(ST_Difference(c.geom, coalesce(
                   (SELECT ST_Union(g.geom) FROM grids g WHERE g.community_code = c.code),
                   'SRID=4490;POLYGON EMPTY'::geometry)))).geom AS geom
          FROM communities c WHERE starts_with(c.code, $1)),
    overlap_pieces AS (
        SELECT ST_Intersection(a.geom, b.geom) AS geom
          FROM grids a JOIN grids b ON a.code < b.code AND a.geom && b.geom
         WHERE starts_with(a.code, $1) AND starts_with(b.code, $1)
           AND ST_Relate(a.geom, b.geom, '2********')),
    spill_pieces AS (
        SELECT ST_Difference(g.geom, c.geom) AS geom
          FROM grids g JOIN communities c ON c.code = g.community_code
         WHERE starts_with(g.code, $1))
    SELECT (SELECT count(*) FROM gap_pieces WHERE ST_Area(geom::geography) >= 1)
         + (SELECT count(*) FROM overlap_pieces WHERE ST_Area(geom::geography) >= 1)
         + (SELECT count(*) FROM spill_pieces WHERE ST_Area(geom::geography) >= 1)";

/// Timings over all streets of the demo city: run with
/// `cargo nextest run -p gridmap-e2e gaps --run-ignored only --no-capture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn gaps_timing_of_every_street_of_the_demo_city() {
    let pool = gridmap_e2e::demo_pool().await;
    let streets: Vec<String> = sqlx::query_scalar("SELECT code FROM streets ORDER BY code")
        .fetch_all(&pool)
        .await
        .unwrap();
    let (mut load_total, mut request_total, mut postgis_total) = (0.0, 0.0, 0.0);
    for street in &streets {
        let filter = gridmap_store::topology_queries::AreaFilter::Street(street.clone());
        let started = Instant::now();
        gridmap_store::topology_queries::load_topology(&pool, &filter)
            .await
            .unwrap();
        let load = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let features = demo_findings(&pool, street).await;
        let request = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let postgis: i64 = sqlx::query_scalar(POSTGIS_GEOMETRIC)
            .bind(street)
            .fetch_one(&pool)
            .await
            .unwrap();
        let postgis_time = started.elapsed().as_secs_f64();
        let geometric = features
            .iter()
            .filter(|f| GEOMETRIC.contains(&f["properties"]["kind"].as_str().unwrap()))
            .count();
        println!(
            "{street}: load {load:.3} s, report {request:.3} s (≈ analysis {:.3} s), \
             PostGIS gaps+overlaps+spills {postgis_time:.3} s; findings {} (geometric {geometric}, PostGIS {postgis})",
            request - load,
            features.len()
        );
        load_total += load;
        request_total += request;
        postgis_total += postgis_time;
    }
    println!(
        "all {} streets: load {load_total:.2} s, request {request_total:.2} s, PostGIS {postgis_total:.2} s",
        streets.len()
    );
}

/// Runs `gridmap-gaps` on the database of `pool`: exit code and stdout.
fn gaps_command(pool: &PgPool, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(gridmap_e2e::workspace_binary("gridmap-gaps"))
        .args(args)
        .env("DATABASE_URL", gridmap_e2e::database_url_of(pool))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn the_command_reports_what_the_endpoint_does(pool: PgPool) {
    sqlx::raw_sql(CLEAN).execute(&pool).await.unwrap();
    sqlx::raw_sql(DEFECTS).execute(&pool).await.unwrap();
    let from_api = findings(&pool, "street=370681001").await;
    let (code, stdout) = gaps_command(&pool, &["--street", "370681001"]);
    assert_eq!(code, Some(0), "{stdout}");
    let from_command: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(from_command["features"].as_array().unwrap(), &from_api);

    // Every street at once, summarised; findings fail a pipeline on request.
    let (code, stdout) = gaps_command(&pool, &["--all", "--summary", "--fail-on-findings"]);
    assert_eq!(code, Some(1), "{stdout}");
    let overlaps = stdout
        .lines()
        .find(|line| line.starts_with("overlap\t"))
        .unwrap_or_else(|| panic!("no overlap line in {stdout}"));
    let api_overlaps = from_api
        .iter()
        .filter(|f| f["properties"]["kind"] == "overlap")
        .count();
    assert_eq!(
        overlaps.split('\t').nth(1),
        Some(api_overlaps.to_string().as_str())
    );

    let (code, _) = gaps_command(&pool, &["--street", "370681009"]);
    assert_eq!(code, Some(2), "an unknown street is an error");
}
