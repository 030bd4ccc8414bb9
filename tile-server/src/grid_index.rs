//! The in-memory indexes the lookups read, built from PostGIS: grids with
//! their administrative chain, grid units, buildings with their addresses and
//! stations by kind, held together in one immutable [`LookupIndex`] snapshot.
//!
//! Every text an answer repeats (codes, names, kinds) is an `Arc<str>`, so
//! answering a lookup copies pointers, not strings.

use gridmap_index::{GeodesicDistance, IndexedPoint, Located, PointIndex, PolygonIndex};
use gridmap_model::StationKind;
use gridmap_store::StoreError;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// What a lookup answers about a grid besides its code.
#[derive(Debug, Clone)]
pub struct GridChain {
    pub grid: Unit,
    pub kind: Arc<str>,
    pub status: Arc<str>,
    pub community: Unit,
    pub street: Unit,
    pub district: Unit,
    /// The chain as the answers write it, escaped once per snapshot.
    pub(crate) encoded: EncodedChain,
}

/// Pieces of JSON and CSV that every answer naming a grid repeats, built
/// with serde_json (and the batch's CSV quoting) when the index is built, so
/// answering copies bytes instead of escaping the same texts again.
#[derive(Debug, Clone)]
pub(crate) struct EncodedChain {
    /// `{"code":…,"name":…,"kind":…,"status":…` of a single lookup, open so
    /// that a permitted caller's `"worker"` can follow before the `}`.
    pub(crate) lookup_grid_open: Box<str>,
    /// `,"community":{…},"street":{…},"district":{…}` of a single lookup.
    pub(crate) lookup_units: Box<str>,
    /// `"grid_code":…,"district_code":…` of a batch NDJSON line.
    pub(crate) batch_ndjson: Box<str>,
    /// `code,name,community,street,district` of a batch CSV line.
    pub(crate) batch_csv: Box<str>,
}

impl GridChain {
    /// A grid's chain with its pre-encoded answer pieces.
    #[must_use]
    pub(crate) fn new(
        grid: Unit,
        kind: Arc<str>,
        status: Arc<str>,
        community: Unit,
        street: Unit,
        district: Unit,
    ) -> Self {
        let encoded = EncodedChain::new(&grid, &kind, &status, &community, &street, &district);
        Self {
            grid,
            kind,
            status,
            community,
            street,
            district,
            encoded,
        }
    }
}

impl EncodedChain {
    fn new(
        grid: &Unit,
        kind: &str,
        status: &str,
        community: &Unit,
        street: &Unit,
        district: &Unit,
    ) -> Self {
        let json = |text: &str| serde_json::to_string(text).unwrap_or_default();
        let unit = |unit: &Unit| serde_json::to_string(unit).unwrap_or_default();
        let mut csv = Vec::new();
        for (position, field) in [
            &grid.code,
            &grid.name,
            &community.code,
            &street.code,
            &district.code,
        ]
        .into_iter()
        .enumerate()
        {
            if position > 0 {
                csv.push(b',');
            }
            crate::batch::push_csv_field(&mut csv, field);
        }
        Self {
            lookup_grid_open: format!(
                "{{\"code\":{},\"name\":{},\"kind\":{},\"status\":{}",
                json(&grid.code),
                json(&grid.name),
                json(kind),
                json(status)
            )
            .into(),
            lookup_units: format!(
                ",\"community\":{},\"street\":{},\"district\":{}",
                unit(community),
                unit(street),
                unit(district)
            )
            .into(),
            batch_ndjson: format!(
                "\"grid_code\":{},\"grid_name\":{},\"community_code\":{},\"street_code\":{},\"district_code\":{}",
                json(&grid.code),
                json(&grid.name),
                json(&community.code),
                json(&street.code),
                json(&district.code)
            )
            .into(),
            batch_csv: String::from_utf8_lossy(&csv).into(),
        }
    }
}

/// A code and name at one level of the administrative chain.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    pub code: Arc<str>,
    pub name: Arc<str>,
}

pub type GridIndex = PolygonIndex<GridChain>;

