//! OpenStreetMap buildings and addresses from the Helsinki extract in
//! ../shared/data (© OpenStreetMap contributors, ODbL 1.0), placed in two
//! grids drawn over it. Counts come from GDAL (ogrinfo with SpatiaLite's
//! `ST_IsValid`, ogr2ogr) and containment from PostGIS, not from the
//! importer's own reader.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportOptions, Source};
use serde_json::{json, Value};
use sqlx::PgPool;

const WEST_GRID: &str = "370681001001001";
const EAST_GRID: &str = "370681001001002";
/// Where the two grids meet: through the middle of the extract.
const SPLIT_LON: f64 = 24.945;

fn helsinki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/helsinki-2019.osm.pbf")
}

fn outside_china() -> ImportOptions {
    ImportOptions {
        outside_china: true,
        ..ImportOptions::default()
    }
}

/// District, street and community over central Helsinki, split into a west
/// and an east grid.
async fn load_grids(pool: &PgPool, dir: &TempDir) {
    let whole = square(24.90, 60.14, 25.00, 60.20);
    let sources = vec![
        dir.layer(
            Entity::Districts,
            &[feature(
                json!({ "XZQDM": DISTRICT, "XZQMC": "龙口市" }),
                whole.clone(),
            )],
        ),
        dir.layer(
            Entity::Streets,
            &[feature(
                json!({ "JDDM": STREET, "JDMC": "东莱街道", "XZQDM": DISTRICT }),
                whole.clone(),
            )],
        ),
        dir.layer(
            Entity::Communities,
            &[feature(
                json!({ "SQDM": COMMUNITY, "SQMC": "北关村", "JDDM": STREET, "SQLX": "村" }),
                whole,
            )],
        ),
        dir.layer(
            Entity::Grids,
            &[
                grid(WEST_GRID, COMMUNITY, square(24.90, 60.14, SPLIT_LON, 60.20)),
                grid(EAST_GRID, COMMUNITY, square(SPLIT_LON, 60.14, 25.00, 60.20)),
            ],
        ),
    ];
    import(pool, &sources, &outside_china()).await.unwrap();
}

/// One integer of `ogrinfo -sql` output, named `name`.
fn ogrinfo_count(sql: &str, dialect: Option<&str>, name: &str) -> i64 {
    let mut command = Command::new("ogrinfo");
    command.args(["-ro", "-q"]);
    if let Some(dialect) = dialect {
        command.args(["-dialect", dialect]);
    }
    let output = command
        .args(["-sql", sql])
        .arg(helsinki())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("{name} (Integer) = ");
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in ogrinfo output: {stdout}"))
        .parse()
        .unwrap()
}

/// Features of one layer of the extract as ogr2ogr writes them to GeoJSON.
fn ogr2ogr_features(layer: &str, filter: &str) -> Vec<Value> {
    let output = Command::new("ogr2ogr")
        // Seventeen digits print every double exactly: an entrance node on a
        // building's outline must not move off (or onto) it.
        .args([
            "-f",
            "GeoJSON",
            "-lco",
            "COORDINATE_PRECISION=17",
            "/vsistdout/",
        ])
        .arg(helsinki())
        .args([layer, "-where", filter])
        .output()
        .unwrap();
    let collection: Value = serde_json::from_slice(&output.stdout).unwrap();
    collection["features"].as_array().unwrap().clone()
}

