//! Rest-stop coverage weighted by rider activity reports, on the demo city:
//! the report counts of `GET /api/v1/coverage?kind=rider_rest_stop` checked
//! against pgRouting (snapping and distances computed in PostGIS/pgRouting,
//! communities by PostGIS), and the greedy first new site checked against a
//! brute force over every candidate node.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

mod pgrouting;

use axum::http::StatusCode;
use gridmap_circles::{Coord, Parameters};
use pgrouting::{
    copy_demo_roads, lattice_key, pgr_distances_from_each, pgr_snap_all, pgr_vertex_ids,
    PGR_TOPOLOGY,
};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const MINUTES: f64 = 10.0;
/// Nodes within this of the nearest count as tied: WalkGraph ranks nodes in
/// scaled degrees, pgRouting's oracle here on the ellipsoid.
const SNAP_SLACK_M: f64 = 0.5;
/// Distances within this of the limit are too close to call.
const EDGE_M: f64 = 0.01;
/// Reports counted from this day on in the `since` check.
const SINCE: &str = "2026-10-16";

/// A report as the oracle sees it.
struct Report {
    community: String,
    location: Coord,
    recent: bool,
}

/// Whether the stations surely cover a report, surely do not, or the two
/// snapping rules could disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Covered,
    Uncovered,
    TooClose,
}

/// The street with the most rider rest stops (ties: the smallest code).
async fn street_with_rest_stops(demo: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT left(community_code, 9) FROM stations WHERE kind = 'rider_rest_stop'
          GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    )
    .fetch_one(demo)
    .await
    .unwrap()
}

/// The street's reports with the community each lies in (the smallest code
/// among the communities covering it), read independently of the server's
/// query.
async fn street_reports(demo: &PgPool, street: &str) -> Vec<Report> {
    let rows: Vec<(Option<String>, f64, f64, bool)> = sqlx::query_as(
        "SELECT (SELECT c.code FROM communities c
                  WHERE c.geom_3857 && r.geom_3857 AND ST_Covers(c.geom, r.geom)
                  ORDER BY c.code LIMIT 1),
                ST_X(r.geom), ST_Y(r.geom),
                r.reported_at >= ($1 || ' 00:00:00+08')::timestamptz
           FROM rider_reports r
          ORDER BY r.id",
    )
    .bind(SINCE)
    .fetch_all(demo)
    .await
    .unwrap();
    rows.into_iter()
        .filter_map(|(community, lon, lat, recent)| {
            community
                .filter(|code| code.starts_with(street))
                .map(|community| Report {
                    community,
                    location: Coord { x: lon, y: lat },
                    recent,
                })
        })
        .collect()
}

