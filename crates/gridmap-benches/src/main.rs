//! `gridmap-bench`: measures gridmap against the peer a user would pick
//! instead, on the same data and machine, and prints ratios.
//!
//! ```sh
//! DATABASE_URL=… cargo run --release -p gridmap-benches -- lookup --points 1000000 --runs 3
//! DATABASE_URL=… cargo run --release -p gridmap-benches -- chain --points 200000 --runs 3
//! DATABASE_URL=… cargo run --release -p gridmap-benches -- import --scale 10 --runs 3
//! ```
//!
//! `import`: see `import_bench.rs`.
//!
//! `lookup`: point-in-grid for N random points over the grids' extent, by the
//! in-memory index on one core versus one PostGIS query joining the same points
//! to the grids (GiST index, `ST_Intersects`, the documented boundary rule).
//! Each side runs `--runs` times; the medians are compared.
//!
//! `chain`: the full single lookup in process (grid chain, grid unit,
//! building and address, nearest station of each kind, nearest grid for points
//! outside, encoded as the JSON the API sends) for N random points on one core.

mod import_bench;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rand::{Rng as _, SeedableRng as _};
use std::io::Write as _;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Benchmark gridmap side by side with PostGIS")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Point-in-grid lookups: in-memory index vs a PostGIS join.
    Lookup {
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The full lookup chain in process, encoded as the API's JSON.
    Chain {
        #[arg(long, default_value_t = 200_000)]
        points: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Loading buildings: gridmap-import vs ogr2ogr, from GeoJSON and GeoPackage.
    Import {
        /// Scale of the generated demo city (10 is about 258k buildings).
        #[arg(long, default_value_t = 10.0)]
        scale: f64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Folder for the generated city [default: target/bench-import/scale-<F>].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

const POSTGIS_JOIN: &str = "
    SELECT count(g.code)
      FROM unnest($1::float8[], $2::float8[]) AS p(x, y)
      LEFT JOIN LATERAL (
            SELECT code FROM grids
             WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4490))
             ORDER BY code LIMIT 1) g ON true";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Bench::Lookup { points, runs } => lookup(points, runs.max(1)).await,
        Bench::Chain { points, runs } => chain(points, runs.max(1)).await,
        Bench::Import { scale, runs, out } => import_bench::run(scale, runs.max(1), out).await,
    }
}

async fn chain(n_points: usize, runs: usize) -> anyhow::Result<()> {
    let pool = gridmap_store::connect(2).await.context("connecting")?;
    let index = gridmap_server::load_lookup_index(&pool)
        .await
        .context("loading the lookup index")?;
    let (xs, ys) = random_points(&pool, n_points).await?;
    let crs = gridmap_crs::LonLatCrs::Cgcs2000;
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let started = Instant::now();
        bytes = 0;
        for (x, y) in xs.iter().zip(&ys) {
            let answer = gridmap_server::lookup_answer(&index, *x, *y, crs);
            bytes += serde_json::to_vec(&answer)
                .context("encoding an answer")?
                .len();
        }
        times.push(started.elapsed());
    }
    let elapsed = median(&mut times);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "chain: {} grids, {} grid units, {} buildings, {} stations; {n_points} random points, median of {runs} runs",
        index.grids.len(),
        index.grid_units.len(),
        index.buildings.len(),
        index.stations.len()
    )?;
    writeln!(
        out,
        "  full lookup + JSON (1 core)  {:>8.3} s  {:>10.0} lookups/s  {:>6.1} µs/lookup  {} bytes/answer",
        elapsed.as_secs_f64(),
        n_points as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n_points as f64,
        bytes / n_points.max(1)
    )?;
    Ok(())
}

/// `n_points` uniform random points over the extent of the grids.
async fn random_points(
    pool: &sqlx::PgPool,
    n_points: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (west, south, east, north): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
           FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x",
    )
    .fetch_one(pool)
    .await
    .context("reading the extent of the grids")?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let xs = (0..n_points).map(|_| rng.gen_range(west..east)).collect();
    let ys = (0..n_points).map(|_| rng.gen_range(south..north)).collect();
    Ok((xs, ys))
}

async fn lookup(n_points: usize, runs: usize) -> anyhow::Result<()> {
    let pool = gridmap_store::connect(2).await.context("connecting")?;
    let index = gridmap_server::load_grid_index(&pool)
        .await
        .context("loading grids")?;
    let (west, south, east, north): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
           FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x",
    )
    .fetch_one(&pool)
    .await
    .context("reading the extent of the grids")?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let xs: Vec<f64> = (0..n_points).map(|_| rng.gen_range(west..east)).collect();
    let ys: Vec<f64> = (0..n_points).map(|_| rng.gen_range(south..north)).collect();

    let mut memory_times = Vec::new();
    let mut hits_memory = 0;
    for _ in 0..runs {
        let started = Instant::now();
        hits_memory = xs
            .iter()
            .zip(&ys)
            .filter(|(x, y)| index.locate(**x, **y).is_some())
            .count();
        memory_times.push(started.elapsed());
    }
    let mut postgis_times = Vec::new();
    let mut hits_postgis = 0;
    for _ in 0..runs {
        let started = Instant::now();
        hits_postgis = sqlx::query_scalar::<_, i64>(POSTGIS_JOIN)
            .bind(&xs)
            .bind(&ys)
            .fetch_one(&pool)
            .await
            .context("PostGIS join")?;
        postgis_times.push(started.elapsed());
    }
    anyhow::ensure!(
        i64::try_from(hits_memory)? == hits_postgis,
        "answers differ: index found {hits_memory} points in grids, PostGIS {hits_postgis}"
    );
    let memory = median(&mut memory_times);
    let postgis = median(&mut postgis_times);
    let rate = |d: Duration| n_points as f64 / d.as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(out, "lookup: {} grids, {n_points} random points, {hits_memory} inside a grid, median of {runs} runs", index.len())?;
    writeln!(
        out,
        "  gridmap index (1 core)  {:>10.3} s  {:>12.0} points/s",
        memory.as_secs_f64(),
        rate(memory)
    )?;
    writeln!(
        out,
        "  PostGIS join            {:>10.3} s  {:>12.0} points/s",
        postgis.as_secs_f64(),
        rate(postgis)
    )?;
    writeln!(
        out,
        "  ratio                   {:>10.1}x",
        postgis.as_secs_f64() / memory.as_secs_f64()
    )?;
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
