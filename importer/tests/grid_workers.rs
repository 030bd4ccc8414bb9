//! Grid workers (`--as grid_workers`) against a real PostGIS: a roster CSV
//! as spreadsheets export it, with an ID-card column that must never be
//! stored; per-row problems; upsert that changes nothing on a re-run; replace;
//! and the grids' worker columns following each grid's primary worker.

mod common;

use common::*;
use gridmap_import::export::{export, ExportError, ExportFormat, ExportOptions};
use gridmap_import::{import, Entity, ImportError, ImportMode, ImportOptions, Source};
use serde_json::json;
use sqlx::PgPool;

const GRID2: &str = "370681001001002";
const ID_CARD: &str = "370681199001011234";

/// The roster: 张三 full-time in the first grid, 李四 its leader, 王五
/// part-time in the second; phones as people type them.
fn roster() -> String {
    format!(
        "序号,网格编码,姓名,联系电话,职务,身份证号\n\
         1,{GRID},张三,138 0000 0001,专职网格员,{ID_CARD}\n\
         2,{GRID},李四,(0535)8123456,网格长,370681199202021234\n\
         3,{GRID2},王五,+86 13800000003,兼职网格员,\n"
    )
}

/// The chain down to communities, then two grids: the first still carries a
/// worker from the grid layer, the second none.
async fn load_grids(pool: &PgPool, dir: &TempDir) {
    let mut sources = sources_before(&dir.chain(), Entity::Grids);
    sources.push(dir.layer(
        Entity::Grids,
        &[
            feature(
                json!({ "WGBM": GRID, "WGMC": "第一网格", "SQDM": COMMUNITY, "WGLX": "基础网格",
                        "WGY": "旧网格员", "LXDH": "13900000000" }),
                square(120.30, 37.60, 120.31, 37.62),
            ),
            grid(GRID2, COMMUNITY, square(120.31, 37.60, 120.32, 37.62)),
        ],
    ));
    import(pool, &sources, &ImportOptions::default())
        .await
        .expect("the grids load");
}

type Worker = (String, String, Option<String>, String);

async fn workers(pool: &PgPool) -> Vec<Worker> {
    sqlx::query_as("SELECT grid_code, name, phone, role FROM grid_workers ORDER BY grid_code, name")
        .fetch_all(pool)
        .await
        .expect("reading the stored rows")
}

/// Each grid's worker columns, the ones the lookup and the staffing check read.
async fn grid_columns(pool: &PgPool) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as("SELECT code, worker_name, worker_phone FROM grids ORDER BY code")
        .fetch_all(pool)
        .await
        .expect("reading the stored rows")
}

fn worker(grid: &str, name: &str, phone: Option<&str>, role: &str) -> Worker {
    (grid.into(), name.into(), phone.map(Into::into), role.into())
}

