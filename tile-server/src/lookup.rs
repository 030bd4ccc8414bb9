//! `GET /api/v1/lookup?lon=…&lat=…`: what owns and serves a coordinate: the
//! grid with its administrative chain, the grid unit, the building whose
//! footprint covers the point with its standard address, and the nearest
//! station of each kind. Every distance is a straight line on the ellipsoid,
//! never a walking distance.

use crate::grid_index::{AddressInfo, LookupIndex, LookupParts, Resolved, Unit};
use crate::{ApiError, SharedState};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse as _, Response};
use gridmap_crs::LonLatCrs;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Raw query parameters; parsed by hand so every mistake gets a clear message.
#[derive(Debug, Deserialize)]
pub struct LookupParams {
    lon: Option<String>,
    lat: Option<String>,
    /// CRS of lon/lat: 4490 (default), 4326, gcj02 or bd09.
    crs: Option<String>,
    /// Comma-separated parts of the answer (default: all), see [`LookupParts`].
    fields: Option<String>,
}

/// The answer: no grid worker, phone or household appears in it, except
/// `grid.worker` for callers who may see personal data.
#[derive(Debug, Serialize)]
pub struct LookupResponse {
    pub query: QueryPoint,
    pub grid: Option<GridSummary>,
    pub community: Option<Unit>,
    pub street: Option<Unit>,
    pub district: Option<Unit>,
    pub grid_unit: Option<Unit>,
    pub building: Option<BuildingSummary>,
    /// The standard address of `building` (the one with the smallest code).
    pub address: Option<AddressInfo>,
    /// The nearest station of each kind by straight-line geodesic distance.
    pub nearest_stations: Vec<StationDistance>,
    /// Only when `grid` is null: the grid whose edge is nearest.
    pub nearest_grid: Option<NearestGrid>,
    /// The departmental grids (多网合一 overlays) covering the point, by
    /// department and code.
    pub departments: Vec<DepartmentSummary>,
}

/// A departmental grid covering the point.
#[derive(Debug, Serialize)]
pub struct DepartmentSummary {
    pub department: Arc<str>,
    pub code: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, Serialize)]
pub struct QueryPoint {
    /// The point as given.
    pub lon: f64,
    pub lat: f64,
    pub crs: &'static str,
    /// The point in CGCS2000, the CRS the grids are stored in.
    pub cgcs2000: [f64; 2],
}

#[derive(Debug, Serialize)]
pub struct GridSummary {
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub kind: Arc<str>,
    pub status: Arc<str>,
    /// The grid's worker: personal data, set only for callers who may see it
    /// (absent otherwise, not null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<crate::auth::GridWorker>,
}

#[derive(Debug, Serialize)]
pub struct BuildingSummary {
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub floors: Option<i32>,
}

#[derive(Debug, Serialize)]
pub struct StationDistance {
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub kind: &'static str,
    /// Straight-line (geodesic) metres, rounded to decimetres.
    pub distance_m: f64,
    /// The nearest station of the kind by walking over the road network
    /// (often the same one), or null off the network (more than 500 m from
    /// any road) or where no station of the kind is reachable.
    pub walking: Option<WalkingDistance>,
}

/// The nearest station of a kind by walking, with the walking distance.
#[derive(Debug, Serialize)]
pub struct WalkingDistance {
    pub code: Arc<str>,
    pub name: Arc<str>,
    /// Metres walked, rounded to decimetres (see `grid_index::WalkingIndex`).
    pub distance_m: f64,
}

#[derive(Debug, Serialize)]
pub struct NearestGrid {
    pub code: Arc<str>,
    pub name: Arc<str>,
    /// Metres from the point to the grid's boundary, rounded to decimetres.
    pub distance_m: f64,
}

