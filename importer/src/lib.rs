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
//!    import is [`ImportError::Rejected`] and nothing is written, unless
//!    [`ImportOptions::skip_invalid`] drops the rejected features and their
//!    dependants instead (`skip.rs`). `--rejects` writes them out (`rejects.rs`).
//! 3. In replace mode, stored rows the import does not contain are deleted,
//!    children first. Then all layers are written in dependency order, in one
//!    transaction, with binary `COPY … FROM STDIN` (`copy.rs`): straight into
//!    the table for inserts, through a temporary staging table and
//!    `INSERT … SELECT … ON CONFLICT (code) DO UPDATE` in upsert and replace
//!    modes.

mod check;
mod copy;
mod db;
mod entity;
pub mod export;
pub mod fields;
mod options;
mod problem;
mod read;
mod rejects;
mod report;
mod skip;

use std::path::PathBuf;
use std::time::Instant;

use sqlx::PgPool;

pub use entity::{Entity, UnknownEntity};
pub use gridmap_crs::LonLatCrs;
pub use options::{ImportMode, ImportOptions, Progress, SourceCrs, UnknownMode, UnknownSourceCrs};
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

/// Imports `sources` in one transaction, parents before children whatever
/// their order in `sources`.
///
/// # Errors
/// [`ImportError::Rejected`] with every problem found when the input breaks
/// the contract (with `skip_invalid`: only for problems of a whole layer, or a
/// replace that would delete referenced rows); [`ImportError::ModeNotSupported`]
/// for an upsert of roads; the other variants for IO and database failures. In
/// every error case the database is left unchanged.
pub async fn import(
    pool: &PgPool,
    sources: &[Source],
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    if options.mode == ImportMode::Upsert {
        if let Some(source) = sources.iter().find(|source| source.entity == Entity::Roads) {
            return Err(ImportError::ModeNotSupported {
                mode: options.mode,
                entity: source.entity,
            });
        }
    }
    let mut ordered: Vec<Source> = sources.to_vec();
    // A stable sort keeps the caller's order among files of one entity.
    ordered.sort_by_key(|source| source.entity);

    options.stage("reading", None);
    let raw_layers = read_all(&ordered, options).await?;
    let read_time = started.elapsed();

    let checks_started = Instant::now();
    options.stage("checking", None);
    let mut problems = problem::Problems::default();
    let mut layers: Vec<check::CheckedLayer> = raw_layers
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
    let repaired = db::check_against_database(
        &mut transaction,
        &mut layers,
        options.mode,
        options.repair,
        &mut problems,
    )
    .await?;
    for repair in &repaired {
        tracing::info!(%repair, "geometry repaired");
    }
    let mut skipped = 0;
    if options.skip_invalid && !problems.has_layer_problems() && !problems.is_empty() {
        skipped = skip::drop_rejected(&mut transaction, &mut layers, &mut problems).await?;
    }
    let all_problems = problems.sorted();
    if let Some(path) = &options.rejects {
        let path = path.clone();
        let sources = ordered.clone();
        let list = all_problems.clone();
        let encoding = options.encoding.clone();
        let written = tokio::task::spawn_blocking(move || {
            rejects::write(&path, &sources, &list, encoding.as_deref())
        })
        .await
        .map_err(|source| ImportError::Reader {
            path: options.rejects.clone().unwrap_or_default(),
            source,
        })??;
        tracing::info!(features = written, "rejects file written");
    }
    let check_time = checks_started.elapsed();
    if skipped > 0 {
        tracing::warn!(features = skipped, "features skipped");
    } else if let Err(rejected) = problems.into_result() {
        transaction
            .rollback()
            .await
            .map_err(ImportError::database("rolling back the rejected import"))?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "input rejected");
        return Err(rejected);
    }

    let write_started = Instant::now();
    let deleted = if options.mode == ImportMode::Replace {
        match delete_replaced(&mut transaction, &layers).await? {
            Ok(deleted) => deleted,
            Err(problem) => {
                transaction
                    .rollback()
                    .await
                    .map_err(ImportError::database("rolling back the refused replace"))?;
                return Err(ImportError::Rejected {
                    problems: vec![problem],
                    omitted: 0,
                });
            }
        }
    } else {
        0
    };
    options.stage(
        "writing",
        Some(layers.iter().map(|layer| layer.rows.len() as u64).sum()),
    );
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
        // Rows without a code (roads) cannot be matched; replace emptied
        // their table already, so they are plain inserts.
        let upsert = matches!(options.mode, ImportMode::Upsert | ImportMode::Replace)
            && layer.spec.key.is_some();
        report.rows =
            copy::write_layer(&mut transaction, layer.spec, layer.rows, upsert, options).await?;
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
        mode: options.mode,
        deleted,
        skipped,
        repaired,
        skipped_problems: all_problems
            .into_iter()
            .filter(|_| skipped > 0)
            .take(MAX_PROBLEMS)
            .map(|(_, problem)| problem)
            .collect(),
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

/// For `--mode replace`: deletes the stored rows each imported entity no
/// longer contains, children before parents so that replacing a parent and
/// its children together works. Returns the rows deleted, or the problem that
/// refused the replace.
async fn delete_replaced(
    connection: &mut sqlx::PgConnection,
    layers: &[check::CheckedLayer],
) -> Result<Result<u64, Problem>, ImportError> {
    let mut entities: Vec<Entity> = layers.iter().map(|layer| layer.spec.entity).collect();
    entities.dedup();
    let mut deleted = 0;
    for entity in entities.into_iter().rev() {
        match db::delete_missing(&mut *connection, entity, layers).await? {
            Ok(count) => {
                tracing::info!(
                    table = entity.table(),
                    rows = count,
                    "deleted rows not in the import"
                );
                deleted += count;
            }
            Err(problem) => return Ok(Err(problem)),
        }
    }
    Ok(Ok(deleted))
}

/// Reads every source on the blocking pool, one task per file.
async fn read_all(
    sources: &[Source],
    options: &ImportOptions,
) -> Result<Vec<read::RawLayer>, ImportError> {
    let tasks: Vec<_> = sources
        .iter()
        .map(|source| {
            let source = source.clone();
            let options = options.clone();
            tokio::task::spawn_blocking(move || read::read_source(&source, &options))
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
