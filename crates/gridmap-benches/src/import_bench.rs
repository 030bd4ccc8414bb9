//! `gridmap-bench import`: loading the demo city's buildings with
//! gridmap-import (every check, one transaction) versus ogr2ogr with COPY
//! (no checks), from GeoJSON and from GeoPackage, each run in a fresh database.
//!
//! Both tools run as child processes under `/usr/bin/time -v`, which reports
//! their peak resident set size; the wall time is measured around the process.
//! The parents of the buildings (districts … grid units) are loaded before the
//! gridmap-import run and are not timed.
//!
//! `GRIDMAP_BENCH_IMPORT_BINARY` names another gridmap-import binary to
//! time (a copy of an earlier build, to compare before and after a change in
//! one sitting); the parents are always loaded with it too.
//!
//! `--scale 10` loads about 258k buildings, `--scale 80` about 2.17 M (the 200k
//! and 2M cases). The city is generated once per scale into the output folder
//! and buildings.gpkg is made from buildings.geojson with ogr2ogr; at scale 80
//! generating took 2 min at 0.7 GB peak RSS and the conversion 2.5 min at
//! 64 MiB on the 2-core development machine.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The layers the buildings reference, loaded untimed before each run.
const PARENTS: [&str; 5] = ["districts", "streets", "communities", "grids", "grid_units"];

/// One timed run of one tool.
struct Run {
    elapsed: Duration,
    peak_rss_kib: u64,
    /// gridmap-import's own read, check and write times (its `--json` report).
    phases: Option<[f64; 3]>,
}

/// Runs the benchmark and prints medians, the ratio and peak memory.
pub async fn run(scale: f64, runs: usize, out: Option<PathBuf>) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let release = root.join("target/release");
    let fixtures = release.join("gridmap-fixtures");
    let importer = std::env::var_os("GRIDMAP_BENCH_IMPORT_BINARY")
        .map_or_else(|| release.join("gridmap-import"), PathBuf::from);
    for binary in [&fixtures, &importer] {
        anyhow::ensure!(
            binary.exists(),
            "{} is missing; build it with `cargo build --release -p gridmap-fixtures -p gridmap-import`",
            binary.display()
        );
    }
    let dir = out.unwrap_or_else(|| root.join(format!("target/bench-import/scale-{scale}")));
    let geojson = dir.join("buildings.geojson");
    if !geojson.exists() {
        let started = Instant::now();
        check_status(
            Command::new(&fixtures)
                .args(["generate", "--scale", &scale.to_string(), "--out"])
                .arg(&dir),
            "generating the demo city",
        )?;
        eprintln!(
            "generated {} in {:.1} s",
            dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let gpkg = dir.join("buildings.gpkg");
    if !gpkg.exists() {
        check_status(
            Command::new("ogr2ogr")
                .args(["-f", "GPKG"])
                .arg(&gpkg)
                .arg(&geojson)
                .args(["-nln", "buildings"]),
            "converting buildings.geojson to GeoPackage",
        )?;
    }

    let base_url = gridmap_store::database_url().context("finding the database")?;
    let admin = gridmap_store::connect_url(&base_url, 1)
        .await
        .context("connecting to the database server")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "import: buildings of the demo city at scale {scale} ({}), median of {runs} runs, fresh database per run",
        dir.display()
    )?;
    writeln!(out, "  gridmap-import: {}", importer.display())?;
    for (format, input) in [("GeoJSON", &geojson), ("GPKG", &gpkg)] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for run in 0..runs {
            let database = format!("gridmap_bench_import_{run}");
            let url = fresh(&admin, &base_url, &database).await?;
            for parent in PARENTS {
                check_status(
                    Command::new(&importer)
                        .arg(dir.join(format!("{parent}.geojson")))
                        .env("DATABASE_URL", &url)
                        .env("RUST_LOG", "warn"),
                    "loading the parents of the buildings",
                )?;
            }
            let mut command = Command::new(&importer);
            command
                .args(["--as", "buildings", "--json"])
                .arg(input)
                .env("DATABASE_URL", &url)
                .env("RUST_LOG", "warn");
            ours.push(timed(&mut command, &dir, "gridmap-import")?);

            let url = fresh(&admin, &base_url, &database).await?;
            let mut command = Command::new("ogr2ogr");
            command
                .args(["-f", "PostgreSQL", &ogr_connection(&url, &database)])
                .arg(input)
                .args([
                    "-nln",
                    "buildings_ogr",
                    "--config",
                    "PG_USE_COPY",
                    "YES",
                    "-lco",
                    "GEOMETRY_NAME=geom",
                    "-t_srs",
                    "EPSG:4490",
                ]);
            theirs.push(timed(&mut command, &dir, "ogr2ogr")?);
            drop_database(&admin, &database).await?;
        }
        let rows: i64 = count_features(input)?;
        let ours_median = median(&mut ours.iter().map(|run| run.elapsed).collect::<Vec<_>>());
        let theirs_median = median(&mut theirs.iter().map(|run| run.elapsed).collect::<Vec<_>>());
        let peak = |runs: &[Run]| runs.iter().map(|run| run.peak_rss_kib).max().unwrap_or(0);
        let rate = |elapsed: Duration| rows as f64 / elapsed.as_secs_f64();
        writeln!(out, "  {format}: {rows} buildings")?;
        writeln!(
            out,
            "    gridmap-import --as buildings  {:>8.2} s  {:>9.0} features/s  peak RSS {:>7} MiB",
            ours_median.as_secs_f64(),
            rate(ours_median),
            peak(&ours) / 1024
        )?;
        writeln!(
            out,
            "    ogr2ogr (PG_USE_COPY)          {:>8.2} s  {:>9.0} features/s  peak RSS {:>7} MiB",
            theirs_median.as_secs_f64(),
            rate(theirs_median),
            peak(&theirs) / 1024
        )?;
        writeln!(
            out,
            "    ratio gridmap-import / ogr2ogr {:>8.2}x",
            ours_median.as_secs_f64() / theirs_median.as_secs_f64()
        )?;
        let phase = |index: usize| {
            let mut times: Vec<f64> = ours
                .iter()
                .filter_map(|run| run.phases.map(|phases| phases[index]))
                .collect();
            times.sort_by(f64::total_cmp);
            times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
        };
        writeln!(
            out,
            "    gridmap-import phases (median)  read {:.2} s, check {:.2} s, write {:.2} s",
            phase(0),
            phase(1),
            phase(2)
        )?;
    }
    Ok(())
}

