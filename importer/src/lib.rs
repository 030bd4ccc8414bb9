//! gridmap-import: loads the files a city hands over (any vector format GDAL
//! reads) into the gridmap PostGIS schema, all or nothing.
//!
//! ```no_run
//! # async fn example(pool: &sqlx::PgPool) -> Result<(), gridmap_import::ImportError> {
//! use gridmap_import::{import, Entity, ImportOptions, Source};
//!
//! let sources = [
//!     Source::new("out/grids.geojson", Entity::Grids),
//!     Source::infer("out/communities.shp").expect("a known layer name"),
//! ];
//! let report = import(pool, &sources, &ImportOptions::default()).await?;
//! tracing::info!(rows = report.rows(), elapsed = ?report.elapsed, "imported");
//! # Ok(()) }
//! ```
//!
//! An import runs in three steps:
//!
//! 1. Every source is read through GDAL on the blocking pool (`read.rs`): fields
//!    are found by the alias table in [`fields`] (`WGBM`, `网格编码` or `code`
//!    for a grid's code, …), geometries are checked for type and shape and
//!    brought to EPSG:4490.
//! 2. Every feature is checked (`check.rs`, then `db.rs` against the database):
//!    code formats and nesting, required values, vocabularies, duplicates in
//!    the import and in the database, parents that exist nowhere, geometry
//!    validity by PostGIS. All problems are collected; if there is any, the
//!    import is [`ImportError::Rejected`] and nothing is written.
//! 3. All layers are inserted in dependency order, in one transaction, with
//!    batched `INSERT … SELECT … FROM UNNEST(…)` statements.

mod check;
mod db;
mod entity;
pub mod fields;
mod problem;
mod read;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use sqlx::PgPool;

pub use entity::{Entity, UnknownEntity};
pub use problem::{ImportError, Problem, MAX_PROBLEMS};
pub use report::{FieldUse, ImportReport, LayerReport};

/// One file to import and the layer kind it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Any path GDAL opens: a GeoJSON, a shapefile's `.shp`, a GeoPackage, a
    /// `/vsizip/` path. In a multi-layer file, the layer named after the entity
    /// is read.
    pub path: PathBuf,
    pub entity: Entity,
}

impl Source {
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, entity: Entity) -> Self {
        Self {
            path: path.into(),
            entity,
        }
    }

    /// A source whose entity is named by the file stem (`grids.geojson` → grids).
    ///
    /// # Errors
    /// [`UnknownEntity`] naming the stem when it is no layer kind.
    pub fn infer(path: impl Into<PathBuf>) -> Result<Self, UnknownEntity> {
        let path = path.into();
        let entity = Entity::from_path(&path).ok_or_else(|| UnknownEntity {
            name: path
                .file_stem()
                .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned()),
        })?;
        Ok(Self { path, entity })
    }

    /// The file name used in problems and reports (`grids.geojson`).
    #[must_use]
    pub fn file_name(&self) -> String {
        read::display_name(&self.path)
    }
}

/// How to import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Run every check and every insert, then roll back: the report shows what
    /// would be loaded and nothing is written.
    pub dry_run: bool,
}

/// Imports `sources` in one transaction, parents before children whatever
/// their order in `sources`.
///
/// # Errors
/// [`ImportError::Rejected`] with every problem found when the input breaks
/// the contract; the other variants for IO and database failures. In every
/// error case the database is left unchanged.
pub async fn import(
    pool: &PgPool,
    sources: &[Source],
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut ordered: Vec<Source> = sources.to_vec();
    // A stable sort keeps the caller's order among files of one entity.
    ordered.sort_by_key(|source| source.entity);

    let raw_layers = read_all(&ordered).await?;
    let read_time = started.elapsed();

    let checks_started = Instant::now();
    let mut problems = problem::Problems::default();
    let layers: Vec<check::CheckedLayer> = raw_layers
        .into_iter()
        .enumerate()
        .map(|(order, raw)| check::check_values(order, raw, &mut problems))
        .collect();
    check::check_duplicates(&layers, &mut problems);

    let mut transaction = pool
        .begin()
        .await
        .map_err(ImportError::database("starting the import transaction"))?;
    db::lock_tables(&mut transaction, &layers).await?;
    db::check_against_database(&mut transaction, &layers, &mut problems).await?;
    let check_time = checks_started.elapsed();
    if let Err(rejected) = problems.into_result() {
        transaction
            .rollback()
            .await
            .map_err(ImportError::database("rolling back the rejected import"))?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "input rejected");
        return Err(rejected);
    }

    let write_started = Instant::now();
    let mut reports = Vec::with_capacity(layers.len());
    for layer in layers {
        let mut report = LayerReport {
            entity: layer.spec.entity,
            layer: layer.file_name,
            features: layer.rows.len() as u64,
            rows: 0,
            source_crs: layer.crs,
            transformed: layer.transformed,
            fields: layer.fields,
        };
        let layer_started = Instant::now();
        report.rows = db::insert_layer(&mut transaction, layer.spec, layer.rows).await?;
        tracing::info!(
            table = layer.spec.entity.table(),
            rows = report.rows,
            elapsed_ms = layer_started.elapsed().as_millis(),
            "inserted"
        );
        reports.push(report);
    }
    if options.dry_run {
        transaction
            .rollback()
            .await
            .map_err(ImportError::database("rolling back the dry run"))?;
    } else {
        transaction
            .commit()
            .await
            .map_err(ImportError::database("committing the import"))?;
    }
    let report = ImportReport {
        layers: reports,
        dry_run: options.dry_run,
        read_time,
        check_time,
        write_time: write_started.elapsed(),
        elapsed: started.elapsed(),
    };
    tracing::info!(
        rows = report.rows(),
        dry_run = report.dry_run,
        elapsed_ms = report.elapsed.as_millis(),
        "import finished"
    );
    Ok(report)
}

/// Reads every source on the blocking pool, one task per file.
async fn read_all(sources: &[Source]) -> Result<Vec<read::RawLayer>, ImportError> {
    let tasks: Vec<_> = sources
        .iter()
        .map(|source| {
            let source = source.clone();
            tokio::task::spawn_blocking(move || read::read_source(&source))
        })
        .collect();
    let mut layers = Vec::with_capacity(tasks.len());
    for (task, source) in tasks.into_iter().zip(sources) {
        let layer = task.await.map_err(|source_error| ImportError::Reader {
            path: source.path.clone(),
            source: source_error,
        })??;
        layers.push(layer);
    }
    Ok(layers)
}
