//! OpenStreetMap buildings and addresses are placed in the parents already
//! stored, so a parent layer staged in the same import cannot serve them:
//! such an import is refused with a problem naming the layer to import
//! first, whether or not the database already holds parents of that kind,
//! and nothing is written.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use gridmap_import::{import, Entity, ImportError, ImportMode, ImportOptions, Problem, Source};
use serde_json::json;
use sqlx::PgPool;

fn helsinki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/helsinki-2019.osm.pbf")
}

/// District, street and community over central Helsinki.
fn chain(dir: &TempDir) -> Vec<Source> {
    let whole = square(24.90, 60.14, 25.00, 60.20);
    vec![
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
    ]
}

fn grids(dir: &TempDir) -> Source {
    dir.layer(
        Entity::Grids,
        &[grid(GRID, COMMUNITY, square(24.90, 60.14, 25.00, 60.20))],
    )
}

fn options(mode: ImportMode) -> ImportOptions {
    ImportOptions {
        outside_china: true,
        mode,
        ..ImportOptions::default()
    }
}

/// The problems of a rejected import.
fn problems(result: Result<gridmap_import::ImportReport, ImportError>) -> Vec<Problem> {
    match result {
        Err(ImportError::Rejected { problems, .. }) => problems,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Checks that the OSM file has a problem of its whole file telling to
/// import `parent` first, in a run of their own.
fn assert_parent_named(problems: &[Problem], parent: &str) {
    // Both OSM layers of one run come from the same file: the buildings'
    // broken features are its problems too.
    let problem = problems
        .iter()
        .find(|problem| problem.layer == "helsinki-2019.osm.pbf" && problem.feature == 0)
        .unwrap_or_else(|| panic!("no problem of the whole OSM file: {problems:#?}"));
    assert!(
        problem.reason.contains(&format!(
            "import the {parent} in a run of their own first, then this file"
        )) && problem.reason.contains("of this same import"),
        "{problem}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn osm_buildings_with_their_grids_in_the_same_import_are_refused(pool: PgPool) {
    let dir = TempDir::new("osm-parents");
    let osm = Source::new(helsinki(), Entity::Buildings);

    // No grid stored yet: the grids of the same import are named as the
    // reason, not the empty database alone. (An upsert stages every layer
    // before writing any.)
    let mut sources = chain(&dir);
    sources.push(grids(&dir));
    sources.push(osm.clone());
    let found = problems(import(&pool, &sources, &options(ImportMode::Upsert)).await);
    assert_parent_named(&found, "grids");
    assert!(counts(&pool).await.iter().all(|(_, rows)| *rows == 0));

    // Grids stored from an earlier run: a grid layer in the same import
    // would not be the one the buildings are placed in, so it is refused
    // too (and nothing of the grids' upsert is written).
    import(&pool, &sources[..4], &options(ImportMode::Insert))
        .await
        .unwrap();
    let before = dump(&pool).await;
    let found = problems(
        import(
            &pool,
            &[grids(&dir), osm.clone()],
            &options(ImportMode::Upsert),
        )
        .await,
    );
    assert_parent_named(&found, "grids");
    assert_eq!(dump(&pool).await, before);

    // Addresses are placed in the stored buildings: buildings in the same
    // import are refused alike.
    let found = problems(
        import(
            &pool,
            &[osm.clone(), Source::new(helsinki(), Entity::Addresses)],
            &ImportOptions {
                skip_invalid: true,
                ..options(ImportMode::Insert)
            },
        )
        .await,
    );
    assert_parent_named(&found, "buildings");
    assert_eq!(dump(&pool).await, before);

    // Alone, the same file loads into the stored grid.
    let report = import(
        &pool,
        &[osm],
        &ImportOptions {
            skip_invalid: true,
            ..options(ImportMode::Insert)
        },
    )
    .await
    .unwrap();
    assert!(report.rows_of(Entity::Buildings) > 400, "{report:?}");
}
