//! Rider activity reports against a real PostGIS: a spreadsheet export with
//! lon/lat columns, times in the forms Chinese systems write, a bad time, a
//! row with latitude and longitude swapped, and personal columns that must
//! never reach the database or the rejects file. Stored times are read back
//! through PostgreSQL's own time-zone conversion.

mod common;

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportMode, ImportOptions, Source};
use serde_json::{json, Value};
use sqlx::PgPool;

/// Every stored report as (time in China, kind, source, lon, lat), in time order.
type StoredReport = (String, Option<String>, Option<String>, f64, f64);

async fn stored_reports(pool: &PgPool) -> Vec<StoredReport> {
    sqlx::query_as(
        "SELECT to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS.US'),
                kind, source, ST_X(geom), ST_Y(geom)
           FROM rider_reports ORDER BY reported_at, id",
    )
    .fetch_all(pool)
    .await
    .expect("reading the stored reports")
}

/// A spreadsheet export: 上报时间/类型/来源, the rider's name and phone, 经度/纬度.
const CSV: &str = "上报时间,类型,来源,姓名,手机,经度,纬度\n\
    2026-10-05 12:10:00,配送,平台推送,张三,13800000001,120.311,37.611\n\
    2026-10-32 09:00,休息,,李四,13800000002,120.312,37.612\n\
    2026/10/06 08:00,休息,,王五,13800000003,37.613,120.313\n\
    2026年10月6日 21:45,线索,随手拍,赵六,13800000004,120.314,37.614\n\
    2026-10-07T01:00:00.5Z,,,,,120.315,37.615\n";

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn csv_reports_load_with_per_row_problems_and_no_personal_data(pool: PgPool) {
    let dir = TempDir::new("riders");
    let path = dir.write("rider_reports.csv", CSV);
    let source = Source::infer(&path).unwrap();
    assert_eq!(source.entity, Entity::RiderReports);
    let rejects = dir.path().join("rejects.geojson");

    // Without --skip-invalid: rejected, one problem per bad row, nothing written.
    let options = ImportOptions {
        rejects: Some(rejects.clone()),
        ..ImportOptions::default()
    };
    let problems = match import(&pool, std::slice::from_ref(&source), &options).await {
        Err(ImportError::Rejected { problems, .. }) => problems,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    let bad_time = &problems[0];
    assert_eq!(
        (
            bad_time.layer.as_str(),
            bad_time.feature,
            bad_time.field.as_deref()
        ),
        ("rider_reports.csv", 2, Some("上报时间"))
    );
    assert!(
        bad_time.reason.starts_with(
            "reported_at \"2026-10-32 09:00\" is not a date and time (month 10 of 2026 has no day 32)"
        ),
        "{bad_time}"
    );
    let swapped = &problems[1];
    assert_eq!((swapped.feature, swapped.field.as_deref()), (3, None));
    assert!(
        swapped
            .reason
            .contains("latitude and longitude look swapped"),
        "{swapped}"
    );
    assert!(stored_reports(&pool).await.is_empty());

    // With --skip-invalid the three good rows load, times in China Standard
    // Time unless they say otherwise, and the personal columns are dropped.
    let options = ImportOptions {
        skip_invalid: true,
        rejects: Some(rejects.clone()),
        ..ImportOptions::default()
    };
    let report = import(&pool, &[source], &options).await.unwrap();
    assert_eq!(report.skipped, 2);
    assert_eq!(report.rows_of(Entity::RiderReports), 3);
    let layer = &report.layers[0];
    assert_eq!(layer.dropped_personal_fields, ["姓名", "手机"]);
    let mapping: Vec<(&str, Option<&str>)> = layer
        .fields
        .iter()
        .map(|field| (field.column, field.source.as_deref()))
        .collect();
    assert_eq!(
        mapping,
        [
            ("reported_at", Some("上报时间")),
            ("kind", Some("类型")),
            ("source", Some("来源"))
        ]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["layers"][0]["dropped_personal_fields"],
        json!(["姓名", "手机"])
    );

    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        stored_reports(&pool).await,
        [
            (
                "2026-10-05 12:10:00.000000".to_owned(),
                text("delivery"),
                text("平台推送"),
                120.311,
                37.611
            ),
            (
                "2026-10-06 21:45:00.000000".to_owned(),
                text("lead"),
                text("随手拍"),
                120.314,
                37.614
            ),
            (
                "2026-10-07 09:00:00.500000".to_owned(),
                None,
                None,
                120.315,
                37.615
            ),
        ]
    );
    // No name or phone anywhere in the table.
    let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(r)::text FROM rider_reports r")
        .fetch_all(&pool)
        .await
        .unwrap();
    for row in &rows {
        assert!(
            !row.contains("1380000") && !row.contains('张') && !row.contains('赵'),
            "{row}"
        );
    }

    // The rejects file keeps the rows' own fields, minus the personal ones.
    let rejected: Value =
        serde_json::from_str(&std::fs::read_to_string(&rejects).unwrap()).unwrap();
    let features = rejected["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    for feature in features {
        let properties = feature["properties"].as_object().unwrap();
        assert!(properties.contains_key("上报时间"), "{feature}");
        assert!(!properties.contains_key("姓名"), "{feature}");
        assert!(!properties.contains_key("手机"), "{feature}");
        assert!(!feature.to_string().contains("1380000"), "{feature}");
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn geojson_times_parsed_by_gdal_keep_their_offset(pool: PgPool) {
    let dir = TempDir::new("riders-geojson");
    let mut features = good_features(Entity::RiderReports);
    // GDAL reads ISO times in GeoJSON as date-time fields and hands them
    // over as `2026/10/05 04:10:00+00`.
    features.push(feature(
        json!({ "SBSJ": "2026-10-05T04:10:00Z", "SBLX": "rest", "rider_phone": "13800000009" }),
        point(120.312, 37.612),
    ));
    let source = dir.layer(Entity::RiderReports, &features);
    let report = import(&pool, &[source], &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rows_of(Entity::RiderReports), 3);
    assert_eq!(report.layers[0].dropped_personal_fields, ["rider_phone"]);
    let times: Vec<String> = stored_reports(&pool)
        .await
        .into_iter()
        .map(|(time, ..)| time)
        .collect();
    assert_eq!(
        times,
        [
            "2026-10-05 12:10:00.000000",
            "2026-10-05 12:10:00.000000",
            "2026-10-05 14:30:00.000000"
        ]
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn reports_have_no_code_to_upsert_by(pool: PgPool) {
    let dir = TempDir::new("riders-upsert");
    let source = dir.layer(Entity::RiderReports, &good_features(Entity::RiderReports));
    let options = ImportOptions {
        mode: ImportMode::Upsert,
        ..ImportOptions::default()
    };
    match import(&pool, std::slice::from_ref(&source), &options).await {
        Err(ImportError::ModeNotSupported { entity, .. }) => {
            assert_eq!(entity, Entity::RiderReports);
        }
        other => panic!("expected ModeNotSupported, got {other:?}"),
    }
    // Replace empties the table first, as for roads: a second load of the
    // same month does not double it.
    for _ in 0..2 {
        let options = ImportOptions {
            mode: ImportMode::Replace,
            ..ImportOptions::default()
        };
        import(&pool, std::slice::from_ref(&source), &options)
            .await
            .unwrap();
    }
    assert_eq!(stored_reports(&pool).await.len(), 2);
}