/// Grid units keyed by code, with their names as payload.
pub type GridUnitIndex = PolygonIndex<Arc<str>>;

/// What a lookup answers about a building besides its code.
#[derive(Debug, Clone)]
pub struct BuildingInfo {
    pub name: Arc<str>,
    pub floors: Option<i32>,
    pub address: Option<AddressInfo>,
}

/// A standard address (标准地址) of a building.
#[derive(Debug, Clone, Serialize)]
pub struct AddressInfo {
    pub code: Arc<str>,
    pub address: Arc<str>,
}

pub type BuildingIndex = PolygonIndex<BuildingInfo>;

/// A departmental grid (多网合一 overlay): its department and name.
#[derive(Debug, Clone)]
pub struct DepartmentGrid {
    pub department: Arc<str>,
    pub name: Arc<str>,
}

pub type DepartmentIndex = PolygonIndex<DepartmentGrid>;

/// The nearest station of one kind to a point.
#[derive(Debug, Clone, Copy)]
pub struct NearbyStation<'a> {
    pub station: &'a StationInfo,
    /// Straight-line geodesic distance (estimated with a bound; see
    /// [`GeodesicDistance`]).
    pub distance: GeodesicDistance,
    /// The nearest station of the kind by walking.
    pub walking: Option<Walk<'a>>,
}

/// The nearest station of a kind by walking, and how far it is.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'a> {
    pub station: &'a StationInfo,
    /// From the point to the road node the walk starts from.
    pub to_network: GeodesicDistance,
    /// Metres over the network from that node to the station.
    pub network_m: f64,
}

impl Walk<'_> {
    /// `f` of the metres walked (`to_network + network_m`, as exact
    /// distances give them) for a non-decreasing `f` such as a rounding step.
    pub fn settle<R: PartialEq>(&self, f: impl Fn(f64) -> R) -> R {
        self.to_network.settle(|metres| f(metres + self.network_m))
    }

    /// Whether this walk is shorter than `other`, by exact distances.
    fn is_shorter_than(&self, other: &Self) -> bool {
        if self.to_network.high_m() + self.network_m < other.to_network.low_m() + other.network_m {
            return true;
        }
        if self.to_network.low_m() + self.network_m >= other.to_network.high_m() + other.network_m {
            return false;
        }
        self.to_network.exact_m() + self.network_m < other.to_network.exact_m() + other.network_m
    }
}

/// The public attributes of a station.
#[derive(Debug, Clone)]
pub struct StationInfo {
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub kind: StationKind,
    /// `{"code":…,"name":…` as the lookup answer writes it (for the station
    /// and for a walk to it), escaped once per snapshot.
    pub(crate) json_open: Arc<str>,
}

impl StationInfo {
    #[must_use]
    pub fn new(code: Arc<str>, name: Arc<str>, kind: StationKind) -> Self {
        let json = |text: &str| serde_json::to_string(text).unwrap_or_default();
        let json_open = format!("{{\"code\":{},\"name\":{}", json(&code), json(&name)).into();
        Self {
            code,
            name,
            kind,
            json_open,
        }
    }
}

/// One point index per station kind, in the order of [`StationKind::ALL`],
/// and walking distances over the road network.
#[derive(Debug)]
pub struct StationIndex {
    by_kind: Vec<(StationKind, PointIndex<StationInfo>)>,
    walking: Option<WalkingIndex>,
}

/// A point farther than this from every road node gets no walking distance:
/// it is not on the walkable network, and a straight line to the nearest
/// node would pass for a walk it is not.
const WALKING_SNAP_LIMIT_M: f64 = 500.0;

/// Nodes this close to equally near count as equally near (a millimetre).
const TIE_SLACK_M: f64 = 1e-3;

