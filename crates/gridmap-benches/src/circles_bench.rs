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
//! - Circle polygons (pgRouting has no counterpart): for the first
//!   `CIRCLE_POLYGONS` stations, each station's walked network
//!   ([`walked_network`]) is buffered the old way, geo's `Buffer` of the
//!   pieces as a `MultiLineString` (one round-capped stroke per piece), and
//!   the new way, [`network_strip`] (pieces chained into trails first); the
//!   per-circle medians, their ratio and the largest area and symmetric
//!   difference between the two are printed. Then, when the database has
//!   stations, every station of every circle kind gets its circle with
//!   [`service_circles`] (the whole city, as the server's circle layer
//!   computes it, on one thread); then the same circles once more with the
//!   old way of buffering (one run: minutes on a Zibo-scale city).
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
use geo::{Area as _, BooleanOps as _, Buffer as _, MultiLineString, MultiPolygon};
use gridmap_circles::{
    network_strip, service_circles, walked_network, Coord, Parameters, ShortestPaths, WalkGraph,
};
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

/// How many stations' circle polygons are timed both ways.
const CIRCLE_POLYGONS: usize = 10;

/// The circle kinds and their minutes, as the server's circle layer uses
/// them (`SERVICE_CIRCLE_MINUTES` in gridmap-tiles' layers.rs).
const CITY_CIRCLE_KINDS: &[(&str, f64)] = &[
    ("red_station", 10.0),
    ("service_centre", 10.0),
    ("grid_station", 15.0),
    ("rider_rest_stop", 15.0),
];

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
        let polygon_stations = &stations[..stations.len().min(CIRCLE_POLYGONS)];
        let polygons = compare_polygons(&graph, polygon_stations, &parameters, runs)?;

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
        polygons.print(&mut out)?;
    }
    city_circles(&pool, &graph, runs, &mut out).await?;
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

/// Per-circle polygon times, old and new method, and how far apart the two
/// polygons are.
struct PolygonComparison {
    circles: usize,
    pieces: usize,
    old_per_circle: Duration,
    new_per_circle: Duration,
    /// Largest |new area − old area| / old area.
    worst_area_change: f64,
    /// Largest area of new XOR old / old area.
    worst_apart: f64,
}

impl PolygonComparison {
    fn print(&self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        let seconds = Duration::as_secs_f64;
        writeln!(
            out,
            "    circle polygons, {} circles ({} pieces in all), per circle (not compared with pgRouting):",
            self.circles, self.pieces
        )?;
        writeln!(
            out,
            "      old: geo buffer of the pieces        {:>10.6} s",
            seconds(&self.old_per_circle)
        )?;
        writeln!(
            out,
            "      new: network_strip                   {:>10.6} s   {:>6.1}x faster; \
             largest area change {:.4} %, largest symmetric difference {:.4} % of the area",
            seconds(&self.new_per_circle),
            seconds(&self.old_per_circle) / seconds(&self.new_per_circle),
            self.worst_area_change * 100.0,
            self.worst_apart * 100.0
        )?;
        Ok(())
    }
}

/// The old polygon rule as it was drawn before `network_strip`: geo's
/// `Buffer` of every piece as one `MultiLineString`.
fn old_strip(pieces: &[geo::Line], half_width_m: f64) -> MultiPolygon {
    MultiLineString::new(
        pieces
            .iter()
            .map(|line| vec![line.start, line.end].into())
            .collect(),
    )
    .buffer(half_width_m)
}

