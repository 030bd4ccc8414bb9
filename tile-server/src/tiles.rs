//! `GET /tiles/{layers}` (TileJSON) and `GET /tiles/{layers}/{z}/{x}/{y}` (MVT).
//!
//! `{layers}` is one layer name or several joined by commas; a composite tile
//! is the concatenation of its layers, which is itself a valid MVT message.

use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use gridmap_tiles::{find_layer, LayerDef, TileCoord, LAYERS};
use std::time::Duration;

pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Encoded tiles by `(layers, z, x, y)`, bounded by their total size in bytes.
#[derive(Clone)]
pub struct TileCache {
    cache: moka::future::Cache<(String, TileCoord), Bytes>,
}

/// Margin of the clip buffer in tile widths: a change this close to a tile
/// shows in it.
const BUFFER_MARGIN: f64 = gridmap_tiles::BUFFER as f64 / gridmap_tiles::EXTENT as f64;

impl TileCache {
    pub fn new(max_bytes: u64) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &(String, TileCoord), tile: &Bytes| {
                u32::try_from(tile.len() + key.0.len() + 16).unwrap_or(u32::MAX)
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
        let predicate = move |key: &(String, TileCoord), _: &Bytes| {
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
    let body = state
        .tile_cache
        .cache
        .try_get_with((layers.clone(), coord), async move {
            let mut body = Vec::new();
            for layer in layer_defs {
                if (layer.minzoom..=layer.maxzoom).contains(&coord.z) {
                    body.extend(gridmap_tiles::encode_layer(&pool, layer, coord).await?);
                }
            }
            Ok::<_, gridmap_tiles::EncodeError>(Bytes::from(body))
        })
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("{err:#}")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(MVT_CONTENT_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        body,
    )
        .into_response())
}