/// The nearest station of each kind by walking, for every node of the road
/// network: one many-source Dijkstra per kind when the index is built, so a
/// lookup costs one snap to the nearest node. **Walking distance** = the
/// geodesic from the point to its nearest node + the network distance to the
/// node nearest the station + the geodesic from that node to the station.
#[derive(Debug)]
pub struct WalkingIndex {
    /// The road network's nodes indexed for snapping a lookup's point (the
    /// graph itself is needed only while the index is built).
    /// Shared with the next rebuild when the roads give the same nodes: a
    /// station edit then does not index the nodes again (half a second on a
    /// Zibo-sized city, most of it listing their candidate cells).
    snap: Arc<gridmap_index::NodeSnap>,
    /// Per kind, in the order of `StationIndex::by_kind`: the stations in
    /// source order, and for each node the distance and station position.
    by_kind: Vec<(Vec<StationInfo>, Vec<f64>, Vec<u32>)>,
}

impl WalkingIndex {
    /// The nearest station by walking of the kind at `position` (in
    /// `StationIndex::by_kind`'s order) from a point attached at `snaps`,
    /// with the walking distance; None off the road network or where no
    /// station of the kind is reachable.
    fn nearest(&self, position: usize, snaps: &[gridmap_index::NodeDistance]) -> Option<Walk<'_>> {
        let (stations, distances, origins) = self.by_kind.get(position)?;
        // The shortest walk; of equally short ones, the first.
        snaps
            .iter()
            .filter_map(|snap| {
                let network_m = *distances.get(snap.node)?;
                let station = stations.get(usize::try_from(*origins.get(snap.node)?).ok()?)?;
                network_m.is_finite().then_some(Walk {
                    station,
                    to_network: snap.distance,
                    network_m,
                })
            })
            .reduce(|best, walk| {
                if walk.is_shorter_than(&best) {
                    walk
                } else {
                    best
                }
            })
    }

    fn build(
        roads: &[gridmap_circles::LineString],
        stations: &[Vec<(StationInfo, f64, f64)>],
        previous_snap: Option<&Arc<gridmap_index::NodeSnap>>,
    ) -> Option<Self> {
        let graph = gridmap_circles::WalkGraph::new(roads);
        if graph.node_count() == 0 {
            return None;
        }
        let by_kind = stations
            .iter()
            .map(|kind_stations| {
                // Sources in station order, so an origin names its station;
                // a station midway between nodes starts from each of them.
                let mut sources: Vec<(usize, f64)> = Vec::new();
                let mut source_station: Vec<u32> = Vec::new();
                for (position, (_, lon, lat)) in kind_stations.iter().enumerate() {
                    for snap in
                        graph.snap_ties(gridmap_circles::Coord { x: *lon, y: *lat }, TIE_SLACK_M)
                    {
                        sources.push((snap.node, snap.distance_m));
                        source_station.push(u32::try_from(position).unwrap_or(u32::MAX));
                    }
                }
                let mut paths = gridmap_circles::ShortestPaths::new(&graph);
                paths.run(&sources, f64::INFINITY);
                let distances = (0..graph.node_count())
                    .map(|node| paths.distance(node).unwrap_or(f64::INFINITY))
                    .collect();
                let origins = (0..graph.node_count())
                    .map(|node| {
                        paths
                            .origin(node)
                            .and_then(|origin| source_station.get(origin).copied())
                            .unwrap_or(u32::MAX)
                    })
                    .collect();
                let infos = kind_stations
                    .iter()
                    .map(|(info, _, _)| info.clone())
                    .collect();
                (infos, distances, origins)
            })
            .collect();
        let nodes: Vec<gridmap_circles::Coord> = (0..graph.node_count())
            .map(|node| graph.node(node))
            .collect();
        let snap = match previous_snap {
            // Same nodes in the same order: the same snapping index.
            Some(previous) if previous.nodes() == nodes.as_slice() => Arc::clone(previous),
            _ => {
                let started = Instant::now();
                let snap = Arc::new(gridmap_index::NodeSnap::new(nodes));
                tracing::debug!(
                    nodes = graph.node_count(),
                    elapsed_ms = started.elapsed().as_millis(),
                    "road nodes indexed for snapping"
                );
                snap
            }
        };
        Some(Self { snap, by_kind })
    }
}

