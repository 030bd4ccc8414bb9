//! Shared helpers of the importer's integration tests: a small, valid
//! administrative chain written as GeoJSON, temporary folders, and row counts.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use gridmap_import::{Entity, Source};
use serde_json::{json, Value};
use sqlx::PgPool;

pub const DISTRICT: &str = "370681";
pub const STREET: &str = "370681001";
pub const COMMUNITY: &str = "370681001001";
pub const GRID: &str = "370681001001001";
pub const UNIT: &str = "370681001001001001";
pub const BUILDING: &str = "3706810010010010010001";

/// A folder under the system temp folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "gridmap-import-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("creating a temporary folder");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in the folder and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    /// Writes a GeoJSON layer `<entity>.geojson` and returns it as a source.
    pub fn layer(&self, entity: Entity, features: &[Value]) -> Source {
        let path = self.write(&format!("{entity}.geojson"), &collection(features));
        Source::new(path, entity)
    }

    /// Writes the whole good chain, one file per entity, in dependency order.
    pub fn chain(&self) -> Vec<Source> {
        Entity::ALL
            .iter()
            .map(|entity| self.layer(*entity, &good_features(*entity)))
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A GeoJSON FeatureCollection in CGCS2000, as the fixtures generator writes.
pub fn collection(features: &[Value]) -> String {
    json!({
        "type": "FeatureCollection",
        "crs": { "type": "name", "properties": { "name": "urn:ogc:def:crs:EPSG::4490" } },
        "features": features,
    })
    .to_string()
}

pub fn feature(properties: Value, geometry: Value) -> Value {
    json!({ "type": "Feature", "properties": properties, "geometry": geometry })
}

pub fn square(west: f64, south: f64, east: f64, north: f64) -> Value {
    json!({
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    })
}

/// A polygon whose boundary crosses itself (a bow tie), invalid in PostGIS.
pub fn bow_tie() -> Value {
    json!({
        "type": "Polygon",
        "coordinates": [[[120.30, 37.60], [120.32, 37.62], [120.32, 37.60], [120.30, 37.62], [120.30, 37.60]]],
    })
}

pub fn point(lon: f64, lat: f64) -> Value {
    json!({ "type": "Point", "coordinates": [lon, lat] })
}

pub fn line(points: &[(f64, f64)]) -> Value {
    let coordinates: Vec<[f64; 2]> = points.iter().map(|(x, y)| [*x, *y]).collect();
    json!({ "type": "LineString", "coordinates": coordinates })
}

/// The area every unit from the district down to the grid unit covers.
pub fn area() -> Value {
    square(120.30, 37.60, 120.32, 37.62)
}

/// A grid in the good community, with the given code and shape.
pub fn grid(code: &str, community: &str, geometry: Value) -> Value {
    feature(
        json!({ "WGBM": code, "WGMC": format!("网格{code}"), "SQDM": community, "WGLX": "基础网格" }),
        geometry,
    )
}

/// One valid feature set per entity: 龙口市 → 东莱街道 → 北关村 → one grid → one
/// unit → one building → one address, two stations, two roads and two
/// departmental grids.
pub fn good_features(entity: Entity) -> Vec<Value> {
    match entity {
        Entity::Districts => vec![feature(
            json!({ "XZQDM": DISTRICT, "XZQMC": "龙口市" }),
            area(),
        )],
        Entity::Streets => vec![feature(
            json!({ "JDDM": STREET, "JDMC": "东莱街道", "XZQDM": DISTRICT }),
            area(),
        )],
        Entity::Communities => vec![feature(
            json!({ "SQDM": COMMUNITY, "SQMC": "北关村", "JDDM": STREET, "SQLX": "村" }),
            area(),
        )],
        Entity::Grids => vec![feature(
            json!({
                "WGBM": GRID, "WGMC": "北关村第一网格", "SQDM": COMMUNITY, "WGLX": "基础网格",
                "ZTYS": "黄", "WGY": "张三", "LXDH": "13800000000",
            }),
            area(),
        )],
        Entity::GridUnits => vec![feature(
            json!({ "DYBM": UNIT, "DYMC": "第一单元", "WGBM": GRID }),
            area(),
        )],
        Entity::Buildings => vec![feature(
            json!({ "LDBM": BUILDING, "LDMC": "1号楼", "WGBM": GRID, "DYBM": UNIT, "HS": 48, "CS": 6 }),
            square(120.305, 37.605, 120.306, 37.606),
        )],
        Entity::Addresses => vec![feature(
            json!({ "DZBM": "A0001", "BZDZ": "山东省烟台市龙口市东莱街道北关村1号楼", "LDBM": BUILDING }),
            point(120.3055, 37.6055),
        )],
        Entity::Stations => vec![
            feature(
                json!({
                    "ZDBM": "Z0001", "ZDMC": "北关村党群服务中心", "ZDLX": "党群服务中心",
                    "SQDM": COMMUNITY, "WGBM": "", "MJ": 320.5, "SS": "工具借用、饮水，充电",
                    "KFSJ": "08:30-17:30",
                }),
                point(120.31, 37.61),
            ),
            feature(
                json!({
                    "ZDBM": "Z0002", "ZDMC": "骑手驿站", "ZDLX": "新就业群体驿站",
                    "SQDM": COMMUNITY, "WGBM": GRID, "MJ": 25.0, "SS": "休息", "KFSJ": "全天",
                }),
                point(120.315, 37.615),
            ),
        ],
        Entity::Roads => vec![
            feature(
                json!({ "DLMC": "北关路", "DLDJ": "支路" }),
                line(&[(120.30, 37.61), (120.32, 37.61)]),
            ),
            feature(
                json!({ "DLMC": "", "DLDJ": "步行道" }),
                line(&[(120.31, 37.60), (120.31, 37.605), (120.312, 37.62)]),
            ),
        ],
        Entity::DepartmentGrids => vec![
            feature(
                json!({ "BMWGBM": "CG0001", "SSBM": "城市管理", "WGMC": "城管第1网格" }),
                square(120.30, 37.60, 120.31, 37.62),
            ),
            feature(
                json!({ "BMWGBM": "GA0001", "SSBM": "公安", "WGMC": "北关警务网格" }),
                area(),
            ),
        ],
        // Not part of `chain()` either: a roster without geometry, written
        // as CSV in grid_workers.rs.
        Entity::GridWorkers => Vec::new(),
        // Not part of `chain()`, which loads `Entity::ALL`: activity records,
        // tested in rider_reports.rs.
        Entity::RiderReports => vec![
            feature(
                json!({ "SBSJ": "2026-10-05 12:10:00", "SBLX": "配送", "SJLY": "平台推送" }),
                point(120.311, 37.611),
            ),
            feature(
                json!({ "SBSJ": "2026-10-05 14:30:00", "SBLX": "休息" }),
                point(120.315, 37.6149),
            ),
        ],
    }
}

/// The sources of the chain above the given entity, in dependency order.
pub fn sources_before(sources: &[Source], entity: Entity) -> Vec<Source> {
    sources
        .iter()
        .filter(|source| source.entity < entity)
        .cloned()
        .collect()
}

/// Rows in every table, in dependency order.
pub async fn counts(pool: &PgPool) -> Vec<(Entity, i64)> {
    let mut counts = Vec::new();
    for entity in Entity::ALL {
        let sql = format!("SELECT count(*) FROM {}", entity.table());
        let count: i64 = sqlx::query_scalar(&sql)
            .fetch_one(pool)
            .await
            .expect("counting rows");
        counts.push((entity, count));
    }
    counts
}

/// Every row of every table as text, geometries normalised (ring order and
/// starting point), so that imports of the same data in different formats
/// compare equal.
pub async fn dump(pool: &PgPool) -> Vec<String> {
    let queries = [
        "SELECT concat_ws('|', code, name, ST_AsText(ST_Normalize(geom))) FROM districts",
        "SELECT concat_ws('|', code, district_code, name, ST_AsText(ST_Normalize(geom))) FROM streets",
        "SELECT concat_ws('|', code, street_code, name, kind, ST_AsText(ST_Normalize(geom))) FROM communities",
        "SELECT concat_ws('|', code, community_code, name, kind, status, worker_name, worker_phone, \
         ST_AsText(ST_Normalize(geom))) FROM grids",
        "SELECT concat_ws('|', code, grid_code, name, ST_AsText(ST_Normalize(geom))) FROM grid_units",
        "SELECT concat_ws('|', code, grid_code, unit_code, name, households, floors, \
         ST_AsText(ST_Normalize(geom))) FROM buildings",
        "SELECT concat_ws('|', code, building_code, address, ST_AsText(geom)) FROM addresses",
        "SELECT concat_ws('|', code, kind, name, community_code, coalesce(grid_code, 'NULL'), area_m2, \
         array_to_string(amenities, '+'), opening_hours, ST_AsText(geom)) FROM stations",
        "SELECT concat_ws('|', coalesce(name, 'NULL'), class, ST_AsText(geom)) FROM roads",
        "SELECT concat_ws('|', code, department, name, ST_AsText(ST_Normalize(geom))) FROM department_grids",
    ];
    let mut rows = Vec::new();
    for sql in queries {
        let mut table: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(pool)
            .await
            .expect("dumping a table");
        table.sort();
        rows.extend(table);
    }
    rows
}

/// Deletes every row, children first.
pub async fn empty_all_tables(pool: &PgPool) {
    for entity in Entity::ALL.iter().rev() {
        sqlx::query(&format!("DELETE FROM {}", entity.table()))
            .execute(pool)
            .await
            .expect("emptying a table");
    }
}

/// Runs `ogr2ogr` with `args`, failing the test on error.
pub fn ogr2ogr(args: &[&str]) {
    let output = Command::new("ogr2ogr")
        .args(args)
        .output()
        .expect("running ogr2ogr (package gdal-bin)");
    assert!(
        output.status.success(),
        "ogr2ogr {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The text of a path, for command arguments.
pub fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
