//! `GET /tiles/{layers}` (TileJSON) and `GET /tiles/{layers}/{z}/{x}/{y}` (MVT).
//!
//! `{layers}` is one layer name or several joined by commas; a composite tile
//! is the concatenation of its layers, which is itself a valid MVT message.

use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use gridmap_tiles::{find_layer, LayerDef, TileCoord, LAYERS};
use std::time::Duration;

pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Encoded tiles by `(layers, z, x, y)`, bounded by their total size in bytes.
#[derive(Clone)]
pub struct TileCache {
    cache: moka::future::Cache<(String, TileCoord), CachedTile>,
}

/// One encoded tile, kept raw and gzip-compressed so a warm request costs no
/// compression, with an entity tag derived from its content: the tag changes
/// exactly when the bytes do, so no browser or proxy keeps a stale tile.
#[derive(Clone)]
pub struct CachedTile {
    raw: Bytes,
    gzip: Bytes,
    etag: HeaderValue,
}

impl CachedTile {
    fn new(raw: Vec<u8>) -> std::io::Result<Self> {
        use std::hash::{Hash as _, Hasher as _};
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&raw)?;
        let gzip = encoder.finish()?;
        // SipHash with fixed keys: the same bytes give the same tag on every
        // replica running the same build.
        let mut hasher = std::hash::DefaultHasher::new();
        raw.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .map_err(std::io::Error::other)?;
        Ok(Self {
            raw: Bytes::from(raw),
            gzip: Bytes::from(gzip),
            etag,
        })
    }

    fn weight(&self) -> usize {
        self.raw.len() + self.gzip.len()
    }
}

/// Margin of the clip buffer in tile widths: a change this close to a tile
/// shows in it.
const BUFFER_MARGIN: f64 = gridmap_tiles::BUFFER as f64 / gridmap_tiles::EXTENT as f64;

impl TileCache {
    pub fn new(max_bytes: u64) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &(String, TileCoord), tile: &CachedTile| {
                u32::try_from(tile.weight() + key.0.len() + 64).unwrap_or(u32::MAX)
            })
            // Edits are not yet announced to the server, so a cached tile may
            // be this old at most.
            .time_to_live(Duration::from_secs(60))
            .support_invalidation_closures()
            .build();
        Self { cache }
    }

    /// Drops every cached tile that shows `table` and meets `bbox`
    /// (`[west, south, east, north]` in degrees; `None` for the whole table).
    pub fn invalidate(&self, table: &str, bbox: Option<[f64; 4]>) {
        let table = table.to_owned();
        let predicate = move |key: &(String, TileCoord), _: &CachedTile| {
            let shows_table = key
                .0
                .split(',')
                .filter_map(find_layer)
                .any(|layer| layer.table == table);
            shows_table
                && bbox.is_none_or(|[w, s, e, n]| {
                    let [tw, ts, te, tn] = key.1.bounds_lonlat(BUFFER_MARGIN);
                    tw <= e && w <= te && ts <= n && s <= tn
                })
        };
        if let Err(err) = self.cache.invalidate_entries_if(predicate) {
            // Only possible when closures are unsupported, which new() enables;
            // dropping everything is the safe fallback.
            tracing::warn!(%err, "cannot invalidate selectively; dropping all tiles");
            self.cache.invalidate_all();
        }
    }
}

fn parse_layers(spec: &str) -> Result<Vec<&'static LayerDef>, ApiError> {
    spec.split(',')
        .map(|name| {
            find_layer(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = LAYERS.iter().map(|layer| layer.name).collect();
                ApiError::NotFound(format!(
                    "no tile layer {name:?}; layers are: {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// The scheme and host the client used, so TileJSON carries absolute URLs.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|proto| matches!(*proto, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

pub async fn tilejson(
    State(state): State<AppState>,
    Path(layers): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let spec = layers.strip_suffix(".json").unwrap_or(&layers);
    let layers = parse_layers(spec)?;
    let document = gridmap_tiles::tilejson_for(&layers, &base_url(&headers), state.bounds);
    Ok((
        // The page and MapLibre both read it: let the second read hit the cache.
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        Json(document),
    )
        .into_response())
}

pub async fn tile(
    State(state): State<AppState>,
    Path((layers, z, x, y)): Path<(String, String, String, String)>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let layer_defs = parse_layers(&layers)?;
    let y = y
        .strip_suffix(".pbf")
        .or_else(|| y.strip_suffix(".mvt"))
        .unwrap_or(&y);
    let number = |name: &str, value: &str| {
        value.parse::<u32>().map_err(|_| {
            ApiError::BadRequest(format!(
                "tile {name} must be a non-negative integer, got {value:?}"
            ))
        })
    };
    let coord = TileCoord::new(number("z", &z)?, number("x", &x)?, number("y", y)?)
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let pool = state.pool.clone();
    let tile = state
        .tile_cache
        .cache
        .try_get_with((layers.clone(), coord), async move {
            let mut body = Vec::new();
            for layer in layer_defs {
                if (layer.minzoom..=layer.maxzoom).contains(&coord.z) {
                    body.extend(gridmap_tiles::encode_layer(&pool, layer, coord).await?);
                }
            }
            CachedTile::new(body).map_err(anyhow::Error::from)
        })
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("{err:#}")))?;
    Ok(tile_response(&tile, &request_headers))
}

/// 304 when the client holds this version; else the tile, gzip-compressed when
/// the client accepts it.
fn tile_response(tile: &CachedTile, request_headers: &HeaderMap) -> Response {
    let cache_control = HeaderValue::from_static("public, max-age=60");
    let client_has_it = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == tile.etag.to_str().unwrap_or_default()
        });
    if client_has_it {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, tile.etag.clone()),
                (header::CACHE_CONTROL, cache_control),
            ],
        )
            .into_response();
    }
    let accepts_gzip = request_headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused =
                parts.any(|param| matches!(param.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        });
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(MVT_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, cache_control),
            (header::ETAG, tile.etag.clone()),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ],
        if accepts_gzip {
            tile.gzip.clone()
        } else {
            tile.raw.clone()
        },
    )
        .into_response();
    if accepts_gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}
