//! `gridmap-bench`: measures gridmap against the peer a user would pick
//! instead, on the same data and machine, and prints ratios.
//!
//! ```sh
//! DATABASE_URL=… cargo run --release -p gridmap-benches -- lookup --points 1000000 --runs 3
//! DATABASE_URL=… cargo run --release -p gridmap-benches -- chain --points 200000 --runs 3
//! DATABASE_URL=… cargo run --release -p gridmap-benches -- import --scale 10 --runs 3
//! ```
//!
//! `import`: see `import_bench.rs`. `gaps`: see `gaps_bench.rs`. `circles`: see
//! `circles_bench.rs`.
//!
//! `lookup`: point-in-grid for N random points over the grids' extent, by the
//! in-memory index on one core versus one PostGIS query joining the same points
//! to the grids (GiST index, `ST_Intersects`, the documented boundary rule).
//! Each side runs `--runs` times; the medians are compared.
//!
//! `lookup --synthetic-grids 70000`: the same at province scale, on a
//! tessellation generated in memory (`synthetic_grids.rs`: 32–100 vertices per
//! grid, shared edges bit-identical); PostGIS gets the same polygons in a
//! temporary table with a GiST index and answers `--postgis-points` of the
//! points (its rate is per core: one backend runs the join). The codes of
//! both sides are compared point by point on a sample.
//!
//! `chain`: the full single lookup in process (grid chain, grid unit,
//! building and address, nearest station of each kind, nearest grid for points
//! outside, encoded as the JSON the API sends) for N random points on one core,
//! after checking that the server's directly written JSON equals serde_json's
//! encoding of the same answer at every point.

mod circles_bench;
mod gaps_bench;
mod import_bench;
mod synthetic_grids;
mod tile_list;
mod tile_load;

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
        /// Generate a tessellation of about this many grids instead of
        /// reading the database's grids (70000: province scale).
        #[arg(long)]
        synthetic_grids: Option<usize>,
        /// Points PostGIS answers with --synthetic-grids (rates are compared;
        /// 0: gridmap only).
        #[arg(long, default_value_t = 200_000)]
        postgis_points: usize,
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
    /// Gaps and overlaps of the whole city: gridmap-topology vs PostGIS SQL.
    Gaps {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Shift every n-th grid east so there is something to find (0: none).
        #[arg(long, default_value_t = 50)]
        perturb_every: usize,
        /// The shift in degrees (0.00005° is about 4 m).
        #[arg(long, default_value_t = 0.00005)]
        shift_deg: f64,
        #[arg(long, default_value_t = 1.0)]
        min_area_m2: f64,
    },
    /// Walking distances from N stations: gridmap-circles vs pgr_drivingDistance.
    Circles {
        /// Station counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,1000")]
        stations: Vec<usize>,
        #[arg(long, default_value_t = 500.0)]
        distance_m: f64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Print the unique z/x/y tiles meeting the city's districts (for http/tiles.sh).
    TileList {
        #[arg(long, default_value_t = 10)]
        min_zoom: u8,
        #[arg(long, default_value_t = 16)]
        max_zoom: u8,
    },
    /// Request every path of a list once over N connections (for http/tiles.sh).
    TileLoad {
        /// host:port of the server.
        #[arg(long)]
        address: String,
        /// Path before each z/x/y of the list, e.g. /tiles/grids,roads/.
        #[arg(long)]
        prefix: String,
        /// File of z/x/y lines (gridmap-bench tile-list).
        #[arg(long)]
        list: std::path::PathBuf,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value = "br, gzip")]
        accept_encoding: String,
        /// Offered load in requests per second (open loop; latency counted
        /// from when each request was due). Default: as fast as answered.
        #[arg(long)]
        rate: Option<f64>,
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
        Bench::Lookup {
            points,
            runs,
            synthetic_grids: Some(n_grids),
            postgis_points,
        } => lookup_synthetic(n_grids, points, postgis_points, runs.max(1)).await,
        Bench::Lookup { points, runs, .. } => lookup(points, runs.max(1)).await,
        Bench::Chain { points, runs } => chain(points, runs.max(1)).await,
        Bench::Import { scale, runs, out } => import_bench::run(scale, runs.max(1), out).await,
        Bench::Gaps {
            runs,
            perturb_every,
            shift_deg,
            min_area_m2,
        } => {
            let perturbation = gaps_bench::Perturbation {
                every: perturb_every,
                shift_deg,
            };
            gaps_bench::run(runs.max(1), &perturbation, min_area_m2).await
        }
        Bench::Circles {
            stations,
            distance_m,
            runs,
        } => circles_bench::run(&stations, distance_m, runs.max(1)).await,
        Bench::TileList { min_zoom, max_zoom } => tile_list::run(min_zoom, max_zoom).await,
        Bench::TileLoad {
            address,
            prefix,
            list,
            connections,
            accept_encoding,
            rate,
        } => {
            tile_load::run(
                &address,
                &prefix,
                &list,
                connections,
                &accept_encoding,
                rate,
            )
            .await
        }
    }
}

