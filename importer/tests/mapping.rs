//! `--mapping FILE.toml` against real files: a GBK Shapefile written by
//! ogr2ogr whose field names the alias table does not know, loaded with a
//! mapping of fields, value translations and a constant; the report says
//! which column came from the mapping. Mistakes in the mapping (bad TOML, a
//! column the entity lacks, a field the layer lacks) exit with the usage or
//! input code before any database is touched.

mod common;

use std::process::{Command, Output};

use common::*;
use gridmap_import::{import, Entity, FieldOrigin, ImportError, ImportOptions, Mapping, Source};
use serde_json::json;
use sqlx::PgPool;

const BINARY: &str = env!("CARGO_BIN_EXE_gridmap-import");

/// Field names of a county system: none is in the alias table.
const MAPPING: &str = r#"entity = "grids"

[fields]
code = "BH_WG"
name = "MC"
community_code = "SSSQ"
status = "ZT"

[values.status]
"正常" = "green"
"预警" = "黄"

[constants]
kind = "专属网格"
"#;

/// Two grids with the county's field names, as GeoJSON for ogr2ogr.
fn county_grids(dir: &TempDir) -> std::path::PathBuf {
    let features = [
        feature(
            json!({ "BH_WG": GRID, "MC": "北关村第一网格", "SSSQ": COMMUNITY, "ZT": "正常", "LX": "基础网格" }),
            square(120.30, 37.60, 120.31, 37.62),
        ),
        feature(
            json!({ "BH_WG": "370681001001002", "MC": "北关村第二网格", "SSSQ": COMMUNITY, "ZT": "预警", "LX": "基础网格" }),
            square(120.31, 37.60, 120.32, 37.62),
        ),
    ];
    let geojson = dir.write("county.geojson", &collection(&features));
    let shapefile = dir.path().join("网格2024.shp");
    ogr2ogr(&[
        "-f",
        "ESRI Shapefile",
        "-lco",
        "ENCODING=CP936",
        text(&shapefile),
        text(&geojson),
    ]);
    // The attributes really are GBK: 北 is 0xB1B1 there.
    let dbf = std::fs::read(shapefile.with_extension("dbf")).expect("reading the .dbf");
    assert!(dbf.windows(2).any(|pair| pair == [0xB1, 0xB1]));
    shapefile
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_gbk_shapefile_loads_through_a_mapping_and_the_report_says_so(pool: PgPool) {
    let dir = TempDir::new("mapping-shp");
    let parents = sources_before(&dir.chain(), Entity::Grids);
    import(&pool, &parents, &ImportOptions::default())
        .await
        .expect("the parents load");
    let shapefile = county_grids(&dir);
    let mapping = Mapping::parse("county.toml", MAPPING).unwrap();
    let source = Source::new(&shapefile, Entity::Grids);

    // Without the mapping the alias table finds nothing for code.
    let err = import(
        &pool,
        std::slice::from_ref(&source),
        &ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ImportError::Rejected { problems, .. }
            if problems[0].reason.starts_with("required field missing")),
        "{err:?}"
    );

    let options = ImportOptions {
        mapping: Some(mapping),
        ..ImportOptions::default()
    };
    let report = import(&pool, std::slice::from_ref(&source), &options)
        .await
        .expect("the mapped import loads");
    assert_eq!(report.rows_of(Entity::Grids), 2);
    let used: Vec<(&str, Option<&str>, FieldOrigin, Option<&str>)> = report.layers[0]
        .fields
        .iter()
        .map(|field| {
            (
                field.column,
                field.source.as_deref(),
                field.origin,
                field.constant.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        used,
        [
            ("code", Some("BH_WG"), FieldOrigin::Mapping, None),
            ("name", Some("MC"), FieldOrigin::Mapping, None),
            ("community_code", Some("SSSQ"), FieldOrigin::Mapping, None),
            // LX would not be read: the constant wins.
            ("kind", None, FieldOrigin::Constant, Some("专属网格")),
            ("status", Some("ZT"), FieldOrigin::Mapping, None),
            ("worker_name", None, FieldOrigin::None, None),
            ("worker_phone", None, FieldOrigin::None, None),
        ]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["layers"][0]["fields"][0],
        json!({ "column": "code", "source": "BH_WG", "origin": "mapping" })
    );
    assert_eq!(
        json["layers"][0]["fields"][3],
        json!({ "column": "kind", "source": null, "origin": "constant", "constant": "专属网格" })
    );
    let stored: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT code, name, kind, status FROM grids ORDER BY code")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        [
            (
                GRID.into(),
                "北关村第一网格".into(),
                "exclusive".into(),
                "green".into()
            ),
            (
                "370681001001002".into(),
                "北关村第二网格".into(),
                "exclusive".into(),
                "yellow".into()
            ),
        ]
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn an_untranslated_value_is_a_problem_of_its_feature(pool: PgPool) {
    let dir = TempDir::new("mapping-values");
    let parents = sources_before(&dir.chain(), Entity::Grids);
    import(&pool, &parents, &ImportOptions::default())
        .await
        .unwrap();
    let shapefile = county_grids(&dir);
    // Only 正常 is translated: 预警 reaches the status check as it is.
    let mapping =
        Mapping::parse("county.toml", &MAPPING.replace("\"预警\" = \"黄\"\n", "")).unwrap();
    let options = ImportOptions {
        mapping: Some(mapping),
        ..ImportOptions::default()
    };
    let problems = match import(&pool, &[Source::new(&shapefile, Entity::Grids)], &options).await {
        Err(ImportError::Rejected { problems, .. }) => problems,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].feature, problems[0].field.as_deref()),
        (2, Some("ZT"))
    );
    assert!(problems[0].reason.contains("\"预警\""), "{}", problems[0]);
}