/// Whether GDAL's `other_tags` of a feature hold both address tags.
fn has_street_address(feature: &Value) -> bool {
    let tags = feature["properties"]["other_tags"].as_str().unwrap_or("");
    tags.contains("\"addr:street\"=>") && tags.contains("\"addr:housenumber\"=>")
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn osm_buildings_get_the_grid_holding_them_and_stable_codes(pool: PgPool) {
    let dir = TempDir::new("osm-buildings");
    let source = Source::new(helsinki(), Entity::Buildings);

    // Without grids there is nowhere to put them.
    let err = import(&pool, std::slice::from_ref(&source), &outside_china())
        .await
        .unwrap_err();
    let ImportError::Rejected { problems, .. } = err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert!(
        problems[0].reason.contains("import the grids first"),
        "{}",
        problems[0]
    );

    load_grids(&pool, &dir).await;
    // Buildings cut by the extract's edge come out of GDAL broken: those
    // are the rejected ones, and the rest load.
    let options = ImportOptions {
        skip_invalid: true,
        ..outside_china()
    };
    let report = import(&pool, std::slice::from_ref(&source), &options)
        .await
        .unwrap();
    let yielded = ogrinfo_count(
        "SELECT COUNT(*) AS n FROM multipolygons WHERE building IS NOT NULL",
        None,
        "n",
    );
    let valid = ogrinfo_count(
        "SELECT SUM(ST_IsValid(geometry) = 1) AS valid FROM multipolygons \
         WHERE building IS NOT NULL",
        Some("SQLite"),
        "valid",
    );
    assert!(yielded > 400 && valid < yielded, "{valid} of {yielded}");
    assert_eq!(report.rows_of(Entity::Buildings) as i64, valid);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM buildings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, valid);

    // Every building overlaps its grid, and one wholly inside a grid (per
    // PostGIS) is in that grid; both grids got some.
    let outside: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM buildings b JOIN grids g ON g.code = b.grid_code \
         WHERE NOT ST_Intersects(b.geom, g.geom)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(outside, 0);
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM buildings b JOIN grids g ON ST_Within(b.geom, g.geom) \
         WHERE g.code <> b.grid_code",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(misplaced, 0);
    let per_grid: Vec<(String, i64)> = sqlx::query_as(
        "SELECT grid_code, count(*) FROM buildings GROUP BY grid_code ORDER BY grid_code",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(per_grid.len(), 2, "{per_grid:?}");
    // Codes number each grid's buildings from 1 without a gap but for the
    // rejected ones; names fall back to the OSM id.
    let (first, last): (String, String) =
        sqlx::query_as("SELECT min(code), max(code) FROM buildings WHERE grid_code = $1")
            .bind(WEST_GRID)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(first, format!("{WEST_GRID}0000001"));
    assert!(last.starts_with(WEST_GRID) && last.len() == 22, "{last}");
    let unnamed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM buildings WHERE name ~ '^OSM (way|relation) [0-9]+$'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(unnamed > 0 && unnamed < stored, "{unnamed}");

    // The same file over the same grids gives the same codes: an upsert
    // changes nothing.
    let upsert = ImportOptions {
        mode: gridmap_import::ImportMode::Upsert,
        ..options
    };
    let again = import(&pool, &[source], &upsert).await.unwrap();
    assert_eq!(again.rows(), 0);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn osm_addresses_of_nodes_and_buildings_find_their_building(pool: PgPool) {
    let dir = TempDir::new("osm-addresses");
    load_grids(&pool, &dir).await;
    let options = ImportOptions {
        skip_invalid: true,
        ..outside_china()
    };
    import(
        &pool,
        &[Source::new(helsinki(), Entity::Buildings)],
        &options,
    )
    .await
    .unwrap();
    let report = import(
        &pool,
        &[Source::new(helsinki(), Entity::Addresses)],
        &options,
    )
    .await
    .unwrap();

    // The oracle (a table of the test database): address nodes as ogr2ogr
    // writes them, placed by PostGIS in the stored buildings, plus the
    // addressed buildings PostGIS finds valid.
    sqlx::query("CREATE TABLE osm_nodes (geom geometry(Point, 4326))")
        .execute(&pool)
        .await
        .unwrap();
    let nodes: Vec<Value> = ogr2ogr_features("points", "other_tags LIKE '%addr:housenumber%'")
        .into_iter()
        .filter(has_street_address)
        .collect();
    for node in &nodes {
        sqlx::query("INSERT INTO osm_nodes VALUES (ST_SetSRID(ST_GeomFromGeoJSON($1), 4326))")
            .bind(node["geometry"].to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    let nodes_in_buildings: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM osm_nodes n WHERE EXISTS \
         (SELECT 1 FROM buildings b WHERE ST_Intersects(b.geom, ST_SetSRID(n.geom, 4490)))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut valid_addressed_buildings = 0;
    for building in ogr2ogr_features("multipolygons", "building IS NOT NULL")
        .iter()
        .filter(|building| has_street_address(building))
    {
        // Rings GDAL could not close (cut by the extract) are no polygon at all.
        let closed = building["geometry"]["coordinates"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|polygon| polygon.as_array().unwrap())
            .all(|ring| ring.as_array().unwrap().len() >= 4);
        if !closed {
            continue;
        }
        let valid: bool = sqlx::query_scalar("SELECT ST_IsValid(ST_GeomFromGeoJSON($1))")
            .bind(building["geometry"].to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
        valid_addressed_buildings += i64::from(valid);
    }
    assert!(nodes.len() > 1000, "{}", nodes.len());
    assert!(
        valid_addressed_buildings > 50,
        "{valid_addressed_buildings}"
    );
    assert_eq!(
        report.rows_of(Entity::Addresses) as i64,
        nodes_in_buildings + valid_addressed_buildings
    );
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT split_part(code, '/', 2), count(*) FROM addresses GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let node_count = kinds
        .iter()
        .find(|(kind, _)| kind == "node")
        .map_or(0, |(_, count)| *count);
    assert_eq!(node_count, nodes_in_buildings, "{kinds:?}");

    // Every address lies in its building, per PostGIS, and reads "street number".
    let astray: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM addresses a JOIN buildings b ON b.code = a.building_code \
         WHERE NOT ST_Intersects(a.geom, b.geom)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(astray, 0);
    let malformed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM addresses WHERE address !~ '^\\S.* \\S+$' \
         OR code !~ '^osm/(node|way|relation)/[0-9]+$'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(malformed, 0);
}
