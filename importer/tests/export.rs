//! `gridmap-export` against a real PostGIS and GDAL: import → export → import
//! into a fresh database changes nothing, in every format and through GCJ-02.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use gridmap_import::export::{export, ExportFormat, ExportOptions, ExportReport};
use gridmap_import::{import, Entity, ImportOptions, LonLatCrs, Source, SourceCrs};
use sqlx::PgPool;

const EXPORT_BINARY: &str = env!("CARGO_BIN_EXE_gridmap-export");

/// A freshly migrated database on the same server, dropped by [`FreshDatabase::drop_now`].
struct FreshDatabase {
    admin: PgPool,
    name: String,
    pool: PgPool,
}

impl FreshDatabase {
    async fn new(admin: &PgPool, label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "gridmap_export_{label}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin)
            .await
            .unwrap();
        let pool = gridmap_store::connect_url(&url_of(&name), 2).await.unwrap();
        Self {
            admin: admin.clone(),
            name,
            pool,
        }
    }

    async fn drop_now(self) {
        self.pool.close().await;
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

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

async fn database_name(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Exports every layer of `pool` into `dir`, one file per entity.
async fn export_all(
    pool: &PgPool,
    dir: &Path,
    format: ExportFormat,
    crs: Option<SourceCrs>,
) -> Vec<Source> {
    let mut sources = Vec::new();
    for entity in Entity::ALL {
        let out = dir.join(format!("{entity}.{format}"));
        let report = export(
            pool,
            &ExportOptions {
                entity,
                format,
                crs,
                out: out.clone(),
                encoding: None,
                include_personal: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            report.features,
            good_features(entity).len() as u64,
            "{entity}"
        );
        sources.push(Source::new(out, entity));
    }
    sources
}

/// Every geometry of every table as (table, key, WKB), to compare across databases.
async fn geometries(pool: &PgPool) -> Vec<(String, String, Vec<u8>)> {
    let mut all = Vec::new();
    for entity in Entity::ALL {
        let key = if entity == Entity::Roads {
            "class || coalesce(name, '')"
        } else {
            "code"
        };
        let sql = format!(
            "SELECT {key}, ST_AsBinary(geom) FROM {} ORDER BY 1",
            entity.table()
        );
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(&sql).fetch_all(pool).await.unwrap();
        all.extend(
            rows.into_iter()
                .map(|(key, wkb)| (entity.table().to_owned(), key, wkb)),
        );
    }
    all
}

/// The largest Hausdorff distance, in degrees, between each stored geometry
/// and its counterpart in `expected`, and how many are not `ST_Equals`.
async fn compare_geometries(pool: &PgPool, expected: &[(String, String, Vec<u8>)]) -> (f64, i64) {
    let actual = geometries(pool).await;
    assert_eq!(
        actual
            .iter()
            .map(|(table, key, _)| (table, key))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(table, key, _)| (table, key))
            .collect::<Vec<_>>()
    );
    let left: Vec<&[u8]> = expected.iter().map(|(_, _, wkb)| wkb.as_slice()).collect();
    let right: Vec<&[u8]> = actual.iter().map(|(_, _, wkb)| wkb.as_slice()).collect();
    sqlx::query_as(
        "SELECT coalesce(max(ST_HausdorffDistance(ST_GeomFromWKB(a), ST_GeomFromWKB(b))), 0), \
                count(*) FILTER (WHERE NOT ST_Equals(ST_GeomFromWKB(a), ST_GeomFromWKB(b))) \
         FROM unnest($1::bytea[], $2::bytea[]) AS t(a, b)",
    )
    .bind(left)
    .bind(right)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn load_chain(pool: &PgPool) -> TempDir {
    let dir = TempDir::new("export-source");
    import(pool, &dir.chain(), &ImportOptions::default())
        .await
        .unwrap();
    dir
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn round_trip_through_every_format_changes_nothing(pool: PgPool) {
    let _source = load_chain(&pool).await;
    let original = dump(&pool).await;
    let original_geometries = geometries(&pool).await;
    assert_eq!(original.len(), 13);

    for format in [
        ExportFormat::GeoPackage,
        ExportFormat::GeoJson,
        ExportFormat::Shapefile,
    ] {
        let dir = TempDir::new(&format!("export-{format}"));
        let sources = export_all(&pool, dir.path(), format, None).await;
        let fresh = FreshDatabase::new(&pool, &format.to_string()).await;
        let report = import(&fresh.pool, &sources, &ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(report.rows(), 13, "{format}");
        // Every row, attribute by attribute, geometries as normalised WKT at
        // full precision.
        assert_eq!(dump(&fresh.pool).await, original, "{format}");
        let (distance, unequal) = compare_geometries(&fresh.pool, &original_geometries).await;
        assert_eq!(unequal, 0, "{format}: geometries not ST_Equals");
        assert!(distance == 0.0, "{format}: Hausdorff distance {distance}");
        fresh.drop_now().await;
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn round_trip_through_gcj02_and_a_projected_crs_stays_within_a_nanodegree(pool: PgPool) {
    let _source = load_chain(&pool).await;
    let original = geometries(&pool).await;
    let attributes = |rows: Vec<String>| -> Vec<String> {
        // The attributes without the geometry text.
        rows.into_iter()
            .map(|row| {
                row.rsplit_once('|')
                    .map(|(head, _)| head.to_owned())
                    .unwrap()
            })
            .collect()
    };
    let original_attributes = attributes(dump(&pool).await);

    for (format, crs) in [
        (ExportFormat::GeoJson, SourceCrs::Offset(LonLatCrs::Gcj02)),
        (ExportFormat::GeoPackage, SourceCrs::Offset(LonLatCrs::Bd09)),
        (ExportFormat::Shapefile, SourceCrs::Epsg(4528)),
    ] {
        let dir = TempDir::new(&format!("export-{format}-offset"));
        let sources = export_all(&pool, dir.path(), format, Some(crs)).await;
        // The exported coordinates really are shifted: the GCJ-02 offset is
        // hundreds of metres, a Gauss-Krüger easting millions of metres.
        let shifted = export_all_first_x(&sources[0].path);
        assert!((shifted - 120.30).abs() > 1e-4, "{crs}: x = {shifted}");

        let fresh = FreshDatabase::new(&pool, "offset").await;
        let options = ImportOptions {
            // The projected file declares its CRS; the offset ones must be named.
            crs: matches!(crs, SourceCrs::Offset(_)).then_some(crs),
            ..ImportOptions::default()
        };
        import(&fresh.pool, &sources, &options).await.unwrap();
        assert_eq!(
            attributes(dump(&fresh.pool).await),
            original_attributes,
            "{crs}"
        );
        let (distance, _) = compare_geometries(&fresh.pool, &original).await;
        assert!(distance < 1e-9, "{crs}: Hausdorff distance {distance}°");
        fresh.drop_now().await;
    }
}

/// The smallest x of the first layer's features, read back with GDAL.
fn export_all_first_x(path: &Path) -> f64 {
    use gdal::vector::LayerAccess as _;
    let dataset = gdal::Dataset::open(path).unwrap();
    let mut layer = dataset.layer(0).unwrap();
    let envelope = layer
        .features()
        .next()
        .unwrap()
        .geometry()
        .unwrap()
        .envelope();
    envelope.MinX
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn personal_columns_are_left_out_unless_asked_for(pool: PgPool) {
    let _source = load_chain(&pool).await;
    let dir = TempDir::new("export-personal");
    let out = dir.path().join("grids.gpkg");
    let options = ExportOptions {
        entity: Entity::Grids,
        format: ExportFormat::GeoPackage,
        crs: None,
        out: out.clone(),
        encoding: None,
        include_personal: false,
    };
    let report: ExportReport = export(&pool, &options).await.unwrap();
    assert_eq!(
        report.fields,
        ["code", "name", "community_code", "kind", "status"]
    );
    let info = ogrinfo(&out);
    assert!(!info.contains("worker") && !info.contains("张三"), "{info}");
    // An existing file is never overwritten.
    let err = export(&pool, &options).await.unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
}

fn ogrinfo(path: &Path) -> String {
    let output = Command::new("ogrinfo")
        .args(["-al", "-q", text(path)])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn the_binary_writes_a_gbk_shapefile_with_a_cpg(pool: PgPool) {
    let _source = load_chain(&pool).await;
    let dir = TempDir::new("export-cli");
    let out = dir.path().join("grids.shp");
    let output = Command::new(EXPORT_BINARY)
        .args([
            "--layer",
            "grids",
            "--include-personal",
            "--out",
            text(&out),
        ])
        .env("DATABASE_URL", url_of(&database_name(&pool).await))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cpg = std::fs::read_to_string(dir.path().join("grids.cpg")).unwrap();
    assert!(cpg.contains("936"), "{cpg:?}");
    // The .dbf holds 网格员 张三 in GBK (D5 C5 C8 FD), not UTF-8.
    let dbf = std::fs::read(dir.path().join("grids.dbf")).unwrap();
    assert!(dbf
        .windows(4)
        .any(|bytes| bytes == [0xD5, 0xC5, 0xC8, 0xFD]));
    assert!(!dbf.windows(6).any(|bytes| bytes == "张三".as_bytes()));
    let info = ogrinfo(&out);
    assert!(
        info.contains("WGBM (String") && info.contains("张三"),
        "{info}"
    );

    let usage = Command::new(EXPORT_BINARY)
        .args(["--layer", "parcels", "--out", "x.gpkg"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(64));
}
