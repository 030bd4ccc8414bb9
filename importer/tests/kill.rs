//! Atomicity: `gridmap-import` killed with SIGKILL in the middle of writing a
//! large layer (while its features stream in by COPY, which for this plain
//! file goes straight into the table, and while the bulk load rebuilds the
//! indexes it dropped) leaves every table, index and constraint exactly as
//! before, and a re-run succeeds.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gridmap_import::{import, ImportOptions};
use sqlx::PgPool;

const BINARY: &str = env!("CARGO_BIN_EXE_gridmap-import");

/// Buildings in the generated file: enough that writing them takes a while.
const BUILDINGS: usize = 120_000;

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

/// Row count and an md5 over every row of every table, geometry included.
async fn state(pool: &PgPool) -> Vec<(String, i64, String)> {
    let mut state = Vec::new();
    for table in [
        "districts",
        "streets",
        "communities",
        "grids",
        "grid_units",
        "buildings",
        "addresses",
        "stations",
        "roads",
    ] {
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') \
             FROM {table} AS t"
        );
        let (count, checksum): (i64, String) = sqlx::query_as(&sql).fetch_one(pool).await.unwrap();
        state.push((table.to_owned(), count, checksum));
    }
    state
}

/// A GeoJSON of `BUILDINGS` small squares in the chain's grid, codes
/// continuing after the chain's own building.
fn large_buildings_file(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.path().join("buildings.geojson");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write!(
        file,
        r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::4490"}}}},"features":["#
    )
    .unwrap();
    let mut feature = String::new();
    for index in 0..BUILDINGS {
        let (row, column) = (index / 400, index % 400);
        let west = 120.3001 + column as f64 * 0.00004;
        let south = 37.6001 + row as f64 * 0.00004;
        let (east, north) = (west + 0.00002, south + 0.00002);
        feature.clear();
        write!(
            feature,
            r#"{}{{"type":"Feature","properties":{{"LDBM":"{GRID}{:07}","LDMC":"{}号楼","WGBM":"{GRID}","HS":{}}},"geometry":{{"type":"Polygon","coordinates":[[[{west},{south}],[{east},{south}],[{east},{north}],[{west},{north}],[{west},{south}]]]}}}}"#,
            if index == 0 { "" } else { "," },
            index + 1_000_000,
            index + 1,
            index % 50,
        )
        .unwrap();
        file.write_all(feature.as_bytes()).unwrap();
    }
    write!(file, "]}}").unwrap();
    file.flush().unwrap();
    path
}

/// The indexes and constraints of the map tables, by name and definition.
async fn catalog(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index \
         WHERE indrelid = 'buildings'::regclass \
         UNION ALL \
         SELECT conname::text, pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END \
         FROM pg_constraint WHERE conrelid IN ('buildings'::regclass, 'addresses'::regclass) \
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// What the server is doing when the import gets killed.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Features arriving through COPY.
    Copying,
    /// The bulk load building the spatial index of buildings again.
    IndexBuild,
}

impl Moment {
    /// A query returning the import's backend pid once it is at this moment.
    fn probe(self) -> &'static str {
        match self {
            Moment::Copying => {
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = current_database() AND state = 'active' \
                   AND query LIKE 'COPY %'"
            }
            Moment::IndexBuild => {
                "SELECT p.pid FROM pg_stat_progress_create_index p \
                 JOIN pg_class c ON c.oid = p.relid \
                 WHERE p.datname = current_database() AND c.relname = 'buildings'"
            }
        }
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn kill_9_while_copying_leaves_every_table_as_before(pool: PgPool) {
    kill_at(pool, Moment::Copying).await;
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn kill_9_while_rebuilding_indexes_leaves_every_table_as_before(pool: PgPool) {
    kill_at(pool, Moment::IndexBuild).await;
}

async fn kill_at(pool: PgPool, moment: Moment) {
    let dir = TempDir::new("kill");
    import(&pool, &dir.chain(), &ImportOptions::default())
        .await
        .unwrap();
    let before = state(&pool).await;
    let catalog_before = catalog(&pool).await;
    let big = TempDir::new("kill-big");
    let buildings = large_buildings_file(&big);
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();

    let mut child = Command::new(BINARY)
        .arg(&buildings)
        .env("DATABASE_URL", url_of(&database))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let backend: i32 = loop {
        let found: Option<i32> = sqlx::query_scalar(moment.probe())
            .fetch_optional(&pool)
            .await
            .unwrap();
        if let Some(found) = found {
            break found;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was killed ({moment:?})"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "never saw {moment:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");

    // The server notices the closed connection and rolls back; wait for the
    // killed import's backend to go away.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let others: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                .bind(backend)
                .fetch_one(&pool)
                .await
                .unwrap();
        if others == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed import's backend lingers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&pool).await, before, "killed at {moment:?}");
    assert_eq!(catalog(&pool).await, catalog_before, "killed at {moment:?}");
    let staging: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'gridmap_import%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(staging, 0);

    // A re-run loads everything, and the bulk load leaves the same indexes
    // and constraints, valid.
    let output = Command::new(BINARY)
        .arg(&buildings)
        .env("DATABASE_URL", url_of(&database))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM buildings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, BUILDINGS as i64 + 1);
    assert_eq!(catalog(&pool).await, catalog_before);
    // The rebuilt spatial index answers like a scan of the table.
    let by_index: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM buildings WHERE geom && ST_MakeEnvelope(120, 37, 121, 38, 4490)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let by_scan: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM buildings WHERE ST_XMin(geom) >= 120 AND ST_XMax(geom) <= 121 \
         AND ST_YMin(geom) >= 37 AND ST_YMax(geom) <= 38",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(by_index, by_scan);
}
