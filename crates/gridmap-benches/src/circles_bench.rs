//! `gridmap-bench circles`: walking distances from N stations on the road
//! graph of the database `DATABASE_URL` names (e.g. the Helsinki extract),
//! gridmap-circles versus one many-source `pgr_drivingDistance` call.
//!
//! Stations are `--stations` random points over the extent of the roads
//! (fixed seed), each attached to its nearest road node; both sides start at
//! those nodes with distance 0 and stop at `--distance-m`.
//!
//! - gridmap: `ShortestPaths::new` plus one many-source `run` (reached nodes
//!   with their distance to the nearest station). This is the compared figure.
//!   The circle polygons (`service_circles`: one search and one buffered
//!   network per station) are timed on their own line for the first 5
//!   stations, per circle; pgRouting has no counterpart for them.
//! - pgRouting: one `pgr_drivingDistance(edges, start_vids, distance,
//!   directed => false, equicost => true)` call returning every reached node
//!   with its cost. `equicost => true` is documented to assign each node to
//!   its nearest start only, which is many-source Dijkstra's answer, but
//!   pgRouting 3.4 drops some reachable nodes with it; `equicost => false`
//!   returns one tree per start and needs `min(agg_cost) GROUP BY node` on
//!   top, which gives exactly the many-source answer. Both are timed; the
//!   peer is equicost when its answer agrees, else the per-start call. pgRouting reads its edges through the SQL it is given on
//!   every call, which is part of its cost as a user meets it.
//!
//! pgRouting's vertex and edge tables (`bench_pgr_vertex`, `bench_pgr_edge`)
//! are built in SQL from `roads`, independently of `WalkGraph`, as in
//! `tests/tests/circles.rs`. Both sides must reach the same nodes (up to
//! nodes within 0.5 m of the limit) at distances within 0.5 m.

use crate::median;
use anyhow::Context as _;
use gridmap_circles::{service_circles, Coord, Parameters, ShortestPaths, WalkGraph};
use rand::{Rng as _, SeedableRng as _};
use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

const PGR_TOPOLOGY: &str = "
    CREATE EXTENSION IF NOT EXISTS pgrouting;
    DROP TABLE IF EXISTS bench_pgr_segment, bench_pgr_vertex, bench_pgr_edge;
    CREATE TABLE bench_pgr_segment AS
        SELECT round(ST_X(ST_PointN(geom, i)) * 1e7)::bigint AS ax,
               round(ST_Y(ST_PointN(geom, i)) * 1e7)::bigint AS ay,
               round(ST_X(ST_PointN(geom, i + 1)) * 1e7)::bigint AS bx,
               round(ST_Y(ST_PointN(geom, i + 1)) * 1e7)::bigint AS by_,
               ST_Length(ST_MakeLine(ST_PointN(geom, i), ST_PointN(geom, i + 1))::geography) AS cost
          FROM roads, generate_series(1, ST_NPoints(geom) - 1) AS i;
    CREATE TABLE bench_pgr_vertex AS
        SELECT row_number() OVER (ORDER BY x, y) AS id, x, y
          FROM (SELECT ax AS x, ay AS y FROM bench_pgr_segment
                UNION SELECT bx, by_ FROM bench_pgr_segment) v;
    CREATE TABLE bench_pgr_edge AS
        SELECT row_number() OVER () AS id, a.id AS source, b.id AS target,
               s.cost, s.cost AS reverse_cost
          FROM bench_pgr_segment s
          JOIN bench_pgr_vertex a ON a.x = s.ax AND a.y = s.ay
          JOIN bench_pgr_vertex b ON b.x = s.bx AND b.y = s.by_
         WHERE a.id <> b.id;
    DROP TABLE bench_pgr_segment;
    ANALYZE bench_pgr_vertex;
    ANALYZE bench_pgr_edge;";

/// How many stations' circle polygons are timed.
const CIRCLE_POLYGONS: usize = 5;

const EDGES_SQL: &str = "SELECT id, source, target, cost, reverse_cost FROM bench_pgr_edge";

const PGR_EQUICOST: &str = "
    SELECT node, agg_cost FROM pgr_drivingDistance($1, $2::bigint[], $3,
                                                   directed => false, equicost => true)";

const PGR_PER_START: &str = "
    SELECT node, min(agg_cost) FROM pgr_drivingDistance($1, $2::bigint[], $3,
                                                        directed => false, equicost => false)
     GROUP BY node";