impl StationIndex {
    /// Indexes `stations` (with their lon/lat, in code order, so ties go to
    /// the smallest code) by kind, and their walking distances over `roads`;
    /// the road nodes' snapping index of `previous` is reused if `roads`
    /// give the same nodes.
    #[must_use]
    pub(crate) fn new(
        stations: &[(StationInfo, f64, f64)],
        roads: &[gridmap_circles::LineString],
        previous: Option<&StationIndex>,
    ) -> Self {
        let kind_stations: Vec<Vec<(StationInfo, f64, f64)>> = StationKind::ALL
            .iter()
            .map(|&kind| {
                stations
                    .iter()
                    .filter(|(info, _, _)| info.kind == kind)
                    .cloned()
                    .collect()
            })
            .collect();
        let by_kind = StationKind::ALL
            .iter()
            .zip(&kind_stations)
            .map(|(&kind, of_kind)| {
                let points = of_kind
                    .iter()
                    .map(|(info, lon, lat)| IndexedPoint {
                        lon: *lon,
                        lat: *lat,
                        payload: info.clone(),
                    })
                    .collect();
                (kind, PointIndex::new(points))
            })
            .collect();
        // One Dijkstra over the whole network per kind: tens of milliseconds
        // for a county, run while the index is (re)built, never on a request.
        let started = Instant::now();
        let previous_snap = previous
            .and_then(|index| index.walking.as_ref())
            .map(|walking| &walking.snap);
        let walking = WalkingIndex::build(roads, &kind_stations, previous_snap);
        tracing::info!(
            roads = roads.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "walking distances to stations built"
        );
        Self { by_kind, walking }
    }

    /// The nearest station of each kind that has any, with its geodesic
    /// distance in metres, in the order of [`StationKind::ALL`], and the
    /// nearest of the kind by walking. The point is snapped to the road
    /// network once for all kinds.
    #[must_use]
    pub fn nearest_of_each_kind(&self, lon: f64, lat: f64) -> Vec<NearbyStation<'_>> {
        let snaps = self.walking.as_ref().map(|walking| {
            walking.snap.ties_within(
                gridmap_circles::Coord { x: lon, y: lat },
                TIE_SLACK_M,
                WALKING_SNAP_LIMIT_M,
            )
        });
        self.by_kind
            .iter()
            .enumerate()
            .filter_map(|(position, (_, index))| {
                let nearest = index.nearest(lon, lat)?;
                let walking = match (self.walking.as_ref(), snaps.as_deref()) {
                    (Some(walking), Some(snaps)) => walking.nearest(position, snaps),
                    _ => None,
                };
                Some(NearbyStation {
                    station: &nearest.point.payload,
                    distance: nearest.distance,
                    walking,
                })
            })
            .collect()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.by_kind.iter().map(|(_, index)| index.len()).sum()
    }

    /// Heap bytes of the per-cell candidate lists of the station and road
    /// node indexes.
    #[must_use]
    pub fn candidate_cell_bytes(&self) -> usize {
        let stations: usize = self
            .by_kind
            .iter()
            .map(|(_, index)| index.cell_heap_bytes())
            .sum();
        stations
            + self
                .walking
                .as_ref()
                .map_or(0, |walking| walking.snap.cell_heap_bytes())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything a lookup reads, swapped as one value so that a request never
/// sees grids from one rebuild and buildings from another. Each part sits in
/// its own `Arc`, so a rebuild reloads only the parts whose tables changed.
#[derive(Debug)]
pub struct LookupIndex {
    pub grids: Arc<GridIndex>,
    pub grid_units: Arc<GridUnitIndex>,
    pub buildings: Arc<BuildingIndex>,
    pub stations: Arc<StationIndex>,
    pub departments: Arc<DepartmentIndex>,
}

/// Reading a snapshot as a grid index keeps code written against the grid
/// index alone (health, benches) working unchanged.
impl std::ops::Deref for LookupIndex {
    type Target = GridIndex;

    fn deref(&self) -> &GridIndex {
        &self.grids
    }
}

/// Tables each part of the snapshot is read from (`changes.rs` lists them all).
const GRID_TABLES: &[&str] = &["districts", "streets", "communities", "grids"];
const GRID_UNIT_TABLES: &[&str] = &["grid_units"];
const BUILDING_TABLES: &[&str] = &["buildings", "addresses"];
const STATION_TABLES: &[&str] = &["stations", "roads"];
const DEPARTMENT_TABLES: &[&str] = &["department_grids"];

/// What the snapshot knows about one point.
#[derive(Debug)]
pub struct Resolved<'a> {
    pub grid: Option<&'a GridChain>,
    pub grid_unit: Option<&'a Located<Arc<str>>>,
    pub building: Option<&'a Located<BuildingInfo>>,
    /// The nearest station of each kind, straight and by walking.
    pub nearest_stations: Vec<NearbyStation<'a>>,
    /// Only for a point in no grid: the grid with the nearest edge and the
    /// distance to it in metres.
    pub nearest_grid: Option<(&'a GridChain, f64)>,
    /// The departmental grids covering the point, by department and code.
    pub departments: Vec<&'a Located<DepartmentGrid>>,
}

/// The parts of a lookup answer a caller asks for (`fields=` of
/// `/api/v1/lookup`); a part not asked for is not computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupParts {
    /// The grid and its chain (community, street, district), or the
    /// nearest grid for a point in none.
    pub grid: bool,
    pub grid_unit: bool,
    /// The building and its standard address.
    pub building: bool,
    /// The nearest station of each kind, straight and walking.
    pub stations: bool,
    pub departments: bool,
}

