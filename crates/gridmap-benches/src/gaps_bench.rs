//! `gridmap-bench gaps`: the seamless-cover check of a whole city by
//! gridmap-topology versus the PostGIS SQL that finds the same gaps and
//! overlaps, on the database `DATABASE_URL` names.
//!
//! Both sides read the same grids: a temporary copy of `grids` (GiST and
//! community-code indexes, analysed) in which every `--perturb-every`-th grid
//! is shifted `--shift-deg` east, so that there are gaps and overlaps to find;
//! gridmap reads the copy's geometries back, so the coordinates are
//! bit-identical. `--perturb-every 0` checks the city as stored.
//!
//! - gridmap: `Tessellation::new` of the communities and grids, then
//!   `cover_gaps` (community minus the union of its grids, plus the grids
//!   touching each gap piece) and `grid_overlaps` (R-tree pairs, overlay).
//!   The full `analyse` (also spills, buildings, staffing, service centres)
//!   is timed on its own line, with the buildings loaded.
//! - PostGIS: per community `ST_Difference(community, ST_Union(grids))`
//!   dumped into pieces, and an `&&` self-join of the grids with
//!   `ST_Intersection`, pieces of at least `--min-area-m2` (geography area),
//!   as one statement each. The overlap join runs twice: as written, and with
//!   an `ST_Relate(a, b, '2********')` filter (interiors share area) before
//!   the intersection, which is how one would speed it up; the ratio is taken
//!   against the faster of the two.
//!
//! The findings are compared: the same communities with gaps and the same
//! pairs of overlapping grids, with areas within 1 % (or 0.5 m²).

