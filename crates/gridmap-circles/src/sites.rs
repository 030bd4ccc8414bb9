//! Greedy choice of new station sites among the graph's nodes.

use crate::{Parameters, ShortestPaths, Snap, WalkGraph};
use serde::Serialize;

/// One chosen site and the households it adds to the coverage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NewSite {
    pub lon: f64,
    pub lat: f64,
    pub gained_households: i64,
}

/// Up to `count` new sites, each the graph node whose circle covers the most
/// households still uncovered after the sites before it.
///
/// A site at node `n` covers a home when the network distance from `n` to the
/// home's node plus the home's snap distance is within the limit: the same
/// rule as [`coverage`](crate::coverage()). Greedy selection is not optimal,
/// but maximum coverage is NP-hard and greedy is within 1 − 1/e of it. The
/// list stops early when no node adds a household.
#[must_use]
pub fn best_new_sites(
    graph: &WalkGraph,
    households: &[i64],
    home_snaps: &[Option<Snap>],
    already_covered: &[bool],
    parameters: &Parameters,
    count: usize,
) -> Vec<NewSite> {
    let limit_m = parameters.limit_m();
    // Homes still uncovered, grouped by the node they attach to.
    let mut homes_at_node: Vec<Vec<(usize, f64)>> = vec![Vec::new(); graph.node_count()];
    for (home, snap) in home_snaps.iter().enumerate() {
        if let Some(snap) = snap.filter(|_| !already_covered[home] && households[home] > 0) {
            homes_at_node[snap.node].push((home, snap.distance_m));
        }
    }
    // The homes each candidate would cover, computed once; only nodes that
    // reach some uncovered home are candidates at all.
    let mut paths = ShortestPaths::new(graph);
    let mut candidates: Vec<(usize, Vec<usize>)> = Vec::new();
    for node in 0..graph.node_count() {
        paths.run(&[(node, 0.0)], limit_m);
        let reach: Vec<usize> = paths
            .reached()
            .iter()
            .flat_map(|&reached| {
                let distance = paths.distance(reached).unwrap_or(f64::INFINITY);
                homes_at_node[reached]
                    .iter()
                    .filter(move |(_, snap_m)| distance + snap_m <= limit_m)
                    .map(|&(home, _)| home)
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
                    .filter(|&&home| !covered[home])
                    .map(|&home| households[home])
                    .sum();
                (gain, *node, reach)
            })
            // Ties go to the lowest node id so the answer is deterministic.
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        let Some((gain, node, reach)) = best.filter(|best| best.0 > 0) else {
            break;
        };
        for &home in reach {
            covered[home] = true;
        }
        let location = graph.node(node);
        sites.push(NewSite {
            lon: location.x,
            lat: location.y,
            gained_households: gain,
        });
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{coverage, snap_homes, Home};
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
        let gains: Vec<i64> = sites.iter().map(|site| site.gained_households).collect();
        assert_eq!(gains, vec![30, 5]);
        assert!((sites[0].lon - 120.1).abs() < 1e-9);
    }
}