pub async fn lookup(
    State(state): State<SharedState>,
    crate::auth::MaybeCaller(caller): crate::auth::MaybeCaller,
    params: Result<Query<LookupParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let (lon, lat) = parse_point(params.lon.as_deref(), params.lat.as_deref())?;
    let crs = parse_crs(params.crs.as_deref())?;
    let parts = match params.fields.as_deref() {
        None => LookupParts::ALL,
        Some(list) => LookupParts::parse(list).map_err(ApiError::BadRequest)?,
    };
    let body = if caller
        .as_ref()
        .is_some_and(crate::auth::Caller::may_see_personal_data)
    {
        // The worker is read from the database after the point is resolved,
        // so this caller's answer holds its own reference to the snapshot.
        let index = state.grid_index.load_full();
        let hit = LookupHit::with_parts(&index, lon, lat, crs, parts);
        let worker = match hit.grid_code() {
            Some(code) => crate::auth::grid_worker(&state.pool, state.auth.workers(), code).await?,
            None => None,
        };
        hit.to_json(worker.as_ref())
    } else {
        LookupHit::with_parts(&state.grid_index.load(), lon, lat, crs, parts).to_json(None)
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// What the snapshot holds about one validated point, ready to be written
/// as the answer ([`LookupHit::to_json`]) or built as [`LookupResponse`].
pub struct LookupHit<'a> {
    lon: f64,
    lat: f64,
    crs: LonLatCrs,
    /// The point in CGCS2000.
    x: f64,
    y: f64,
    parts: LookupParts,
    resolved: Resolved<'a>,
}

/// Bytes of a typical answer (about 1.4 kB on the demo city), so writing
/// one rarely grows the buffer.
const ANSWER_CAPACITY: usize = 2048;

impl<'a> LookupHit<'a> {
    /// Resolves a validated point given in `crs`; departmental grids come
    /// sorted by department and code (as bytes).
    #[must_use]
    pub fn new(index: &'a LookupIndex, lon: f64, lat: f64, crs: LonLatCrs) -> Self {
        Self::with_parts(index, lon, lat, crs, LookupParts::ALL)
    }

    /// Like [`Self::new`], resolving only `parts`; the answer leaves out
    /// the keys of the other parts.
    #[must_use]
    pub fn with_parts(
        index: &'a LookupIndex,
        lon: f64,
        lat: f64,
        crs: LonLatCrs,
        parts: LookupParts,
    ) -> Self {
        let (x, y) = crs.to_cgcs2000(lon, lat);
        let mut resolved = index.resolve_parts(x, y, parts);
        resolved.departments.sort_by(|a, b| {
            (&a.payload.department, &a.code).cmp(&(&b.payload.department, &b.code))
        });
        Self {
            lon,
            lat,
            crs,
            x,
            y,
            parts,
            resolved,
        }
    }

    /// The code of the grid covering the point.
    #[must_use]
    pub fn grid_code(&self) -> Option<&Arc<str>> {
        self.resolved.grid.map(|chain| &chain.grid.code)
    }

    /// The answer as JSON, byte for byte what serde_json writes for the
    /// [`LookupResponse`] of the same point, written into one buffer: the
    /// grid chain comes pre-escaped from the snapshot.
    #[must_use]
    pub fn to_json(&self, worker: Option<&crate::auth::GridWorker>) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANSWER_CAPACITY);
        let resolved = &self.resolved;
        out.extend_from_slice(b"{\"query\":{\"lon\":");
        push_json(&mut out, &self.lon);
        out.extend_from_slice(b",\"lat\":");
        push_json(&mut out, &self.lat);
        out.extend_from_slice(b",\"crs\":");
        push_json(&mut out, self.crs.as_str());
        out.extend_from_slice(b",\"cgcs2000\":[");
        push_json(&mut out, &self.x);
        out.push(b',');
        push_json(&mut out, &self.y);
        out.extend_from_slice(b"]}");
        let parts = self.parts;
        if parts.grid {
            out.extend_from_slice(b",\"grid\":");
            match resolved.grid {
                None => out.extend_from_slice(
                    b"null,\"community\":null,\"street\":null,\"district\":null",
                ),
                Some(chain) => {
                    out.extend_from_slice(chain.encoded.lookup_grid_open.as_bytes());
                    if let Some(worker) = worker {
                        out.extend_from_slice(b",\"worker\":");
                        push_json(&mut out, worker);
                    }
                    out.push(b'}');
                    out.extend_from_slice(chain.encoded.lookup_units.as_bytes());
                }
            }
        }
        if parts.grid_unit {
            out.extend_from_slice(b",\"grid_unit\":");
            match resolved.grid_unit {
                None => out.extend_from_slice(b"null"),
                Some(unit) => push_code_name(&mut out, &unit.code, &unit.payload, b"name"),
            }
        }
        if parts.building {
            self.push_building(&mut out);
        }
        if parts.stations {
            self.push_stations(&mut out);
        }
        if parts.grid {
            out.extend_from_slice(b",\"nearest_grid\":");
            match resolved.nearest_grid {
                None => out.extend_from_slice(b"null"),
                Some((chain, metres)) => {
                    push_unit_with_distance(&mut out, &chain.grid.code, &chain.grid.name, metres);
                }
            }
        }
        if parts.departments {
            self.push_departments(&mut out);
        }
        out.push(b'}');
        out
    }

    fn push_building(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"building\":");
        match self.resolved.building {
            None => out.extend_from_slice(b"null,\"address\":null"),
            Some(building) => {
                out.extend_from_slice(b"{\"code\":");
                push_json(out, &*building.code);
                out.extend_from_slice(b",\"name\":");
                push_json(out, &*building.payload.name);
                out.extend_from_slice(b",\"floors\":");
                push_json(out, &building.payload.floors);
                out.extend_from_slice(b"},\"address\":");
                match &building.payload.address {
                    None => out.extend_from_slice(b"null"),
                    Some(address) => {
                        push_code_name(out, &address.code, &address.address, b"address");
                    }
                }
            }
        }
    }

    fn push_stations(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"nearest_stations\":[");
        for (position, nearby) in self.resolved.nearest_stations.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            out.extend_from_slice(nearby.station.json_open.as_bytes());
            out.extend_from_slice(b",\"kind\":");
            push_json(out, nearby.station.kind.as_str());
            out.extend_from_slice(b",\"distance_m\":");
            push_json(out, &nearby.distance.settle(round_decimetres));
            out.extend_from_slice(b",\"walking\":");
            match nearby.walking {
                None => out.extend_from_slice(b"null"),
                Some(walk) => {
                    out.extend_from_slice(walk.station.json_open.as_bytes());
                    out.extend_from_slice(b",\"distance_m\":");
                    push_json(out, &walk.settle(round_decimetres));
                    out.push(b'}');
                }
            }
            out.push(b'}');
        }
        out.push(b']');
    }

    fn push_departments(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"departments\":[");
        for (position, grid) in self.resolved.departments.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"department\":");
            push_json(out, &*grid.payload.department);
            out.extend_from_slice(b",\"code\":");
            push_json(out, &*grid.code);
            out.extend_from_slice(b",\"name\":");
            push_json(out, &*grid.payload.name);
            out.push(b'}');
        }
        out.push(b']');
    }

    /// The answer as a value, for callers that read its fields.
    #[must_use]
    pub fn to_response(&self) -> LookupResponse {
        let resolved = &self.resolved;
        let chain = resolved.grid;
        LookupResponse {
            query: QueryPoint {
                lon: self.lon,
                lat: self.lat,
                crs: self.crs.as_str(),
                cgcs2000: [self.x, self.y],
            },
            grid: chain.map(|chain| GridSummary {
                code: Arc::clone(&chain.grid.code),
                name: Arc::clone(&chain.grid.name),
                kind: Arc::clone(&chain.kind),
                status: Arc::clone(&chain.status),
                worker: None,
            }),
            community: chain.map(|chain| chain.community.clone()),
            street: chain.map(|chain| chain.street.clone()),
            district: chain.map(|chain| chain.district.clone()),
            grid_unit: resolved.grid_unit.map(|unit| Unit {
                code: Arc::clone(&unit.code),
                name: Arc::clone(&unit.payload),
            }),
            building: resolved.building.map(|building| BuildingSummary {
                code: Arc::clone(&building.code),
                name: Arc::clone(&building.payload.name),
                floors: building.payload.floors,
            }),
            address: resolved
                .building
                .and_then(|building| building.payload.address.clone()),
            nearest_stations: resolved
                .nearest_stations
                .iter()
                .map(|nearby| StationDistance {
                    code: Arc::clone(&nearby.station.code),
                    name: Arc::clone(&nearby.station.name),
                    kind: nearby.station.kind.as_str(),
                    distance_m: nearby.distance.settle(round_decimetres),
                    walking: nearby.walking.map(|walk| WalkingDistance {
                        code: Arc::clone(&walk.station.code),
                        name: Arc::clone(&walk.station.name),
                        distance_m: walk.settle(round_decimetres),
                    }),
                })
                .collect(),
            nearest_grid: resolved.nearest_grid.map(|(chain, metres)| NearestGrid {
                code: Arc::clone(&chain.grid.code),
                name: Arc::clone(&chain.grid.name),
                distance_m: round_decimetres(metres),
            }),
            departments: resolved
                .departments
                .iter()
                .map(|grid| DepartmentSummary {
                    department: Arc::clone(&grid.payload.department),
                    code: Arc::clone(&grid.code),
                    name: Arc::clone(&grid.payload.name),
                })
                .collect(),
        }
    }
}