use crate::median;
use anyhow::Context as _;
use gridmap_store::topology_queries::{load_topology, AreaFilter, TopologyRecords};
use gridmap_topology::{
    analyse, Building, Community, CoverGaps as _, Finding, Grid, GridOverlaps as _, Parameters,
    Point, ServiceCentre, Tessellation,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::time::{Duration, Instant};

/// How the grids are disturbed before both sides check them.
pub struct Perturbation {
    /// Shift every n-th grid (in code order); 0: none.
    pub every: usize,
    /// East shift in degrees.
    pub shift_deg: f64,
}

const COPY_GRIDS: &str = "
    CREATE TEMPORARY TABLE bench_grids AS
    SELECT code, community_code,
           CASE WHEN $1 > 0 AND (row_number() OVER (ORDER BY code)) % $1 = 0
                THEN ST_Translate(geom, $2, 0) ELSE geom END AS geom
      FROM grids";

const POSTGIS_GAPS: &str = "
    SELECT c.code, ST_Area(piece.geom::geography)
      FROM communities c
      CROSS JOIN LATERAL (SELECT ST_Union(g.geom) AS geom FROM bench_grids g
                           WHERE g.community_code = c.code) covered
      CROSS JOIN LATERAL ST_Dump(CASE WHEN covered.geom IS NULL THEN c.geom
                                      ELSE ST_Difference(c.geom, covered.geom) END) AS piece
     WHERE ST_Dimension(piece.geom) = 2 AND ST_Area(piece.geom::geography) >= $1";

const POSTGIS_OVERLAPS: &str = "
    SELECT a.code, b.code, sum(ST_Area(piece.geom::geography))
      FROM bench_grids a
      JOIN bench_grids b ON a.geom && b.geom AND a.code < b.code
      CROSS JOIN LATERAL ST_Dump(ST_Intersection(a.geom, b.geom)) AS piece
     WHERE ST_Dimension(piece.geom) = 2 AND ST_Area(piece.geom::geography) >= $1
     GROUP BY a.code, b.code";

/// Findings keyed by the community of a gap or the pair of an overlap, with
/// the summed area of their pieces.
type Areas = BTreeMap<Vec<String>, f64>;

/// Runs the benchmark and prints medians side by side with ratios.
pub async fn run(runs: usize, perturbation: &Perturbation, min_area_m2: f64) -> anyhow::Result<()> {
    // One connection: the temporary table lives in its session.
    let pool = gridmap_store::connect(1).await.context("connecting")?;
    let mut out = std::io::stdout().lock();

    let started = Instant::now();
    let streets: Vec<String> = sqlx::query_scalar("SELECT code FROM streets ORDER BY code")
        .fetch_all(&pool)
        .await
        .context("listing the streets")?;
    let mut records = TopologyRecords::default();
    for street in &streets {
        let street_records = load_topology(&pool, &AreaFilter::Street(street.clone()))
            .await
            .with_context(|| format!("loading street {street}"))?
            .with_context(|| format!("street {street} vanished"))?;
        records.communities.extend(street_records.communities);
        records.grids.extend(street_records.grids);
        records.buildings.extend(street_records.buildings);
        records
            .service_centres
            .extend(street_records.service_centres);
    }
    let load_time = started.elapsed();

    #[expect(
        clippy::cast_possible_wrap,
        reason = "the step is a small count given on the command line"
    )]
    let every = perturbation.every as i64;
    sqlx::query(COPY_GRIDS)
        .bind(every)
        .bind(perturbation.shift_deg)
        .execute(&pool)
        .await
        .context("copying the grids")?;
    for statement in [
        "CREATE INDEX ON bench_grids USING gist (geom)",
        "CREATE INDEX ON bench_grids (community_code)",
        "ANALYZE bench_grids",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .with_context(|| format!("preparing the copy: {statement}"))?;
    }
    let copied: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT code, ST_AsBinary(geom) FROM bench_grids")
            .fetch_all(&pool)
            .await
            .context("reading the copy")?;
    let mut copied: HashMap<String, Vec<u8>> = copied.into_iter().collect();
    for grid in &mut records.grids {
        let wkb = copied
            .remove(&grid.code)
            .with_context(|| format!("grid {} missing from the copy", grid.code))?;
        grid.geom = gridmap_store::queries::decode_multipolygon(&wkb, &grid.code)
            .with_context(|| format!("decoding grid {}", grid.code))?;
    }
    let n_shifted = records
        .grids
        .len()
        .checked_div(perturbation.every)
        .unwrap_or(0);
    writeln!(
        out,
        "gaps: {} streets, {} communities, {} grids ({n_shifted} shifted {}° east), {} buildings; \
         loaded in {:.2} s; median of {runs} runs",
        streets.len(),
        records.communities.len(),
        records.grids.len(),
        perturbation.shift_deg,
        records.buildings.len(),
        load_time.as_secs_f64()
    )?;

    let parameters = Parameters {
        min_area_m2,
        ..Parameters::default()
    };
    let communities = communities(&records);
    let grids = grids(&records);

    // gridmap: gaps and overlaps, tessellation included.
    let mut build_times = Vec::new();
    let mut gap_times = Vec::new();
    let mut overlap_times = Vec::new();
    let mut total_times = Vec::new();
    let mut ours_gaps = Areas::new();
    let mut ours_overlaps = Areas::new();
    for _ in 0..runs {
        let (communities, grids) = (communities.clone(), grids.clone());
        let started = Instant::now();
        let tessellation = Tessellation::new(communities, grids, vec![], vec![]);
        let built = started.elapsed();
        let gaps = tessellation.cover_gaps(&parameters);
        let gapped = started.elapsed();
        let overlaps = tessellation.grid_overlaps(&parameters);
        let total = started.elapsed();
        build_times.push(built);
        gap_times.push(gapped - built);
        overlap_times.push(total - gapped);
        total_times.push(total);
        ours_gaps = areas(&gaps, 1);
        ours_overlaps = areas(&overlaps, 2);
    }

    // gridmap: every check of the report, buildings and service centres too.
    let mut analyse_times = Vec::new();
    let mut n_findings = 0;
    for _ in 0..runs {
        let (communities, grids) = (communities.clone(), grids.clone());
        let (buildings, centres) = (buildings(&records), service_centres(&records));
        let started = Instant::now();
        let tessellation = Tessellation::new(communities, grids, buildings, centres);
        n_findings = analyse(&tessellation, &parameters).len();
        analyse_times.push(started.elapsed());
    }

    // PostGIS.
    let relate_overlaps = POSTGIS_OVERLAPS.replace(
        "AND a.code < b.code",
        "AND a.code < b.code AND ST_Relate(a.geom, b.geom, '2********')",
    );
    let mut postgis_gap_times = Vec::new();
    let mut postgis_overlap_times = Vec::new();
    let mut postgis_relate_times = Vec::new();
    let mut theirs_gaps = Areas::new();
    let mut theirs_overlaps = Areas::new();
    let mut theirs_relate = Areas::new();
    for _ in 0..runs {
        let started = Instant::now();
        let rows: Vec<(String, f64)> = sqlx::query_as(POSTGIS_GAPS)
            .bind(min_area_m2)
            .fetch_all(&pool)
            .await
            .context("PostGIS gaps")?;
        postgis_gap_times.push(started.elapsed());
        theirs_gaps = Areas::new();
        for (community, area) in rows {
            *theirs_gaps.entry(vec![community]).or_default() += area;
        }
        for (sql, times, found) in [
            (
                POSTGIS_OVERLAPS,
                &mut postgis_overlap_times,
                &mut theirs_overlaps,
            ),
            (
                relate_overlaps.as_str(),
                &mut postgis_relate_times,
                &mut theirs_relate,
            ),
        ] {
            let started = Instant::now();
            let rows: Vec<(String, String, f64)> = sqlx::query_as(sql)
                .bind(min_area_m2)
                .fetch_all(&pool)
                .await
                .context("PostGIS overlaps")?;
            times.push(started.elapsed());
            *found = rows
                .into_iter()
                .map(|(a, b, area)| (vec![a, b], area))
                .collect();
        }
    }

    compare("gaps", &ours_gaps, &theirs_gaps)?;
    compare("overlaps", &ours_overlaps, &theirs_overlaps)?;
    compare(
        "overlaps (ST_Relate filter)",
        &ours_overlaps,
        &theirs_relate,
    )?;
    writeln!(
        out,
        "  same findings as PostGIS: {} communities with gaps ({:.0} m²), {} overlapping pairs ({:.0} m²)",
        ours_gaps.len(),
        ours_gaps.values().sum::<f64>(),
        ours_overlaps.len(),
        ours_overlaps.values().sum::<f64>()
    )?;

    let build = median(&mut build_times);
    let gaps = median(&mut gap_times);
    let overlaps = median(&mut overlap_times);
    let total = median(&mut total_times);
    let postgis_gaps = median(&mut postgis_gap_times);
    let postgis_overlaps = median(&mut postgis_overlap_times);
    let postgis_relate = median(&mut postgis_relate_times);
    let postgis_best_overlaps = postgis_overlaps.min(postgis_relate);
    let postgis_total = postgis_gaps + postgis_best_overlaps;
    let seconds = Duration::as_secs_f64;
    writeln!(
        out,
        "                                   gridmap (1 core)   PostGIS (1 backend)   ratio"
    )?;
    writeln!(
        out,
        "  gaps                            {:>10.3} s  {:>14.3} s  {:>12.1}x",
        seconds(&gaps),
        seconds(&postgis_gaps),
        seconds(&postgis_gaps) / seconds(&gaps)
    )?;
    writeln!(
        out,
        "  overlaps (&& join)              {:>10.3} s  {:>14.3} s  {:>12.1}x",
        seconds(&overlaps),
        seconds(&postgis_overlaps),
        seconds(&postgis_overlaps) / seconds(&overlaps)
    )?;
    writeln!(
        out,
        "  overlaps (&& + ST_Relate)       {:>10.3} s  {:>14.3} s  {:>12.1}x",
        seconds(&overlaps),
        seconds(&postgis_relate),
        seconds(&postgis_relate) / seconds(&overlaps)
    )?;
    writeln!(
        out,
        "  gaps + overlaps (+ {:.3} s build) {:>9.3} s  {:>14.3} s  {:>12.1}x   <- compared",
        seconds(&build),
        seconds(&total),
        seconds(&postgis_total),
        seconds(&postgis_total) / seconds(&total)
    )?;
    writeln!(
        out,
        "  full analyse (all checks, {} buildings, {n_findings} findings) {:.3} s",
        records.buildings.len(),
        seconds(&median(&mut analyse_times))
    )?;
    Ok(())
}

