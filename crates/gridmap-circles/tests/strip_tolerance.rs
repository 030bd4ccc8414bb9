//! The circle polygon against two references on a dense street grid:
//!
//! - the exact rule: a point is in the circle when it lies within
//!   `frontage_m` of a walked piece. Points more than 0.4 m inside that
//!   boundary must be in the polygon, points outside it must not be (round
//!   caps and joins are chords that cut at most 0.27 m inside the true
//!   circle, and trails are straightened by at most 0.1 m);
//! - the old drawing, geo's `Buffer` of every piece as one
//!   `MultiLineString`: the two polygons' areas agree within 0.1 % and their
//!   symmetric difference is no wider on average than a 0.3 m band along the
//!   old outline.

use geo::{
    Area, BooleanOps, Buffer, Contains, Coord, Distance, Euclidean, Length, Line, LineString,
    MultiLineString, MultiPolygon, Point,
};
use gridmap_circles::{
    network_strip, service_circles, walked_network, CircleMethod, Parameters, ShortestPaths,
    WalkGraph,
};

/// A 3 km square of streets `spacing` m apart (a divisor of 3,000 and a
/// multiple of 20) near Zibo, every street a vertex every 20 m jittered by
/// up to 3 m (so no two consecutive pieces are collinear, as on digitised
/// roads), and a diagonal avenue. At 100 m the strips of neighbouring
/// streets just touch; at 40 m they overlap so much that most pieces lie
/// deep inside the circle.
fn street_grid(spacing: u32) -> (Vec<LineString>, Coord) {
    let origin = Coord { x: 118.05, y: 36.8 };
    let (metres_x, metres_y) = (89_300.0, 110_950.0);
    let mut seed: u64 = 7;
    let mut jitter = move || {
        // A small linear congruential generator: deterministic, no crate.
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as f64 / f64::from(1_u32 << 31) - 0.5) * 6.0
    };
    let to_degrees = |x: f64, y: f64| Coord {
        x: origin.x + x / metres_x,
        y: origin.y + y / metres_y,
    };
    let mut roads = Vec::new();
    let per_street = spacing / 20;
    for street in 0..=3000 / spacing {
        let offset = f64::from(street * spacing);
        let mut east_west = Vec::new();
        let mut north_south = Vec::new();
        for step in 0..=150 {
            let along = f64::from(step) * 20.0;
            // Crossings stay exact so that the streets connect.
            let (dx, dy) = if step % per_street == 0 {
                (0.0, 0.0)
            } else {
                (jitter(), jitter())
            };
            east_west.push(to_degrees(along + dx, offset + dy));
            north_south.push(to_degrees(offset + dy, along + dx));
        }
        roads.push(LineString::new(east_west));
        roads.push(LineString::new(north_south));
    }
    roads.push(LineString::new(
        (0..=30)
            .map(|step| to_degrees(f64::from(step) * 100.0, f64::from(step) * 100.0))
            .collect(),
    ));
    (roads, origin)
}

fn stations(origin: Coord) -> Vec<Coord> {
    let at = |x: f64, y: f64| Coord {
        x: origin.x + x / 89_300.0,
        y: origin.y + y / 110_950.0,
    };
    vec![
        // On a crossing, inside a block, near the grid's corner, and 1 km
        // beyond its edge (a fallback disc).
        at(1500.0, 1500.0),
        at(1234.0, 1777.0),
        at(150.0, 60.0),
        at(-1000.0, 1500.0),
    ]
}

fn old_strip(pieces: &[Line], half_width_m: f64) -> MultiPolygon {
    MultiLineString::new(
        pieces
            .iter()
            .map(|line| vec![line.start, line.end].into())
            .collect(),
    )
    .buffer(half_width_m)
}

fn outline_length(polygon: &MultiPolygon) -> f64 {
    polygon
        .iter()
        .flat_map(|part| std::iter::once(part.exterior()).chain(part.interiors()))
        .map(|ring| Euclidean.length(ring))
        .sum()
}

/// `roads` without the pieces whose middle lies inside one of `parks`
/// (west, south, east, north in metres from `origin`, as `street_grid`
/// measures them): blocks with no street through them, true holes of a
/// circle when wider than two frontages.
fn with_parks(roads: &[LineString], origin: Coord, parks: &[[f64; 4]]) -> Vec<LineString> {
    let in_park = |a: Coord, b: Coord| {
        let x = ((a.x + b.x) / 2.0 - origin.x) * 89_300.0;
        let y = ((a.y + b.y) / 2.0 - origin.y) * 110_950.0;
        parks
            .iter()
            // Clear of the jittered streets along the park's edges.
            .any(|park| {
                x > park[0] + 5.0 && x < park[2] - 5.0 && y > park[1] + 5.0 && y < park[3] - 5.0
            })
    };
    let mut kept = Vec::new();
    for road in roads {
        let mut run: Vec<Coord> = vec![road.0[0]];
        for pair in road.0.windows(2) {
            if in_park(pair[0], pair[1]) {
                if run.len() > 1 {
                    kept.push(LineString::new(std::mem::take(&mut run)));
                }
                run = vec![pair[1]];
            } else {
                run.push(pair[1]);
            }
        }
        if run.len() > 1 {
            kept.push(LineString::new(run));
        }
    }
    kept
}