/// The lookup answer for a validated point given in `crs`, as a value.
/// Every text in it is shared with the snapshot (`Arc<str>`).
#[must_use]
pub fn answer(index: &LookupIndex, lon: f64, lat: f64, crs: LonLatCrs) -> LookupResponse {
    LookupHit::new(index, lon, lat, crs).to_response()
}

/// Appends `value` as serde_json writes it (numbers by ryu, non-finite as
/// null; strings escaped).
fn push_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing strings and numbers into a Vec cannot fail.
    if let Err(err) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(%err, "encoding a lookup answer");
    }
}

/// `{"code":…,"<key>":…}`.
fn push_code_name(out: &mut Vec<u8>, code: &str, name: &str, key: &[u8]) {
    out.extend_from_slice(b"{\"code\":");
    push_json(out, code);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\":");
    push_json(out, name);
    out.push(b'}');
}

/// `{"code":…,"name":…,"distance_m":…}` with the metres rounded to decimetres.
fn push_unit_with_distance(out: &mut Vec<u8>, code: &str, name: &str, metres: f64) {
    out.extend_from_slice(b"{\"code\":");
    push_json(out, code);
    out.extend_from_slice(b",\"name\":");
    push_json(out, name);
    out.extend_from_slice(b",\"distance_m\":");
    push_json(out, &round_decimetres(metres));
    out.push(b'}');
}

