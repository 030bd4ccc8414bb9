//! One service circle per station: the walked network, buffered.

use crate::projection::LocalMetres;
use crate::strip::network_strip;
use crate::{Parameters, ShortestPaths, Snap, WalkGraph};
use geo::{Buffer, Coord, Line, MultiPolygon, Point};
use serde::{Deserialize, Serialize};

/// How a circle was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircleMethod {
    /// Along the walking network.
    Network,
    /// No road node within `max_snap_m`: a disc of the full walking distance.
    StraightLineFallback,
}

impl CircleMethod {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CircleMethod::Network => "network",
            CircleMethod::StraightLineFallback => "straight_line_fallback",
        }
    }
}

/// The circle of one station.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCircle {
    /// In CGCS2000 lon/lat degrees.
    pub polygon: MultiPolygon,
    pub method: CircleMethod,
    /// The walking distance, speed × minutes.
    pub distance_m: f64,
    /// Distance from the station to the node it entered the network at;
    /// `None` for a fallback circle.
    pub snap_m: Option<f64>,
}

/// The circle of each station (lon/lat), in input order.
///
/// See the crate documentation for the polygon rule.
#[must_use]
pub fn service_circles(
    graph: &WalkGraph,
    stations: &[Coord],
    parameters: &Parameters,
) -> Vec<ServiceCircle> {
    let mut paths = ShortestPaths::new(graph);
    stations
        .iter()
        .map(|&station| service_circle(graph, &mut paths, station, parameters))
        .collect()
}

fn service_circle(
    graph: &WalkGraph,
    paths: &mut ShortestPaths<'_>,
    station: Coord,
    parameters: &Parameters,
) -> ServiceCircle {
    let limit_m = parameters.limit_m();
    let Some(network) = walked_network(graph, paths, station, parameters) else {
        let projection = LocalMetres::new(station);
        let disc = Point::new(0.0, 0.0).buffer(limit_m);
        return ServiceCircle {
            polygon: projection.inverse_multi_polygon(&disc),
            method: CircleMethod::StraightLineFallback,
            distance_m: limit_m,
            snap_m: None,
        };
    };
    let strip = network_strip(&network.pieces, parameters.frontage_m);
    ServiceCircle {
        polygon: network.projection.inverse_multi_polygon(&strip),
        method: CircleMethod::Network,
        distance_m: limit_m,
        snap_m: Some(network.snap_m),
    }
}

/// The network one station reaches, as straight pieces in local metres
/// around the station: what a network circle buffers.
#[derive(Debug, Clone)]
pub struct WalkedNetwork {
    /// Centred on the station.
    pub projection: LocalMetres,
    /// The walk to the network, every edge reached in full and the reached
    /// part of every other edge, in `projection`'s metres.
    pub pieces: Vec<Line>,
    /// Distance from the station to the network, as [`WalkGraph::snap`]
    /// reports it (every entry node is as near within [`TIE_SLACK_M`]).
    pub snap_m: f64,
}

/// The network `station` reaches within the limit, or `None` when no node
/// lies within `max_snap_m` (a fallback circle). `paths` is reused scratch
/// space; see the crate documentation for the rule.
#[must_use]
pub fn walked_network(
    graph: &WalkGraph,
    paths: &mut ShortestPaths<'_>,
    station: Coord,
    parameters: &Parameters,
) -> Option<WalkedNetwork> {
    let limit_m = parameters.limit_m();
    let projection = LocalMetres::new(station);
    let entries = station_entries(graph, station, parameters);
    if entries.is_empty() {
        return None;
    }
    // As `WalkGraph::snap` reports it: the entries lie within 1 mm of it.
    let snap_m = graph.snap(station)?.distance_m;
    let mut pieces = Vec::new();
    // The walk from the station to the network is part of the circle too,
    // cut where the limit runs out when the network is out of reach.
    for entry in &entries {
        let entry_node = projection.forward(graph.node(entry.node));
        pieces.push(cut(
            Coord { x: 0.0, y: 0.0 },
            entry_node,
            limit_m.min(entry.distance_m),
            entry.distance_m,
        ));
    }
    let sources: Vec<(usize, f64)> = entries
        .iter()
        .map(|entry| (entry.node, entry.distance_m))
        .collect();
    paths.run(&sources, limit_m);
    for &node in paths.reached() {
        let Some(distance) = paths.distance(node) else {
            continue;
        };
        let here = projection.forward(graph.node(node));
        let left_here = limit_m - distance;
        for &(next, length_m) in graph.neighbours(node) {
            let there = projection.forward(graph.node(next));
            match paths.distance(next) {
                // Both ends reached: the edge is walked in full if the two
                // remainders meet, otherwise each end contributes its part
                // (the far end adds its own piece when it is visited).
                Some(distance_there) => {
                    if node > next {
                        continue;
                    }
                    let left_there = limit_m - distance_there;
                    if left_here + left_there >= length_m {
                        pieces.push(Line::new(here, there));
                    } else {
                        pieces.push(cut(here, there, left_here, length_m));
                        pieces.push(cut(there, here, left_there, length_m));
                    }
                }
                None => pieces.push(cut(here, there, left_here, length_m)),
            }
        }
    }
    Some(WalkedNetwork {
        projection,
        pieces,
        snap_m,
    })
}