/// A fresh, migrated database named `name` on the server of `base_url`.
async fn fresh(admin: &sqlx::PgPool, base_url: &str, name: &str) -> anyhow::Result<String> {
    drop_database(admin, name).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let url = with_database(base_url, name);
    // Connecting applies the migrations, which also create PostGIS.
    let pool = gridmap_store::connect_url(&url, 1)
        .await
        .with_context(|| format!("migrating database {name}"))?;
    pool.close().await;
    Ok(url)
}

async fn drop_database(admin: &sqlx::PgPool, name: &str) -> anyhow::Result<()> {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    Ok(())
}

/// Replaces the database name in a PostgreSQL URL, keeping host and options.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path
        .split_once('?')
        .map(|(_, query)| format!("?{query}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// The `PG:` string ogr2ogr needs for the database of `url`: user, host (a
/// socket folder given as `?host=` or the URL's host) and port.
fn ogr_connection(url: &str, database: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, server) = authority.split_once('@').unwrap_or(("", authority));
    let user = user.split(':').next().unwrap_or_default();
    let (host, port) = server.split_once(':').unwrap_or((server, ""));
    let socket = path
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("host="));
    let mut connection = format!("PG:dbname={database} host={}", socket.unwrap_or(host));
    if !user.is_empty() {
        connection.push_str(&format!(" user={user}"));
    }
    if !port.is_empty() {
        connection.push_str(&format!(" port={port}"));
    }
    connection
}

/// Runs `command` under `/usr/bin/time -v`, returning its wall time and peak RSS.
fn timed(command: &mut Command, dir: &Path, label: &str) -> anyhow::Result<Run> {
    let report = dir.join("time.txt");
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.arg("-v").arg("-o").arg(&report);
    wrapped.arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    let started = Instant::now();
    let output = check_status(&mut wrapped, label)?;
    let elapsed = started.elapsed();
    let phases = serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .and_then(|report| {
            let seconds = |key: &str| report.get(key).and_then(serde_json::Value::as_f64);
            Some([
                seconds("read_time")?,
                seconds("check_time")?,
                seconds("write_time")?,
            ])
        });
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("reading {}", report.display()))?;
    let peak_rss_kib = text
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
        })
        .and_then(|value| value.trim().parse().ok())
        .context("no peak RSS in the /usr/bin/time report")?;
    eprintln!(
        "  {label}: {:.2} s, peak RSS {} MiB",
        elapsed.as_secs_f64(),
        peak_rss_kib / 1024
    );
    Ok(Run {
        elapsed,
        peak_rss_kib,
        phases,
    })
}

fn check_status(command: &mut Command, what: &str) -> anyhow::Result<std::process::Output> {
    let output = command
        .output()
        .with_context(|| format!("{what}: starting {:?}", command.get_program()))?;
    anyhow::ensure!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// The number of features in the only layer of `path`, from `ogrinfo -so`.
fn count_features(path: &Path) -> anyhow::Result<i64> {
    let output = Command::new("ogrinfo")
        .args(["-so", "-al"])
        .arg(path)
        .output()
        .context("running ogrinfo")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("Feature Count: "))
        .and_then(|count| count.trim().parse().ok())
        .context("ogrinfo reported no feature count")
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogr_connection_uses_the_socket_folder() {
        assert_eq!(
            ogr_connection(
                "postgres://gridmap@localhost/gridmap_bench_import_0?host=/work/main/.gridmap/pg/run",
                "gridmap_bench_import_0"
            ),
            "PG:dbname=gridmap_bench_import_0 host=/work/main/.gridmap/pg/run user=gridmap"
        );
        assert_eq!(
            ogr_connection("postgres://u:secret@db:5433/x", "y"),
            "PG:dbname=y host=db user=u port=5433"
        );
    }
}