/// Parses the optional `crs` parameter shared by single and batch lookups.
pub(crate) fn parse_crs(name: Option<&str>) -> Result<LonLatCrs, ApiError> {
    match name {
        None => Ok(LonLatCrs::Cgcs2000),
        Some(name) => LonLatCrs::parse(name).map_err(|err| ApiError::BadRequest(err.to_string())),
    }
}

fn round_decimetres(metres: f64) -> f64 {
    (metres * 10.0).round() / 10.0
}

/// Validates a longitude/latitude pair, spotting the common swap.
fn parse_point(lon: Option<&str>, lat: Option<&str>) -> Result<(f64, f64), ApiError> {
    let lon = parse_number("lon", lon).map_err(ApiError::BadRequest)?;
    let lat = parse_number("lat", lat).map_err(ApiError::BadRequest)?;
    check_point(lon, lat).map_err(ApiError::BadRequest)
}

/// Checks the ranges of a parsed pair; the message names what is wrong and
/// spots swapped coordinates. Shared with the batch lookup's per-row errors.
pub(crate) fn check_point(lon: f64, lat: f64) -> Result<(f64, f64), String> {
    if !(-90.0..=90.0).contains(&lat) {
        let hint = if (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat) {
            "; lon and lat look swapped"
        } else {
            ""
        };
        return Err(format!("lat must be within [-90, 90], got {lat}{hint}"));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("lon must be within [-180, 180], got {lon}"));
    }
    Ok((lon, lat))
}

