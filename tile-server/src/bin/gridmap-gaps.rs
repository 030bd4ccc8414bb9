//! `gridmap-gaps`: the seamless-cover report (无缝覆盖) of a street, a
//! community or every street, from the command line: the same findings as
//! `GET /api/v1/gaps`, as GeoJSON on stdout or a summary per kind.
//!
//! Exit codes: 0 done (and, with `--fail-on-findings`, nothing found);
//! 1 findings with `--fail-on-findings`; 2 the area does not exist or the
//! database cannot be read.

use anyhow::Context as _;
use clap::Parser;
use gridmap_store::topology_queries::AreaFilter;
use gridmap_topology::Parameters;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Report gaps, overlaps and other breaks of seamless grid cover"
)]
struct Cli {
    /// A street's 9-digit code.
    #[arg(long, conflicts_with_all = ["community", "all"])]
    street: Option<String>,
    /// A community's 12-digit code.
    #[arg(long, conflicts_with = "all")]
    community: Option<String>,
    /// Every street in the database, one after the other.
    #[arg(long)]
    all: bool,
    /// Ignore pieces of gap, overlap or spill smaller than this (m²).
    #[arg(long)]
    min_area_m2: Option<f64>,
    /// Households above which a grid is reported as over the limit.
    #[arg(long)]
    household_limit: Option<i64>,
    /// Print a count and total area per kind instead of GeoJSON.
    #[arg(long)]
    summary: bool,
    /// Exit with 1 when anything is found (for data pipelines).
    #[arg(long)]
    fail_on_findings: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sqlx=warn".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(found) if found => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gridmap-gaps: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the report; `Ok(true)` when `--fail-on-findings` and something was found.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let mut parameters = Parameters::default();
    if let Some(min_area) = cli.min_area_m2 {
        parameters.min_area_m2 = min_area;
    }
    if let Some(limit) = cli.household_limit {
        parameters.household_limit = limit;
    }
    let parameters = parameters.validated().context("checking the parameters")?;
    let pool = gridmap_store::connect(2)
        .await
        .context("connecting to the database")?;
    let filters: Vec<AreaFilter> = match (&cli.street, &cli.community, cli.all) {
        (Some(street), None, false) => vec![AreaFilter::Street(street.clone())],
        (None, Some(community), false) => vec![AreaFilter::Community(community.clone())],
        (None, None, true) => {
            let streets: Vec<String> = sqlx::query_scalar("SELECT code FROM streets ORDER BY code")
                .fetch_all(&pool)
                .await
                .context("listing the streets")?;
            streets.into_iter().map(AreaFilter::Street).collect()
        }
        _ => anyhow::bail!("name exactly one of --street CODE, --community CODE or --all"),
    };
    let mut features: Vec<Value> = Vec::new();
    for filter in &filters {
        let report = gridmap_server::gaps::report(&pool, filter, parameters.clone())
            .await
            .with_context(|| format!("analysing {}", filter.code()))?
            .with_context(|| format!("no street or community with code {}", filter.code()))?;
        if let Some(found) = report.get("features").and_then(Value::as_array) {
            features.extend(found.iter().cloned());
        }
    }
    let mut stdout = std::io::stdout().lock();
    if cli.summary {
        let mut kinds: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        for feature in &features {
            let kind = feature
                .pointer("/properties/kind")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let area = feature
                .pointer("/properties/area_m2")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let entry = kinds.entry(kind.to_owned()).or_default();
            entry.0 += 1;
            entry.1 += area;
        }
        writeln!(stdout, "kind\tcount\tarea_m2")?;
        for (kind, (count, area)) in &kinds {
            writeln!(stdout, "{kind}\t{count}\t{area:.1}")?;
        }
    } else {
        let collection = serde_json::json!({"type": "FeatureCollection", "features": features});
        serde_json::to_writer(&mut stdout, &collection)?;
        writeln!(stdout)?;
    }
    Ok(cli.fail_on_findings && !features.is_empty())
}
