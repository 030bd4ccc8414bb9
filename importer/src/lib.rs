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
//! An import runs in three steps, in one transaction:
//!
//! 1. Every source is read through GDAL on the blocking pool (`read.rs`;
//!    plain GeoJSON areas by a native reader, `geojson.rs`): fields
//!    are found by the alias table in [`fields`] (`WGBM`, `网格编码` or `code`
//!    for a grid's code, …), geometries are checked for type and shape and
//!    brought to EPSG:4490. Features stream in batches through a bounded
//!    channel; each is converted and checked on its own (`check.rs`: code
//!    formats and nesting, required values, vocabularies) and copied with
//!    binary COPY into a temporary staging table of its source (`copy.rs`).
//!    Memory stays flat whatever the file size.
//! 2. The checks that need the whole import run as set-based queries over the
//!    staging tables (`db.rs`): duplicates in the import and in the database,
//!    parents that exist nowhere, geometry validity by PostGIS. All problems
//!    are collected; if there is any, the import is [`ImportError::Rejected`]
//!    and rolled back, unless [`ImportOptions::skip_invalid`] flags the
//!    rejected features and their dependants instead (`skip.rs`). `--rejects`
//!    writes them out (`rejects.rs`). A plain insert whose features all
//!    passed step 1 skips these queries when the tables' own constraints
//!    test the same (`db::constraints_cover`): its rows go in at once inside
//!    a savepoint, and only if a constraint refuses one is it rolled back and
//!    checked as above. Such a layer whose feature count the reader knows
//!    up front, with no staged layer before it, skips the staging table
//!    altogether: its features are COPYed straight into the table during
//!    step 1, inside a savepoint (`write_directly`); a problem rolls back to
//!    it and the file is read again into a staging table. Such a layer whose feature count the reader knows
//!    up front, with no staged layer before it, skips the staging table
//!    altogether: its features are COPYed straight into the table during
//!    step 1, inside a savepoint (`write_directly`); a problem rolls back to
//!    it and the file is read again into a staging table.
//! 3. In replace mode, stored rows the import does not contain are deleted,
//!    children first. Then every layer moves from its staging table into its
//!    table in dependency order with one `INSERT … SELECT` (`ON CONFLICT (code)
//!    DO UPDATE` in upsert and replace modes). A large load into a table no
//!    larger than the load drops the table's secondary indexes and foreign
//!    keys first and creates them again after (`bulk.rs`).

mod bulk;
mod check;
mod copy;
mod db;
mod entity;
pub mod export;
pub mod fields;
mod geojson;
mod gpkg;
mod mapping;
mod options;
mod osm;
mod problem;
mod read;
mod rejects;
mod report;
mod skip;
pub mod terminal_progress;
pub mod tile_archive;

use std::path::PathBuf;
use std::time::Instant;

use sqlx::PgPool;

