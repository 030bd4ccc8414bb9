//! `gridmap-import [--as ENTITY] [--crs CRS] [--mode MODE] [--skip-invalid]
//! [--rejects FILE] [--encoding ENC] [--mapping FILE.toml] [--dry-run] FILE...`: loads city data into
//! the gridmap database in one transaction. See README.md for the field aliases.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use gridmap_import::terminal_progress::TerminalProgress;

use gridmap_import::{
    check_mapped_fields, import, Entity, FieldOrigin, ImportError, ImportMode, ImportOptions,
    ImportReport, Mapping, MappingError, Progress, Source, SourceCrs,
};
use tracing_subscriber::EnvFilter;

/// Everything was loaded (or, with --dry-run, checked).
const EXIT_LOADED: u8 = 0;
/// IO or database failure; nothing was written.
const EXIT_FAILED: u8 = 1;
/// The input was rejected; every problem was printed and nothing was written.
const EXIT_REJECTED: u8 = 2;
/// The command line was wrong (BSD sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "gridmap-import",
    version,
    about = "Load districts, streets, communities, grids, grid units, buildings, addresses, \
             stations and roads from any GDAL-readable file into the gridmap database",
    after_help = "Files are loaded in one transaction, parents first, whatever their order. \
                  The database is DATABASE_URL, else the project-local cluster.\n\n\
                  Exit codes: 0 loaded, 1 IO or database error, 2 input rejected \
                  (problems on stderr, one per line; nothing written), 64 usage error."
)]
struct Cli {
    /// Layer kind of every FILE (default: each file's stem, e.g. grids.geojson → grids):
    /// districts, streets, communities, grids, grid_units, buildings, addresses, stations, roads,
    /// department_grids, rider_reports, grid_workers
    #[arg(long = "as", value_name = "ENTITY")]
    entity: Option<Entity>,
    /// Source CRS of every FILE, overriding what the files declare: EPSG:<code>
    /// (any CRS GDAL knows, e.g. EPSG:4528 or EPSG:3857), gcj02 or bd09
    #[arg(long, value_name = "CRS")]
    crs: Option<SourceCrs>,
    /// insert: only new codes; upsert: insert or update by code (a re-run changes
    /// nothing); replace: also delete the rows the import does not contain
    #[arg(long, value_name = "MODE", default_value_t = ImportMode::Insert)]
    mode: ImportMode,
    /// Load the valid features and report the rest (and their dependants) instead
    /// of rejecting the whole import
    #[arg(long)]
    skip_invalid: bool,
    /// Write the rejected features to FILE as GeoJSON, with _layer, _feature,
    /// _field and _reason
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Attribute encoding of shapefiles without a .cpg, e.g. CP936 or GB18030
    #[arg(long, value_name = "ENC")]
    encoding: Option<String>,
    /// Take COLUMN from the source field FIELD, before the alias table (repeatable),
    /// e.g. --field class=Layer for roads drawn on one DXF layer per class
    #[arg(long = "field", value_name = "COLUMN=FIELD", value_parser = parse_field_map)]
    field_map: Vec<(String, String)>,
    /// A TOML file naming the source field of each column ([fields]), value
    /// translations ([values.COLUMN]) and constants ([constants]); see README.md
    #[arg(long, value_name = "FILE.toml")]
    mapping: Option<PathBuf>,
    /// Accept coordinates outside China (still lon/lat degrees), for foreign
    /// test and benchmark data such as an OpenStreetMap extract
    #[arg(long)]
    outside_china: bool,
    /// Repair invalid areas (self-intersecting rings, …) with PostGIS ST_MakeValid
    /// instead of rejecting them; every repair is listed on stderr
    #[arg(long)]
    repair: bool,
    /// Run every check and insert, then roll back: nothing is written
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON on stdout instead of the summary table
    #[arg(long)]
    json: bool,
    /// Files to load
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version also arrive here, on stdout, and succeed.
            let code = if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_LOADED
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    let sources = match sources(&cli) {
        Ok(sources) => sources,
        Err(message) => {
            eprintln!("gridmap-import: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mapping = match load_mapping(&cli, &sources) {
        Ok(mapping) => mapping,
        Err((code, message)) => {
            eprintln!("gridmap-import: {message}");
            return ExitCode::from(code);
        }
    };
    // An EPSG code GDAL does not know is a usage error, found before any
    // file is read or the database is touched.
    if let Some(SourceCrs::Epsg(code)) = cli.crs {
        if let Err(err) = gdal::spatial_ref::SpatialRef::from_epsg(code) {
            eprintln!("gridmap-import: --crs EPSG:{code}: GDAL does not know this CRS ({err})");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    match run(&cli, &sources, mapping).await {
        Ok(report) => {
            for problem in &report.skipped_problems {
                eprintln!("{problem}");
            }
            for repair in &report.repaired {
                eprintln!("{repair}");
            }
            print_report(&report, cli.json);
            ExitCode::from(EXIT_LOADED)
        }
        Err(err) => match err.downcast_ref::<ImportError>() {
            Some(ImportError::Rejected { problems, omitted }) => {
                for problem in problems {
                    eprintln!("{problem}");
                }
                if *omitted > 0 {
                    eprintln!("… and {omitted} more problem(s)");
                }
                eprintln!("gridmap-import: {err}; nothing was written");
                ExitCode::from(EXIT_REJECTED)
            }
            Some(ImportError::ModeNotSupported { .. }) => {
                eprintln!("gridmap-import: {err}");
                ExitCode::from(EXIT_USAGE)
            }
            _ => {
                eprintln!("gridmap-import: error: {err:#}");
                ExitCode::from(EXIT_FAILED)
            }
        },
    }
}

async fn run(
    cli: &Cli,
    sources: &[Source],
    mapping: Option<Mapping>,
) -> anyhow::Result<ImportReport> {
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| TerminalProgress::new("features"));
    let options = ImportOptions {
        dry_run: cli.dry_run,
        crs: cli.crs,
        mode: cli.mode,
        skip_invalid: cli.skip_invalid,
        rejects: cli.rejects.clone(),
        encoding: cli.encoding.clone(),
        field_map: cli.field_map.clone(),
        mapping,
        outside_china: cli.outside_china,
        repair: cli.repair,
        progress: bar
            .clone()
            .map(|bar| -> Arc<dyn Progress> { Arc::new(bar) }),
    };
    // A mapped field a file lacks is an input problem found before the
    // database is even connected to.
    check_mapped_fields(sources, &options).await?;
    let pool = gridmap_store::connect(2)
        .await
        .context("connecting to the database")?;
    let result = import(&pool, sources, &options).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    let report = result?;
    pool.close().await;
    Ok(report)
}

/// Pairs each file with its entity, from --as or from the file stem.
fn sources(cli: &Cli) -> Result<Vec<Source>, String> {
    cli.files
        .iter()
        .map(|path| match cli.entity {
            Some(entity) => Ok(Source::new(path, entity)),
            None => Source::infer(path).map_err(|err| {
                format!(
                    "cannot tell the layer kind of {}: {err}; name the file after it or pass --as ENTITY",
                    path.display()
                )
            }),
        })
        .collect()
}

/// Reads `--mapping` and checks it, and every `--field` column, against the
/// entities of the files it applies to. Returns the exit code and message of
/// a mistake: a usage error, or a failure when the file cannot be read.
fn load_mapping(cli: &Cli, sources: &[Source]) -> Result<Option<Mapping>, (u8, String)> {
    for (column, field) in &cli.field_map {
        let known = sources.iter().any(|source| {
            gridmap_import::fields::LayerSpec::of(source.entity)
                .field_index(column)
                .is_some()
        });
        if !known {
            let mut entities: Vec<&str> = sources
                .iter()
                .map(|source| source.entity.as_str())
                .collect();
            entities.dedup();
            return Err((
                EXIT_USAGE,
                format!(
                    "--field {column}={field}: {column:?} is not a column of {}",
                    entities.join(" or ")
                ),
            ));
        }
    }
    let Some(path) = &cli.mapping else {
        return Ok(None);
    };
    let mapping = Mapping::load(path).map_err(|err| match err {
        MappingError::Io { .. } => (EXIT_FAILED, format!("{:#}", anyhow::Error::new(err))),
        _ => (EXIT_USAGE, err.to_string()),
    })?;
    let mut applied = false;
    for source in sources
        .iter()
        .filter(|source| mapping.applies_to(source.entity))
    {
        mapping
            .check_for(source.entity)
            .map_err(|err| (EXIT_USAGE, err.to_string()))?;
        applied = true;
    }
    if !applied {
        return Err((
            EXIT_USAGE,
            format!(
                "{}: the mapping is for {}, and no file is; pass --as {0}",
                mapping.name,
                mapping.entity.map_or("", Entity::as_str)
            ),
        ));
    }
    Ok(Some(mapping))
}

fn parse_field_map(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((column, field)) if !column.trim().is_empty() && !field.trim().is_empty() => {
            Ok((column.trim().to_owned(), field.trim().to_owned()))
        }
        _ => Err(format!("{value:?} is not COLUMN=FIELD")),
    }
}

fn init_tracing() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // GDAL prints its own errors to stderr; they are returned as results too,
    // so they only go to the debug log here.
    gdal::config::set_error_handler(|class, number, message| {
        tracing::debug!(target: "gdal", ?class, number, "{message}");
    });
}

#[expect(clippy::print_stdout, reason = "the summary is the command's output")]
fn print_report(report: &ImportReport, json: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("gridmap-import: cannot encode the report: {err}"),
        }
        return;
    }
    for layer in &report.layers {
        let fields: Vec<String> = layer.fields.iter().map(ToString::to_string).collect();
        tracing::info!(file = %layer.layer, "fields: {}", fields.join(", "));
    }
    let seconds = report.elapsed.as_secs_f64();
    if report.skipped > 0 {
        println!(
            "Skipped {} invalid feature(s) and their dependants (reasons on stderr)",
            thousands(report.skipped)
        );
    }
    if report.deleted > 0 {
        println!(
            "Deleted {} row(s) that the import does not contain (--mode replace)",
            thousands(report.deleted)
        );
    }
    let verb = if report.dry_run {
        "Checked (dry run, nothing written)"
    } else {
        "Loaded"
    };
    let rows = if report.mode == ImportMode::Insert {
        "rows"
    } else {
        "rows inserted or changed"
    };
    println!(
        "{verb} {} file(s) in {seconds:.2} s: {} features, {} {rows}, {} features/s",
        report.layers.len(),
        thousands(report.features()),
        thousands(report.rows()),
        thousands(report.features_per_second().round() as u64),
    );
    println!("  {:<12} {:>8}  {:<24} source CRS", "table", "rows", "file");
    for layer in &report.layers {
        let crs = if layer.transformed {
            format!("{} → EPSG:4490", layer.source_crs)
        } else {
            layer.source_crs.clone()
        };
        println!(
            "  {:<12} {:>8}  {:<24} {crs}",
            layer.entity.table(),
            thousands(layer.rows),
            layer.layer
        );
    }
    for layer in &report.layers {
        // Fields chosen by hand are listed, so the summary shows what the
        // mapping did; the alias table's choices are in the log.
        let chosen: Vec<String> = layer
            .fields
            .iter()
            .filter(|field| {
                matches!(
                    field.origin,
                    FieldOrigin::Mapping | FieldOrigin::Constant | FieldOrigin::Flag
                )
            })
            .map(ToString::to_string)
            .collect();
        if !chosen.is_empty() {
            println!("  {}: {}", layer.layer, chosen.join(", "));
        }
    }
    for layer in &report.layers {
        if !layer.dropped_personal_fields.is_empty() {
            println!(
                "  {}: personal fields dropped, not imported: {}",
                layer.layer,
                layer.dropped_personal_fields.join(", ")
            );
        }
    }
    println!(
        "  read {:.2} s, checks {:.2} s, inserts {:.2} s",
        report.read_time.as_secs_f64(),
        report.check_time.as_secs_f64(),
        report.write_time.as_secs_f64()
    );
}

