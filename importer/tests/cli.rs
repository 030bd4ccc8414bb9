//! The `gridmap-import` binary: exit codes, problem lines and the summary.
//! Each database test points the binary at its own fresh database.

mod common;

use std::process::{Command, Output};

use common::*;
use gridmap_import::Entity;
use serde_json::json;
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

async fn run_against(pool: &PgPool, args: &[&str]) -> Output {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .expect("naming the test database");
    Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", url_of(&database))
        .env("RUST_LOG", "warn")
        .output()
        .expect("running gridmap-import")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn loads_files_in_any_order_and_prints_a_summary(pool: PgPool) {
    let dir = TempDir::new("cli-load");
    let chain = dir.chain();
    let mut args: Vec<&str> = chain.iter().map(|source| text(&source.path)).collect();
    args.reverse();

    let output = run_against(&pool, &args).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.starts_with("Loaded 10 file(s) in "), "{summary}");
    assert!(summary.contains(" 13 features, 13 rows, "), "{summary}");
    assert!(
        summary
            .lines()
            .any(|line| line.trim_start().starts_with("stations")
                && line.contains(" 2  stations.geojson")
                && line.ends_with("EPSG:4490")),
        "{summary}"
    );
    let stations: i64 = sqlx::query_scalar("SELECT count(*) FROM stations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stations, 2);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn dry_run_prints_what_would_load_and_writes_nothing(pool: PgPool) {
    let dir = TempDir::new("cli-dry");
    let chain = dir.chain();
    let mut args = vec!["--dry-run"];
    args.extend(chain.iter().map(|source| text(&source.path)));

    let output = run_against(&pool, &args).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("Checked (dry run, nothing written) 10 file(s)"));
    assert!(counts(&pool).await.iter().all(|(_, count)| *count == 0));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn rejected_input_exits_2_with_one_line_per_problem(pool: PgPool) {
    let dir = TempDir::new("cli-reject");
    let chain = dir.chain();
    let grids = dir.layer(
        Entity::Grids,
        &[
            grid("37068100100", COMMUNITY, area()),
            grid("370681001001002", COMMUNITY, bow_tie()),
        ],
    );
    let mut args: Vec<&str> = chain[..3].iter().map(|source| text(&source.path)).collect();
    args.push(text(&grids.path));

    let output = run_against(&pool, &args).await;

    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let lines: Vec<String> = stderr(&output).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "grids.geojson feature 1 (WGBM): grid code \"37068100100\" must be 15 digits, found 11 characters",
            "grids.geojson feature 2: invalid geometry: Self-intersection at (120.31 37.61)",
            "gridmap-import: input rejected: 2 problem(s); nothing was written",
        ]
    );
    assert!(stdout(&output).is_empty());
    assert!(counts(&pool).await.iter().all(|(_, count)| *count == 0));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn as_names_the_entity_of_files_with_other_names(pool: PgPool) {
    let dir = TempDir::new("cli-as");
    let district = dir.write(
        "龙口市边界.json",
        &collection(&good_features(Entity::Districts)),
    );

    let output = run_against(&pool, &["--as", "districts", text(&district)]).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let name: String = sqlx::query_scalar("SELECT name FROM districts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "龙口市");
}

#[test]
fn usage_errors_exit_64_before_touching_any_database() {
    let dir = TempDir::new("cli-usage");
    let survey = dir.write("survey.geojson", &collection(&[feature(json!({}), area())]));
    let cases: [&[&str]; 8] = [
        &[],
        &["--as", "roads", "--field", "class", text(&survey)],
        &["--as", "roads", "--field", "=Layer", text(&survey)],
        &[text(&survey)],
        &["--as", "parcels", text(&survey)],
        &["--as", "grids", "--mode", "merge", text(&survey)],
        &["--as", "grids", "--crs", "mars", text(&survey)],
        &["--as", "grids", "--crs", "EPSG:999999", text(&survey)],
    ];
    for args in cases {
        let output = Command::new(BINARY)
            .args(args)
            // An unreachable database: a usage error must be found first.
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = Command::new(BINARY).arg(text(&survey)).output().unwrap();
    assert!(
        stderr(&output).contains("cannot tell the layer kind of"),
        "{}",
        stderr(&output)
    );
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit codes: 0 loaded"));
}

#[test]
fn missing_database_exits_1() {
    let dir = TempDir::new("cli-nodb");
    let districts = dir.layer(Entity::Districts, &good_features(Entity::Districts));
    // The server answers at once that the database does not exist, where an
    // unreachable host would keep the pool retrying for its whole timeout.
    let output = Command::new(BINARY)
        .arg(text(&districts.path))
        .env("DATABASE_URL", url_of("gridmap_import_no_such_database"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("connecting to the database"),
        "{}",
        stderr(&output)
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn upsert_of_roads_exits_with_usage_error(pool: PgPool) {
    let dir = TempDir::new("cli-upsert-roads");
    let roads = dir.layer(Entity::Roads, &good_features(Entity::Roads));

    let output = run_against(&pool, &["--mode", "upsert", text(&roads.path)]).await;

    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--mode upsert needs a code"),
        "{}",
        stderr(&output)
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn skip_invalid_loads_the_rest_and_lists_the_skipped(pool: PgPool) {
    let dir = TempDir::new("cli-skip");
    let chain = dir.chain();
    let parents = sources_before(&chain, Entity::Grids);
    let mut args: Vec<&str> = parents.iter().map(|source| text(&source.path)).collect();
    let output = run_against(&pool, &args).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let grids = dir.layer(
        Entity::Grids,
        &[
            grid(GRID, COMMUNITY, area()),
            grid("370681001001002", COMMUNITY, bow_tie()),
        ],
    );
    let rejects = dir.path().join("rejects.geojson");
    args = vec![
        "--skip-invalid",
        "--rejects",
        text(&rejects),
        text(&grids.path),
    ];

    let output = run_against(&pool, &args).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("grids.geojson feature 2: invalid geometry"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).starts_with("Skipped 1 invalid feature(s)"),
        "{}",
        stdout(&output)
    );
    let rejected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rejects).unwrap()).unwrap();
    assert_eq!(rejected["features"][0]["properties"]["_feature"], json!(2));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn repair_prints_each_repair_and_loads(pool: PgPool) {
    let dir = TempDir::new("cli-repair");
    let chain = dir.chain();
    let parents: Vec<&str> = chain[..3].iter().map(|source| text(&source.path)).collect();
    assert_eq!(run_against(&pool, &parents).await.status.code(), Some(0));
    let grids = dir.layer(
        Entity::Grids,
        &[grid("370681001001002", COMMUNITY, bow_tie())],
    );

    let output = run_against(&pool, &["--repair", text(&grids.path)]).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "grids.geojson feature 1: Self-intersection at (120.31 37.61) repaired into 2 polygons"
        ),
        "{}",
        stderr(&output)
    );
    let parts: i32 = sqlx::query_scalar("SELECT ST_NumGeometries(geom) FROM grids")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(parts, 2);
}