pub use entity::{Entity, UnknownEntity};
pub use gridmap_crs::LonLatCrs;
pub use mapping::{check_sources as check_mapped_fields, Mapping, MappingError};
pub use options::{ImportMode, ImportOptions, Progress, SourceCrs, UnknownMode, UnknownSourceCrs};
pub use problem::{ImportError, Problem, MAX_PROBLEMS};
pub use report::{FieldOrigin, FieldUse, ImportReport, LayerReport};

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
        if let Some(source) = sources
            .iter()
            .find(|source| fields::LayerSpec::of(source.entity).key.is_none())
        {
            return Err(ImportError::ModeNotSupported {
                mode: options.mode,
                entity: source.entity,
            });
        }
    }
    let mut ordered: Vec<Source> = sources.to_vec();
    // A stable sort keeps the caller's order among files of one entity.
    ordered.sort_by_key(|source| source.entity);
    // A missing file is an error before anything else happens.
    for source in &ordered {
        let path_text = source.path.to_string_lossy();
        if !path_text.starts_with("/vsi") {
            std::fs::metadata(&source.path).map_err(|err| ImportError::Io {
                path: source.path.clone(),
                source: err,
            })?;
        }
    }

    // Mapped fields the files lack are found before the database is touched.
    mapping::check_sources(&ordered, options).await?;

    let mut transaction = pool
        .begin()
        .await
        .map_err(ImportError::database("starting the import transaction"))?;
    let entities: Vec<Entity> = ordered.iter().map(|source| source.entity).collect();
    db::lock_tables(&mut transaction, &entities).await?;
    // Session settings for this transaction only: the checks group and sort
    // whole layers, and index builds sort whole tables.
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *transaction)
        .await
        .map_err(ImportError::database("setting work_mem"))?;
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *transaction)
        .await
        .map_err(ImportError::database("setting maintenance_work_mem"))?;

    options.stage("reading", None);
    let mut problems = problem::Problems::default();
    let mut layers: Vec<check::StagedLayer> = Vec::with_capacity(ordered.len());
    // OpenStreetMap buildings and addresses are placed in the parents stored
    // before the import and refuse parents coming in the same import
    // (`osm.rs`), which a direct COPY would already have written: with such
    // a source every layer is staged.
    let osm_in_import = ordered.iter().any(|source| {
        matches!(source.entity, Entity::Buildings | Entity::Addresses) && osm::is_osm(source)
    });
    for (order, source) in ordered.iter().enumerate() {
        // A plain insert may COPY straight into the table while every layer
        // before it went there too (a staged parent is not in its table
        // yet, so its children's foreign keys would fail) and no other file
        // of the import fills the same table (duplicates between files
        // are named by the staged checks).
        let direct = options.mode == ImportMode::Insert
            && !options.repair
            && !osm_in_import
            && layers.iter().all(|layer| layer.written.is_some())
            && ordered
                .iter()
                .filter(|other| other.entity == source.entity)
                .count()
                == 1;
        let layer = stage_source(
            &mut transaction,
            order,
            source,
            options,
            direct,
            &mut problems,
        )
        .await?;
        layers.push(layer);
    }
    let read_time = started.elapsed();
    // The layers already written come first; the checks and writes below
    // concern the staged ones only.
    let staged_from = layers
        .iter()
        .position(|layer| layer.written.is_none())
        .unwrap_or(layers.len());
    let (written, layers) = layers.split_at(staged_from);

    let checks_started = Instant::now();
    options.stage("checking", None);
    // The tables' own constraints (primary key, foreign keys, the CHECK
    // calling ST_IsValid) test on insert what the set-based checks test
    // before it, so a plain insert whose features all passed their own checks
    // goes in at once, inside a savepoint. Only when a constraint refuses a
    // row is everything rolled back to the savepoint and checked feature by
    // feature, which names every problem as before.
    let optimistic = !options.repair
        && options.mode == ImportMode::Insert
        && problems.is_empty()
        && db::constraints_cover(&mut transaction, layers).await?;
    let mut optimistic_reports = None;
    let mut optimistic_time = std::time::Duration::ZERO;
    if layers.is_empty() {
        optimistic_reports = Some(Vec::new());
    } else if optimistic {
        let attempt_started = Instant::now();
        optimistic_reports = attempt_insert(&mut transaction, layers, options).await?;
        optimistic_time = attempt_started.elapsed();
    }
    let repaired = if optimistic_reports.is_some() {
        Vec::new()
    } else {
        db::check_against_database(
            &mut transaction,
            layers,
            options.mode,
            options.repair,
            &mut problems,
        )
        .await?
    };
    for repair in &repaired {
        tracing::info!(%repair, "geometry repaired");
    }
    let mut skipped = 0;
    if options.skip_invalid && !problems.has_layer_problems() && !problems.is_empty() {
        skipped = skip::drop_rejected(&mut transaction, layers, &mut problems).await?;
    }
    let all_problems = problems.sorted();
    if let Some(path) = &options.rejects {
        let path = path.clone();
        let sources = ordered.clone();
        let list = all_problems.clone();
        let encoding = options.encoding.clone();
        let field_map = options.field_map.clone();
        let mapping = options.mapping.clone();
        let written = tokio::task::spawn_blocking(move || {
            let chosen = rejects::ChosenFields {
                field_map: &field_map,
                mapping: mapping.as_ref(),
            };
            rejects::write(&path, &sources, &list, encoding.as_deref(), chosen)
        })
        .await
        .map_err(|source| ImportError::Reader {
            path: options.rejects.clone().unwrap_or_default(),
            source,
        })??;
        tracing::info!(features = written, "rejects file written");
    }
    let check_time = checks_started.elapsed().saturating_sub(optimistic_time);
    tracing::debug!(elapsed_ms = check_time.as_millis(), "checks done");
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
        match delete_replaced(&mut transaction, layers).await? {
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
    let mut reports: Vec<LayerReport> = written
        .iter()
        .map(|layer| layer_report(layer, layer.written.unwrap_or_default()))
        .collect();
    reports.extend(match optimistic_reports {
        Some(reports) => reports,
        None => write_layers(&mut transaction, layers, options).await?,
    });
    if options.dry_run {
        transaction
            .rollback()
            .await
            .map_err(ImportError::database("rolling back the dry run"))?;
    } else {
        let commit_started = Instant::now();
        transaction
            .commit()
            .await
            .map_err(ImportError::database("committing the import"))?;
        tracing::debug!(
            elapsed_ms = commit_started.elapsed().as_millis(),
            "committed"
        );
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
        write_time: write_started.elapsed() + optimistic_time,
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

/// Moves every layer from its staging table into its table, in load order,
/// taking the bulk path (`bulk.rs`) where it pays.
async fn write_layers(
    connection: &mut sqlx::PgConnection,
    layers: &[check::StagedLayer],
    options: &ImportOptions,
) -> Result<Vec<LayerReport>, ImportError> {
    options.stage(
        "writing",
        Some(layers.iter().map(|layer| layer.features).sum()),
    );
    let mut reports = Vec::with_capacity(layers.len());
    let mut deferred: Option<bulk::Deferred> = None;
    for (index, layer) in layers.iter().enumerate() {
        let layer_started = Instant::now();
        let table = layer.spec.entity.table();
        // The rows this import adds to the table: those of every file of
        // the entity, so the bulk decision is taken once, at its first file.
        let first_of_entity = index == 0 || layers[index - 1].spec.entity != layer.spec.entity;
        let entity_rows: u64 = layers
            .iter()
            .filter(|other| other.spec.entity == layer.spec.entity)
            .map(|other| other.features)
            .sum();
        let last_of_entity = layers
            .get(index + 1)
            .is_none_or(|next| next.spec.entity != layer.spec.entity);
        if first_of_entity && bulk::worthwhile(&mut *connection, table, entity_rows).await? {
            deferred = Some(bulk::defer(&mut *connection, table).await?);
        }
        // Rows without a code (roads) cannot be matched; replace emptied
        // their table already, so they are plain inserts.
        let upsert = matches!(options.mode, ImportMode::Upsert | ImportMode::Replace)
            && layer.spec.key.is_some();
        let rows = copy::write_layer(&mut *connection, layer, upsert).await?;
        options.advance(layer.features);
        tracing::debug!(
            table,
            rows,
            elapsed_ms = layer_started.elapsed().as_millis(),
            "rows moved from the staging table"
        );
        if last_of_entity {
            if let Some(deferred) = deferred.take() {
                let restore_started = Instant::now();
                bulk::restore(&mut *connection, deferred).await?;
                tracing::debug!(
                    table,
                    elapsed_ms = restore_started.elapsed().as_millis(),
                    "indexes and foreign keys restored"
                );
            }
        }
        tracing::info!(
            table,
            rows,
            elapsed_ms = layer_started.elapsed().as_millis(),
            "inserted"
        );
        reports.push(layer_report(layer, rows));
    }
    Ok(reports)
}

fn layer_report(layer: &check::StagedLayer, rows: u64) -> LayerReport {
    LayerReport {
        entity: layer.spec.entity,
        layer: layer.file_name.clone(),
        features: layer.features,
        rows,
        source_crs: layer.crs.clone(),
        transformed: layer.transformed,
        fields: layer.fields.clone(),
        dropped_personal_fields: layer.dropped_personal.clone(),
    }
}

/// Inserts every layer inside a savepoint, trusting the tables' constraints
/// (see [`db::constraints_cover`]): `Some(reports)` when all rows went in,
/// `None` (rolled back to the savepoint) when a constraint refused one.
async fn attempt_insert(
    connection: &mut sqlx::PgConnection,
    layers: &[check::StagedLayer],
    options: &ImportOptions,
) -> Result<Option<Vec<LayerReport>>, ImportError> {
    let savepoint = sqlx::query;
    savepoint("SAVEPOINT gridmap_import_insert")
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database(
            "setting a savepoint before the inserts",
        ))?;
    match write_layers(&mut *connection, layers, options).await {
        Ok(reports) => {
            savepoint("RELEASE SAVEPOINT gridmap_import_insert")
                .execute(&mut *connection)
                .await
                .map_err(ImportError::database(
                    "releasing the savepoint of the inserts",
                ))?;
            Ok(Some(reports))
        }
        Err(err) if db::is_integrity_violation(&err) => {
            tracing::debug!(%err, "a constraint refused a row; checking feature by feature");
            savepoint("ROLLBACK TO SAVEPOINT gridmap_import_insert")
                .execute(&mut *connection)
                .await
                .map_err(ImportError::database(
                    "rolling back to the savepoint of the inserts",
                ))?;
            options.stage("checking", None);
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Reads `source` on the blocking pool and streams its features, converted
/// and checked one by one, into a staging table of its own; with `direct`,
/// straight into its table when that is safe (see [`write_directly`]).
async fn stage_source(
    connection: &mut sqlx::PgConnection,
    order: usize,
    source: &Source,
    options: &ImportOptions,
    direct: bool,
    problems: &mut problem::Problems,
) -> Result<check::StagedLayer, ImportError> {
    let started = Instant::now();
    let spec = fields::LayerSpec::of(source.entity);
    let mut layer = check::StagedLayer {
        order,
        file_name: source.file_name(),
        spec,
        fields: Vec::new(),
        crs: String::new(),
        transformed: false,
        features: 0,
        stage: copy::stage_name(order),
        dropped_personal: Vec::new(),
        mapping: options
            .mapping
            .clone()
            .filter(|mapping| mapping.applies_to(source.entity)),
        written: None,
    };
    let mut osm_parents = osm::load_parents(&mut *connection, source).await?;
    // OpenStreetMap layers take their codes from stored rows: always staged.
    let mut direct = direct && osm_parents.is_none();
    loop {
        // A few batches in flight: the reader stays ahead without the file
        // piling up in memory when the database is the slower side.
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        let reader = {
            let source = source.clone();
            let options = options.clone();
            // Read a second time only after a direct attempt, which needs
            // no stored parents.
            let osm_parents = osm_parents.take();
            tokio::task::spawn_blocking(move || {
                read::read_source(&source, &options, osm_parents.as_ref(), &sender)
            })
        };
        let join = |result: Result<Result<u64, ImportError>, tokio::task::JoinError>| {
            result.map_err(|join_error| ImportError::Reader {
                path: source.path.clone(),
                source: join_error,
            })?
        };
        let (header, count) = match receiver.recv().await {
            Some(read::ReadMessage::Header(header)) => (header, None),
            Some(read::ReadMessage::CountedHeader(header, count)) => (header, Some(count)),
            _ => {
                // The reader ended without a header: it failed before reading.
                join(reader.await)?;
                return Err(ImportError::Io {
                    path: source.path.clone(),
                    source: std::io::Error::other("the file could not be read"),
                });
            }
        };
        layer.fields = header.fields;
        layer.crs = header.crs;
        layer.transformed = header.transformed;
        layer.dropped_personal = header.dropped_personal;
        // The count decides whether to rebuild the indexes before the
        // first row; without one the layer is staged, as are layers whose
        // table's constraints do not make every check.
        if let Some(count) = count.filter(|_| direct && header.problems.is_empty()) {
            if db::constraints_cover(&mut *connection, std::slice::from_ref(&layer)).await? {
                let written = write_directly(&mut *connection, &layer, &mut receiver, count).await;
                // Dropping the receiver stops a reader still running.
                drop(receiver);
                let read = join(reader.await);
                if let Some(rows) = written? {
                    read?;
                    layer.features = rows;
                    layer.written = Some(rows);
                    tracing::info!(
                        file = %layer.file_name,
                        entity = %spec.entity,
                        features = rows,
                        elapsed_ms = started.elapsed().as_millis(),
                        "copied into its table"
                    );
                    return Ok(layer);
                }
                // Everything went back to the savepoint; reading the file
                // again into a staging table names every problem.
                tracing::info!(
                    file = %layer.file_name,
                    "a feature needs the checks; reading the file again"
                );
                direct = false;
                continue;
            }
        }
        for problem in header.problems {
            problems.push(order, problem);
        }
        copy::create_stage(&mut *connection, &layer).await?;
        let staged = copy::stage_rows(&mut *connection, &layer, &mut receiver, problems).await;
        // Dropping the receiver stops a reader still running after a failure.
        drop(receiver);
        let read = join(reader.await);
        let staged = staged?;
        read?;
        layer.features = staged;
        sqlx::query(&format!("ANALYZE {}", layer.stage))
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database("analysing a staging table"))?;
        tracing::info!(
            file = %layer.file_name,
            entity = %spec.entity,
            features = staged,
            elapsed_ms = started.elapsed().as_millis(),
            "staged"
        );
        return Ok(layer);
    }
}

/// Streams `layer`'s features (`features` of them, as its reader counted)
/// from `receiver` straight into its table by COPY, inside a savepoint, for a
/// plain insert whose table's constraints make every set-based check
/// (`db::constraints_cover`). The server checks, transforms and indexes each
/// row while the reader goes on, and no row is written twice. A load that
/// pays for it drops the table's secondary indexes and foreign keys first
/// and creates them again after (`bulk.rs`).
///
/// `Ok(Some(rows))` when every row went in; `Ok(None)` when a feature has a
/// problem or a constraint refused a row: everything is then rolled back to
/// the savepoint (rows, indexes, foreign keys) and the caller stages the
/// file instead, whose checks name each problem.
async fn write_directly(
    connection: &mut sqlx::PgConnection,
    layer: &check::StagedLayer,
    receiver: &mut tokio::sync::mpsc::Receiver<read::ReadMessage>,
    features: u64,
) -> Result<Option<u64>, ImportError> {
    sqlx::query("SAVEPOINT gridmap_import_direct")
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database("setting a savepoint before the COPY"))?;
    let attempt = copy_with_deferred_indexes(&mut *connection, layer, receiver, features).await;
    let refused = match attempt {
        Ok(Some(rows)) => {
            sqlx::query("RELEASE SAVEPOINT gridmap_import_direct")
                .execute(&mut *connection)
                .await
                .map_err(ImportError::database("releasing the savepoint of the COPY"))?;
            return Ok(Some(rows));
        }
        Ok(None) => "a feature has a problem".to_owned(),
        Err(err) if db::is_integrity_violation(&err) => err.to_string(),
        Err(err) => return Err(err),
    };
    tracing::debug!(file = %layer.file_name, %refused, "COPY into the table given up");
    sqlx::query("ROLLBACK TO SAVEPOINT gridmap_import_direct")
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database(
            "rolling back to the savepoint of the COPY",
        ))?;
    Ok(None)
}

async fn copy_with_deferred_indexes(
    connection: &mut sqlx::PgConnection,
    layer: &check::StagedLayer,
    receiver: &mut tokio::sync::mpsc::Receiver<read::ReadMessage>,
    features: u64,
) -> Result<Option<u64>, ImportError> {
    let table = layer.spec.entity.table();
    let deferred = if bulk::worthwhile(&mut *connection, table, features).await? {
        Some(bulk::defer(&mut *connection, table).await?)
    } else {
        None
    };
    let copy_started = Instant::now();
    // Problems only decide here whether to go on; the staged reading that
    // follows a problem finds and records them all.
    let mut problems = problem::Problems::default();
    let Some(rows) =
        copy::copy_into_table(&mut *connection, layer, receiver, &mut problems).await?
    else {
        return Ok(None);
    };
    tracing::debug!(
        table,
        rows,
        elapsed_ms = copy_started.elapsed().as_millis(),
        "rows copied into the table"
    );
    if let Some(deferred) = deferred {
        let restore_started = Instant::now();
        bulk::restore(&mut *connection, deferred).await?;
        tracing::debug!(
            table,
            elapsed_ms = restore_started.elapsed().as_millis(),
            "indexes and foreign keys restored"
        );
    }
    Ok(Some(rows))
}

/// For `--mode replace`: deletes the stored rows each imported entity no
/// longer contains, children before parents so that replacing a parent and
/// its children together works. Returns the rows deleted, or the problem that
/// refused the replace.
async fn delete_replaced(
    connection: &mut sqlx::PgConnection,
    layers: &[check::StagedLayer],
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