impl LookupParts {
    /// Every part: the default answer.
    pub const ALL: Self = Self {
        grid: true,
        grid_unit: true,
        building: true,
        stations: true,
        departments: true,
    };

    /// The names `fields=` accepts, in answer order.
    pub const NAMES: [&'static str; 5] =
        ["grid", "grid_unit", "building", "stations", "departments"];

    /// Parses a comma-separated list of [`Self::NAMES`].
    ///
    /// # Errors
    /// A message naming the unknown or missing field.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut parts = Self {
            grid: false,
            grid_unit: false,
            building: false,
            stations: false,
            departments: false,
        };
        for name in list.split(',').map(str::trim) {
            let part = match name {
                "grid" => &mut parts.grid,
                "grid_unit" => &mut parts.grid_unit,
                "building" => &mut parts.building,
                "stations" => &mut parts.stations,
                "departments" => &mut parts.departments,
                _ => {
                    return Err(format!(
                        "fields must be a comma-separated list of {}, got {name:?}",
                        Self::NAMES.join(", ")
                    ))
                }
            };
            *part = true;
        }
        Ok(parts)
    }
}

impl LookupIndex {
    /// A snapshot holding nothing, where every lookup misses.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            grids: Arc::new(PolygonIndex::new(Vec::new())),
            grid_units: Arc::new(PolygonIndex::new(Vec::new())),
            buildings: Arc::new(PolygonIndex::new(Vec::new())),
            stations: Arc::new(StationIndex {
                by_kind: Vec::new(),
                walking: None,
            }),
            departments: Arc::new(PolygonIndex::new(Vec::new())),
        }
    }

    /// Everything the snapshot holds about the CGCS2000 point `(x, y)`.
    #[must_use]
    pub fn resolve(&self, x: f64, y: f64) -> Resolved<'_> {
        self.resolve_parts(x, y, LookupParts::ALL)
    }

    /// Like [`Self::resolve`], computing only `parts` (the others stay
    /// `None` or empty).
    #[must_use]
    pub fn resolve_parts(&self, x: f64, y: f64, parts: LookupParts) -> Resolved<'_> {
        let grid = if parts.grid {
            self.grids.locate(x, y).map(|hit| &hit.payload)
        } else {
            None
        };
        let nearest_grid = match grid {
            None if parts.grid => self
                .grids
                .nearest(x, y)
                .map(|(hit, metres)| (&hit.payload, metres)),
            _ => None,
        };
        Resolved {
            grid,
            grid_unit: if parts.grid_unit {
                self.grid_units.locate(x, y)
            } else {
                None
            },
            building: if parts.building {
                self.buildings.locate(x, y)
            } else {
                None
            },
            nearest_stations: if parts.stations {
                self.stations.nearest_of_each_kind(x, y)
            } else {
                Vec::new()
            },
            nearest_grid,
            departments: if parts.departments {
                self.departments.locate_all(x, y)
            } else {
                Vec::new()
            },
        }
    }
}