/// Parses one coordinate given as text; shared with the batch lookup.
pub(crate) fn parse_number(name: &str, value: Option<&str>) -> Result<f64, String> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("missing query parameter {name}"))?;
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{name} must be a finite number, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::GridWorker;
    use crate::grid_index::{BuildingInfo, DepartmentGrid, GridChain, StationIndex, StationInfo};
    use gridmap_circles::{LineString, MultiPolygon, Polygon};
    use gridmap_index::{Located, PolygonIndex};
    use gridmap_model::StationKind;

    /// Texts that JSON must escape: quotes, backslashes, control characters,
    /// Chinese and characters beyond the Basic Multilingual Plane.
    const AWKWARD: &str = "东莱\"街道\\ 1\n\t\u{1}\u{7f} 😀 </script>";

    fn square(x0: f64, y0: f64, size: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (x0, y0),
                (x0 + size, y0),
                (x0 + size, y0 + size),
                (x0, y0 + size),
                (x0, y0),
            ]),
            vec![],
        )])
    }

    fn unit(code: &str, name: &str) -> Unit {
        Unit {
            code: code.into(),
            name: name.into(),
        }
    }

    fn located<T>(code: &str, polygon: MultiPolygon<f64>, payload: T) -> Located<T> {
        Located {
            code: code.into(),
            polygon,
            payload,
        }
    }

    fn grid(code: &str, name: &str) -> GridChain {
        GridChain::new(
            unit(code, name),
            "basic".into(),
            "green".into(),
            unit("370681001001", AWKWARD),
            unit("370681001", "东莱街道"),
            unit("370681", "龙口市"),
        )
    }

    fn station(
        code: &str,
        name: &str,
        kind: StationKind,
        lon: f64,
        lat: f64,
    ) -> (StationInfo, f64, f64) {
        let info = StationInfo::new(code.into(), name.into(), kind);
        (info, lon, lat)
    }

    /// Two grids sharing an edge, a grid unit, buildings with and without an
    /// address, overlapping departmental grids, and stations of two kinds
    /// on a small road network.
    fn index() -> LookupIndex {
        let grids = PolygonIndex::new(vec![
            located(
                "370681001001002",
                square(120.41, 37.6, 0.01),
                grid("370681001001002", "二\"网格\""),
            ),
            located(
                "370681001001001",
                square(120.4, 37.6, 0.01),
                grid("370681001001001", AWKWARD),
            ),
        ]);
        let grid_units = PolygonIndex::new(vec![located(
            "370681001001001001",
            square(120.4, 37.6, 0.005),
            Arc::<str>::from(AWKWARD),
        )]);
        let buildings = PolygonIndex::new(vec![
            located(
                "3706810010010010010001",
                square(120.401, 37.601, 0.001),
                BuildingInfo {
                    name: AWKWARD.into(),
                    floors: Some(6),
                    address: Some(AddressInfo {
                        code: "A1".into(),
                        address: "龙口市东莱街道\\1号".into(),
                    }),
                },
            ),
            located(
                "3706810010010010010002",
                square(120.403, 37.601, 0.001),
                BuildingInfo {
                    name: "仓库".into(),
                    floors: None,
                    address: None,
                },
            ),
        ]);
        let departments = PolygonIndex::new(vec![
            located(
                "Z9",
                square(120.4, 37.6, 0.02),
                DepartmentGrid {
                    department: "police".into(),
                    name: AWKWARD.into(),
                },
            ),
            located(
                "A1",
                square(120.4, 37.6, 0.02),
                DepartmentGrid {
                    department: "police".into(),
                    name: "甲".into(),
                },
            ),
            located(
                "B2",
                square(120.4, 37.6, 0.005),
                DepartmentGrid {
                    department: "fire".into(),
                    name: "乙".into(),
                },
            ),
        ]);
        let roads = vec![
            LineString::from(vec![
                (120.400, 37.600),
                (120.405, 37.600),
                (120.405, 37.605),
            ]),
            LineString::from(vec![(120.405, 37.605), (120.415, 37.605)]),
        ];
        let stations = StationIndex::new(
            &[
                station("S1", AWKWARD, StationKind::ServiceCentre, 120.4001, 37.6001),
                station("S2", "红色驿站", StationKind::RedStation, 120.415, 37.6051),
                station("S3", "站\"三", StationKind::RedStation, 120.5, 37.7),
            ],
            &roads,
            None,
        );
        LookupIndex {
            grids: Arc::new(grids),
            grid_units: Arc::new(grid_units),
            buildings: Arc::new(buildings),
            stations: Arc::new(stations),
            departments: Arc::new(departments),
        }
    }

    #[test]
    fn written_answers_equal_serde_json_of_the_value() {
        let index = index();
        let worker = GridWorker {
            name: Some(AWKWARD.to_owned()),
            phone: None,
        };
        let points = [
            (120.4015, 37.6015), // building with address, grid unit, departments
            (120.4035, 37.6015), // building without address
            (120.41, 37.605),    // on the shared edge
            (120.415, 37.605),   // second grid, on a road node
            (120.45, 37.65),     // outside: nearest grid, far from roads
            (120.4001, 37.6001), // at a station
            (0.0, 0.0),          // far from everything
        ];
        for (lon, lat) in points {
            for crs in [LonLatCrs::Cgcs2000, LonLatCrs::Gcj02] {
                let hit = LookupHit::new(&index, lon, lat, crs);
                let mut response = hit.to_response();
                let expected = serde_json::to_vec(&response).unwrap_or_default();
                let got = hit.to_json(None);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected),
                    "({lon}, {lat}) {crs:?}"
                );
                if let Some(grid) = response.grid.as_mut() {
                    grid.worker = Some(worker.clone());
                }
                let expected = serde_json::to_vec(&response).unwrap_or_default();
                assert_eq!(
                    String::from_utf8_lossy(&hit.to_json(Some(&worker))),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
        // The points above reach every branch of the answer.
        let answer = |lon, lat| LookupHit::new(&index, lon, lat, LonLatCrs::Cgcs2000).to_response();
        let inside = answer(120.4015, 37.6015);
        assert!(inside.address.is_some() && inside.grid_unit.is_some());
        assert_eq!(inside.departments.len(), 3);
        assert_eq!(&*inside.departments[0].department, "fire");
        assert_eq!(&*inside.departments[1].code, "A1");
        assert!(inside.nearest_stations.iter().any(|s| s.walking.is_some()));
        assert_eq!(
            answer(120.41, 37.605)
                .grid
                .map(|g| g.code.to_string())
                .as_deref(),
            Some("370681001001001")
        );
        let outside = answer(120.45, 37.65);
        assert!(outside.grid.is_none() && outside.nearest_grid.is_some());
        assert!(outside.nearest_stations.iter().all(|s| s.walking.is_none()));
    }

    fn check(lon: Option<&str>, lat: Option<&str>, expected: Result<(f64, f64), &str>) {
        let got = parse_point(lon, lat).map_err(|err| err.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{lon:?} {lat:?}");
    }

    #[test]
    fn parses_and_rejects_points() {
        check(Some("120.5"), Some("37.6"), Ok((120.5, 37.6)));
        check(None, Some("37.6"), Err("missing query parameter lon"));
        check(Some(" "), Some("37.6"), Err("missing query parameter lon"));
        check(
            Some("abc"),
            Some("37.6"),
            Err("lon must be a finite number, got \"abc\""),
        );
        check(
            Some("NaN"),
            Some("37.6"),
            Err("lon must be a finite number, got \"NaN\""),
        );
        check(
            Some("37.6"),
            Some("120.5"),
            Err("lat must be within [-90, 90], got 120.5; lon and lat look swapped"),
        );
        check(
            Some("190"),
            Some("37"),
            Err("lon must be within [-180, 180], got 190"),
        );
    }
}
