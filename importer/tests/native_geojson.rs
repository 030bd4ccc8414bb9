//! The native GeoJSON and GeoPackage readers (`src/geojson.rs`,
//! `src/gpkg.rs`) against GDAL's: the same files imported both ways
//! (`GRIDMAP_IMPORT_NATIVE_GEOJSON=0`, `GRIDMAP_IMPORT_NATIVE_GPKG=0` force GDAL)
//! must store byte-identical rows and geometries, give the same report and
//! the same problems; files outside the plain subset must go to GDAL.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::process::{Command, Output};

use common::*;
use gridmap_import::{import, Entity, ImportOptions};
use serde_json::{json, Value};
use sqlx::PgPool;

const BINARY: &str = env!("CARGO_BIN_EXE_gridmap-import");

/// The URL of `database` on the server DATABASE_URL names.
fn url_of(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for database tests");
    let (scheme, rest) = base.split_once("://").expect("DATABASE_URL is a URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path
        .split_once('?')
        .map(|(_, query)| format!("?{query}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{database}{query}")
}

/// Runs `gridmap-import --json ARGS` against the test database, natively or
/// through GDAL only.
async fn run(pool: &PgPool, args: &[&str], native: bool) -> Output {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let switch = if native { "1" } else { "0" };
    Command::new(BINARY)
        .arg("--json")
        .args(args)
        .env("DATABASE_URL", url_of(&database))
        .env("RUST_LOG", "gridmap_import=info")
        .env("GRIDMAP_IMPORT_NATIVE_GEOJSON", switch)
        .env("GRIDMAP_IMPORT_NATIVE_GPKG", switch)
        .output()
        .expect("running gridmap-import")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The report without its timings.
fn report_layers(output: &Output) -> Value {
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    report["layers"].clone()
}

/// A FeatureCollection with one feature per line, as the fixtures write it.
fn line_collection(features: &[Value]) -> String {
    let lines: Vec<String> = features.iter().map(Value::to_string).collect();
    format!(
        "{{\"type\":\"FeatureCollection\",\"name\":\"buildings\",\"crs\":{{\"type\":\"name\",\
         \"properties\":{{\"name\":\"urn:ogc:def:crs:EPSG::4490\"}}}},\"features\":[\n{}\n]}}\n",
        lines.join(",\n")
    )
}

/// Every building exactly as stored: attributes and the geometry's bytes.
async fn buildings(
    pool: &PgPool,
) -> Vec<(
    String,
    String,
    Option<String>,
    String,
    i32,
    Option<i32>,
    Vec<u8>,
    Vec<u8>,
)> {
    sqlx::query_as(
        "SELECT code, grid_code, unit_code, name, households, floors, ST_AsEWKB(geom), \
         ST_AsEWKB(geom_3857) FROM buildings ORDER BY code",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Buildings that exercise the reader: Polygons and MultiPolygons with
/// holes and several parts, fine coordinates, whitespace to trim, escapes,
/// missing and null properties, and a property that first appears late.
fn varied_buildings() -> Vec<Value> {
    let mut features = Vec::new();
    for index in 1..=40u32 {
        let code = format!("{UNIT}{index:04}");
        // Seven decimals, as the fixtures write: more digits than 15 would
        // send the file to GDAL.
        let fixed = |value: f64| (value * 1e7).round() / 1e7;
        let west = fixed(120.300_000_1 + f64::from(index) * 0.000_4);
        let (east, south, north) = (fixed(west + 0.000_312_7), 37.600_123_4, 37.600_456_7);
        let geometry = match index % 3 {
            0 => json!({"type": "Polygon", "coordinates": [[
                [west, south], [east, south], [east, north], [west, north], [west, south]
            ], [
                [fixed(west + 0.0001), 37.600_223_4], [fixed(west + 0.0001), 37.600_323_4],
                [fixed(west + 0.0002), 37.600_323_4], [fixed(west + 0.0001), 37.600_223_4]
            ]]}),
            1 => json!({"type": "MultiPolygon", "coordinates": [[[
                [west, south], [east, south], [east, north], [west, north], [west, south]
            ]], [[
                [west, 37.601_456_7], [east, 37.601_456_7], [east, 37.602_456_7], [west, 37.601_456_7]
            ]]]}),
            _ => json!({"type": "MultiPolygon", "coordinates": [[[
                [west, south], [east, south], [east, north], [west, south]
            ]]]}),
        };
        let mut properties = json!({
            "LDBM": code,
            "LDMC": format!("  盛世家园{index}号楼 \"东\"\t"),
            "WGBM": GRID,
            "HS": index * 3,
        });
        match index % 4 {
            0 => properties["CS"] = json!(index % 30 + 1),
            1 => properties["CS"] = Value::Null,
            2 => properties["CS"] = json!(format!(" {} ", index % 9 + 1)),
            _ => {}
        }
        if index > 30 {
            properties["DYBM"] = json!(UNIT);
        }
        features.push(feature(properties, geometry));
    }
    features
}

async fn load_parents(pool: &PgPool, dir: &TempDir) {
    let parents = sources_before(&dir.chain(), Entity::Buildings);
    import(pool, &parents, &ImportOptions::default())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn plain_files_store_what_gdal_stores(pool: PgPool) {
    let dir = TempDir::new("native-plain");
    load_parents(&pool, &dir).await;
    let features = varied_buildings();
    let lines = dir.write("buildings.geojson", &line_collection(&features));
    // GDAL's own layout: the collection's members on lines of their own.
    let gdal_written = dir.path().join("gdal.geojson");
    ogr2ogr(&["-f", "GeoJSON", text(&gdal_written), text(&lines)]);
    // And a GeoPackage, for the native GeoPackage reader.
    let gpkg = dir.path().join("buildings.gpkg");
    ogr2ogr(&["-f", "GPKG", text(&gpkg), text(&lines), "-nln", "buildings"]);
    // RFC 7946 files declare no CRS (WGS 84 longitude/latitude): ours, and
    // GDAL's own RFC 7946 output (outer rings turned counter-clockwise).
    let no_crs = dir.write(
        "no-crs.geojson",
        &line_collection(&features).replace(
            ",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"urn:ogc:def:crs:EPSG::4490\"}}",
            "",
        ),
    );
    assert!(!std::fs::read_to_string(&no_crs).unwrap().contains("crs"));
    let rfc7946 = dir.path().join("rfc7946.geojson");
    ogr2ogr(&[
        "-f",
        "GeoJSON",
        text(&rfc7946),
        text(&lines),
        "-lco",
        "RFC7946=YES",
    ]);
    for (file, reader) in [
        (&lines, "read (native GeoJSON)"),
        (&gdal_written, "read (native GeoJSON)"),
        (&gpkg, "read (native GeoPackage)"),
        (&no_crs, "read (native GeoJSON)"),
        (&rfc7946, "read (native GeoJSON)"),
    ] {
        let args = ["--as", "buildings", text(file)];
        let native = run(&pool, &args, true).await;
        assert_eq!(native.status.code(), Some(0), "{}", stderr(&native));
        assert!(stderr(&native).contains(reader), "{}", stderr(&native));
        let stored_natively = buildings(&pool).await;
        assert_eq!(stored_natively.len(), 40);
        sqlx::query("DELETE FROM buildings")
            .execute(&pool)
            .await
            .unwrap();
        let through_gdal = run(&pool, &args, false).await;
        assert_eq!(
            through_gdal.status.code(),
            Some(0),
            "{}",
            stderr(&through_gdal)
        );
        assert!(
            !stderr(&through_gdal).contains("read (native"),
            "{}",
            stderr(&through_gdal)
        );
        assert_eq!(
            buildings(&pool).await,
            stored_natively,
            "{}",
            file.display()
        );
        assert_eq!(report_layers(&native), report_layers(&through_gdal));
        let expected_crs = if file == &no_crs || file == &rfc7946 {
            "EPSG:4326"
        } else {
            "EPSG:4490"
        };
        assert_eq!(
            report_layers(&native)[0]["source_crs"],
            json!(expected_crs),
            "{}",
            file.display()
        );
        sqlx::query("DELETE FROM buildings")
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn value_problems_are_the_same_and_anything_else_goes_to_gdal(pool: PgPool) {
    let dir = TempDir::new("native-problems");
    load_parents(&pool, &dir).await;
    let mut features = varied_buildings();
    // Problems the native reader passes on to the checks: a short code, a
    // negative count, a missing name, a code used twice, a self-intersection.
    features[3]["properties"]["LDBM"] = json!("37068100100100100100");
    features[5]["properties"]["HS"] = json!(-2);
    features[6]["properties"]["LDMC"] = json!("  ");
    features[8]["properties"]["LDBM"] = features[7]["properties"]["LDBM"].clone();
    features[9]["geometry"] = bow_tie();
    let file = dir.write("buildings.geojson", &line_collection(&features));
    let args = ["--as", "buildings", text(&file)];
    let native = run(&pool, &args, true).await;
    let through_gdal = run(&pool, &args, false).await;
    assert_eq!(native.status.code(), Some(2), "{}", stderr(&native));
    assert!(stderr(&native).contains("read (native GeoJSON)"));
    let problems = |output: &Output| -> Vec<String> {
        stderr(output)
            .lines()
            .filter(|line| line.starts_with("buildings.geojson feature"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(problems(&native).len(), 5, "{}", stderr(&native));
    assert_eq!(problems(&native), problems(&through_gdal));

    // Outside the plain subset: GDAL reads the file and words the problem.
    let mut unclosed = varied_buildings();
    unclosed[2]["geometry"]["coordinates"][0][4] = json!([120.5, 37.7]);
    let mut real_count = varied_buildings();
    real_count[4]["properties"]["HS"] = json!(12.0);
    let mut with_id = varied_buildings();
    with_id[0]["id"] = json!("a");
    for (features, expected) in [
        (unclosed, Some("unclosed ring")),
        (real_count, None),
        (with_id, None),
    ] {
        let file = dir.write("buildings.geojson", &line_collection(&features));
        let output = run(
            &pool,
            &["--as", "buildings", "--dry-run", text(&file)],
            true,
        )
        .await;
        assert!(
            !stderr(&output).contains("read (native"),
            "{}",
            stderr(&output)
        );
        match expected {
            Some(reason) => {
                assert_eq!(output.status.code(), Some(2));
                assert!(stderr(&output).contains(reason), "{}", stderr(&output));
            }
            None => assert_eq!(output.status.code(), Some(0), "{}", stderr(&output)),
        }
    }
    // A GeoPackage whose count column holds reals is GDAL's.
    let mut real_counts = varied_buildings();
    real_counts[0]["properties"]["HS"] = json!(3.5);
    let file = dir.write("reals.geojson", &line_collection(&real_counts));
    let gpkg = dir.path().join("reals.gpkg");
    ogr2ogr(&["-f", "GPKG", text(&gpkg), text(&file), "-nln", "buildings"]);
    let output = run(
        &pool,
        &["--as", "buildings", "--dry-run", text(&gpkg)],
        true,
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("read (native"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("households must be a whole number of at least 0, found \"3.5\""),
        "{}",
        stderr(&output)
    );
    // One line holding the whole collection (as the other tests write it)
    // is GDAL's too.
    let file = dir.write("buildings.geojson", &collection(&varied_buildings()));
    let output = run(
        &pool,
        &["--as", "buildings", "--dry-run", text(&file)],
        true,
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("read (native"));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn an_invalid_geometry_alone_is_found_after_the_table_refused_it(pool: PgPool) {
    // No other problem: the insert is tried first and the table's CHECK
    // refuses the bow tie; the rollback to the savepoint leaves nothing and
    // the feature is named as before.
    let dir = TempDir::new("native-invalid");
    load_parents(&pool, &dir).await;
    let mut features = varied_buildings();
    features[9]["geometry"] = bow_tie();
    let file = dir.write("buildings.geojson", &line_collection(&features));
    let refused = run(&pool, &["--as", "buildings", text(&file)], true).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(
            "buildings.geojson feature 10: invalid geometry: Self-intersection at (120.31 37.61)"
        ),
        "{}",
        stderr(&refused)
    );
    assert!(buildings(&pool).await.is_empty());
    let skipped = run(
        &pool,
        &["--as", "buildings", "--skip-invalid", text(&file)],
        true,
    )
    .await;
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let stored = buildings(&pool).await;
    assert_eq!(stored.len(), 39);
    assert!(!stored.iter().any(|row| row.0 == format!("{UNIT}0010")));
}