/// 12345678 → "12,345,678".
fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        // The digits are ASCII, so every group is valid UTF-8.
        .map(|group| std::str::from_utf8(group).unwrap_or_default())
        .collect();
    groups.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn entity_comes_from_as_or_the_stem() {
        let cli =
            Cli::try_parse_from(["gridmap-import", "b/grids.geojson", "a/roads.shp"]).unwrap();
        let found = sources(&cli).unwrap();
        assert_eq!(found[0].entity, Entity::Grids);
        assert_eq!(found[1].entity, Entity::Roads);
        let cli = Cli::try_parse_from(["gridmap-import", "--as", "grid_units", "x.gpkg"]).unwrap();
        assert_eq!(sources(&cli).unwrap()[0].entity, Entity::GridUnits);
        let cli = Cli::try_parse_from(["gridmap-import", "survey.gpkg"]).unwrap();
        assert!(sources(&cli).unwrap_err().contains("--as ENTITY"));
        assert!(Cli::try_parse_from(["gridmap-import", "--as", "parcels", "x.shp"]).is_err());
    }

    #[test]
    fn options_parse() {
        let cli = Cli::try_parse_from([
            "gridmap-import",
            "--crs",
            "gcj02",
            "--mode",
            "replace",
            "--skip-invalid",
            "--rejects",
            "bad.geojson",
            "--encoding",
            "CP936",
            "grids.shp",
        ])
        .unwrap();
        assert_eq!(
            cli.crs,
            Some(SourceCrs::Offset(gridmap_import::LonLatCrs::Gcj02))
        );
        assert_eq!(cli.mode, ImportMode::Replace);
        assert!(cli.skip_invalid);
        assert_eq!(cli.encoding.as_deref(), Some("CP936"));
        let cli = Cli::try_parse_from(["gridmap-import", "grids.shp"]).unwrap();
        assert_eq!(cli.mode, ImportMode::Insert);
        assert!(Cli::try_parse_from(["gridmap-import", "--mode", "merge", "x.shp"]).is_err());
        assert!(Cli::try_parse_from(["gridmap-import", "--crs", "mars", "x.shp"]).is_err());
    }
}