/// Reads every table the snapshot needs and indexes it.
///
/// # Errors
/// When a table cannot be read.
pub async fn load_lookup_index(pool: &sqlx::PgPool) -> Result<LookupIndex, StoreError> {
    build(pool, None, |_| true).await
}

/// A new snapshot that reloads the parts read from a table for which
/// `changed` is true and shares the other parts with `current`.
///
/// # Errors
/// When a table cannot be read.
pub async fn refresh_lookup_index(
    pool: &sqlx::PgPool,
    current: &LookupIndex,
    changed: impl Fn(&str) -> bool,
) -> Result<LookupIndex, StoreError> {
    build(pool, Some(current), |tables| {
        tables.iter().any(|t| changed(t))
    })
    .await
}

async fn build(
    pool: &sqlx::PgPool,
    current: Option<&LookupIndex>,
    stale: impl Fn(&[&str]) -> bool,
) -> Result<LookupIndex, StoreError> {
    let grids = match current {
        Some(current) if !stale(GRID_TABLES) => Arc::clone(&current.grids),
        _ => Arc::new(load_grid_index(pool).await?),
    };
    let grid_units = match current {
        Some(current) if !stale(GRID_UNIT_TABLES) => Arc::clone(&current.grid_units),
        _ => Arc::new(load_grid_unit_index(pool).await?),
    };
    let buildings = match current {
        Some(current) if !stale(BUILDING_TABLES) => Arc::clone(&current.buildings),
        _ => Arc::new(load_building_index(pool).await?),
    };
    let stations = match current {
        Some(current) if !stale(STATION_TABLES) => Arc::clone(&current.stations),
        _ => Arc::new(load_station_index(pool, current.map(|current| &*current.stations)).await?),
    };
    let departments = match current {
        Some(current) if !stale(DEPARTMENT_TABLES) => Arc::clone(&current.departments),
        _ => Arc::new(load_department_index(pool).await?),
    };
    Ok(LookupIndex {
        grids,
        grid_units,
        buildings,
        stations,
        departments,
    })
}

/// Reads every grid with its chain and indexes it.
///
/// # Errors
/// When the grids cannot be read.
pub async fn load_grid_index(pool: &sqlx::PgPool) -> Result<GridIndex, StoreError> {
    let started = Instant::now();
    let records = gridmap_store::queries::load_grids(pool).await?;
    // Communities, streets and districts repeat over their grids: one copy each.
    let mut shared = Interner::default();
    let items = records
        .into_iter()
        .map(|record| {
            let code: Arc<str> = record.code.into();
            let grid = Unit {
                code: Arc::clone(&code),
                name: record.name.into(),
            };
            let community = Unit {
                code: shared.intern(record.community_code),
                name: shared.intern(record.community_name),
            };
            let street = Unit {
                code: shared.intern(record.street_code),
                name: shared.intern(record.street_name),
            };
            let district = Unit {
                code: shared.intern(record.district_code),
                name: shared.intern(record.district_name),
            };
            Located {
                code,
                payload: GridChain::new(
                    grid,
                    shared.intern(record.kind),
                    shared.intern(record.status),
                    community,
                    street,
                    district,
                ),
                polygon: record.geom,
            }
        })
        .collect();
    let index = PolygonIndex::new(items);
    tracing::info!(
        grids = index.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "grid index built"
    );
    Ok(index)
}

async fn load_grid_unit_index(pool: &sqlx::PgPool) -> Result<GridUnitIndex, StoreError> {
    let started = Instant::now();
    let records = gridmap_store::queries::load_grid_units(pool).await?;
    let items = records
        .into_iter()
        .map(|record| Located {
            code: record.code.into(),
            payload: record.name.into(),
            polygon: record.geom,
        })
        .collect();
    let index = PolygonIndex::new(items);
    tracing::info!(
        grid_units = index.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "grid unit index built"
    );
    Ok(index)
}

