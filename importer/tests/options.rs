//! The import options against a real PostGIS: `--crs` for the offset systems,
//! the insert/upsert/replace modes, `--skip-invalid`, `--rejects` and
//! `--encoding`. Each test gets a fresh database from `#[sqlx::test]`.

mod common;

use std::path::Path;

use common::*;
use gridmap_import::{
    import, Entity, ImportError, ImportMode, ImportOptions, ImportReport, LonLatCrs, Problem,
    Source, SourceCrs,
};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn load_with(
    pool: &PgPool,
    sources: &[Source],
    options: ImportOptions,
) -> Result<ImportReport, ImportError> {
    import(pool, sources, &options).await
}

fn mode(mode: ImportMode) -> ImportOptions {
    ImportOptions {
        mode,
        ..ImportOptions::default()
    }
}

fn rejected(result: Result<ImportReport, ImportError>) -> Vec<Problem> {
    match result {
        Err(ImportError::Rejected { problems, .. }) => problems,
        Err(other) => panic!("expected a rejection, got {other:?}"),
        Ok(report) => panic!("expected a rejection, got a load of {} rows", report.rows()),
    }
}

/// Every row of `table` with its system column xmin, which changes whenever
/// PostgreSQL writes a new version of the row.
async fn versions(pool: &PgPool, table: &str) -> Vec<String> {
    let sql = format!("SELECT code || ':' || xmin::text FROM {table} ORDER BY code");
    sqlx::query_scalar(&sql)
        .fetch_all(pool)
        .await
        .expect("reading row versions")
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gcj02_and_bd09_points_arrive_in_cgcs2000(pool: PgPool) {
    let dir = TempDir::new("offsets");
    let chain = dir.chain();
    import(
        &pool,
        &sources_before(&chain, Entity::Stations),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let originals: Vec<(String, f64, f64)> = good_features(Entity::Stations)
        .iter()
        .map(|feature| {
            let coordinates = &feature["geometry"]["coordinates"];
            (
                feature["properties"]["ZDBM"].as_str().unwrap().to_owned(),
                coordinates[0].as_f64().unwrap(),
                coordinates[1].as_f64().unwrap(),
            )
        })
        .collect();

    for crs in [LonLatCrs::Gcj02, LonLatCrs::Bd09] {
        let shifted: Vec<Value> = good_features(Entity::Stations)
            .into_iter()
            .map(|mut feature| {
                let lon = feature["geometry"]["coordinates"][0].as_f64().unwrap();
                let lat = feature["geometry"]["coordinates"][1].as_f64().unwrap();
                let (x, y) = crs.from_cgcs2000(lon, lat);
                // The offset is hundreds of metres: far more than the tolerance.
                assert!((x - lon).abs() + (y - lat).abs() > 1e-3);
                feature["geometry"] = point(x, y);
                feature
            })
            .collect();
        let stations = dir.layer(Entity::Stations, &shifted);
        let options = ImportOptions {
            crs: Some(SourceCrs::Offset(crs)),
            mode: ImportMode::Replace,
            ..ImportOptions::default()
        };
        let report = load_with(&pool, &[stations], options).await.unwrap();
        assert!(report.layers[0].transformed, "{crs:?}");

        let stored: Vec<(String, f64, f64)> =
            sqlx::query_as("SELECT code, ST_X(geom), ST_Y(geom) FROM stations ORDER BY code")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(stored.len(), originals.len());
        for ((code, lon, lat), (stored_code, x, y)) in originals.iter().zip(&stored) {
            assert_eq!(code, stored_code);
            assert!(
                (lon - x).abs() < 1e-7 && (lat - y).abs() < 1e-7,
                "{crs:?} {code}: stored ({x} {y}), original ({lon} {lat})"
            );
        }
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn given_epsg_overrides_a_wrong_declaration_and_degrees_are_checked(pool: PgPool) {
    let dir = TempDir::new("given-crs");
    let chain = dir.chain();
    import(
        &pool,
        &sources_before(&chain, Entity::Stations),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    // Gauss-Krüger metres (zone 40, EPSG:4528) in a file that declares EPSG:4490.
    let metres = |x: f64, y: f64, code: &str| {
        feature(
            json!({ "ZDBM": code, "ZDMC": "驿站", "ZDLX": "红色驿站", "SQDM": COMMUNITY }),
            point(x, y),
        )
    };
    let stations = dir.layer(
        Entity::Stations,
        &[metres(40_526_400.0, 4_163_500.0, "Z0100")],
    );
    let problems = rejected(
        import(
            &pool,
            std::slice::from_ref(&stations),
            &ImportOptions::default(),
        )
        .await,
    );
    assert!(
        problems[0].reason.contains("values this large are metres"),
        "{}",
        problems[0]
    );
    let options = ImportOptions {
        crs: Some(SourceCrs::Epsg(4528)),
        ..ImportOptions::default()
    };
    let report = load_with(&pool, &[stations], options).await.unwrap();
    assert_eq!(report.layers[0].source_crs, "EPSG:4528");
    let (x, y): (f64, f64) =
        sqlx::query_as("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE code = 'Z0100'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        (120.0..121.0).contains(&x) && (37.0..38.0).contains(&y),
        "{x} {y}"
    );

    // Swapped axes are refused whatever CRS is given.
    let swapped = dir.layer(
        Entity::Stations,
        &[feature(
            json!({ "ZDBM": "Z0101", "ZDMC": "驿站", "ZDLX": "红色驿站", "SQDM": COMMUNITY }),
            point(37.61, 120.31),
        )],
    );
    let options = ImportOptions {
        crs: Some(SourceCrs::Offset(LonLatCrs::Gcj02)),
        ..ImportOptions::default()
    };
    let problems = rejected(load_with(&pool, &[swapped], options).await);
    assert!(
        problems[0].reason.contains("look swapped"),
        "{}",
        problems[0]
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn upsert_twice_changes_nothing_and_updates_what_differs(pool: PgPool) {
    let dir = TempDir::new("upsert");
    let chain = sources_before(&dir.chain(), Entity::Roads);

    let first = load_with(&pool, &chain, mode(ImportMode::Upsert))
        .await
        .unwrap();
    assert_eq!(first.rows(), 9);
    let rows = dump(&pool).await;
    let count = counts(&pool).await;
    let grid_versions = versions(&pool, "grids").await;

    let second = load_with(&pool, &chain, mode(ImportMode::Upsert))
        .await
        .unwrap();
    assert_eq!(second.rows(), 0, "identical rows are not rewritten");
    assert_eq!(dump(&pool).await, rows);
    assert_eq!(counts(&pool).await, count);
    assert_eq!(versions(&pool, "grids").await, grid_versions);

    // Plain insert refuses the same codes.
    let problems = rejected(import(&pool, &chain[3..4], &ImportOptions::default()).await);
    assert!(
        problems[0].reason.contains("already exists"),
        "{}",
        problems[0]
    );

    let renamed = dir.layer(
        Entity::Grids,
        &[grid(GRID, COMMUNITY, area())
            .as_object()
            .cloned()
            .map(Value::Object)
            .unwrap()],
    );
    let report = load_with(&pool, &[renamed], mode(ImportMode::Upsert))
        .await
        .unwrap();
    assert_eq!(report.rows_of(Entity::Grids), 1);
    let name: String = sqlx::query_scalar("SELECT name FROM grids WHERE code = $1")
        .bind(GRID)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, format!("网格{GRID}"));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn upsert_of_roads_is_a_usage_error(pool: PgPool) {
    let dir = TempDir::new("upsert-roads");
    let roads = dir.layer(Entity::Roads, &good_features(Entity::Roads));
    let err = load_with(&pool, &[roads], mode(ImportMode::Upsert))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImportError::ModeNotSupported { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("--mode insert or --mode replace"),
        "{err}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn replace_deletes_what_the_import_lacks_unless_referenced(pool: PgPool) {
    let dir = TempDir::new("replace");
    let chain = dir.chain();
    import(&pool, &chain, &ImportOptions::default())
        .await
        .unwrap();
    let before = counts(&pool).await;

    // A grids file without the grid the unit and building hang on.
    let other = "370681001001002";
    let grids = dir.layer(Entity::Grids, &[grid(other, COMMUNITY, area())]);
    let problems = rejected(load_with(&pool, &[grids], mode(ImportMode::Replace)).await);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].reason.contains("still referenced")
            && problems[0].reason.contains("--mode upsert"),
        "{}",
        problems[0]
    );
    assert_eq!(counts(&pool).await, before, "nothing was written");

    // Stations: Z0001 is not in the file and goes; Z0002 stays.
    let stations = dir.layer(Entity::Stations, &good_features(Entity::Stations)[1..]);
    let report = load_with(&pool, &[stations], mode(ImportMode::Replace))
        .await
        .unwrap();
    assert_eq!(report.deleted, 1);
    assert_eq!(report.rows(), 0, "Z0002 was already identical");
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM stations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(codes, ["Z0002"]);

    // Roads have no code: replace empties the table first.
    let roads = dir.layer(Entity::Roads, &good_features(Entity::Roads)[..1]);
    let report = load_with(&pool, &[roads], mode(ImportMode::Replace))
        .await
        .unwrap();
    assert_eq!((report.deleted, report.rows()), (2, 1));
    let roads: i64 = sqlx::query_scalar("SELECT count(*) FROM roads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(roads, 1);
}

/// A grids file with a good grid and a bow tie, and a grid-units file with a
/// unit in each.
fn bad_grid_and_its_unit(dir: &TempDir) -> Vec<Source> {
    let bad = "370681001001002";
    let grids = dir.layer(
        Entity::Grids,
        &[
            grid(GRID, COMMUNITY, area()),
            grid(bad, COMMUNITY, bow_tie()),
        ],
    );
    let units = dir.layer(
        Entity::GridUnits,
        &[
            feature(
                json!({ "DYBM": UNIT, "DYMC": "第一单元", "WGBM": GRID }),
                area(),
            ),
            feature(
                json!({ "DYBM": format!("{bad}001"), "DYMC": "坏网格的单元", "WGBM": bad }),
                area(),
            ),
        ],
    );
    vec![grids, units]
}

/// The features of the GeoJSON at `path` as GDAL reads them: (layer name of
/// each feature, its properties as text).
fn read_with_gdal(path: &Path) -> Vec<Vec<(String, Option<String>)>> {
    use gdal::vector::LayerAccess as _;
    let dataset = gdal::Dataset::open(path).expect("GDAL opens the rejects file");
    let mut layer = dataset.layer(0).expect("the rejects file has a layer");
    let names: Vec<String> = layer.defn().fields().map(|field| field.name()).collect();
    layer
        .features()
        .map(|feature| {
            names
                .iter()
                .enumerate()
                .map(|(index, name)| {
                    (
                        name.clone(),
                        feature.field_as_string(index).expect("a readable field"),
                    )
                })
                .collect()
        })
        .collect()
}

fn property<'a>(feature: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    feature
        .iter()
        .find(|(field, _)| field == name)
        .and_then(|(_, value)| value.as_deref())
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn skip_invalid_loads_the_rest_and_skips_dependants(pool: PgPool) {
    let dir = TempDir::new("skip");
    let chain = dir.chain();
    import(
        &pool,
        &sources_before(&chain, Entity::Grids),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let sources = bad_grid_and_its_unit(&dir);
    let rejects = dir.path().join("rejects.geojson");

    // Without --skip-invalid the whole import is refused, and the rejects
    // file still lists the offending feature.
    let options = ImportOptions {
        rejects: Some(rejects.clone()),
        ..ImportOptions::default()
    };
    let problems = rejected(load_with(&pool, &sources, options).await);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let features = read_with_gdal(&rejects);
    assert_eq!(features.len(), 1);
    assert_eq!(property(&features[0], "WGBM"), Some("370681001001002"));
    assert_eq!(property(&features[0], "_layer"), Some("grids.geojson"));
    assert_eq!(property(&features[0], "_feature"), Some("2"));

    let options = ImportOptions {
        skip_invalid: true,
        rejects: Some(rejects.clone()),
        ..ImportOptions::default()
    };
    let report = load_with(&pool, &sources, options).await.unwrap();
    assert_eq!(report.skipped, 2);
    assert_eq!(
        (
            report.rows_of(Entity::Grids),
            report.rows_of(Entity::GridUnits)
        ),
        (1, 1)
    );
    let unit_problem = &report.skipped_problems[1];
    assert_eq!(
        (
            unit_problem.layer.as_str(),
            unit_problem.feature,
            unit_problem.field.as_deref()
        ),
        ("grid_units.geojson", 2, Some("WGBM"))
    );
    assert!(
        unit_problem.reason.starts_with(
            "skipped because its grid \"370681001001002\" (grids.geojson feature 2) was skipped"
        ),
        "{unit_problem}"
    );
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM grids UNION ALL SELECT code FROM grid_units ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(codes, [GRID, UNIT]);

    // The rejects file is GeoJSON GDAL reads, with the original properties.
    let features = read_with_gdal(&rejects);
    assert_eq!(features.len(), 2);
    assert_eq!(property(&features[1], "DYMC"), Some("坏网格的单元"));
    assert_eq!(property(&features[1], "_field"), Some("WGBM"));
    assert!(property(&features[0], "_reason")
        .unwrap()
        .starts_with("invalid geometry: Self-intersection"));
    let text: Value = serde_json::from_str(&std::fs::read_to_string(&rejects).unwrap()).unwrap();
    assert_eq!(text["features"][0]["geometry"]["type"], "Polygon");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn layer_problems_still_reject_with_skip_invalid(pool: PgPool) {
    let dir = TempDir::new("skip-layer");
    let grids = dir.layer(
        Entity::Grids,
        &[feature(json!({ "WGMC": "无编码网格" }), area())],
    );
    let options = ImportOptions {
        skip_invalid: true,
        ..ImportOptions::default()
    };
    let problems = rejected(load_with(&pool, &[grids], options).await);
    assert!(
        problems.iter().any(|problem| problem.feature == 0),
        "{problems:?}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn gbk_shapefile_without_cpg_reads_with_encoding(pool: PgPool) {
    let dir = TempDir::new("encoding");
    let chain = dir.chain();
    import(
        &pool,
        &sources_before(&chain, Entity::Grids),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let shp = dir.path().join("grids.shp");
    ogr2ogr(&["-lco", "ENCODING=CP936", text(&shp), text(&chain[3].path)]);
    std::fs::remove_file(dir.path().join("grids.cpg")).unwrap();
    let source = Source::new(&shp, Entity::Grids);

    let options = ImportOptions {
        encoding: Some("CP936".to_owned()),
        ..ImportOptions::default()
    };
    load_with(&pool, &[source], options).await.unwrap();
    let (name, worker): (String, Option<String>) =
        sqlx::query_as("SELECT name, worker_name FROM grids WHERE code = $1")
            .bind(GRID)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (name.as_str(), worker.as_deref()),
        ("北关村第一网格", Some("张三"))
    );
}