async fn get_json(uri: &str) -> (StatusCode, Value) {
    gridmap_e2e::send_json(
        gridmap_server::app(gridmap_e2e::demo_state().await, None),
        uri,
    )
    .await
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn rider_report_coverage_agrees_with_pgrouting(pool: PgPool) {
    let demo = gridmap_e2e::demo_pool().await;
    let street = street_with_rest_stops(&demo).await;
    let limit_m = Parameters {
        minutes: MINUTES,
        ..Parameters::default()
    }
    .limit_m();
    let max_snap_m = Parameters::default().max_snap_m;

    let (status, json) = get_json(&format!(
        "/api/v1/coverage?kind=rider_rest_stop&minutes={MINUTES}&street={street}&new_sites=1"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let answer = &json["reports"];

    // The oracle's graph, stations and reports.
    copy_demo_roads(&pool, Some(&street)).await;
    sqlx::raw_sql(PGR_TOPOLOGY).execute(&pool).await.unwrap();
    let vertex_ids = pgr_vertex_ids(&pool).await;
    let station_rows: Vec<(f64, f64)> = sqlx::query_as(
        "SELECT ST_X(geom), ST_Y(geom) FROM stations
          WHERE kind = 'rider_rest_stop' AND starts_with(community_code, $1) ORDER BY code",
    )
    .bind(&street)
    .fetch_all(&demo)
    .await
    .unwrap();
    let stations: Vec<Coord> = station_rows
        .into_iter()
        .map(|(x, y)| Coord { x, y })
        .collect();
    assert_eq!(json["stations"].as_u64().unwrap(), stations.len() as u64);
    let reports = street_reports(&demo, &street).await;
    assert!(reports.len() >= 50, "{} reports in {street}", reports.len());

    // Distances from the stations: per station, every tied vertex it may
    // enter the network at. `low` is the best any choice of ties gives,
    // `high` the worst.
    let station_snaps = pgr_snap_all(&pool, &stations, SNAP_SLACK_M).await;
    let mut fallbacks = Vec::new();
    let mut network_stations = Vec::new();
    for (station, snaps) in stations.iter().zip(&station_snaps) {
        if snaps[0].1 <= max_snap_m {
            network_stations.push(snaps.clone());
        } else {
            fallbacks.push(*station);
        }
    }
    let entry_ids: Vec<i64> = network_stations
        .iter()
        .flatten()
        .map(|(id, _)| *id)
        .collect();
    let from_entries = pgr_distances_from_each(&pool, &entry_ids, limit_m).await;
    let mut low: HashMap<i64, f64> = HashMap::new();
    let mut high: HashMap<i64, f64> = HashMap::new();
    for snaps in &network_stations {
        let mut worst_per_node: HashMap<i64, f64> = HashMap::new();
        let mut reached_by_all: HashMap<i64, usize> = HashMap::new();
        for (entry, snap_m) in snaps {
            for ((source, node), cost) in &from_entries {
                if source != entry {
                    continue;
                }
                let total = snap_m + cost;
                let best = low.entry(*node).or_insert(f64::INFINITY);
                *best = best.min(total);
                let worst = worst_per_node.entry(*node).or_insert(0.0);
                *worst = worst.max(total);
                *reached_by_all.entry(*node).or_default() += 1;
            }
        }
        for (node, worst) in worst_per_node {
            // A node one tie does not reach is unbounded for that choice.
            let worst = if reached_by_all[&node] == snaps.len() {
                worst
            } else {
                f64::INFINITY
            };
            let entry = high.entry(node).or_insert(f64::INFINITY);
            *entry = entry.min(worst);
        }
    }

    // Each report: covered, uncovered or too close to call.
    let locations: Vec<Coord> = reports.iter().map(|report| report.location).collect();
    let report_snaps = pgr_snap_all(&pool, &locations, SNAP_SLACK_M).await;
    let near_fallback = fallback_reach(&pool, &fallbacks, &locations, limit_m).await;
    let verdicts: Vec<Verdict> = report_snaps
        .iter()
        .zip(&near_fallback)
        .map(|(snaps, &(surely, maybe))| {
            let best = snaps
                .iter()
                .map(|(node, snap_m)| low.get(node).map_or(f64::INFINITY, |d| d + snap_m))
                .fold(f64::INFINITY, f64::min);
            let worst = snaps
                .iter()
                .map(|(node, snap_m)| high.get(node).map_or(f64::INFINITY, |d| d + snap_m))
                .fold(0.0, f64::max);
            if surely || worst <= limit_m - EDGE_M {
                Verdict::Covered
            } else if !maybe && best > limit_m + EDGE_M {
                Verdict::Uncovered
            } else {
                Verdict::TooClose
            }
        })
        .collect();

    // Totals exactly; covered counts within the reports too close to call.
    let check = |answer: &Value, chosen: &dyn Fn(&Report) -> bool, what: &str| {
        let mut per_community: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
        for (report, verdict) in reports.iter().zip(&verdicts) {
            if !chosen(report) {
                continue;
            }
            let entry = per_community.entry(&report.community).or_default();
            entry.0 += 1;
            match verdict {
                Verdict::Covered => entry.1 += 1,
                Verdict::TooClose => entry.2 += 1,
                Verdict::Uncovered => {}
            }
        }
        let (total, sure, close) = per_community
            .values()
            .fold((0, 0, 0), |sum, c| (sum.0 + c.0, sum.1 + c.1, sum.2 + c.2));
        assert_eq!(answer["total"].as_i64().unwrap(), total, "{what}: {answer}");
        let covered = answer["covered"].as_i64().unwrap();
        assert!(
            (sure..=sure + close).contains(&covered),
            "{what}: {covered} covered, pgRouting {sure} (+{close} too close to call)"
        );
        assert!(
            close <= (total / 100).max(2),
            "{what}: {close} too close to call"
        );
        let listed: Vec<(String, i64, i64)> = answer["per_community"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["code"].as_str().unwrap().to_owned(),
                    c["total"].as_i64().unwrap(),
                    c["covered"].as_i64().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(&str, i64)> = per_community
            .iter()
            .map(|(code, counts)| (*code, counts.0))
            .collect();
        let got: Vec<(&str, i64)> = listed.iter().map(|c| (c.0.as_str(), c.1)).collect();
        assert_eq!(got, expected, "{what}");
        for (code, _, covered) in &listed {
            let (_, sure, close) = per_community[code.as_str()];
            assert!((sure..=sure + close).contains(covered), "{what}: {code}");
        }
        println!(
            "{what}: {covered} of {total} reports within {limit_m} m of a rest stop \
             (pgRouting: {sure}, {close} too close to call)"
        );
        (total, covered)
    };
    let (total, covered) = check(answer, &|_| true, &format!("street {street}"));
    assert!(covered > 0 && covered < total, "{covered} of {total}");
    assert_eq!(answer["since"], Value::Null);

    // The greedy first site against every candidate node.
    let open: Vec<usize> = (0..reports.len())
        .filter(|&index| verdicts[index] != Verdict::Covered)
        .collect();
    let ends: BTreeSet<i64> = open
        .iter()
        .flat_map(|&index| report_snaps[index].iter().map(|(id, _)| *id))
        .collect();
    let ends: Vec<i64> = ends.into_iter().collect();
    let from_ends = pgr_distances_from_each(&pool, &ends, limit_m).await;
    // (site, report end) → metres.
    let mut gain_low: HashMap<i64, i64> = HashMap::new();
    let mut gain_high: HashMap<i64, i64> = HashMap::new();
    let mut to_sites: HashMap<i64, Vec<(i64, f64)>> = HashMap::new();
    for ((end, site), cost) in &from_ends {
        to_sites.entry(*end).or_default().push((*site, *cost));
    }
    for &index in &open {
        let snaps = &report_snaps[index];
        let mut best: HashMap<i64, f64> = HashMap::new();
        let mut worst: HashMap<i64, (f64, usize)> = HashMap::new();
        for (end, snap_m) in snaps {
            for (site, cost) in to_sites.get(end).map_or(&[][..], Vec::as_slice) {
                let total = snap_m + cost;
                let low_entry = best.entry(*site).or_insert(f64::INFINITY);
                *low_entry = low_entry.min(total);
                let high_entry = worst.entry(*site).or_insert((0.0, 0));
                high_entry.0 = high_entry.0.max(total);
                high_entry.1 += 1;
            }
        }
        for (site, distance) in best {
            if distance <= limit_m + EDGE_M {
                *gain_high.entry(site).or_default() += 1;
            }
        }
        if verdicts[index] == Verdict::Uncovered {
            for (site, (distance, reached)) in worst {
                if reached == snaps.len() && distance <= limit_m - EDGE_M {
                    *gain_low.entry(site).or_default() += 1;
                }
            }
        }
    }
    let (best_site, best_gain) = gain_low
        .iter()
        .max_by_key(|(site, gain)| (**gain, std::cmp::Reverse(**site)))
        .map(|(site, gain)| (*site, *gain))
        .unwrap();
    let site = &json["best_new_sites"][0];
    let gained = site["gained_reports"].as_i64().unwrap();
    assert!(site.get("gained_households").is_none(), "{site}");
    let chosen = vertex_ids[&lattice_key(Coord {
        x: site["lon"].as_f64().unwrap(),
        y: site["lat"].as_f64().unwrap(),
    })];
    println!(
        "greedy first site gains {gained} reports; brute force over {} candidates: \
         at most {best_gain} surely (vertex {best_site}); the chosen vertex {chosen} \
         {}..={}",
        gain_high.len(),
        gain_low.get(&chosen).copied().unwrap_or(0),
        gain_high.get(&chosen).copied().unwrap_or(0)
    );
    assert!(best_gain > 0);
    assert!(
        gained >= best_gain,
        "{gained} < {best_gain} at vertex {best_site}"
    );
    assert!(gained <= total - covered);
    assert!(
        (gain_low.get(&chosen).copied().unwrap_or(0)
            ..=gain_high.get(&chosen).copied().unwrap_or(0))
            .contains(&gained),
        "the chosen site's gain {gained} does not match pgRouting's"
    );

    // Only recent reports.
    let (status, recent) = get_json(&format!(
        "/api/v1/coverage?kind=rider_rest_stop&minutes={MINUTES}&street={street}&since={SINCE}"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent["reports"]["since"], SINCE);
    let (recent_total, _) = check(
        &recent["reports"],
        &|report| report.recent,
        &format!("street {street} since {SINCE}"),
    );
    assert!(recent_total > 0 && recent_total < total);
    // The household figures do not depend on the reports.
    for key in [
        "covered_households",
        "total_households",
        "uncovered_buildings",
    ] {
        assert_eq!(recent[key], json[key], "{key}");
    }
}

/// Per report: whether a straight-line fallback station surely covers it,
/// and whether one might (within [`EDGE_M`] of the limit), by PostGIS
/// geodesic distance.
async fn fallback_reach(
    pool: &PgPool,
    fallbacks: &[Coord],
    reports: &[Coord],
    limit_m: f64,
) -> Vec<(bool, bool)> {
    if fallbacks.is_empty() {
        return vec![(false, false); reports.len()];
    }
    let (slons, slats): (Vec<f64>, Vec<f64>) = fallbacks.iter().map(|c| (c.x, c.y)).unzip();
    let (rlons, rlats): (Vec<f64>, Vec<f64>) = reports.iter().map(|c| (c.x, c.y)).unzip();
    let nearest: Vec<f64> = sqlx::query_scalar(
        "SELECT (SELECT min(ST_Distance(ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4490)::geography,
                                        ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4490)::geography))
                   FROM unnest($1::float8[], $2::float8[]) AS s(lon, lat))
           FROM unnest($3::float8[], $4::float8[]) WITH ORDINALITY AS r(lon, lat, n)
          ORDER BY r.n",
    )
    .bind(&slons)
    .bind(&slats)
    .bind(&rlons)
    .bind(&rlats)
    .fetch_all(pool)
    .await
    .unwrap();
    nearest
        .into_iter()
        .map(|d| (d <= limit_m - EDGE_M, d <= limit_m + EDGE_M))
        .collect()
}

#[tokio::test]
async fn report_coverage_refuses_bad_requests_and_publishes_totals_only() {
    let demo = gridmap_e2e::demo_pool().await;
    let street = street_with_rest_stops(&demo).await;
    for bad in [
        format!("/api/v1/coverage?kind=red_station&minutes=10&street={street}&since=2026-10-01"),
        format!("/api/v1/coverage?kind=rider_rest_stop&minutes=10&street={street}&since=2026-10"),
        format!(
            "/api/v1/coverage?kind=rider_rest_stop&minutes=10&street={street}&since=2026-02-30"
        ),
        "/api/v1/circles?kind=rider_rest_stop&minutes=10&since=2026-10-01".to_owned(),
    ] {
        let (status, json) = get_json(&bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
        assert!(json["error"].is_string(), "{bad}: {json}");
    }
    let (status, json) = get_json(&format!(
        "/api/v1/coverage?kind=rider_rest_stop&minutes=15&street={street}&new_sites=2"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // Totals only: no report's location or time in the answer.
    let reports = json["reports"].as_object().unwrap();
    let keys: BTreeSet<&str> = reports.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["covered", "per_community", "since", "total"])
    );
    for community in reports["per_community"].as_array().unwrap() {
        let keys: BTreeSet<&str> = community
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["code", "covered", "total"]));
    }
    let text = json.to_string();
    assert!(!text.contains("2026-10"), "{text}");
    // Other kinds answer as before, without reports.
    let (status, json) = get_json(&format!(
        "/api/v1/coverage?kind=red_station&minutes=10&street={street}&new_sites=1"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert!(json.get("reports").is_none(), "{json}");
    assert!(
        json["best_new_sites"][0]["gained_households"].is_i64(),
        "{json}"
    );
}