async fn load_building_index(pool: &sqlx::PgPool) -> Result<BuildingIndex, StoreError> {
    let started = Instant::now();
    let records = gridmap_store::queries::load_buildings(pool).await?;
    let items: Vec<_> = records
        .into_iter()
        .map(|record| Located {
            code: record.code.into(),
            payload: BuildingInfo {
                name: record.name.into(),
                floors: record.floors,
                address: record.address.map(|(code, address)| AddressInfo {
                    code: code.into(),
                    address: address.into(),
                }),
            },
            polygon: record.geom,
        })
        .collect();
    let index = PolygonIndex::new(items);
    tracing::info!(
        buildings = index.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "building index built"
    );
    Ok(index)
}

async fn load_department_index(pool: &sqlx::PgPool) -> Result<DepartmentIndex, StoreError> {
    let records = gridmap_store::queries::load_department_grids(pool).await?;
    let mut shared = Interner::default();
    let items = records
        .into_iter()
        .map(|record| Located {
            code: record.code.as_str().into(),
            payload: DepartmentGrid {
                department: shared.intern(record.department),
                name: record.name.as_str().into(),
            },
            polygon: record.geom,
        })
        .collect();
    let started = Instant::now();
    let index = PolygonIndex::new(items);
    // Every full lookup asks for all departmental grids at the point
    // (`locate_all`), which tests polygons one by one: prepared here, the
    // first lookup after a rebuild does not pay for it (62 ms for the 21,432
    // departmental grids of a Zibo-sized city).
    index.prepare();
    tracing::info!(
        department_grids = index.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "departmental grid index built"
    );
    Ok(index)
}

async fn load_station_index(
    pool: &sqlx::PgPool,
    previous: Option<&StationIndex>,
) -> Result<StationIndex, StoreError> {
    let records = gridmap_store::queries::load_stations(pool).await?;
    let stations: Vec<(StationInfo, f64, f64)> = records
        .iter()
        .filter_map(|record| {
            let kind = StationKind::ALL
                .iter()
                .copied()
                .find(|kind| record.kind == kind.as_str())?;
            let info = StationInfo::new(
                record.code.as_str().into(),
                record.name.as_str().into(),
                kind,
            );
            Some((info, record.lon, record.lat))
        })
        .collect();
    let roads = gridmap_store::circle_queries::load_roads(pool, None, 0.0).await?;
    let index = StationIndex::new(&stations, &roads, previous);
    tracing::info!(
        stations = index.len(),
        candidate_cell_bytes = index.candidate_cell_bytes(),
        "station index built"
    );
    Ok(index)
}

/// One shared copy of each distinct text.
#[derive(Default)]
struct Interner(std::collections::HashMap<String, Arc<str>>);

