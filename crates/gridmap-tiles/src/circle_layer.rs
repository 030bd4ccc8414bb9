//! The `service_circles` layer: the walking circle of every station, by the
//! rule of [`crate::layers::SERVICE_CIRCLE_MINUTES`], computed with
//! gridmap-circles over the whole road network.
//!
//! A snapshot keeps the walk graph and each station's circle, so a change
//! recomputes only what it can move: a station whose row changed gets a new
//! circle; a road change recomputes the circles of the stations within
//! walking distance plus frontage of it (no point of a circle lies farther
//! from its station, and the network distance to any node it reaches is at
//! least the straight one), after rebuilding the graph.

use crate::computed::{grow_lonlat_box, lonlat_boxes_meet, ComputedFeature, ComputedLayer};
use crate::layers::{find_layer, service_circle_minutes, SERVICE_CIRCLE_MINUTES};
use crate::SnapshotError;
use gridmap_circles::{service_circles, Coord, LineString, Parameters, ServiceCircle, WalkGraph};
use gridmap_store::circle_queries::{load_circle_stations, load_roads, CircleStation};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The layer name.
pub const SERVICE_CIRCLES: &str = "service_circles";

/// What a circle snapshot is computed from.
#[derive(Debug, Clone)]
pub struct CircleInputs {
    /// Every station of a kind that gets a circle, in code order.
    pub stations: Vec<CircleStation>,
    /// Every road, when read (at start-up and after a road change).
    pub roads: Option<Vec<LineString<f64>>>,
}

/// Reads the stations, and the roads when `with_roads`, for
/// [`CircleSnapshot::build`] or [`CircleSnapshot::update`].
///
/// # Errors
/// [`SnapshotError::Store`] when a read fails.
pub async fn fetch_circle_inputs(
    pool: &sqlx::PgPool,
    with_roads: bool,
) -> Result<CircleInputs, SnapshotError> {
    let store_error = |source| SnapshotError::Store {
        layer: SERVICE_CIRCLES,
        source,
    };
    let mut stations = Vec::new();
    for (kind, _) in SERVICE_CIRCLE_MINUTES {
        stations.extend(
            load_circle_stations(pool, kind, None)
                .await
                .map_err(store_error)?,
        );
    }
    stations.sort_by(|a, b| a.code.cmp(&b.code));
    let roads = if with_roads {
        Some(load_roads(pool, None, 0.0).await.map_err(store_error)?)
    } else {
        None
    };
    Ok(CircleInputs { stations, roads })
}

/// The walking parameters of a station of `kind`: its minutes at the
/// default speed and frontage.
#[must_use]
pub fn circle_parameters(kind: &str) -> Option<Parameters> {
    Some(Parameters {
        minutes: service_circle_minutes(kind)?,
        ..Parameters::default()
    })
}

/// The circles of every station and the layer drawn from them.
#[derive(Debug)]
pub struct CircleSnapshot {
    graph: Arc<WalkGraph>,
    /// By station code.
    circles: BTreeMap<String, (CircleStation, ServiceCircle)>,
    layer: ComputedLayer,
}

impl CircleSnapshot {
    /// Computes every circle (CPU work: run it off the async workers).
    /// Inputs without roads give a graph without roads: every circle falls
    /// back to a straight-line disc.
    #[must_use]
    pub fn build(inputs: CircleInputs) -> Self {
        let graph = Arc::new(WalkGraph::new(inputs.roads.as_deref().unwrap_or_default()));
        let circles = compute(&graph, inputs.stations.iter());
        Self::assemble(graph, circles)
    }