#[test]
fn the_strip_keeps_the_buffer_rule_within_0_4_m() {
    for spacing in [100, 40] {
        let (roads, origin) = street_grid(spacing);
        check_tolerance(&format!("{spacing} m grid"), &roads, origin);
    }
}

/// Parks deep inside a dense circle: the streets around each park keep
/// their pieces (their buffers reach the park's open middle) while all
/// around them pieces are left out for deep cells, so the strip of kept
/// pieces has islands inside the hole the cells fill, and the park's middle
/// must stay a hole of the circle.
#[test]
fn parks_inside_the_circle_stay_holes() {
    let (roads, origin) = street_grid(40);
    // 160 m blocks between streets, a few hundred metres from the first
    // station (at 1,500 m, 1,500 m): open 60 m squares in their middles.
    let parks = [
        [1520.0, 1520.0, 1680.0, 1680.0],
        [1760.0, 1280.0, 1920.0, 1440.0],
        [1240.0, 1760.0, 1400.0, 1920.0],
    ];
    let roads = with_parks(&roads, origin, &parks);
    check_tolerance("40 m grid with parks", &roads, origin);
    let graph = WalkGraph::new(&roads);
    let mut paths = ShortestPaths::new(&graph);
    let parameters = Parameters::default();
    let station = stations(origin)[0];
    let network = walked_network(&graph, &mut paths, station, &parameters).unwrap();
    let strip = network_strip(&network.pieces, parameters.frontage_m);
    let holes: usize = strip.iter().map(|part| part.interiors().len()).sum();
    assert!(holes >= parks.len(), "{holes} holes");
    for park in parks {
        // The station is the projection's origin, at (1500, 1500) m.
        let middle = Point::new(
            (park[0] + park[2]) / 2.0 - 1500.0,
            (park[1] + park[3]) / 2.0 - 1500.0,
        );
        assert!(!strip.contains(&middle), "{park:?}");
    }
}

fn check_tolerance(label: &str, roads: &[LineString], origin: Coord) {
    let graph = WalkGraph::new(roads);
    let mut paths = ShortestPaths::new(&graph);
    for minutes in [10.0, 15.0] {
        let parameters = Parameters {
            minutes,
            ..Parameters::default()
        };
        let frontage = parameters.frontage_m;
        for (index, &station) in stations(origin).iter().take(3).enumerate() {
            let network = walked_network(&graph, &mut paths, station, &parameters)
                .expect("the station is near the grid");
            assert!(network.pieces.len() > 200, "{}", network.pieces.len());
            let new = network_strip(&network.pieces, frontage);
            let old = old_strip(&network.pieces, frontage);

            let (new_area, old_area) = (new.unsigned_area(), old.unsigned_area());
            let change = (new_area - old_area).abs() / old_area;
            assert!(
                change < 1e-3,
                "{label}, station {index}, {minutes} min: {new_area} vs {old_area} m²"
            );
            let apart = new.xor(&old).unsigned_area();
            let band = apart / outline_length(&old);
            assert!(
                band < 0.3,
                "{label}, station {index}, {minutes} min: {apart} m² apart, a {band} m band"
            );

            // The exact rule on a lattice of points 23 m apart.
            let mut inside_checked = 0;
            let mut outside_checked = 0;
            let reach = parameters.limit_m() + frontage + 10.0;
            let mut y = -reach;
            while y <= reach {
                let mut x = -reach;
                while x <= reach {
                    let point = Point::new(x, y);
                    let nearest = network
                        .pieces
                        .iter()
                        .map(|piece| Euclidean.distance(&point, piece))
                        .fold(f64::INFINITY, f64::min);
                    if nearest <= frontage - 0.4 {
                        assert!(
                            new.contains(&point),
                            "({x}, {y}) is {nearest} m from the network"
                        );
                        inside_checked += 1;
                    } else if nearest > frontage + 1e-6 {
                        assert!(
                            !new.contains(&point),
                            "({x}, {y}) is {nearest} m from the network"
                        );
                        outside_checked += 1;
                    }
                    x += 23.0;
                }
                y += 23.0;
            }
            assert!(
                inside_checked > 500 && outside_checked > 200,
                "{inside_checked} inside, {outside_checked} outside"
            );
        }
    }
}

#[test]
fn service_circles_draw_the_strip_in_lon_lat() {
    let (roads, origin) = street_grid(100);
    let graph = WalkGraph::new(&roads);
    let parameters = Parameters::default();
    let stations = stations(origin);
    let circles = service_circles(&graph, &stations, &parameters);
    let mut paths = ShortestPaths::new(&graph);
    for (circle, &station) in circles.iter().zip(&stations).take(3) {
        assert_eq!(circle.method, CircleMethod::Network);
        let network = walked_network(&graph, &mut paths, station, &parameters).unwrap();
        let strip = network_strip(&network.pieces, parameters.frontage_m);
        assert_eq!(
            circle.polygon,
            network.projection.inverse_multi_polygon(&strip)
        );
    }
    assert_eq!(circles[3].method, CircleMethod::StraightLineFallback);
}