/// Summed areas by the codes that identify a finding: the first `n_codes`
/// (the community of a gap, the two grids of an overlap).
fn areas(findings: &[Finding], n_codes: usize) -> Areas {
    let mut areas = Areas::new();
    for finding in findings {
        let key = finding.codes.iter().take(n_codes).cloned().collect();
        *areas.entry(key).or_default() += finding.area_m2.unwrap_or_default();
    }
    areas
}

/// Fails unless both sides found the same keys with areas within 1 % or 0.5 m².
fn compare(what: &str, ours: &Areas, theirs: &Areas) -> anyhow::Result<()> {
    let mut differences = Vec::new();
    for key in ours.keys().chain(theirs.keys()) {
        let (a, b) = (ours.get(key), theirs.get(key));
        let agrees = match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= (0.01 * b.abs()).max(0.5),
            _ => false,
        };
        if !agrees {
            differences.push(format!("{key:?}: gridmap {a:?} m², PostGIS {b:?} m²"));
        }
    }
    differences.dedup();
    anyhow::ensure!(
        differences.is_empty(),
        "{what}: {} findings differ from PostGIS, e.g. {}",
        differences.len(),
        differences
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}

fn communities(records: &TopologyRecords) -> Vec<Community> {
    records
        .communities
        .iter()
        .map(|community| Community {
            code: community.code.clone(),
            polygon: community.geom.clone(),
        })
        .collect()
}

fn grids(records: &TopologyRecords) -> Vec<Grid> {
    records
        .grids
        .iter()
        .map(|grid| Grid {
            code: grid.code.clone(),
            community_code: grid.community_code.clone(),
            polygon: grid.geom.clone(),
            has_worker: grid.has_worker,
            households: grid.households,
        })
        .collect()
}

fn buildings(records: &TopologyRecords) -> Vec<Building> {
    records
        .buildings
        .iter()
        .map(|building| Building {
            code: building.code.clone(),
            grid_code: building.grid_code.clone(),
            polygon: building.geom.clone(),
        })
        .collect()
}

fn service_centres(records: &TopologyRecords) -> Vec<ServiceCentre> {
    records
        .service_centres
        .iter()
        .map(|centre| ServiceCentre {
            code: centre.code.clone(),
            community_code: centre.community_code.clone(),
            area_m2: centre.area_m2,
            community_households: centre.community_households,
            location: Point::new(centre.lon, centre.lat),
        })
        .collect()
}