fn upsert() -> ImportOptions {
    ImportOptions {
        mode: ImportMode::Upsert,
        ..ImportOptions::default()
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_roster_loads_without_id_cards_and_the_grids_follow(pool: PgPool) {
    let dir = TempDir::new("workers");
    load_grids(&pool, &dir).await;
    let path = dir.write("网格员名单.csv", &roster());
    let source = Source::infer(&path).unwrap();
    assert_eq!(source.entity, Entity::GridWorkers);

    let report = import(
        &pool,
        std::slice::from_ref(&source),
        &ImportOptions::default(),
    )
    .await
    .expect("the roster loads");
    assert_eq!(report.rows_of(Entity::GridWorkers), 3);
    let layer = &report.layers[0];
    assert_eq!(layer.dropped_personal_fields, ["身份证号"]);
    let sources: Vec<(&str, Option<&str>)> = layer
        .fields
        .iter()
        .map(|field| (field.column, field.source.as_deref()))
        .collect();
    assert_eq!(
        sources,
        [
            ("grid_code", Some("网格编码")),
            ("name", Some("姓名")),
            ("phone", Some("联系电话")),
            ("role", Some("职务")),
            ("staff_id", None),
        ]
    );
    assert_eq!(
        workers(&pool).await,
        [
            worker(GRID, "张三", Some("13800000001"), "full_time"),
            worker(GRID, "李四", Some("0535-8123456"), "grid_leader"),
            worker(GRID2, "王五", Some("13800000003"), "part_time"),
        ]
    );
    // The full-time worker is the grid's worker (一网一员), ahead of its
    // leader; the grid layer's old worker is replaced.
    assert_eq!(
        grid_columns(&pool).await,
        [
            (GRID.into(), Some("张三".into()), Some("13800000001".into())),
            (
                GRID2.into(),
                Some("王五".into()),
                Some("13800000003".into())
            ),
        ]
    );
    // The ID-card numbers are nowhere: no column holds them, no row does.
    let anywhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM grid_workers w WHERE row_to_json(w)::text LIKE '%' || $1 || '%'",
    )
    .bind(ID_CARD)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(anywhere, 0);

    // A re-import of the grid layer (its worker fields or none) cannot move
    // the grids' worker away from the roster.
    let grids = dir.layer(
        Entity::Grids,
        &[
            grid(GRID, COMMUNITY, square(120.30, 37.60, 120.31, 37.62)),
            grid(GRID2, COMMUNITY, square(120.31, 37.60, 120.32, 37.62)),
        ],
    );
    import(&pool, &[grids], &upsert()).await.unwrap();
    assert_eq!(
        grid_columns(&pool).await[0],
        (GRID.into(), Some("张三".into()), Some("13800000001".into()))
    );

    // Exported only on request, and then without geometry or ID cards.
    let out = dir.path().join("workers.geojson");
    let options = ExportOptions {
        entity: Entity::GridWorkers,
        format: ExportFormat::GeoJson,
        crs: None,
        out: out.clone(),
        encoding: None,
        include_personal: false,
    };
    let err = export(&pool, &options).await.unwrap_err();
    assert!(matches!(err, ExportError::Personal { .. }), "{err}");
    assert!(!out.exists());
    let exported = export(
        &pool,
        &ExportOptions {
            include_personal: true,
            ..options
        },
    )
    .await
    .unwrap();
    assert_eq!(exported.features, 3);
    assert_eq!(
        exported.fields,
        ["grid_code", "name", "phone", "role", "staff_id"]
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["features"][0]["properties"]["name"], "张三");
    assert!(written["features"][0]["geometry"].is_null());
    // What was exported imports again, unchanged.
    let again = import(&pool, &[Source::new(&out, Entity::GridWorkers)], &upsert())
        .await
        .unwrap();
    assert_eq!(again.rows(), 0);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn upsert_changes_nothing_on_a_rerun_and_replace_follows_the_roster(pool: PgPool) {
    let dir = TempDir::new("workers-upsert");
    load_grids(&pool, &dir).await;
    let path = dir.write("grid_workers.csv", &roster());
    let source = Source::infer(&path).unwrap();
    let first = import(&pool, std::slice::from_ref(&source), &upsert())
        .await
        .unwrap();
    assert_eq!(first.rows(), 3);
    let versions = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT version FROM grids ORDER BY code")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let before = versions(pool.clone()).await;
    let rerun = import(&pool, std::slice::from_ref(&source), &upsert())
        .await
        .unwrap();
    assert_eq!(rerun.rows(), 0);
    assert_eq!(versions(pool.clone()).await, before, "no grid was touched");

    // 张三 has a new phone: one row changes, and the grid follows.
    std::fs::write(&path, roster().replace("138 0000 0001", "13800000009")).unwrap();
    let changed = import(&pool, std::slice::from_ref(&source), &upsert())
        .await
        .unwrap();
    assert_eq!(changed.rows(), 1);
    assert_eq!(
        grid_columns(&pool).await[0],
        (GRID.into(), Some("张三".into()), Some("13800000009".into()))
    );

    // Replace with a roster without 张三 and 王五: they are deleted, the
    // leader becomes the first grid's worker, the second grid has none.
    std::fs::write(
        &path,
        format!("网格编码,姓名,手机号,岗位\n{GRID},李四,0535-8123456,网格长\n"),
    )
    .unwrap();
    let replaced = import(
        &pool,
        std::slice::from_ref(&source),
        &ImportOptions {
            mode: ImportMode::Replace,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(replaced.deleted, 2);
    assert_eq!(
        workers(&pool).await,
        [worker(GRID, "李四", Some("0535-8123456"), "grid_leader")]
    );
    assert_eq!(
        grid_columns(&pool).await,
        [
            (
                GRID.into(),
                Some("李四".into()),
                Some("0535-8123456".into())
            ),
            (GRID2.into(), None, None),
        ]
    );
    // A TRUNCATE (not what the importer does) clears the grids too.
    sqlx::query("TRUNCATE grid_workers")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        grid_columns(&pool).await,
        [(GRID.into(), None, None), (GRID2.into(), None, None)]
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn bad_rows_are_problems_with_their_row_and_nothing_is_written(pool: PgPool) {
    let dir = TempDir::new("workers-bad");
    load_grids(&pool, &dir).await;
    let path = dir.write(
        "grid_workers.csv",
        &format!(
            "WGBM,XM,LXDH,ZW\n\
             {GRID},张三,13800000001,专职网格员\n\
             370681001001099,李四,13800000002,专职网格员\n\
             {GRID},,13800000003,兼职网格员\n\
             {GRID2},王五,1380000,专职网格员\n\
             {GRID2},赵六,13800000005,书记\n\
             {GRID},张三,13800000006,兼职网格员\n"
        ),
    );
    let source = Source::infer(&path).unwrap();
    let before = grid_columns(&pool).await;
    let problems = match import(
        &pool,
        std::slice::from_ref(&source),
        &ImportOptions::default(),
    )
    .await
    {
        Err(ImportError::Rejected { problems, .. }) => problems,
        other => panic!("expected a rejection, got {other:?}"),
    };
    let found: Vec<(u64, Option<&str>)> = problems
        .iter()
        .map(|problem| (problem.feature, problem.field.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (2, Some("WGBM")),
            (3, Some("XM")),
            (4, Some("LXDH")),
            (5, Some("ZW")),
            (6, Some("XM")),
        ],
        "{problems:#?}"
    );
    assert!(problems[0]
        .reason
        .contains("\"370681001001099\" exists neither in the database nor in this import"));
    assert!(problems[1].reason.contains("a value is required for name"));
    assert!(problems[2]
        .reason
        .contains("phone \"1380000\" is neither a mobile number"));
    assert!(problems[3]
        .reason
        .contains("\"书记\" is not a known grid worker post"));
    assert!(
        problems[4].reason.contains(&format!(
            "duplicate code \"{GRID} 张三\": already used by grid_workers.csv feature 1"
        )),
        "{}",
        problems[4]
    );
    assert!(workers(&pool).await.is_empty());
    assert_eq!(grid_columns(&pool).await, before);

    // With --skip-invalid the one good row loads.
    let report = import(
        &pool,
        std::slice::from_ref(&source),
        &ImportOptions {
            skip_invalid: true,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.skipped, 5);
    assert_eq!(
        workers(&pool).await,
        [worker(GRID, "张三", Some("13800000001"), "full_time")]
    );
    // In insert mode a stored worker is a problem of the row.
    let again = import(&pool, &[source], &ImportOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&again, ImportError::Rejected { problems, .. }
            if problems.iter().any(|p| p.feature == 1
                && p.reason.contains("already exists in the database (table grid_workers)"))),
        "{again:?}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_dry_run_leaves_workers_and_grids_as_they_were(pool: PgPool) {
    let dir = TempDir::new("workers-dry");
    load_grids(&pool, &dir).await;
    let path = dir.write("grid_workers.csv", &roster());
    let before = grid_columns(&pool).await;
    let report = import(
        &pool,
        &[Source::infer(&path).unwrap()],
        &ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.rows(), 3);
    assert!(workers(&pool).await.is_empty());
    assert_eq!(grid_columns(&pool).await, before);
}

/// The exporter refuses the roster without --include-personal before it
/// connects to any database (the URL names a port where nothing listens).
#[test]
fn the_exporter_refuses_the_roster_without_include_personal() {
    let dir = TempDir::new("workers-export-cli");
    let out = dir.path().join("workers.geojson");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gridmap-export"))
        .args(["--layer", "grid_workers", "--out", text(&out)])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("running gridmap-export");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{err}");
    assert!(
        err.contains("grid_workers are personal data (names and phones); pass --include-personal"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A rejects file goes to whoever fixes the roster: it names each rejected
/// row by its number, grid code and reason, with the name and phone masked,
/// and carries none of the people's full names, phones, ID cards or other
/// fields, not even inside a reason.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_rejects_file_of_a_roster_masks_names_and_phones(pool: PgPool) {
    let dir = TempDir::new("workers-rejects");
    load_grids(&pool, &dir).await;
    let path = dir.write(
        "grid_workers.csv",
        &format!(
            "序号,网格编码,姓名,联系电话,职务,身份证号,住址\n\
             1,{GRID},张三,13912345678,专职网格员,{ID_CARD},南苑路1号\n\
             2,370681001001099,李四,13987654321,专职网格员,,北关路2号\n\
             3,{GRID2},王五,1391234,专职网格员,,\n\
             4,{GRID},张三,13911112222,兼职网格员,,\n"
        ),
    );
    let rejects = dir.path().join("rejects.geojson");
    let err = import(
        &pool,
        &[Source::infer(&path).unwrap()],
        &ImportOptions {
            rejects: Some(rejects.clone()),
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImportError::Rejected { .. }), "{err:?}");
    let text = std::fs::read_to_string(&rejects).unwrap();
    for personal in [
        "张三",
        "李四",
        "王五",
        "13912345678",
        "13987654321",
        "1391234",
        "13911112222",
        ID_CARD,
        "南苑路",
        "北关路",
    ] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    let written: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows: Vec<(u64, &str, &str, &str)> = written["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|feature| {
            let properties = &feature["properties"];
            (
                properties["_feature"].as_u64().unwrap(),
                properties["网格编码"].as_str().unwrap(),
                properties["姓名"].as_str().unwrap(),
                properties["联系电话"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (2, "370681001001099", "李*", "139****4321"),
            (3, GRID2, "王*", "*****34"),
            (4, GRID, "张*", "139****2222"),
        ]
    );
    let keys: Vec<&String> = written["features"][0]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let mut keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "_feature",
            "_field",
            "_layer",
            "_reason",
            "姓名",
            "网格编码",
            "职务",
            "联系电话"
        ]
    );
    let reasons: Vec<&str> = written["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|feature| feature["properties"]["_reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].contains("\"370681001001099\" exists neither"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("phone \"*****34\" is neither"),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains(&format!("duplicate code \"{GRID} 张*\"")),
        "{}",
        reasons[2]
    );
}

/// A grid upsert is idempotent over a roster: a grid whose worker fields
/// differ from its roster is not counted (nor its version renewed) as
/// changed, since the roster decides its worker; a grid without a roster
/// still takes its worker from the grid layer.
#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn a_grid_upsert_over_a_roster_changes_nothing_on_a_rerun(pool: PgPool) {
    let dir = TempDir::new("workers-grid-upsert");
    load_grids(&pool, &dir).await;
    let roster_path = dir.write(
        "grid_workers.csv",
        &format!("网格编码,姓名,联系电话\n{GRID},张三,13800000001\n"),
    );
    import(
        &pool,
        &[Source::infer(&roster_path).unwrap()],
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let versions = || async {
        sqlx::query_scalar::<_, i64>("SELECT version FROM grids ORDER BY code")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    // The grid layer still names its old worker for the first grid, and a
    // worker for the second, which has no roster; the first grid is renamed.
    let grids = dir.layer(
        Entity::Grids,
        &[
            feature(
                json!({ "WGBM": GRID, "WGMC": "第一网格（新）", "SQDM": COMMUNITY, "WGLX": "基础网格",
                        "WGY": "旧网格员", "LXDH": "13900000000" }),
                square(120.30, 37.60, 120.31, 37.62),
            ),
            feature(
                json!({ "WGBM": GRID2, "WGMC": "网格", "SQDM": COMMUNITY, "WGLX": "基础网格",
                        "WGY": "赵六", "LXDH": "13900000006" }),
                square(120.31, 37.60, 120.32, 37.62),
            ),
        ],
    );
    let first = import(&pool, std::slice::from_ref(&grids), &upsert())
        .await
        .unwrap();
    assert_eq!(first.rows(), 2, "the rename and the second grid's worker");
    assert_eq!(
        grid_columns(&pool).await,
        [
            (GRID.into(), Some("张三".into()), Some("13800000001".into())),
            (
                GRID2.into(),
                Some("赵六".into()),
                Some("13900000006".into())
            ),
        ]
    );
    let before = versions().await;
    let second = import(&pool, std::slice::from_ref(&grids), &upsert())
        .await
        .unwrap();
    assert_eq!(second.rows(), 0, "an identical re-run changes nothing");
    assert_eq!(versions().await, before, "no grid's version was renewed");
    // Replace behaves the same, with no grid deleted.
    let replaced = import(
        &pool,
        std::slice::from_ref(&grids),
        &ImportOptions {
            mode: ImportMode::Replace,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((replaced.rows(), replaced.deleted), (0, 0));
    assert_eq!(versions().await, before);
}
