//! A plain insert whose table's constraints make every check goes by COPY
//! straight into the table (`copy::copy_into_table`), dropping and
//! rebuilding the indexes of a large load first. It must store exactly what
//! the staged path stores (an upsert into the empty table, which always
//! stages), leave the same indexes and constraints, and, when a feature
//! fails anywhere in a large file, roll everything back and name the problem
//! as the staged checks do.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::process::{Command, Output};

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportOptions, Problem};
use serde_json::{json, Value};
use sqlx::PgPool;

const BINARY: &str = env!("CARGO_BIN_EXE_gridmap-import");

/// More than the bulk load's threshold (20,000 rows), so the indexes of
/// buildings are dropped and rebuilt around the COPY.
const BUILDINGS: usize = 21_000;

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

async fn run(pool: &PgPool, args: &[&str]) -> Output {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let output = Command::new(BINARY)
        .arg("--json")
        .args(args)
        .env("DATABASE_URL", url_of(&database))
        .env("RUST_LOG", "gridmap_import=debug")
        .output()
        .expect("running gridmap-import");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The building `index` (from 0): a small square in the good grid, with a
/// code continuing after the chain's own building.
fn building(index: usize) -> Value {
    let (row, column) = (index / 400, index % 400);
    // Seven decimals, as the fixtures write: longer numbers send the file
    // to GDAL instead of the native reader.
    let fixed = |value: f64| (value * 1e7).round() / 1e7;
    let west = fixed(120.3001 + column as f64 * 0.00004);
    let south = fixed(37.6001 + row as f64 * 0.00004);
    let (east, north) = (fixed(west + 0.00002), fixed(south + 0.00002));
    feature(
        json!({
            "LDBM": format!("{GRID}{:07}", index + 1_000_000),
            "LDMC": format!("{}号楼", index + 1),
            "WGBM": GRID,
            "HS": index % 50,
        }),
        square(west, south, east, north),
    )
}

/// `BUILDINGS` buildings, one feature per line (the native reader's layout),
/// with `change` applied to each.
fn buildings_file(dir: &TempDir, change: impl Fn(usize, &mut Value)) -> std::path::PathBuf {
    let lines: Vec<String> = (0..BUILDINGS)
        .map(|index| {
            let mut feature = building(index);
            change(index, &mut feature);
            feature.to_string()
        })
        .collect();
    dir.write(
        "buildings.geojson",
        &format!(
            "{{\"type\":\"FeatureCollection\",\"crs\":{{\"type\":\"name\",\"properties\":\
             {{\"name\":\"urn:ogc:def:crs:EPSG::4490\"}}}},\"features\":[\n{}\n]}}\n",
            lines.join(",\n")
        ),
    )
}

/// Every stored building: attributes and both geometries' bytes.
async fn stored_buildings(pool: &PgPool) -> Vec<(String, String, String, i32, Vec<u8>, Vec<u8>)> {
    sqlx::query_as(
        "SELECT code, grid_code, name, households, ST_AsEWKB(geom), ST_AsEWKB(geom_3857) \
         FROM buildings ORDER BY code",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The indexes and constraints of buildings, valid or not.
async fn catalog(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index \
         WHERE indrelid = 'buildings'::regclass \
         UNION ALL \
         SELECT conname::text, pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END \
         FROM pg_constraint WHERE conrelid = 'buildings'::regclass \
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn load_parents(pool: &PgPool, dir: &TempDir) {
    let parents = sources_before(&dir.chain(), Entity::Buildings);
    import(pool, &parents, &ImportOptions::default())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_clean_file_goes_straight_into_its_table_as_the_staged_path_stores_it(pool: PgPool) {
    let dir = TempDir::new("direct-clean");
    load_parents(&pool, &dir).await;
    let catalog_before = catalog(&pool).await;
    let file = buildings_file(&dir, |_, _| {});
    let args = ["--as", "buildings", text(&file)];

    let direct = run(&pool, &args).await;
    let log = String::from_utf8_lossy(&direct.stderr);
    assert!(log.contains("read (native GeoJSON)"), "{log}");
    assert!(log.contains("copied into its table"), "{log}");
    assert!(log.contains("indexes and foreign keys restored"), "{log}");
    assert!(!log.contains(" staged file="), "{log}");
    let report: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(report["layers"][0]["rows"], json!(BUILDINGS));
    assert_eq!(report["layers"][0]["features"], json!(BUILDINGS));
    let copied = stored_buildings(&pool).await;
    assert_eq!(copied.len(), BUILDINGS);
    assert_eq!(catalog(&pool).await, catalog_before);

    // The staged path, as the oracle: an upsert always stages.
    sqlx::query("DELETE FROM buildings")
        .execute(&pool)
        .await
        .unwrap();
    let staged = run(
        &pool,
        &["--mode", "upsert", "--as", "buildings", text(&file)],
    )
    .await;
    let log = String::from_utf8_lossy(&staged.stderr);
    assert!(log.contains(" staged file="), "{log}");
    assert!(!log.contains("copied into its table"), "{log}");
    assert_eq!(stored_buildings(&pool).await, copied);

    // The rebuilt spatial index answers like a scan of the table.
    let query = |condition: &str| format!("SELECT count(*) FROM buildings WHERE {condition}");
    let by_index: i64 = sqlx::query_scalar(&query(
        "geom && ST_MakeEnvelope(120.3001, 37.6001, 120.305, 37.6021, 4490)",
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let by_scan: i64 = sqlx::query_scalar(&query(
        "ST_XMax(geom) >= 120.3001 AND ST_XMin(geom) <= 120.305 \
         AND ST_YMax(geom) >= 37.6001 AND ST_YMin(geom) <= 37.6021",
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(by_index > 0);
    assert_eq!(by_index, by_scan);
}

/// One feature near the end of a large file, spoiled in one way, and what
/// the rejection must say about it.
struct Spoiled {
    label: &'static str,
    change: fn(&mut Value),
    field: Option<&'static str>,
    reason: &'static str,
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_late_problem_rolls_everything_back_and_is_named(pool: PgPool) {
    let dir = TempDir::new("direct-late");
    load_parents(&pool, &dir).await;
    let before = dump(&pool).await;
    let catalog_before = catalog(&pool).await;
    let late = BUILDINGS - 7;
    let cases = [
        // Found while converting: the COPY stops at this feature.
        Spoiled {
            label: "code format",
            change: |feature| feature["properties"]["LDBM"] = json!("12345"),
            field: Some("LDBM"),
            reason: "must be 22 digits",
        },
        // Refused by the primary key during the COPY.
        Spoiled {
            label: "duplicate",
            change: |feature| {
                feature["properties"]["LDBM"] = json!(format!("{GRID}{:07}", 1_000_003));
            },
            field: Some("LDBM"),
            reason: "duplicate code",
        },
        // Refused by the ST_IsValid CHECK during the COPY.
        Spoiled {
            label: "bow tie",
            change: |feature| feature["geometry"] = bow_tie(),
            field: None,
            reason: "invalid geometry",
        },
        // Refused only when the foreign key is added again after the COPY.
        Spoiled {
            label: "missing grid",
            change: |feature| {
                let grid = "370681001001009";
                feature["properties"]["WGBM"] = json!(grid);
                feature["properties"]["LDBM"] = json!(format!("{grid}7654321"));
            },
            field: Some("WGBM"),
            reason: "exists neither in the database nor in this import",
        },
    ];
    for case in cases {
        let file = buildings_file(&dir, |index, feature| {
            if index + 1 == late {
                (case.change)(feature);
            }
        });
        let result = import(
            &pool,
            &[gridmap_import::Source::new(&file, Entity::Buildings)],
            &ImportOptions::default(),
        )
        .await;
        let problems: Vec<Problem> = match result {
            Err(ImportError::Rejected { problems, .. }) => problems,
            other => panic!("{}: expected a rejection, got {other:?}", case.label),
        };
        assert_eq!(problems.len(), 1, "{}: {problems:?}", case.label);
        let problem = &problems[0];
        assert_eq!(problem.feature, late as u64, "{}: {problem}", case.label);
        assert_eq!(
            problem.field.as_deref(),
            case.field,
            "{}: {problem}",
            case.label
        );
        assert!(
            problem.reason.contains(case.reason),
            "{}: {problem}",
            case.label
        );
        assert_eq!(dump(&pool).await, before, "{}", case.label);
        assert_eq!(catalog(&pool).await, catalog_before, "{}", case.label);
    }
}