    /// The snapshot after a change: `inputs` holds every station and, if
    /// roads changed, every road; `road_changes` the extents (degrees) of
    /// the road changes, `None` for a change of unknown extent. Circles
    /// that cannot have moved are kept.
    #[must_use]
    pub fn update(&self, inputs: CircleInputs, road_changes: &[Option<[f64; 4]>]) -> Self {
        let graph = match &inputs.roads {
            Some(roads) => Arc::new(WalkGraph::new(roads)),
            None => Arc::clone(&self.graph),
        };
        let roads_changed = inputs.roads.is_some();
        let mut kept = BTreeMap::new();
        let mut recompute = Vec::new();
        for station in &inputs.stations {
            let previous = self
                .circles
                .get(&station.code)
                .filter(|(old, _)| old == station);
            let near_a_road_change = roads_changed
                && circle_parameters(&station.kind).is_some_and(|parameters| {
                    let reach = grow_lonlat_box(
                        [station.lon, station.lat, station.lon, station.lat],
                        parameters.limit_m() + parameters.frontage_m,
                    );
                    road_changes
                        .iter()
                        .any(|change| change.is_none_or(|bbox| lonlat_boxes_meet(bbox, reach)))
                });
            match previous {
                Some(entry) if !near_a_road_change => {
                    kept.insert(station.code.clone(), entry.clone());
                }
                _ => recompute.push(station),
            }
        }
        let mut circles = compute(&graph, recompute.into_iter());
        circles.extend(kept);
        Self::assemble(graph, circles)
    }

    /// The drawn layer.
    #[must_use]
    pub fn layer(&self) -> &ComputedLayer {
        &self.layer
    }

    /// Number of circles.
    #[must_use]
    pub fn circle_count(&self) -> usize {
        self.circles.len()
    }

    /// The station row and circle of the station `code`, as computed.
    #[must_use]
    pub fn circle(&self, code: &str) -> Option<(&CircleStation, &ServiceCircle)> {
        self.circles
            .get(code)
            .map(|(station, circle)| (station, circle))
    }

    fn assemble(
        graph: Arc<WalkGraph>,
        circles: BTreeMap<String, (CircleStation, ServiceCircle)>,
    ) -> Self {
        let features: Vec<ComputedFeature> = circles
            .values()
            .map(|(station, circle)| {
                let minutes = service_circle_minutes(&station.kind).unwrap_or_default();
                (
                    vec![
                        Some(station.code.clone()),
                        Some(station.name.clone()),
                        Some(station.kind.clone()),
                        Some(number(minutes)),
                        Some(number(circle.distance_m)),
                        Some(circle.method.as_str().to_owned()),
                    ],
                    geo_types::Geometry::MultiPolygon(circle.polygon.clone()),
                )
            })
            .collect();
        let def = find_layer(SERVICE_CIRCLES).expect("the catalogue lists service_circles");
        Self {
            graph,
            circles,
            layer: ComputedLayer::build(def, features),
        }
    }
}

/// The circles of `stations`, by code, grouped by kind so each kind's
/// parameters apply.
fn compute<'a>(
    graph: &WalkGraph,
    stations: impl Iterator<Item = &'a CircleStation>,
) -> BTreeMap<String, (CircleStation, ServiceCircle)> {
    let mut by_kind: BTreeMap<&str, Vec<&CircleStation>> = BTreeMap::new();
    for station in stations {
        by_kind
            .entry(station.kind.as_str())
            .or_default()
            .push(station);
    }
    let mut circles = BTreeMap::new();
    for (kind, stations) in by_kind {
        let Some(parameters) = circle_parameters(kind) else {
            continue;
        };
        let points: Vec<Coord> = stations
            .iter()
            .map(|station| Coord {
                x: station.lon,
                y: station.lat,
            })
            .collect();
        for (station, circle) in
            stations
                .into_iter()
                .zip(circles_in_parallel(graph, &points, &parameters))
        {
            circles.insert(station.code.clone(), (station.clone(), circle));
        }
    }
    circles
}

/// Stations per thread below which one thread does all: a circle takes
/// milliseconds, a thread far less, but a handful is not worth splitting.
const MIN_STATIONS_PER_THREAD: usize = 16;

