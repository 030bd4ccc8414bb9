//! One service circle per station: the walked network, buffered.

use crate::projection::LocalMetres;
use crate::{Parameters, ShortestPaths, WalkGraph};
use geo::{Buffer, Coord, Line, MultiLineString, MultiPolygon, Point};
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
    let projection = LocalMetres::new(station);
    let snap = graph
        .snap(station)
        .filter(|snap| snap.distance_m <= parameters.max_snap_m);
    let Some(snap) = snap else {
        let disc = Point::new(0.0, 0.0).buffer(limit_m);
        return ServiceCircle {
            polygon: projection.inverse_multi_polygon(&disc),
            method: CircleMethod::StraightLineFallback,
            distance_m: limit_m,
            snap_m: None,
        };
    };
    let mut pieces = Vec::new();
    // The walk from the station to the network is part of the circle too,
    // cut where the limit runs out when the network is out of reach.
    let snap_node = projection.forward(graph.node(snap.node));
    pieces.push(cut(
        Coord { x: 0.0, y: 0.0 },
        snap_node,
        limit_m.min(snap.distance_m),
        snap.distance_m,
    ));
    paths.run(&[(snap.node, snap.distance_m)], limit_m);
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
    let network = MultiLineString::new(
        pieces
            .into_iter()
            .map(|line| vec![line.start, line.end].into())
            .collect(),
    );
    let strip = network.buffer(parameters.frontage_m);
    ServiceCircle {
        polygon: projection.inverse_multi_polygon(&strip),
        method: CircleMethod::Network,
        distance_m: limit_m,
        snap_m: Some(snap.distance_m),
    }
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
    use geo::{line_string, Contains};

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
}
