//! `gridmap-export --layer ENTITY [--format gpkg|geojson|shp] [--crs CRS]
//! [--encoding ENC] [--include-personal] --out FILE`: writes one stored layer
//! to a file that `gridmap-import` loads again unchanged.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use gridmap_import::export::{export, ExportFormat, ExportOptions};
use gridmap_import::{Entity, SourceCrs};
use tracing_subscriber::EnvFilter;

/// The command line was wrong (BSD sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "gridmap-export",
    version,
    about = "Write one layer of the gridmap database to a GeoPackage, GeoJSON or Shapefile",
    after_help = "Field names are ones gridmap-import recognises (column names; the pinyin \
                  abbreviations such as WGBM in Shapefiles), so the file imports again without \
                  a mapping. A grid worker's name and phone are personal data and are only \
                  written with --include-personal. The database is DATABASE_URL, else the \
                  project-local cluster."
)]
struct Cli {
    /// Layer to write: districts, streets, communities, grids, grid_units,
    /// buildings, addresses, stations, roads
    #[arg(long, value_name = "ENTITY")]
    layer: Entity,
    /// gpkg, geojson or shp (default: from the extension of --out)
    #[arg(long, value_name = "FORMAT")]
    format: Option<ExportFormat>,
    /// Target CRS: 4490 (stored, default), 4326, gcj02, bd09 or EPSG:<code>
    /// (transformed by PostGIS). GCJ-02 and BD-09 files are labelled EPSG:4326
    /// and need `gridmap-import --crs gcj02` (or bd09) to load again
    #[arg(long, value_name = "CRS")]
    crs: Option<SourceCrs>,
    /// Shapefile attribute encoding, written to the .cpg [default: CP936 (GBK)]
    #[arg(long, value_name = "ENC")]
    encoding: Option<String>,
    /// Also write the columns that identify a person (grid worker name and phone)
    #[arg(long)]
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
    let Some(format) = cli.format.or_else(|| ExportFormat::from_path(&cli.out)) else {
        eprintln!(
            "gridmap-export: cannot tell the format of {}; pass --format gpkg|geojson|shp",
            cli.out.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let options = ExportOptions {
        entity: cli.layer,
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