/// [`service_circles`] of `points`, in order, split over the available
/// cores: each circle depends on the graph and its own station only.
fn circles_in_parallel(
    graph: &WalkGraph,
    points: &[Coord],
    parameters: &Parameters,
) -> Vec<ServiceCircle> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(points.len() / MIN_STATIONS_PER_THREAD)
        .max(1);
    if threads == 1 {
        return service_circles(graph, points, parameters);
    }
    let chunk = points.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = points
            .chunks(chunk)
            .map(|part| scope.spawn(move || service_circles(graph, part, parameters)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(circles) => circles,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// A tile attribute for a number: at most three decimals, no trailing zeros
/// (720, 1080, 12.5).
#[must_use]
pub fn number(value: f64) -> String {
    let rounded = (value * 1_000.0).round() / 1_000.0;
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;
    use crate::TileCoord;
    use geo_types::line_string;

    fn station(code: &str, kind: &str, lon: f64, lat: f64) -> CircleStation {
        CircleStation {
            code: code.to_owned(),
            name: format!("{code} 站"),
            kind: kind.to_owned(),
            community_code: "370681001001".to_owned(),
            lon,
            lat,
        }
    }

    fn road(lon: f64) -> LineString<f64> {
        line_string![(x: lon, y: 37.60), (x: lon, y: 37.61), (x: lon, y: 37.62)]
    }

    #[test]
    fn numbers_print_without_noise() {
        assert_eq!(number(720.0), "720");
        assert_eq!(number(1.2 * 15.0 * 60.0), "1080");
        assert_eq!(number(12.345_67), "12.346");
    }

    #[test]
    fn only_circles_near_a_change_are_recomputed() {
        let inputs = CircleInputs {
            stations: vec![
                station("A", "red_station", 120.4001, 37.61),
                station("B", "grid_station", 120.5001, 37.61),
            ],
            roads: Some(vec![road(120.40), road(120.50)]),
        };
        let snapshot = CircleSnapshot::build(inputs.clone());
        assert_eq!(snapshot.circle_count(), 2);
        let (_, a) = &snapshot.circles["A"];
        assert_eq!(a.method.as_str(), "network");
        assert!((a.distance_m - 720.0).abs() < 1e-9);
        assert!((snapshot.circles["B"].1.distance_m - 1080.0).abs() < 1e-9);

        // Station A moves east by about 90 m: only its circle changes.
        let mut moved = inputs.clone();
        moved.stations[0].lon = 120.4011;
        moved.roads = None;
        let after = snapshot.update(moved, &[]);
        assert_ne!(after.circles["A"].1, snapshot.circles["A"].1);
        assert_eq!(after.circles["B"].1, snapshot.circles["B"].1);
        let extent = ComputedLayer::changed_extent(Some(snapshot.layer()), after.layer()).unwrap();
        assert!(extent[2] < 120.45, "{extent:?}");

        // A road far from A (beyond 720 + 50 m) leaves A's circle alone and
        // is walked by B.
        let mut roads = inputs.clone();
        let cross =
            line_string![(x: 120.4950, y: 37.61), (x: 120.50, y: 37.61), (x: 120.5050, y: 37.61)];
        roads.roads = Some(vec![road(120.40), road(120.50), cross.clone()]);
        let bbox = [120.4950, 37.61, 120.5050, 37.61];
        let after = snapshot.update(roads, &[Some(bbox)]);
        assert_eq!(after.circles["A"].1, snapshot.circles["A"].1);
        assert_ne!(after.circles["B"].1, snapshot.circles["B"].1);

        let tile = TileCoord::containing(120.4001, 37.61, 14);
        let bytes = snapshot.layer().encode(tile);
        assert!(bytes.windows(1).count() > 0);
        assert!(bytes
            .windows(b"red_station".len())
            .any(|w| w == b"red_station"));
    }
}