/// Times both polygon methods on the walked network of each station
/// (median of `runs` per station) and measures how far apart they are.
fn compare_polygons(
    graph: &WalkGraph,
    stations: &[Coord],
    parameters: &Parameters,
    runs: usize,
) -> anyhow::Result<PolygonComparison> {
    let mut paths = ShortestPaths::new(graph);
    let networks: Vec<_> = stations
        .iter()
        .filter_map(|&station| walked_network(graph, &mut paths, station, parameters))
        .collect();
    let mut old_total = Duration::ZERO;
    let mut new_total = Duration::ZERO;
    let mut worst_area_change: f64 = 0.0;
    let mut worst_apart: f64 = 0.0;
    for network in &networks {
        let mut old_times = Vec::new();
        let mut new_times = Vec::new();
        let mut old = MultiPolygon::new(Vec::new());
        let mut new = MultiPolygon::new(Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            old = old_strip(&network.pieces, parameters.frontage_m);
            old_times.push(started.elapsed());
            let started = Instant::now();
            new = network_strip(&network.pieces, parameters.frontage_m);
            new_times.push(started.elapsed());
        }
        old_total += median(&mut old_times);
        new_total += median(&mut new_times);
        let old_area = old.unsigned_area();
        anyhow::ensure!(old_area > 0.0, "an old circle polygon is empty");
        worst_area_change =
            worst_area_change.max((new.unsigned_area() - old_area).abs() / old_area);
        worst_apart = worst_apart.max(new.xor(&old).unsigned_area() / old_area);
    }
    let count = u32::try_from(networks.len().max(1)).context("too many circles")?;
    Ok(PolygonComparison {
        circles: networks.len(),
        pieces: networks.iter().map(|network| network.pieces.len()).sum(),
        old_per_circle: old_total / count,
        new_per_circle: new_total / count,
        worst_area_change,
        worst_apart,
    })
}

/// Every circle of the city's stations, as the server's circle layer
/// computes them, timed on this thread; skipped when there are no stations.
async fn city_circles(
    pool: &sqlx::PgPool,
    graph: &WalkGraph,
    runs: usize,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let mut kinds = Vec::new();
    for &(kind, minutes) in CITY_CIRCLE_KINDS {
        let stations = gridmap_store::circle_queries::load_circle_stations(pool, kind, None)
            .await
            .with_context(|| format!("loading the {kind} stations"))?;
        let points: Vec<Coord> = stations
            .iter()
            .map(|station| Coord {
                x: station.lon,
                y: station.lat,
            })
            .collect();
        let parameters = Parameters {
            minutes,
            ..Parameters::default()
        };
        kinds.push((points, parameters));
    }
    let total: usize = kinds.iter().map(|(points, _)| points.len()).sum();
    if total == 0 {
        writeln!(out, "city circles: no stations in the database, skipped")?;
        return Ok(());
    }
    let mut times = Vec::new();
    let mut pieces = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let mut circles = 0;
        for (points, parameters) in &kinds {
            circles += service_circles(graph, points, parameters).len();
        }
        times.push(started.elapsed());
        anyhow::ensure!(circles == total, "a city circle is missing");
    }
    // The old way: the same walks, each network buffered by geo, once.
    let started = Instant::now();
    let mut paths = ShortestPaths::new(graph);
    let mut network_circles = 0;
    for (points, parameters) in &kinds {
        for &station in points {
            let Some(network) = walked_network(graph, &mut paths, station, parameters) else {
                continue;
            };
            pieces += network.pieces.len();
            let polygon = old_strip(&network.pieces, parameters.frontage_m);
            anyhow::ensure!(polygon.unsigned_area() > 0.0, "an old polygon is empty");
            network_circles += 1;
        }
    }
    let old_time = started.elapsed().as_secs_f64();
    let new_time = median(&mut times).as_secs_f64();
    writeln!(
        out,
        "city circles: {total} stations of {} kinds, service_circles on one thread, median of {runs} runs: \
         {new_time:.3} s ({:.6} s per circle)",
        CITY_CIRCLE_KINDS.len(),
        new_time / total as f64
    )?;
    writeln!(
        out,
        "  old buffering (geo buffer of the pieces), same walks, one run: {old_time:.3} s \
         ({network_circles} network circles, {pieces} pieces; fallback discs skipped); \
         new is {:.1}x faster",
        old_time / new_time
    )?;
    Ok(())
}