impl Interner {
    fn intern(&mut self, text: String) -> Arc<str> {
        if let Some(shared) = self.0.get(&text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = text.as_str().into();
        self.0.insert(text, Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `i`-th point of a plane-filling sequence (R2 of Roberts) scaled to
    /// the box, spread evenly without a random number generator.
    fn spread(i: u32, west: f64, south: f64, east: f64, north: f64) -> (f64, f64) {
        let u = (f64::from(i) * 0.754_877_666_246_693).fract();
        let v = (f64::from(i) * 0.569_840_290_998_053).fract();
        (west + u * (east - west), south + v * (north - south))
    }

    #[test]
    fn a_station_edit_reuses_the_road_nodes_index() {
        let roads: Vec<gridmap_circles::LineString> = (0..20)
            .map(|row| {
                let y = 37.6 + f64::from(row) * 0.001;
                gridmap_circles::LineString::from(
                    (0..20)
                        .map(|col| (120.4 + f64::from(col) * 0.001, y))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let station = |code: &str, lon: f64, lat: f64| {
            let info = StationInfo::new(code.into(), code.into(), StationKind::RedStation);
            (info, lon, lat)
        };
        let before = [station("A", 120.401, 37.601), station("B", 120.415, 37.615)];
        let after = [station("A", 120.401, 37.601), station("C", 120.410, 37.610)];
        let first = StationIndex::new(&before, &roads, None);
        let edited = StationIndex::new(&after, &roads, Some(&first));
        let fresh = StationIndex::new(&after, &roads, None);
        let snap = |index: &StationIndex| Arc::clone(&index.walking.as_ref().unwrap().snap);
        assert!(Arc::ptr_eq(&snap(&first), &snap(&edited)));
        assert!(!Arc::ptr_eq(&snap(&first), &snap(&fresh)));
        // The reused index answers as a fresh one does.
        for i in 1..=500 {
            let (lon, lat) = spread(i, 120.395, 37.595, 120.425, 37.625);
            let answer = |index: &StationIndex| {
                index
                    .nearest_of_each_kind(lon, lat)
                    .iter()
                    .map(|nearby| {
                        let walk = nearby
                            .walking
                            .map(|walk| (walk.station.code.to_string(), walk.settle(|m| m)));
                        (nearby.station.code.to_string(), walk)
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(answer(&edited), answer(&fresh), "({lon}, {lat})");
        }
        // Other roads, other nodes: indexed anew.
        let more_roads = [
            roads.clone(),
            vec![gridmap_circles::LineString::from(vec![
                (120.39, 37.59),
                (120.4, 37.6),
            ])],
        ]
        .concat();
        let extended = StationIndex::new(&after, &more_roads, Some(&first));
        assert!(!Arc::ptr_eq(&snap(&first), &snap(&extended)));
        assert_eq!(
            snap(&extended).nodes().len(),
            snap(&first).nodes().len() + 1
        );
    }

    #[test]
    fn snapping_with_the_bound_keeps_the_graphs_ties() {
        // Parallel streets with evenly spaced nodes, so that many points lie
        // midway between nodes (ties), plus a few loose roads.
        let mut roads = Vec::new();
        for row in 0..30 {
            let y = 37.6 + f64::from(row) * 0.001;
            roads.push(gridmap_circles::LineString::from(
                (0..30)
                    .map(|col| (120.4 + f64::from(col) * 0.001, y))
                    .collect::<Vec<_>>(),
            ));
        }
        for i in 1..=40 {
            let (x, y) = spread(i, 120.39, 37.59, 120.44, 37.64);
            let (dx, dy) = spread(i + 1000, -0.002, -0.002, 0.002, 0.002);
            roads.push(gridmap_circles::LineString::from(vec![
                (x, y),
                (x + dx, y + dy),
            ]));
        }
        let graph = gridmap_circles::WalkGraph::new(&roads);
        let snap =
            gridmap_index::NodeSnap::new((0..graph.node_count()).map(|n| graph.node(n)).collect());
        let mut points: Vec<(f64, f64)> = (1..=5_000)
            .map(|i| spread(i, 120.35, 37.55, 120.48, 37.68))
            .collect();
        // Midway between lattice nodes, and on them.
        points.extend((0..29).map(|i| (120.4 + f64::from(i) * 0.001 + 0.0005, 37.61)));
        points.extend((0..29).map(|i| (120.4 + f64::from(i) * 0.001, 37.6 + 0.001 * 7.0)));
        for (lon, lat) in points {
            let coord = gridmap_circles::Coord { x: lon, y: lat };
            let expected: Vec<(usize, f64)> = graph
                .snap_ties(coord, TIE_SLACK_M)
                .into_iter()
                .filter(|snap| snap.distance_m <= WALKING_SNAP_LIMIT_M)
                .map(|snap| (snap.node, snap.distance_m))
                .collect();
            let got: Vec<(usize, f64)> = snap
                .ties_within(coord, TIE_SLACK_M, WALKING_SNAP_LIMIT_M)
                .into_iter()
                .map(|snap| (snap.node, snap.distance.exact_m()))
                .collect();
            assert_eq!(got, expected, "({lon}, {lat})");
        }
    }
}
