//! Which homes lie within any circle, and the totals per community.

use crate::{Parameters, ShortestPaths, Snap, WalkGraph};
use geo::{Coord, Distance, Geodesic, Point};
use serde::Serialize;
use std::collections::BTreeMap;

/// A building as coverage sees it: where it is and how many homes it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Home {
    pub code: String,
    pub community_code: String,
    pub households: i64,
    /// The building's centroid, lon/lat.
    pub location: Coord,
}

/// Coverage of a set of homes by the circles of a set of stations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Per home, in input order: whether any circle covers it.
    #[serde(skip)]
    pub covered: Vec<bool>,
    pub covered_households: i64,
    pub total_households: i64,
    pub uncovered_buildings: usize,
    pub per_community: Vec<CommunityCoverage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommunityCoverage {
    pub code: String,
    pub covered_households: i64,
    pub total_households: i64,
    pub uncovered_buildings: usize,
}

/// Each home attached to the graph at its nearest node.
#[must_use]
pub fn snap_homes(graph: &WalkGraph, homes: &[Home]) -> Vec<Option<Snap>> {
    homes.iter().map(|home| graph.snap(home.location)).collect()
}

/// The coverage of `homes` by the circles of `stations` (lon/lat).
///
/// A home is covered when the network distance from the nearest station to
/// the home's nearest node, plus the straight walk from that node to the
/// home's centroid, is within the limit; or, for a station whose circle is a
/// straight-line fallback, when the centroid is within the limit of it.
#[must_use]
pub fn coverage(
    graph: &WalkGraph,
    stations: &[Coord],
    homes: &[Home],
    home_snaps: &[Option<Snap>],
    parameters: &Parameters,
) -> Coverage {
    let limit_m = parameters.limit_m();
    let mut sources = Vec::new();
    let mut fallbacks = Vec::new();
    for &station in stations {
        match graph
            .snap(station)
            .filter(|snap| snap.distance_m <= parameters.max_snap_m)
        {
            Some(snap) => sources.push((snap.node, snap.distance_m)),
            None => fallbacks.push(station),
        }
    }
    let mut paths = ShortestPaths::new(graph);
    paths.run(&sources, limit_m);
    let covered: Vec<bool> = homes
        .iter()
        .zip(home_snaps)
        .map(|(home, snap)| {
            let by_network = snap.is_some_and(|snap| {
                paths
                    .distance(snap.node)
                    .is_some_and(|distance| distance + snap.distance_m <= limit_m)
            });
            by_network
                || fallbacks.iter().any(|&station| {
                    Geodesic.distance(Point(station), Point(home.location)) <= limit_m
                })
        })
        .collect();
    summarise(homes, covered)
}

fn summarise(homes: &[Home], covered: Vec<bool>) -> Coverage {
    let mut per_community: BTreeMap<&str, CommunityCoverage> = BTreeMap::new();
    for (home, &is_covered) in homes.iter().zip(&covered) {
        let entry = per_community
            .entry(&home.community_code)
            .or_insert_with(|| CommunityCoverage {
                code: home.community_code.clone(),
                covered_households: 0,
                total_households: 0,
                uncovered_buildings: 0,
            });
        entry.total_households += home.households;
        if is_covered {
            entry.covered_households += home.households;
        } else {
            entry.uncovered_buildings += 1;
        }
    }
    let per_community: Vec<CommunityCoverage> = per_community.into_values().collect();
    Coverage {
        covered_households: per_community.iter().map(|c| c.covered_households).sum(),
        total_households: per_community.iter().map(|c| c.total_households).sum(),
        uncovered_buildings: per_community.iter().map(|c| c.uncovered_buildings).sum(),
        per_community,
        covered,
    }
}
