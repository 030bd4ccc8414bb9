//! Which points lie within any circle, and the totals per community.
//!
//! Two kinds of point are counted with one rule: homes (buildings, weighted
//! by their households) and rider activity reports (weight 1 each). Both are
//! attached to the graph at their nearest node ([`snap_points`]), and
//! [`covered_points`] decides for each whether a station's circle reaches it.

use crate::circle::station_entries;
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

/// A weighted point of demand other than a home, such as a rider activity
/// report: where it is, the community it lies in and what it counts for.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub community_code: String,
    pub weight: i64,
    pub location: Coord,
}

/// Coverage of a set of [`Demand`] points: covered and total weight, overall
/// and per community.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemandCoverage {
    /// Per point, in input order: whether any circle covers it.
    #[serde(skip)]
    pub covered: Vec<bool>,
    /// The weight of the covered points.
    #[serde(rename = "covered")]
    pub covered_weight: i64,
    /// The weight of all points.
    pub total: i64,
    pub per_community: Vec<CommunityDemand>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommunityDemand {
    pub code: String,
    pub covered: i64,
    pub total: i64,
}

/// Each point attached to the graph at its nearest node.
#[must_use]
pub fn snap_points(
    graph: &WalkGraph,
    points: impl IntoIterator<Item = Coord>,
) -> Vec<Option<Snap>> {
    points.into_iter().map(|point| graph.snap(point)).collect()
}

/// Each home attached to the graph at its nearest node.
#[must_use]
pub fn snap_homes(graph: &WalkGraph, homes: &[Home]) -> Vec<Option<Snap>> {
    snap_points(graph, homes.iter().map(|home| home.location))
}

/// Whether the circles of `stations` (lon/lat) cover each of `points`, whose
/// nodes are `snaps` (from [`snap_points`]).
///
/// A point is covered when the network distance from the nearest station to
/// the point's nearest node, plus the straight walk from that node to the
/// point, is within the limit; or, for a station whose circle is a
/// straight-line fallback, when the point is within the limit of it.
#[must_use]
pub fn covered_points(
    graph: &WalkGraph,
    stations: &[Coord],
    points: &[Coord],
    snaps: &[Option<Snap>],
    parameters: &Parameters,
) -> Vec<bool> {
    let limit_m = parameters.limit_m();
    let mut sources = Vec::new();
    let mut fallbacks = Vec::new();
    for &station in stations {
        let entries = station_entries(graph, station, parameters);
        if entries.is_empty() {
            fallbacks.push(station);
        }
        sources.extend(entries.iter().map(|snap| (snap.node, snap.distance_m)));
    }
    let mut paths = ShortestPaths::new(graph);
    paths.run(&sources, limit_m);
    points
        .iter()
        .zip(snaps)
        .map(|(&point, snap)| {
            let by_network = snap.is_some_and(|snap| {
                paths
                    .distance(snap.node)
                    .is_some_and(|distance| distance + snap.distance_m <= limit_m)
            });
            by_network
                || fallbacks
                    .iter()
                    .any(|&station| Geodesic.distance(Point(station), Point(point)) <= limit_m)
        })
        .collect()
}

/// The coverage of `homes` by the circles of `stations` (lon/lat), by the
/// rule of [`covered_points`], weighted by households.
#[must_use]
pub fn coverage(
    graph: &WalkGraph,
    stations: &[Coord],
    homes: &[Home],
    home_snaps: &[Option<Snap>],
    parameters: &Parameters,
) -> Coverage {
    let locations: Vec<Coord> = homes.iter().map(|home| home.location).collect();
    let covered = covered_points(graph, stations, &locations, home_snaps, parameters);
    summarise(homes, covered)
}

/// The coverage of weighted `points` by the circles of `stations` (lon/lat),
/// by the rule of [`covered_points`].
#[must_use]
pub fn demand_coverage(
    graph: &WalkGraph,
    stations: &[Coord],
    points: &[Demand],
    snaps: &[Option<Snap>],
    parameters: &Parameters,
) -> DemandCoverage {
    let locations: Vec<Coord> = points.iter().map(|point| point.location).collect();
    let covered = covered_points(graph, stations, &locations, snaps, parameters);
    let mut per_community: BTreeMap<&str, CommunityDemand> = BTreeMap::new();
    for (point, &is_covered) in points.iter().zip(&covered) {
        let entry = per_community
            .entry(&point.community_code)
            .or_insert_with(|| CommunityDemand {
                code: point.community_code.clone(),
                covered: 0,
                total: 0,
            });
        entry.total += point.weight;
        if is_covered {
            entry.covered += point.weight;
        }
    }
    let per_community: Vec<CommunityDemand> = per_community.into_values().collect();
    DemandCoverage {
        covered_weight: per_community.iter().map(|c| c.covered).sum(),
        total: per_community.iter().map(|c| c.total).sum(),
        per_community,
        covered,
    }
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
