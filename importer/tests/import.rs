//! The importer against a real PostGIS: each test gets a fresh database from
//! `#[sqlx::test]` (DATABASE_URL must name a role that may create databases;
//! `cargo run -p gridmap-store --bin gridmap-db -- start` prints one).

mod common;

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportOptions, ImportReport, Problem, Source};
use serde_json::json;
use sqlx::PgPool;

async fn load(pool: &PgPool, sources: &[Source]) -> Result<ImportReport, ImportError> {
    import(pool, sources, &ImportOptions::default()).await
}

/// The problems of a rejected import; fails the test on any other outcome.
fn problems(result: Result<ImportReport, ImportError>) -> Vec<Problem> {
    match result {
        Err(ImportError::Rejected { problems, omitted }) => {
            assert_eq!(omitted, 0);
            problems
        }
        Err(other) => panic!("expected a rejection, got {other:?}"),
        Ok(report) => panic!("expected a rejection, got a load of {} rows", report.rows()),
    }
}

fn assert_problem(problems: &[Problem], expected_start: &str, reason_fragment: &str) {
    assert!(
        problems
            .iter()
            .any(|problem| problem.to_string().starts_with(expected_start)
                && problem.reason.contains(reason_fragment)),
        "no problem starting {expected_start:?} with {reason_fragment:?} in:\n{}",
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn good_chain_loads_every_table_whatever_the_file_order(pool: PgPool) {
    let dir = TempDir::new("chain");
    let mut sources = dir.chain();
    sources.reverse();

    let report = load(&pool, &sources).await.unwrap();

    let loaded: Vec<Entity> = report.layers.iter().map(|layer| layer.entity).collect();
    assert_eq!(loaded, Entity::ALL, "layers load in dependency order");
    assert_eq!(report.rows(), 13);
    assert_eq!(report.rows_of(Entity::Stations), 2);
    assert!(!report.dry_run);
    let grids = &report.layers[3];
    assert_eq!(grids.source_crs, "EPSG:4490");
    assert!(!grids.transformed);
    let mapping: Vec<(&str, Option<&str>)> = grids
        .fields
        .iter()
        .map(|field| (field.column, field.source.as_deref()))
        .collect();
    assert_eq!(
        mapping,
        [
            ("code", Some("WGBM")),
            ("name", Some("WGMC")),
            ("community_code", Some("SQDM")),
            ("kind", Some("WGLX")),
            ("status", Some("ZTYS")),
            ("worker_name", Some("WGY")),
            ("worker_phone", Some("LXDH")),
        ]
    );

    let counts = counts(&pool).await;
    let expected: Vec<(Entity, i64)> = Entity::ALL
        .iter()
        .map(|entity| (*entity, good_features(*entity).len() as i64))
        .collect();
    assert_eq!(counts, expected);

    let grid: (String, String, String, String, Option<String>, String, i32) = sqlx::query_as(
        "SELECT community_code, name, kind, status, worker_name, ST_GeometryType(geom), ST_SRID(geom) \
         FROM grids WHERE code = $1",
    )
    .bind(GRID)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        grid,
        (
            COMMUNITY.to_owned(),
            "北关村第一网格".to_owned(),
            "basic".to_owned(),
            "yellow".to_owned(),
            Some("张三".to_owned()),
            "ST_MultiPolygon".to_owned(),
            4490
        )
    );
    let community_kind: String = sqlx::query_scalar("SELECT kind FROM communities")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(community_kind, "village");
    let building: (String, Option<String>, i32, Option<i32>) =
        sqlx::query_as("SELECT grid_code, unit_code, households, floors FROM buildings")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        building,
        (GRID.to_owned(), Some(UNIT.to_owned()), 48, Some(6))
    );
    // Code, kind, grid, area and amenities of each station.
    type StationRow = (String, String, Option<String>, Option<f64>, Vec<String>);
    let stations: Vec<StationRow> = sqlx::query_as(
        "SELECT code, kind, grid_code, area_m2, amenities FROM stations ORDER BY code",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        stations,
        [
            (
                "Z0001".to_owned(),
                "service_centre".to_owned(),
                None,
                Some(320.5),
                vec!["工具借用".to_owned(), "饮水".to_owned(), "充电".to_owned()]
            ),
            (
                "Z0002".to_owned(),
                "rider_rest_stop".to_owned(),
                Some(GRID.to_owned()),
                Some(25.0),
                vec!["休息".to_owned()]
            ),
        ]
    );
    let roads: Vec<(Option<String>, String, String)> =
        sqlx::query_as("SELECT name, class, ST_GeometryType(geom) FROM roads ORDER BY class DESC")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        roads,
        [
            (
                Some("北关路".to_owned()),
                "residential".to_owned(),
                "ST_LineString".to_owned()
            ),
            (None, "footway".to_owned(), "ST_LineString".to_owned()),
        ]
    );
    let address_point: String = sqlx::query_scalar("SELECT ST_AsText(geom) FROM addresses")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(address_point, "POINT(120.3055 37.6055)");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn bow_tie_grid_is_rejected_and_nothing_is_written(pool: PgPool) {
    let dir = TempDir::new("bowtie");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();
    let before = counts(&pool).await;

    let grids = dir.layer(
        Entity::Grids,
        &[
            grid(GRID, COMMUNITY, square(120.30, 37.60, 120.31, 37.62)),
            grid("370681001001002", COMMUNITY, bow_tie()),
        ],
    );
    let units = chain[4].clone();
    let problems = problems(load(&pool, &[grids, units]).await);

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].layer, "grids.geojson");
    assert_eq!(problems[0].feature, 2);
    assert_eq!(problems[0].field, None);
    assert!(
        problems[0]
            .reason
            .starts_with("invalid geometry: Self-intersection at (120.31 37.61)"),
        "{}",
        problems[0]
    );
    assert_eq!(
        counts(&pool).await,
        before,
        "a rejected import writes nothing"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn duplicate_codes_are_rejected_in_the_file_and_against_the_database(pool: PgPool) {
    let dir = TempDir::new("duplicate");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();
    let before = counts(&pool).await;

    let grids = dir.layer(
        Entity::Grids,
        &[
            grid(GRID, COMMUNITY, square(120.30, 37.60, 120.31, 37.62)),
            grid(GRID, COMMUNITY, square(120.31, 37.60, 120.32, 37.62)),
        ],
    );
    let found = problems(load(&pool, &[grids]).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        format!("grids.geojson feature 2 (WGBM): duplicate code \"{GRID}\": already used by grids.geojson feature 1")
    );

    let again = problems(load(&pool, &chain[..2]).await);
    assert_problem(
        &again,
        "districts.geojson feature 1 (XZQDM)",
        "code \"370681\" already exists in the database (table districts)",
    );
    assert_problem(&again, "streets.geojson feature 1 (JDDM)", "already exists");
    assert_eq!(counts(&pool).await, before);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn code_not_under_its_parent_is_rejected(pool: PgPool) {
    let dir = TempDir::new("nesting");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();

    // Community 002's grid, declared in community 001.
    let grids = dir.layer(Entity::Grids, &[grid("370681001002001", COMMUNITY, area())]);
    let found = problems(load(&pool, &[grids]).await);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        "grids.geojson feature 1 (WGBM): grid code \"370681001002001\" does not start with \
         its parent's code \"370681001001\" (SQDM \"370681001001\")"
    );
    assert_eq!(counts(&pool).await[3], (Entity::Grids, 0));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn missing_parent_is_rejected_unless_it_comes_in_the_same_import(pool: PgPool) {
    let dir = TempDir::new("parent");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();

    let orphan = dir.layer(
        Entity::Grids,
        &[grid("370681001009001", "370681001009", area())],
    );
    let found = problems(load(&pool, std::slice::from_ref(&orphan)).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        "grids.geojson feature 1 (SQDM): community \"370681001009\" exists neither in the \
         database nor in this import"
    );

    // The same grid loads when its community comes along.
    let community = dir.layer(
        Entity::Communities,
        &[feature(
            json!({ "SQDM": "370681001009", "SQMC": "南关社区", "JDDM": STREET }),
            area(),
        )],
    );
    let report = load(&pool, &[orphan, community]).await.unwrap();
    assert_eq!(report.rows(), 2);
    let kind: String =
        sqlx::query_scalar("SELECT kind FROM communities WHERE code = '370681001009'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "urban", "SQLX absent: the default kind");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn every_field_problem_is_reported_at_once(pool: PgPool) {
    let dir = TempDir::new("fields");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();
    let before = counts(&pool).await;

    let grids = dir.layer(
        Entity::Grids,
        &[
            grid("37068100100", COMMUNITY, area()),
            feature(
                json!({ "WGBM": "370681001001002", "WGMC": "", "SQDM": COMMUNITY, "WGLX": "普通网格", "ZTYS": "紫" }),
                area(),
            ),
            feature(json!({ "WGBM": "370681001001003", "WGMC": "三", "SQDM": COMMUNITY, "WGLX": "专属网格" }), json!(null)),
            grid("370681001001004", COMMUNITY, point(120.31, 37.61)),
            grid("370681001001005", COMMUNITY, square(37.60, 120.30, 37.62, 120.32)),
            grid(
                "370681001001006",
                COMMUNITY,
                json!({ "type": "Polygon", "coordinates": [[[120.30, 37.60], [120.31, 37.60], [120.31, 37.61], [120.30, 37.61]]] }),
            ),
        ],
    );
    let units = dir.layer(
        Entity::GridUnits,
        &[feature(json!({ "DYBM": UNIT, "WGBM": GRID }), area())],
    );
    let found = problems(load(&pool, &[units, grids]).await);
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();

    assert_eq!(
        lines[0],
        "grids.geojson feature 1 (WGBM): grid code \"37068100100\" must be 15 digits, found 11 characters"
    );
    assert_problem(
        &found,
        "grids.geojson feature 2 (WGMC)",
        "a value is required for name",
    );
    assert_problem(
        &found,
        "grids.geojson feature 2 (WGLX)",
        "\"普通网格\" is not a known grid kind",
    );
    assert_problem(
        &found,
        "grids.geojson feature 2 (ZTYS)",
        "not a known status colour",
    );
    assert_problem(&found, "grids.geojson feature 3:", "no geometry");
    assert_problem(
        &found,
        "grids.geojson feature 4:",
        "expected a Polygon or MultiPolygon, found a POINT",
    );
    assert_problem(
        &found,
        "grids.geojson feature 5:",
        "latitude and longitude look swapped",
    );
    assert_problem(
        &found,
        "grids.geojson feature 6:",
        "unclosed ring: the outer ring starts at (120.3 37.6) but ends at (120.3 37.61)",
    );
    // The units file lacks DYMC altogether: one problem for the whole layer,
    // not one per feature. Its grid is neither stored nor imported.
    assert_problem(
        &found,
        "grid_units.geojson (name):",
        "required field missing: expected one of DYMC",
    );
    assert_problem(
        &found,
        "grid_units.geojson feature 1 (WGBM)",
        "exists neither",
    );
    assert_eq!(found.len(), 10, "{lines:#?}");
    // Problems come in load order: grids before grid units.
    assert!(lines.last().unwrap().starts_with("grid_units.geojson"));
    assert_eq!(counts(&pool).await, before);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn unparseable_and_missing_files_write_nothing(pool: PgPool) {
    let dir = TempDir::new("unparseable");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();
    let before = counts(&pool).await;

    let broken = Source::new(
        dir.write(
            "grids.geojson",
            "{\"type\": \"FeatureCollection\", \"features\": [ {",
        ),
        Entity::Grids,
    );
    let found = problems(load(&pool, &[broken, chain[4].clone()]).await);
    assert_problem(
        &found,
        "grids.geojson:",
        "GDAL cannot read this file as a vector dataset",
    );
    assert_eq!(counts(&pool).await, before);

    let missing = Source::new(dir.path().join("streets.geojson.bak"), Entity::Streets);
    let err = load(&pool, &[missing]).await.unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("streets.geojson.bak"), "{err}");
    assert_eq!(counts(&pool).await, before);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn dry_run_checks_and_counts_but_writes_nothing(pool: PgPool) {
    let dir = TempDir::new("dryrun");
    let options = ImportOptions {
        dry_run: true,
        ..ImportOptions::default()
    };

    let report = import(&pool, &dir.chain(), &options).await.unwrap();

    assert!(report.dry_run);
    assert_eq!(report.rows(), 13);
    assert!(counts(&pool).await.iter().all(|(_, count)| *count == 0));
    // A dry run still rejects bad input.
    let bad = dir.layer(
        Entity::Districts,
        &[feature(
            json!({ "XZQDM": "3706", "XZQMC": "龙口市" }),
            area(),
        )],
    );
    let found = problems(import(&pool, &[bad], &options).await);
    assert_problem(
        &found,
        "districts.geojson feature 1 (XZQDM)",
        "must be 6 digits",
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn shapefiles_and_geopackages_read_like_geojson(pool: PgPool) {
    let dir = TempDir::new("formats");
    let chain = dir.chain();
    load(&pool, &chain).await.unwrap();
    let from_geojson = dump(&pool).await;
    assert_eq!(from_geojson.len(), 13);

    // Every layer as a shapefile whose attribute table is GBK (code page
    // 936, named in the .cpg), as Chinese shapefiles usually are.
    let shapefiles: Vec<Source> = chain
        .iter()
        .map(|source| {
            let shp = dir.path().join(format!("{}.shp", source.entity));
            ogr2ogr(&["-lco", "ENCODING=CP936", text(&shp), text(&source.path)]);
            Source::new(shp, source.entity)
        })
        .collect();
    empty_all_tables(&pool).await;
    let report = load(&pool, &shapefiles).await.unwrap();
    assert_eq!(report.layers[0].layer, "districts.shp");
    assert_eq!(dump(&pool).await, from_geojson, "shapefiles");

    // All layers in one GeoPackage, each picked by its name.
    let gpkg = dir.path().join("city.gpkg");
    for source in &chain {
        ogr2ogr(&[
            "-append",
            "-nln",
            source.entity.as_str(),
            text(&gpkg),
            text(&source.path),
        ]);
    }
    let in_one_file: Vec<Source> = Entity::ALL
        .iter()
        .map(|entity| Source::new(&gpkg, *entity))
        .collect();
    empty_all_tables(&pool).await;
    load(&pool, &in_one_file).await.unwrap();
    assert_eq!(dump(&pool).await, from_geojson, "GeoPackage");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gauss_kruger_layers_are_transformed_and_undeclared_crs_is_assumed(pool: PgPool) {
    let dir = TempDir::new("crs");
    let chain = dir.chain();
    load(&pool, &sources_before(&chain, Entity::Grids))
        .await
        .unwrap();

    // Grids in CGCS2000 / 3-degree Gauss-Krüger zone 40 (central meridian 120°E).
    let projected = dir.path().join("grids.shp");
    ogr2ogr(&[
        "-t_srs",
        "EPSG:4528",
        "-lco",
        "ENCODING=UTF-8",
        text(&projected),
        text(&chain[3].path),
    ]);
    // Grid units in a shapefile whose .prj was lost: assumed CGCS2000.
    let units = dir.path().join("grid_units.shp");
    ogr2ogr(&["-lco", "ENCODING=UTF-8", text(&units), text(&chain[4].path)]);
    std::fs::remove_file(units.with_extension("prj")).unwrap();

    let report = load(
        &pool,
        &[
            Source::new(&projected, Entity::Grids),
            Source::new(&units, Entity::GridUnits),
        ],
    )
    .await
    .unwrap();

    assert_eq!(report.layers[0].source_crs, "EPSG:4528");
    assert!(report.layers[0].transformed);
    assert!(report.layers[1].source_crs.starts_with("none declared"));
    assert!(!report.layers[1].transformed);
    // The round trip through the projection moves no vertex by more than
    // a micro-degree (about 0.1 m).
    let distance: f64 = sqlx::query_scalar(
        "SELECT ST_HausdorffDistance(g.geom, u.geom) FROM grids g, grid_units u",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(distance < 1e-6, "{distance}");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn single_part_collections_are_taken_and_multi_part_lines_refused(pool: PgPool) {
    let dir = TempDir::new("parts");
    let roads = dir.layer(
        Entity::Roads,
        &[
            feature(
                json!({ "DLMC": "一段路", "DLDJ": "主干路" }),
                json!({ "type": "MultiLineString", "coordinates": [[[120.30, 37.61], [120.32, 37.61]]] }),
            ),
            feature(
                json!({ "DLMC": "两段路", "DLDJ": "次干路" }),
                json!({ "type": "MultiLineString", "coordinates": [
                    [[120.30, 37.61], [120.31, 37.61]], [[120.31, 37.62], [120.32, 37.62]]
                ] }),
            ),
        ],
    );
    let found = problems(load(&pool, std::slice::from_ref(&roads)).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].feature, 2);
    assert!(
        found[0].reason.contains("MULTILINESTRING of 2 parts"),
        "{}",
        found[0]
    );

    let roads = dir.layer(
        Entity::Roads,
        &[feature(
            json!({ "DLMC": "一段路", "DLDJ": "主干路" }),
            json!({ "type": "MultiLineString", "coordinates": [[[120.30, 37.61], [120.32, 37.61]]] }),
        )],
    );
    load(&pool, &[roads]).await.unwrap();
    let road: (String, String) = sqlx::query_as("SELECT class, ST_AsText(geom) FROM roads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        road,
        (
            "primary".to_owned(),
            "LINESTRING(120.3 37.61,120.32 37.61)".to_owned()
        )
    );
}
