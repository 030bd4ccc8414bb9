//! `gridmap-export --layer ENTITY [--format gpkg|geojson|shp] [--crs CRS]
//! [--encoding ENC] [--include-personal] --out FILE`: writes one stored layer
//! to a file that `gridmap-import` loads again unchanged.
//!
//! `gridmap-export --tiles [LAYER[,LAYER…]] --out FILE.pmtiles|FILE.mbtiles
//! [--minzoom Z] [--maxzoom Z] [--bbox W,S,E,N]`: writes the server's vector
//! tiles of a layer set to one archive for offline portals.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use gridmap_import::export::{export, ExportFormat, ExportOptions};
use gridmap_import::terminal_progress::TerminalProgress;
use gridmap_import::tile_archive::{
    all_layers, export_tiles, parse_layers, ArchiveError, ArchiveOptions, ArchiveReport,
};
use gridmap_import::{Entity, Progress, SourceCrs};
use tracing_subscriber::EnvFilter;

/// The command line was wrong (BSD sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "gridmap-export",
    version,
    about = "Write one layer of the gridmap database to a GeoPackage, GeoJSON or Shapefile, \
             or its vector tiles to a PMTiles or MBTiles archive",
    after_help = "With --layer: field names are ones gridmap-import recognises (column names; \
                  the pinyin abbreviations such as WGBM in Shapefiles), so the file imports \
                  again without a mapping. A grid worker's name and phone are personal data and \
                  are only written with --include-personal.\n\n\
                  With --tiles: every tile is the one gridmap-server sends for the same layer \
                  set (/tiles/LAYER,LAYER…/z/x/y), gzip-compressed; empty tiles are left out. \
                  The archive is written beside FILE under a hidden name and renamed when \
                  complete.\n\n\
                  The database is DATABASE_URL, else the project-local cluster."
)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["layer", "tiles"])))]
struct Cli {
    /// Layer to write: districts, streets, communities, grids, grid_units,
    /// buildings, addresses, stations, roads, department_grids, rider_reports,
    /// grid_workers (personal data: needs --include-personal)
    #[arg(long, value_name = "ENTITY", conflicts_with = "tiles")]
    layer: Option<Entity>,
    /// Tile layers to write to a .pmtiles or .mbtiles archive, joined by
    /// commas as in the server's tile URLs [default: every public layer]
    #[arg(
        long,
        value_name = "LAYER[,LAYER…]",
        num_args = 0..=1,
        default_missing_value = ""
    )]
    tiles: Option<String>,
    /// Lowest zoom of the archive [default: the layers' lowest]
    #[arg(long, value_name = "Z", requires = "tiles")]
    minzoom: Option<u8>,
    /// Deepest zoom of the archive [default: the layers' deepest]
    #[arg(long, value_name = "Z", requires = "tiles")]
    maxzoom: Option<u8>,
    /// Extent of the archive in degrees [default: the districts' extent]
    #[arg(
        long,
        value_name = "W,S,E,N",
        requires = "tiles",
        allow_hyphen_values = true,
        value_parser = parse_bbox
    )]
    bbox: Option<[f64; 4]>,
    /// Refuse archives of more tiles than this (empty ones included)
    #[arg(
        long,
        value_name = "N",
        requires = "tiles",
        default_value_t = gridmap_import::tile_archive::DEFAULT_MAX_TILES
    )]
    max_tiles: u64,
    /// gpkg, geojson or shp (default: from the extension of --out)
    #[arg(long, value_name = "FORMAT", conflicts_with = "tiles")]
    format: Option<ExportFormat>,
    /// Target CRS: 4490 (stored, default), 4326, gcj02, bd09 or EPSG:<code>
    /// (transformed by PostGIS). GCJ-02 and BD-09 files are labelled EPSG:4326
    /// and need `gridmap-import --crs gcj02` (or bd09) to load again
    #[arg(long, value_name = "CRS", conflicts_with = "tiles")]
    crs: Option<SourceCrs>,
    /// Shapefile attribute encoding, written to the .cpg [default: CP936 (GBK)]
    #[arg(long, value_name = "ENC", conflicts_with = "tiles")]
    encoding: Option<String>,
    /// Also write the columns that identify a person (grid worker name and phone),
    /// and allow the grid_workers layer
    #[arg(long, conflicts_with = "tiles")]
    include_personal: bool,
    /// The file to create; it must not exist
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(spec) = &cli.tiles {
        return run_tiles(&cli, spec).await;
    }
    let Some(entity) = cli.layer else {
        eprintln!("gridmap-export: pass --layer ENTITY or --tiles");
        return ExitCode::from(EXIT_USAGE);
    };
    let Some(format) = cli.format.or_else(|| ExportFormat::from_path(&cli.out)) else {
        eprintln!(
            "gridmap-export: cannot tell the format of {}; pass --format gpkg|geojson|shp",
            cli.out.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };
    if gridmap_import::export::PERSONAL_LAYERS.contains(&entity) && !cli.include_personal {
        eprintln!(
            "gridmap-export: {entity} are personal data (names and phones); pass --include-personal"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let options = ExportOptions {
        entity,
        format,
        crs: cli.crs,
        out: cli.out.clone(),
        encoding: cli.encoding.clone(),
        include_personal: cli.include_personal,
    };
    match run(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gridmap-export: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &ExportOptions) -> anyhow::Result<()> {
    let pool = gridmap_store::connect(1)
        .await
        .context("connecting to the database")?;
    let report = export(&pool, options)
        .await
        .with_context(|| format!("exporting {}", options.entity))?;
    tracing::info!(
        features = report.features,
        fields = %report.fields.join(", "),
        "wrote {}",
        options.out.display()
    );
    pool.close().await;
    Ok(())
}

/// `--tiles`: the request is checked before the database is opened, so a
/// wrong layer name, zoom range or existing file fails at once.
async fn run_tiles(cli: &Cli, spec: &str) -> ExitCode {
    let refused = |err: &ArchiveError| {
        eprintln!("gridmap-export: {err}");
        ExitCode::from(EXIT_USAGE)
    };
    let layers = if spec.trim().is_empty() {
        all_layers()
    } else {
        match parse_layers(spec) {
            Ok(layers) => layers,
            Err(err) => return refused(&err),
        }
    };
    let mut options = match ArchiveOptions::new(layers, cli.out.clone()) {
        Ok(options) => options,
        Err(err) => return refused(&err),
    };
    options.minzoom = cli.minzoom;
    options.maxzoom = cli.maxzoom;
    options.bbox = cli.bbox;
    options.max_tiles = cli.max_tiles;
    if let Err(err) = options.check() {
        return refused(&err);
    }
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| TerminalProgress::new("tiles"));
    options.progress = bar
        .clone()
        .map(|bar| -> Arc<dyn Progress> { Arc::new(bar) });
    let result = write_archive(&options).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    match result {
        Ok(report) => {
            let per_zoom: Vec<String> = report
                .tiles_per_zoom
                .iter()
                .map(|(z, tiles)| format!("z{z} {tiles}"))
                .collect();
            tracing::info!(
                tiles = report.tiles_written(),
                encoded = report.tiles_encoded,
                bytes = report.bytes,
                elapsed_ms = report.elapsed.as_millis(),
                per_zoom = %per_zoom.join(", "),
                "wrote {}",
                options.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => match err.downcast_ref::<ArchiveError>() {
            Some(archive_error) if archive_error.is_refusal() => refused(archive_error),
            _ => {
                eprintln!("gridmap-export: error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn write_archive(options: &ArchiveOptions) -> anyhow::Result<ArchiveReport> {
    // The extent only: tiles are encoded over connections of the archive's own.
    let pool = gridmap_store::connect(1)
        .await
        .context("connecting to the database")?;
    let report = export_tiles(&pool, options).await;
    pool.close().await;
    Ok(report?)
}

/// `W,S,E,N` in degrees.
fn parse_bbox(value: &str) -> Result<[f64; 4], String> {
    let numbers: Vec<f64> = value
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|err| format!("{value:?} is not W,S,E,N in degrees: {err}"))?;
    <[f64; 4]>::try_from(numbers)
        .map_err(|numbers| format!("{value:?} has {} numbers, not 4 (W,S,E,N)", numbers.len()))
}