async fn chain(n_points: usize, runs: usize) -> anyhow::Result<()> {
    let pool = gridmap_store::connect(2).await.context("connecting")?;
    let index = gridmap_server::load_lookup_index(&pool)
        .await
        .context("loading the lookup index")?;
    let (xs, ys) = random_points(&pool, n_points).await?;
    let crs = gridmap_crs::LonLatCrs::Cgcs2000;
    // The server writes answers directly; they must equal serde_json's
    // encoding of the answer as a value, point by point.
    for (x, y) in xs.iter().zip(&ys) {
        let direct = gridmap_server::LookupHit::new(&index, *x, *y, crs).to_json(None);
        let by_serde = serde_json::to_vec(&gridmap_server::lookup_answer(&index, *x, *y, crs))
            .context("encoding an answer")?;
        anyhow::ensure!(
            direct == by_serde,
            "the answer at ({x}, {y}) differs from serde_json's:\n{}\n{}",
            String::from_utf8_lossy(&direct),
            String::from_utf8_lossy(&by_serde)
        );
    }
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let cpu_started = process_cpu_time();
        let started = Instant::now();
        bytes = 0;
        for (x, y) in xs.iter().zip(&ys) {
            bytes += gridmap_server::LookupHit::new(&index, *x, *y, crs)
                .to_json(None)
                .len();
        }
        times.push(started.elapsed());
        cpu_times.push(process_cpu_time().saturating_sub(cpu_started));
    }
    let elapsed = median(&mut times);
    let cpu = median(&mut cpu_times);
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
    writeln!(
        out,
        "  CPU time (user + system)     {:>8.3} s  {:>10.0} lookups per CPU second  {:>6.1} µs/lookup",
        cpu.as_secs_f64(),
        n_points as f64 / cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n_points as f64
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

/// Point-in-grid at province scale on a generated tessellation.
async fn lookup_synthetic(
    n_grids: usize,
    n_points: usize,
    postgis_points: usize,
    runs: usize,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let (grids, [west, south, east, north]) = synthetic_grids::tessellation(n_grids, 2026);
    let n_vertices: usize = grids
        .iter()
        .map(|grid| grid.polygon.exterior().0.len() - 1)
        .sum();
    writeln!(
        out,
        "lookup (synthetic): {} grids, {:.1} vertices per grid, generated in {:.2} s",
        grids.len(),
        n_vertices as f64 / grids.len() as f64,
        started.elapsed().as_secs_f64()
    )?;
    let started = Instant::now();
    let index = gridmap_index::PolygonIndex::new(
        grids
            .iter()
            .map(|grid| gridmap_index::Located {
                code: grid.code.as_str().into(),
                polygon: geo::MultiPolygon(vec![grid.polygon.clone()]),
                payload: (),
            })
            .collect(),
    );
    writeln!(
        out,
        "  index built in {:.2} s, prepared structures {:.1} MB",
        started.elapsed().as_secs_f64(),
        index.prepared_heap_bytes() as f64 / 1e6
    )?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let xs: Vec<f64> = (0..n_points).map(|_| rng.gen_range(west..east)).collect();
    let ys: Vec<f64> = (0..n_points).map(|_| rng.gen_range(south..north)).collect();

    let mut memory_times = Vec::new();
    let mut memory_cpu_times = Vec::new();
    let mut hits_memory = 0;
    for _ in 0..runs {
        let cpu_started = process_cpu_time();
        let started = Instant::now();
        hits_memory = xs
            .iter()
            .zip(&ys)
            .filter(|(x, y)| index.locate(**x, **y).is_some())
            .count();
        memory_times.push(started.elapsed());
        memory_cpu_times.push(process_cpu_time().saturating_sub(cpu_started));
    }
    let memory = median(&mut memory_times);
    let memory_cpu = median(&mut memory_cpu_times);
    let memory_rate = n_points as f64 / memory.as_secs_f64();
    writeln!(
        out,
        "  {n_points} random points, {hits_memory} inside a grid; median of {runs} runs"
    )?;
    writeln!(
        out,
        "  gridmap index (1 core)  {:>10.3} s  {:>12.0} points/s  ({:.3} s CPU: {:.0} points per CPU second)",
        memory.as_secs_f64(),
        memory_rate,
        memory_cpu.as_secs_f64(),
        n_points as f64 / memory_cpu.as_secs_f64()
    )?;
    if postgis_points == 0 {
        return Ok(());
    }

    // PostGIS gets the same polygons in a temporary table of one session.
    let pool = gridmap_store::connect(1).await.context("connecting")?;
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    sqlx::query("CREATE TEMPORARY TABLE synthetic_grids (code text PRIMARY KEY, geom geometry(Polygon, 4490) NOT NULL)")
        .execute(&mut *conn)
        .await
        .context("creating the temporary table")?;
    let started = Instant::now();
    for chunk in grids.chunks(5_000) {
        let codes: Vec<&str> = chunk.iter().map(|grid| grid.code.as_str()).collect();
        let wkbs: Vec<Vec<u8>> = chunk
            .iter()
            .map(|grid| synthetic_grids::wkb(&grid.polygon))
            .collect();
        sqlx::query(
            "INSERT INTO synthetic_grids
             SELECT c, ST_SetSRID(ST_GeomFromWKB(w), 4490) FROM unnest($1::text[], $2::bytea[]) AS t(c, w)",
        )
        .bind(&codes)
        .bind(&wkbs)
        .execute(&mut *conn)
        .await
        .context("loading grids into PostGIS")?;
    }
    sqlx::query("CREATE INDEX ON synthetic_grids USING gist (geom)")
        .execute(&mut *conn)
        .await
        .context("indexing")?;
    sqlx::query("ANALYZE synthetic_grids")
        .execute(&mut *conn)
        .await
        .context("analyzing")?;
    let invalid: i64 =
        sqlx::query_scalar("SELECT count(*) FROM synthetic_grids WHERE NOT ST_IsValid(geom)")
            .fetch_one(&mut *conn)
            .await
            .context("validating")?;
    writeln!(
        out,
        "  loaded into PostGIS (temporary table, GiST) in {:.1} s; {invalid} invalid polygons",
        started.elapsed().as_secs_f64()
    )?;

    let n_postgis = postgis_points.clamp(1, n_points);
    let (pxs, pys) = (&xs[..n_postgis], &ys[..n_postgis]);
    let join = POSTGIS_JOIN.replace("FROM grids", "FROM synthetic_grids");
    let mut postgis_times = Vec::new();
    let mut hits_postgis = 0;
    for _ in 0..runs {
        let started = Instant::now();
        hits_postgis = sqlx::query_scalar::<_, i64>(&join)
            .bind(pxs)
            .bind(pys)
            .fetch_one(&mut *conn)
            .await
            .context("PostGIS join")?;
        postgis_times.push(started.elapsed());
    }
    let hits_index = pxs
        .iter()
        .zip(pys)
        .filter(|(x, y)| index.locate(**x, **y).is_some())
        .count();
    anyhow::ensure!(
        i64::try_from(hits_index)? == hits_postgis,
        "answers differ: index found {hits_index} points in grids, PostGIS {hits_postgis}"
    );
    // Codes point by point on a sample, plus the vertices of some grids,
    // which lie on the boundaries of two to four grids.
    let mut sample: Vec<(f64, f64)> = pxs
        .iter()
        .zip(pys)
        .take(20_000)
        .map(|(x, y)| (*x, *y))
        .collect();
    let n_random_sample = sample.len();
    for grid in grids.iter().step_by((grids.len() / 2_000).max(1)) {
        sample.extend(grid.polygon.exterior().0.iter().map(|c| (c.x, c.y)));
    }
    let (sxs, sys): (Vec<f64>, Vec<f64>) = sample.iter().copied().unzip();
    let oracle: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT (SELECT code FROM synthetic_grids
                  WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4490))
                  ORDER BY code LIMIT 1)
           FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS p(x, y, i) ORDER BY p.i",
    )
    .bind(&sxs)
    .bind(&sys)
    .fetch_all(&mut *conn)
    .await
    .context("PostGIS codes of the sample")?;
    let mismatches = sample
        .iter()
        .zip(&oracle)
        .filter(|((x, y), expected)| {
            index.locate(*x, *y).map(|hit| &*hit.code) != expected.as_deref()
        })
        .count();
    anyhow::ensure!(
        mismatches == 0,
        "{mismatches} of {} sample points get another grid than from PostGIS",
        sample.len()
    );

    let postgis = median(&mut postgis_times);
    let postgis_rate = n_postgis as f64 / postgis.as_secs_f64();
    writeln!(
        out,
        "  same codes as PostGIS on {} sample points ({} of them grid vertices)",
        sample.len(),
        sample.len() - n_random_sample
    )?;
    writeln!(
        out,
        "  PostGIS join (1 core)   {:>10.3} s  {:>12.0} points/s  ({n_postgis} points)",
        postgis.as_secs_f64(),
        postgis_rate
    )?;
    writeln!(
        out,
        "  ratio of rates          {:>10.1}x",
        memory_rate / postgis_rate
    )?;
    Ok(())
}

/// User plus system CPU time of this process so far, from `/proc/self/stat`
/// (clock ticks of 10 ms); zero where that file is missing. On a shared
/// machine wall time also counts the time other processes held the core.
fn process_cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name, which is in parentheses: utime and
    // stime are fields 14 and 15 of the whole line.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
