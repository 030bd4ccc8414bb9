//! [`GridUnions`]: the union of the grids of each community and of each
//! street, with the area each union hides.
//!
//! The sum of the members' areas minus the area of their union is at least
//! the area any two members share: a point inside k ≥ 2 members is counted
//! k times in the sum and once in the union. So when that excess is below
//! the smallest reportable overlap, no two members overlap reportably and
//! [`GridOverlaps`](crate::GridOverlaps) can skip their overlay. In a clean
//! city, where neighbours only share edges, that skips almost every pair at
//! the price of one union per community (which [`CoverGaps`](crate::CoverGaps)
//! needs anyway) and one per street.

use crate::measure::area_m2;
use crate::Grid;
use geo::{unary_union, MultiPolygon};
use std::collections::BTreeMap;

/// Below this `min_area_m2` the screen is off and every pair is overlaid.
///
/// The overlay rounds coordinates to an integer lattice scaled to its inputs,
/// a few micrometres for a street, which moves a union's area by a few
/// hundredths of a square metre at most; half of this floor stays well above
/// that, so rounding can never hide a reportable overlap.
pub const SCREEN_MIN_AREA_M2: f64 = 0.5;

/// Unions by community code and by street (the first 9 digits of the
/// community code), with their hidden areas.
#[derive(Debug, Default)]
pub struct GridUnions {
    communities: BTreeMap<String, Cluster>,
    /// Excess of the union of the street's community unions.
    streets: BTreeMap<String, f64>,
}

#[derive(Debug)]
struct Cluster {
    union: MultiPolygon<f64>,
    /// Sum of the members' areas minus the union's area, in m².
    excess_m2: f64,
}

impl GridUnions {
    pub(crate) fn new(grids: &[Grid]) -> Self {
        let mut members: BTreeMap<&str, Vec<&MultiPolygon<f64>>> = BTreeMap::new();
        for grid in grids {
            members
                .entry(grid.community_code.as_str())
                .or_default()
                .push(&grid.polygon);
        }
        let communities: BTreeMap<String, Cluster> = members
            .into_iter()
            .map(|(code, polygons)| (code.to_owned(), Cluster::of(&polygons)))
            .collect();
        let mut by_street: BTreeMap<&str, Vec<&MultiPolygon<f64>>> = BTreeMap::new();
        for (code, cluster) in &communities {
            by_street
                .entry(street_of(code))
                .or_default()
                .push(&cluster.union);
        }
        let streets = by_street
            .into_iter()
            .map(|(street, unions)| (street.to_owned(), Cluster::of(&unions).excess_m2))
            .collect();
        Self {
            communities,
            streets,
        }
    }

    /// The union of the grids whose community code is `code`.
    pub(crate) fn community_union(&self, code: &str) -> Option<&MultiPolygon<f64>> {
        self.communities.get(code).map(|cluster| &cluster.union)
    }

    /// An upper bound of the area `first` and `second` share, if the unions
    /// give one: the excess of the smallest cluster holding both. Grids of
    /// different streets have none.
    pub(crate) fn shared_area_bound_m2(&self, first: &Grid, second: &Grid) -> Option<f64> {
        if first.community_code == second.community_code {
            return self
                .communities
                .get(&first.community_code)
                .map(|cluster| cluster.excess_m2);
        }
        let street = street_of(&first.community_code);
        if street == street_of(&second.community_code) {
            return self.streets.get(street).copied();
        }
        None
    }
}

impl Cluster {
    fn of(members: &[&MultiPolygon<f64>]) -> Self {
        let union = unary_union(members.iter().copied());
        let members_m2: f64 = members.iter().map(|polygon| area_m2(polygon)).sum();
        let excess_m2 = members_m2 - area_m2(&union);
        Self { union, excess_m2 }
    }
}

/// Codes nest (street 9 digits, community 12): the street of a community is
/// its code's first 9 characters. A shorter code is its own street, which
/// only makes the screen coarser, never wrong.
fn street_of(community_code: &str) -> &str {
    community_code.get(..9).unwrap_or(community_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{grid, rectangle};

    #[test]
    fn the_excess_bounds_the_shared_area() {
        let grids = [
            grid("370681001001001", rectangle(120.40, 37.60, 120.41, 37.61)),
            // Shares an edge only.
            grid("370681001001002", rectangle(120.41, 37.60, 120.42, 37.61)),
            // Next community, reaches 0.001° (about 98,000 m²) into the second.
            grid("370681001002001", rectangle(120.419, 37.60, 120.43, 37.61)),
            // Another street.
            grid("370681002001001", rectangle(120.43, 37.60, 120.44, 37.61)),
        ];
        let unions = GridUnions::new(&grids);
        let within = unions
            .shared_area_bound_m2(&grids[0], &grids[1])
            .unwrap_or(f64::NAN);
        assert!(within.abs() < 0.01, "{within}");
        let across = unions
            .shared_area_bound_m2(&grids[1], &grids[2])
            .unwrap_or(f64::NAN);
        assert!((across - 98_100.0).abs() < 500.0, "{across}");
        assert_eq!(unions.shared_area_bound_m2(&grids[2], &grids[3]), None);
        assert!(unions.community_union("370681001001").is_some());
    }
}
