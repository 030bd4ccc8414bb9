//! Greedy choice of new station sites among the graph's nodes.

use crate::{Parameters, ShortestPaths, Snap, WalkGraph};
use serde::Serialize;

/// One chosen site and the weight it adds to the coverage: households when
/// the points are homes, reports when they are rider activity reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NewSite {
    pub lon: f64,
    pub lat: f64,
    /// The weight of the points this site covers that no station and no
    /// earlier site covered.
    pub gained: i64,
}

/// Up to `count` new sites, each the graph node whose circle covers the most
/// weight still uncovered after the sites before it: greedy maximum coverage
/// over weighted points (`weights[i]` for point `i`, attached to the graph by
/// `snaps[i]`): households per home, or 1 per rider report.
///
/// A site at node `n` covers a point when the network distance from `n` to
/// the point's node plus the point's snap distance is within the limit: the
/// same rule as [`covered_points`](crate::covered_points). Greedy selection
/// is not optimal, but maximum coverage is NP-hard and greedy is within
/// 1 − 1/e of it. The list stops early when no node adds any weight.
#[must_use]
pub fn best_new_sites(
    graph: &WalkGraph,
    weights: &[i64],
    snaps: &[Option<Snap>],
    already_covered: &[bool],
    parameters: &Parameters,
    count: usize,
) -> Vec<NewSite> {
    let limit_m = parameters.limit_m();
    // Points still uncovered, grouped by the node they attach to.
    let mut points_at_node: Vec<Vec<(usize, f64)>> = vec![Vec::new(); graph.node_count()];
    for (point, snap) in snaps.iter().enumerate() {
        if let Some(snap) = snap.filter(|_| !already_covered[point] && weights[point] > 0) {
            points_at_node[snap.node].push((point, snap.distance_m));
        }
    }
    // The points each candidate would cover, computed once; only nodes that
    // reach some uncovered point are candidates at all.
    let mut paths = ShortestPaths::new(graph);
    let mut candidates: Vec<(usize, Vec<usize>)> = Vec::new();
    for node in 0..graph.node_count() {
        paths.run(&[(node, 0.0)], limit_m);
        let reach: Vec<usize> = paths
            .reached()
            .iter()
            .flat_map(|&reached| {
                let distance = paths.distance(reached).unwrap_or(f64::INFINITY);
                points_at_node[reached]
                    .iter()
                    .filter(move |(_, snap_m)| distance + snap_m <= limit_m)
                    .map(|&(point, _)| point)
            })
            .collect();
        if !reach.is_empty() {
            candidates.push((node, reach));
        }
    }
    let mut covered = already_covered.to_vec();
    let mut sites = Vec::new();
    for _ in 0..count {
        let best = candidates
            .iter()
            .map(|(node, reach)| {
                let gain: i64 = reach
                    .iter()
                    .filter(|&&point| !covered[point])
                    .map(|&point| weights[point])
                    .sum();
                (gain, *node, reach)
            })
            // Ties go to the lowest node id so the answer is deterministic.
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        let Some((gain, node, reach)) = best.filter(|best| best.0 > 0) else {
            break;
        };
        for &point in reach {
            covered[point] = true;
        }
        let location = graph.node(node);
        sites.push(NewSite {
            lon: location.x,
            lat: location.y,
            gained: gain,
        });
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{coverage, demand_coverage, snap_homes, snap_points, Demand, Home};
    use geo::{line_string, Coord};

    #[test]
    fn picks_the_site_covering_most_uncovered_homes() {
        // A road about 8.8 km long; homes in two clusters at its ends.
        let road = line_string![(x: 120.0, y: 37.0), (x: 120.05, y: 37.0), (x: 120.1, y: 37.0)];
        let graph = WalkGraph::new(&[road]);
        let home = |x: f64, households: i64| Home {
            code: format!("{x}"),
            community_code: "c".to_owned(),
            households,
            location: Coord { x, y: 37.0001 },
        };
        let homes = vec![home(120.0, 10), home(120.1, 30), home(120.05, 5)];
        let snaps = snap_homes(&graph, &homes);
        let parameters = Parameters::default();
        let station = [Coord { x: 120.0, y: 37.0 }];
        let now = coverage(&graph, &station, &homes, &snaps, &parameters);
        assert_eq!((now.covered_households, now.total_households), (10, 45));
        assert_eq!(now.uncovered_buildings, 2);
        let households: Vec<i64> = homes.iter().map(|home| home.households).collect();
        let sites = best_new_sites(&graph, &households, &snaps, &now.covered, &parameters, 3);
        let gains: Vec<i64> = sites.iter().map(|site| site.gained).collect();
        assert_eq!(gains, vec![30, 5]);
        assert!((sites[0].lon - 120.1).abs() < 1e-9);
    }

    #[test]
    fn reports_weigh_one_each_and_move_the_best_site() {
        let road = line_string![(x: 120.0, y: 37.0), (x: 120.05, y: 37.0), (x: 120.1, y: 37.0)];
        let graph = WalkGraph::new(&[road]);
        let parameters = Parameters::default();
        // Households favour the east end (30 homes in one building); rider
        // reports cluster in the middle, where the homes are few.
        let report = |x: f64, community: &str| Demand {
            community_code: community.to_owned(),
            weight: 1,
            location: Coord { x, y: 36.9999 },
        };
        let reports = vec![
            report(120.0, "a"),
            report(120.05, "b"),
            report(120.0501, "b"),
            report(120.0499, "b"),
            report(120.1, "c"),
            // Farther than the limit from every node: never covered.
            report(120.05, "b"),
        ];
        let mut locations: Vec<Coord> = reports.iter().map(|report| report.location).collect();
        locations[5].y = 37.02;
        let reports: Vec<Demand> = reports
            .into_iter()
            .zip(&locations)
            .map(|(report, &location)| Demand { location, ..report })
            .collect();
        let snaps = snap_points(&graph, locations.iter().copied());
        let station = [Coord { x: 120.0, y: 37.0 }];
        let now = demand_coverage(&graph, &station, &reports, &snaps, &parameters);
        assert_eq!((now.covered_weight, now.total), (1, 6));
        let per: Vec<(&str, i64, i64)> = now
            .per_community
            .iter()
            .map(|c| (c.code.as_str(), c.covered, c.total))
            .collect();
        assert_eq!(per, vec![("a", 1, 1), ("b", 0, 4), ("c", 0, 1)]);
        let weights: Vec<i64> = reports.iter().map(|report| report.weight).collect();
        let sites = best_new_sites(&graph, &weights, &snaps, &now.covered, &parameters, 3);
        let gains: Vec<i64> = sites.iter().map(|site| site.gained).collect();
        assert_eq!(gains, vec![3, 1]);
        assert!((sites[0].lon - 120.05).abs() < 1e-9, "{sites:?}");
    }
}