fn run(args: &[&str], database_url: &str) -> Output {
    Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running gridmap-import")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every mistake is found before the database is connected to: the URL
/// names a port where nothing listens, which would exit 1.
#[test]
fn mapping_mistakes_exit_before_touching_the_database() {
    let dir = TempDir::new("mapping-cli");
    let shapefile = county_grids(&dir);
    let nowhere = "postgres://nobody@127.0.0.1:1/none";
    let check = |toml: &str, expected_code: i32, expected: &[&str]| {
        let mapping = dir.write("m.toml", toml);
        let output = run(
            &[
                "--as",
                "grids",
                "--mapping",
                text(&mapping),
                text(&shapefile),
            ],
            nowhere,
        );
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(expected_code), "{toml}\n{err}");
        for fragment in expected {
            assert!(
                err.contains(fragment),
                "{toml}: expected {fragment:?} in\n{err}"
            );
        }
    };
    // Malformed TOML: line and column.
    check(
        "[fields]\ncode = BH_WG\n",
        64,
        &["m.toml: TOML parse error at line 2, column 8"],
    );
    // A table that is not part of the format.
    check(
        "[field]\ncode = \"BH_WG\"\n",
        64,
        &["m.toml: line 1, column 2: unknown key \"field\""],
    );
    // A column grids do not have.
    check(
        "[fields]\nheight = \"GD\"\n",
        64,
        &["\"height\", which is not a column of grids; its columns are code, name, community_code"],
    );
    // A constant the column refuses.
    check(
        "[constants]\nkind = \"普通网格\"\n",
        64,
        &["[constants] kind = \"普通网格\""],
    );
    // A source field the layer lacks: an input problem naming what it has.
    check(
        "[fields]\ncode = \"WGBH\"\nname = \"MC\"\n",
        2,
        &[
            "网格2024.shp (WGBH): m.toml: code = \"WGBH\": the layer has no such field; it has ",
            "BH_WG",
            "SSSQ",
            "nothing was written",
        ],
    );
    // --field names a column none of the files has.
    let output = run(
        &["--as", "grids", "--field", "height=GD", text(&shapefile)],
        nowhere,
    );
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("\"height\" is not a column of grids"),
        "{}",
        stderr(&output)
    );
}

/// The summary lists the columns the mapping fed.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn the_summary_shows_mapped_fields(pool: PgPool) {
    let dir = TempDir::new("mapping-summary");
    let parents = sources_before(&dir.chain(), Entity::Grids);
    import(&pool, &parents, &ImportOptions::default())
        .await
        .unwrap();
    let shapefile = county_grids(&dir);
    let mapping = dir.write("county.toml", MAPPING);
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for database tests");
    let (scheme, rest) = base.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path
        .split_once('?')
        .map(|(_, query)| format!("?{query}"))
        .unwrap_or_default();
    let url = format!("{scheme}://{authority}/{database}{query}");
    let output = run(
        &[
            "--as",
            "grids",
            "--mapping",
            text(&mapping),
            text(&shapefile),
        ],
        &url,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(
            "  网格2024.shp: code←BH_WG (mapping), name←MC (mapping), community_code←SSSQ (mapping), \
             kind=\"专属网格\" (constant), status←ZT (mapping)"
        ),
        "{summary}"
    );
}