/// Two nodes whose distances from a station differ by less than this are
/// equally near: 1 mm, far below any digitising precision, far above
/// rounding in the geodesic distance.
pub const TIE_SLACK_M: f64 = 1e-3;

/// The nodes a station enters the network at: its nearest node and every
/// node as near within [`TIE_SLACK_M`], if within `max_snap_m`; none for a
/// fallback station.
///
/// A station midway between two nodes (a generated one at a block centre,
/// say) would otherwise enter at whichever the R-tree returns first, which
/// depends on every road the graph was built from: the same station then got
/// different circles from the whole city's roads and from one community's.
#[must_use]
pub fn station_entries(graph: &WalkGraph, station: Coord, parameters: &Parameters) -> Vec<Snap> {
    graph
        .snap_ties(station, TIE_SLACK_M)
        .into_iter()
        .filter(|snap| snap.distance_m <= parameters.max_snap_m)
        .collect()
}

/// The part of the segment `from`→`to` (geodesic length `length_m`) within
/// `reach_m` of `from`, as a fraction of the segment in local metres.
fn cut(from: Coord, to: Coord, reach_m: f64, length_m: f64) -> Line {
    if length_m <= 0.0 || reach_m >= length_m {
        return Line::new(from, to);
    }
    let fraction = (reach_m / length_m).max(0.0);
    Line::new(from, from + (to - from) * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{line_string, Area, Contains};

    #[test]
    fn a_circle_follows_the_road_and_a_lonely_station_falls_back() {
        // A straight road 0.02° (about 1.76 km) long, station beside its west end.
        let road = line_string![(x: 120.00, y: 37.0), (x: 120.01, y: 37.0), (x: 120.02, y: 37.0)];
        let graph = WalkGraph::new(&[road]);
        let parameters = Parameters {
            minutes: 10.0,
            speed_m_s: 1.0,
            ..Parameters::default()
        };
        let stations = [
            Coord {
                x: 120.0,
                y: 37.0002,
            },
            Coord { x: 120.0, y: 37.1 },
        ];
        let circles = service_circles(&graph, &stations, &parameters);
        let network = &circles[0];
        assert_eq!(network.method, CircleMethod::Network);
        // 600 m minus the 22 m walk to the road is 578 m, about 0.00650° east.
        assert!(network.polygon.contains(&Point::new(120.0064, 37.0)));
        assert!(!network.polygon.contains(&Point::new(120.0080, 37.0)));
        // The frontage strip is 50 m (0.00045°) wide on each side.
        assert!(network.polygon.contains(&Point::new(120.003, 37.0004)));
        assert!(!network.polygon.contains(&Point::new(120.003, 37.0006)));
        assert_eq!(circles[1].method, CircleMethod::StraightLineFallback);
        assert!(circles[1].polygon.contains(&Point::new(120.0, 37.105)));
    }

    #[test]
    fn a_station_midway_between_two_nodes_enters_at_both() {
        // Two roads ending 0.002° (about 178 m) apart on one parallel, one
        // leading west and one north; the station sits exactly midway.
        let west = line_string![(x: 119.99, y: 37.0), (x: 120.0, y: 37.0)];
        let north = line_string![(x: 120.002, y: 37.0), (x: 120.002, y: 37.01)];
        let far = line_string![(x: 121.0, y: 38.0), (x: 121.001, y: 38.0)];
        let station = [Coord {
            x: 120.001,
            y: 37.0,
        }];
        let parameters = Parameters {
            minutes: 10.0,
            speed_m_s: 1.0,
            ..Parameters::default()
        };
        let circles: Vec<ServiceCircle> = [
            vec![west.clone(), north.clone()],
            vec![north.clone(), west.clone(), far.clone()],
            vec![far, north, west],
        ]
        .iter()
        .map(|roads| service_circles(&WalkGraph::new(roads), &station, &parameters).remove(0))
        .collect();
        for circle in &circles {
            assert_eq!(circle.method, CircleMethod::Network);
            // 600 m minus the 89 m walk: about 511 m along either road.
            assert!(circle.polygon.contains(&Point::new(119.995, 37.0)));
            assert!(circle.polygon.contains(&Point::new(120.002, 37.004)));
            assert!(
                (circle.polygon.unsigned_area() - circles[0].polygon.unsigned_area()).abs() < 1e-12
            );
        }
    }
}