/// Runs the benchmark for each station count and prints medians and ratios.
pub async fn run(station_counts: &[usize], distance_m: f64, runs: usize) -> anyhow::Result<()> {
    let pool = gridmap_store::connect(1).await.context("connecting")?;
    let mut out = std::io::stdout().lock();

    let started = Instant::now();
    let roads = gridmap_store::circle_queries::load_roads(&pool, None, 0.0)
        .await
        .context("loading the roads")?;
    let loaded = started.elapsed();
    let started = Instant::now();
    let graph = WalkGraph::new(&roads);
    let built = started.elapsed();
    anyhow::ensure!(graph.node_count() > 0, "the roads table is empty");

    let started = Instant::now();
    sqlx::raw_sql(PGR_TOPOLOGY)
        .execute(&pool)
        .await
        .context("building pgRouting's vertex and edge tables")?;
    let vertex_rows: Vec<(i64, i64, i64)> = sqlx::query_as("SELECT id, x, y FROM bench_pgr_vertex")
        .fetch_all(&pool)
        .await
        .context("reading pgRouting's vertices")?;
    let pgr_topology = started.elapsed();
    let vertex_ids: HashMap<(i64, i64), i64> = vertex_rows
        .into_iter()
        .map(|(id, x, y)| ((x, y), id))
        .collect();
    anyhow::ensure!(
        vertex_ids.len() == graph.node_count(),
        "pgRouting has {} vertices, the walk graph {} nodes",
        vertex_ids.len(),
        graph.node_count()
    );
    // pgRouting vertex id → graph node.
    let node_of_vertex: HashMap<i64, usize> = (0..graph.node_count())
        .map(|node| {
            let id = vertex_ids
                .get(&lattice_key(graph.node(node)))
                .copied()
                .with_context(|| format!("node {node} has no pgRouting vertex"))?;
            Ok((id, node))
        })
        .collect::<anyhow::Result<_>>()?;
    let vertex_of_node: HashMap<usize, i64> = node_of_vertex
        .iter()
        .map(|(&id, &node)| (node, id))
        .collect();

    writeln!(
        out,
        "circles: {} roads, {} nodes, {} edges (loaded in {:.3} s, graph built in {:.3} s; \
         pgRouting tables in {:.2} s, untimed); {distance_m} m from N stations, median of {runs} runs",
        roads.len(),
        graph.node_count(),
        graph.edges().len(),
        loaded.as_secs_f64(),
        built.as_secs_f64(),
        pgr_topology.as_secs_f64()
    )?;

    let (west, south, east, north) = (0..graph.node_count()).map(|node| graph.node(node)).fold(
        (
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ),
        |(w, s, e, n), c| (w.min(c.x), s.min(c.y), e.max(c.x), n.max(c.y)),
    );
    let seconds = Duration::as_secs_f64;
    for &n_stations in station_counts {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let stations: Vec<Coord> = (0..n_stations)
            .map(|_| Coord {
                x: rng.gen_range(west..=east),
                y: rng.gen_range(south..=north),
            })
            .collect();
        let mut source_nodes: Vec<usize> = stations
            .iter()
            .filter_map(|&station| graph.snap(station).map(|snap| snap.node))
            .collect();
        source_nodes.sort_unstable();
        source_nodes.dedup();
        let sources: Vec<(usize, f64)> = source_nodes.iter().map(|&node| (node, 0.0)).collect();
        let start_vids: Vec<i64> = source_nodes
            .iter()
            .map(|node| vertex_of_node[node])
            .collect();

        let mut ours_times = Vec::new();
        let mut ours: HashMap<usize, f64> = HashMap::new();
        for _ in 0..runs {
            let started = Instant::now();
            let mut paths = ShortestPaths::new(&graph);
            let n_reached = paths.run(&sources, distance_m).len();
            ours_times.push(started.elapsed());
            ours = paths
                .reached()
                .iter()
                .filter_map(|&node| Some((node, paths.distance(node)?)))
                .collect();
            anyhow::ensure!(ours.len() == n_reached, "a reached node has no distance");
        }

        let parameters = Parameters {
            minutes: 10.0,
            speed_m_s: distance_m / 600.0,
            ..Parameters::default()
        };
        // Buffering a walked network is far slower than walking it, so the
        // polygons are timed on the first few stations only, per circle.
        let polygon_stations = &stations[..stations.len().min(CIRCLE_POLYGONS)];
        let mut circle_times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let circles = service_circles(&graph, polygon_stations, &parameters);
            circle_times.push(started.elapsed());
            anyhow::ensure!(
                circles.len() == polygon_stations.len(),
                "a circle is missing"
            );
        }

        let mut pgr_times = Vec::new();
        let mut pgr_per_start_times = Vec::new();
        let mut theirs: HashMap<usize, f64> = HashMap::new();
        let mut theirs_per_start: HashMap<usize, f64> = HashMap::new();
        for _ in 0..runs {
            for (sql, times, found) in [
                (PGR_EQUICOST, &mut pgr_times, &mut theirs),
                (
                    PGR_PER_START,
                    &mut pgr_per_start_times,
                    &mut theirs_per_start,
                ),
            ] {
                let started = Instant::now();
                let rows: Vec<(i64, f64)> = sqlx::query_as(sql)
                    .bind(EDGES_SQL)
                    .bind(&start_vids)
                    .bind(distance_m)
                    .fetch_all(&pool)
                    .await
                    .context("pgr_drivingDistance")?;
                times.push(started.elapsed());
                *found = rows
                    .into_iter()
                    .map(|(vertex, cost)| {
                        node_of_vertex
                            .get(&vertex)
                            .map(|&node| (node, cost))
                            .with_context(|| format!("pgRouting returned unknown vertex {vertex}"))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
        }
        // The per-start trees with min() must agree; equicost is reported
        // either way, since pgRouting drops some nodes with it (see below).
        let equicost_check = compare(&ours, &theirs, distance_m);
        let worst_per_start =
            compare(&ours, &theirs_per_start, distance_m).context("equicost => false")?;

        let ours_time = median(&mut ours_times);
        let circles_time = median(&mut circle_times);
        let pgr_time = median(&mut pgr_times);
        let pgr_per_start_time = median(&mut pgr_per_start_times);
        writeln!(
            out,
            "  {n_stations} stations ({} distinct start nodes): {} nodes reached; pgRouting per start + min(): \
             same nodes, largest difference {:.2e} m; equicost => true: {} nodes, {}",
            source_nodes.len(),
            ours.len(),
            worst_per_start,
            theirs.len(),
            match &equicost_check {
                Ok(worst) => format!("same nodes, largest difference {worst:.2e} m"),
                Err(err) => format!("DIFFERS ({err})"),
            }
        )?;
        writeln!(
            out,
            "    gridmap ShortestPaths many-source (1 core)   {:>10.6} s   <- compared",
            seconds(&ours_time)
        )?;
        writeln!(
            out,
            "    pgr_drivingDistance equicost => true          {:>10.6} s   ratio {:>7.1}x{}",
            seconds(&pgr_time),
            seconds(&pgr_time) / seconds(&ours_time),
            if equicost_check.is_ok() {
                "   <- peer"
            } else {
                "   (other answer)"
            }
        )?;
        writeln!(
            out,
            "    pgr_drivingDistance per start + min()         {:>10.6} s   ratio {:>7.1}x{}",
            seconds(&pgr_per_start_time),
            seconds(&pgr_per_start_time) / seconds(&ours_time),
            if equicost_check.is_ok() {
                ""
            } else {
                "   <- peer"
            }
        )?;
        writeln!(
            out,
            "    gridmap service_circles, {} polygons (not compared) {:>8.3} s: {:.3} s per circle",
            polygon_stations.len(),
            seconds(&circles_time),
            seconds(&circles_time) / polygon_stations.len().max(1) as f64
        )?;
    }
    Ok(())
}

fn lattice_key(coord: Coord) -> (i64, i64) {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "degrees × 1e7 are below 2e9, far inside i64"
    )]
    let key = (
        (coord.x * 1e7).round() as i64,
        (coord.y * 1e7).round() as i64,
    );
    key
}

/// The largest distance difference; fails when a node is reached by one side
/// only (other than within 0.5 m of the limit) or distances differ by 0.5 m.
fn compare(
    ours: &HashMap<usize, f64>,
    theirs: &HashMap<usize, f64>,
    limit_m: f64,
) -> anyhow::Result<f64> {
    let mut worst: f64 = 0.0;
    for (node, &distance) in ours {
        match theirs.get(node) {
            Some(&expected) => worst = worst.max((distance - expected).abs()),
            None => anyhow::ensure!(
                distance > limit_m - 0.5,
                "pgRouting does not reach node {node}, gridmap does at {distance} m"
            ),
        }
    }
    for (node, &expected) in theirs {
        anyhow::ensure!(
            ours.contains_key(node) || expected > limit_m - 0.5,
            "gridmap does not reach node {node}, pgRouting does at {expected} m"
        );
    }
    anyhow::ensure!(
        worst < 0.5,
        "distances differ from pgRouting's by up to {worst} m"
    );
    Ok(worst)
}
