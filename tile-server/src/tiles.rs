//! `GET /tiles/{layers}` (TileJSON) and `GET /tiles/{layers}/{z}/{x}/{y}` (MVT).
//!
//! `{layers}` is one layer name or several joined by commas; a composite tile
//! is the concatenation of its layers, which is itself a valid MVT message.
//!
//! A layer set holding an internal layer (`gap_findings`) needs credentials
//! (401 without) of a role that may see internal layers (403 otherwise):
//! admins, planners and viewers, the staff with user accounts; API keys of
//! integrating systems are for lookups and may not. Such tiles and their
//! TileJSON are sent `Cache-Control: private`.

use crate::auth::MaybeCaller;
use crate::{ApiError, SharedState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use gridmap_tiles::{
    find_any_layer, find_layer, CircleSnapshot, ComputedLayer, GapSnapshot, GeneralisedPolygons,
    LayerDef, StoredLayers, TileCoord, TileSources, LAYERS,
};
use std::sync::Arc;
use std::time::Duration;

pub const MVT_CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Encoded tiles by `(layers, z, x, y)`, bounded by their total size in bytes,
/// and the generalised snapshot the polygon layers are drawn from.
#[derive(Clone)]
pub struct TileCache {
    cache: moka::future::Cache<(String, TileCoord), CachedTile>,
    /// Rebuilt off the request path and swapped whole on a change.
    polygons: Arc<Snapshot<GeneralisedPolygons>>,
    /// The point, line and building layers, copied from their tables;
    /// reloaded layer by layer on a change and swapped whole.
    stored: Arc<Snapshot<StoredLayers>>,
    /// Counts invalidations. A tile whose encoding began before one and
    /// ended after it may hold the old state (it may have read the old
    /// snapshot) and is not kept; see [`tile`].
    invalidations: Arc<std::sync::atomic::AtomicU64>,
    /// The computed layers, each rebuilt off the request path on a change of
    /// its inputs and swapped whole.
    circles: Arc<Snapshot<CircleSnapshot>>,
    gaps: Arc<Snapshot<GapSnapshot>>,
}

/// A snapshot read from the database on first use and swapped whole when
/// it changes.
struct Snapshot<T> {
    current: arc_swap::ArcSwapOption<T>,
    /// Held while the snapshot loads or updates, so concurrent first
    /// requests load it once, and loads and updates run one at a time and
    /// none is lost.
    lock: tokio::sync::Mutex<()>,
}

impl<T> Snapshot<T> {
    fn new() -> Self {
        Self {
            current: arc_swap::ArcSwapOption::empty(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The current snapshot, or the one `load` makes if there is none yet
    /// (awaited under the lock, so only the first of concurrent callers
    /// runs it). `None` when loading fails; the error is logged as `what`.
    async fn get_or_load(
        &self,
        what: &'static str,
        load: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> Option<Arc<T>> {
        if let Some(snapshot) = self.current.load_full() {
            return Some(snapshot);
        }
        let _loading = self.lock.lock().await;
        if let Some(snapshot) = self.current.load_full() {
            return Some(snapshot);
        }
        match load.await {
            Ok(snapshot) => self.current.store(Some(Arc::new(snapshot))),
            Err(err) => tracing::error!(error = format!("{err:#}"), "{what}"),
        }
        self.current.load_full()
    }
}

/// One encoded tile, kept raw, and gzip- or brotli-compressed the first time
/// a client asks for that coding (browsers ask for brotli, so most tiles are
/// never gzipped), then kept so a warm request costs no compression. The
/// entity tag is derived from the content: it changes exactly when the bytes
/// do, so no browser or proxy keeps a stale tile.
#[derive(Clone)]
pub struct CachedTile {
    raw: Bytes,
    /// Shared by every clone the cache hands out, so each coding is
    /// compressed once per cached tile.
    gzip: Arc<std::sync::OnceLock<Bytes>>,
    brotli: Arc<std::sync::OnceLock<Bytes>>,
    /// Hex digest of `raw`; each encoding's tag adds a suffix to it.
    digest: String,
    /// Set when a change was invalidated while this tile was being encoded:
    /// it may show the old state, so it is dropped from the cache at once.
    encoded_across_a_change: bool,
}

/// Brotli quality: 5 compresses tiles within a few percent of 11 at a small
/// fraction of the cost, which matters on the cold path.
const BROTLI_QUALITY: i32 = 5;
/// Brotli window (log2 bytes): 512 KiB, larger than nearly every tile (a
/// larger tile still compresses, with back-references limited to the window).
/// The encoder clears a ring buffer of the window's size for every tile, so
/// the window sets the cold path's cost: on 18 demo-city tiles (1–7 kB) at
/// quality 5, a 4 MiB window (22) took 250–350 µs per tile and 512 KiB (19)
/// about 110 µs, for the same bytes out; small windows (16 and below) were
/// several times slower again (`examples/brotli_params.rs` measures it).
const BROTLI_WINDOW: i32 = 19;

impl CachedTile {
    fn new(raw: Vec<u8>) -> Self {
        use std::hash::{Hash as _, Hasher as _};
        // SipHash with fixed keys: the same bytes give the same tag on every
        // replica running the same build.
        let mut hasher = std::hash::DefaultHasher::new();
        raw.hash(&mut hasher);
        Self {
            raw: Bytes::from(raw),
            gzip: Arc::default(),
            brotli: Arc::default(),
            digest: format!("{:016x}", hasher.finish()),
            encoded_across_a_change: false,
        }
    }

    /// Bytes the cache counts for this tile: the raw bytes plus as much again
    /// for the compressed codings, which are made later (gzip and brotli
    /// together are under the raw size for all but the tiniest tiles, so the
    /// cache's byte bound stays an upper bound).
    fn weight(&self) -> usize {
        2 * self.raw.len() + 64 + self.digest.len()
    }

    /// The body of one encoding, compressing it on first use.
    fn body(&self, coding: Coding) -> Bytes {
        match coding {
            Coding::Identity => self.raw.clone(),
            Coding::Gzip => self.gzip.get_or_init(|| gzip(&self.raw)).clone(),
            Coding::Brotli => self.brotli.get_or_init(|| brotli(&self.raw)).clone(),
        }
    }

    /// The entity tag of one encoding. Tags differ per encoding (RFC 9110
    /// §8.8.3: a representation's tag covers its content coding).
    fn etag(&self, coding: Coding) -> String {
        let digest = &self.digest;
        match coding {
            Coding::Identity => format!("\"{digest}\""),
            Coding::Gzip => format!("\"{digest}-gz\""),
            Coding::Brotli => format!("\"{digest}-br\""),
        }
    }

    /// Whether `tag` (quoted, maybe weak) names any encoding of this content.
    fn matches(&self, tag: &str) -> bool {
        let opaque = tag.trim().trim_start_matches("W/").trim_matches('"');
        let base = opaque
            .strip_suffix("-gz")
            .or_else(|| opaque.strip_suffix("-br"))
            .unwrap_or(opaque);
        base == self.digest
    }
}

/// Compressing into memory cannot fail; an error would be a bug in the
/// encoder, answered with the raw bytes' worth of nothing rather than a panic.
fn gzip(raw: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut gzip = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 2),
        flate2::Compression::fast(),
    );
    match gzip.write_all(raw).and_then(|()| gzip.finish()) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => {
            tracing::error!(%err, "gzip-compressing a tile");
            Bytes::new()
        }
    }
}

fn brotli(raw: &[u8]) -> Bytes {
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        lgwin: BROTLI_WINDOW,
        size_hint: raw.len(),
        ..brotli::enc::BrotliEncoderParams::default()
    };
    let mut out = Vec::with_capacity(raw.len() / 2);
    match brotli::BrotliCompress(&mut &raw[..], &mut out, &params) {
        Ok(_) => Bytes::from(out),
        Err(err) => {
            tracing::error!(%err, "brotli-compressing a tile");
            Bytes::new()
        }
    }
}

/// Content codings a tile is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    fn header(self) -> Option<HeaderValue> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some(HeaderValue::from_static("gzip")),
            Coding::Brotli => Some(HeaderValue::from_static("br")),
        }
    }
}

/// The coding to answer with under `Accept-Encoding`: the acceptable one with
/// the highest q-value, brotli before gzip before identity on a tie (brotli is
/// smaller). Codings not named take the q-value of `*`; absent `*` they are
/// refused, except identity, which stays acceptable (last) unless refused.
fn negotiate(request_headers: &HeaderMap) -> Coding {
    let mut q_brotli = None;
    let mut q_gzip = None;
    let mut q_identity = None;
    let mut q_any = None;
    for coding in request_headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
    {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|param| {
                let (key, value) = param.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next_back()
            .unwrap_or(1.0);
        let slot = if name.eq_ignore_ascii_case("br") {
            &mut q_brotli
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            &mut q_gzip
        } else if name.eq_ignore_ascii_case("identity") {
            &mut q_identity
        } else if name == "*" {
            &mut q_any
        } else {
            continue;
        };
        *slot = Some(q);
    }
    let brotli = q_brotli.or(q_any).unwrap_or(0.0);
    let gzip = q_gzip.or(q_any).unwrap_or(0.0);
    // Identity is acceptable unless refused, but named codings come first.
    let identity = q_identity.or(q_any).unwrap_or(f32::MIN_POSITIVE);
    [
        (Coding::Brotli, brotli),
        (Coding::Gzip, gzip),
        (Coding::Identity, identity),
    ]
    .into_iter()
    .filter(|(_, q)| *q > 0.0)
    .fold((Coding::Identity, 0.0_f32), |best, candidate| {
        if candidate.1 > best.1 {
            candidate
        } else {
            best
        }
    })
    .0
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
        Self {
            cache,
            polygons: Arc::new(Snapshot::new()),
            stored: Arc::new(Snapshot::new()),
            invalidations: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            circles: Arc::new(Snapshot::new()),
            gaps: Arc::new(Snapshot::new()),
        }
    }

    /// The service circles, computing them on first use (seconds for a
    /// city: the server warms them at start, see [`Self::warm_computed`]);
    /// `None` when they cannot be read (the layer is then left out).
    pub(crate) async fn circles(&self, pool: &sqlx::PgPool) -> Option<Arc<CircleSnapshot>> {
        let load = async {
            let started = std::time::Instant::now();
            let inputs = gridmap_tiles::fetch_circle_inputs(pool, true).await?;
            let snapshot = tokio::task::spawn_blocking(move || CircleSnapshot::build(inputs))
                .await
                .map_err(|err| anyhow::anyhow!("computing the service circles: {err}"))?;
            tracing::info!(
                circles = snapshot.circle_count(),
                elapsed_ms = started.elapsed().as_millis(),
                "computed the service circles"
            );
            Ok(snapshot)
        };
        self.circles
            .get_or_load("computing the service circles", load)
            .await
    }

    /// The gap findings, checking every street on first use.
    async fn gaps(&self, pool: &sqlx::PgPool) -> Option<Arc<GapSnapshot>> {
        let load = async {
            let started = std::time::Instant::now();
            let inputs = gridmap_tiles::fetch_gap_inputs(pool, None).await?;
            let snapshot = tokio::task::spawn_blocking(move || GapSnapshot::build(inputs))
                .await
                .map_err(|err| anyhow::anyhow!("checking the streets for gap findings: {err}"))?;
            tracing::info!(
                findings = snapshot.layer().feature_count(),
                elapsed_ms = started.elapsed().as_millis(),
                "computed the gap findings"
            );
            Ok(snapshot)
        };
        self.gaps
            .get_or_load("computing the gap findings", load)
            .await
    }

    /// Computes the computed layers now, so the first tile does not wait.
    pub async fn warm_computed(&self, pool: &sqlx::PgPool) {
        tokio::join!(self.circles(pool), self.gaps(pool));
    }

    /// After committed changes: updates the computed layers whose inputs
    /// changed (only those already computed; a later first use reads the
    /// new data anyway) and returns, per layer, the extent whose tiles
    /// differ: the old and new places of every feature that changed.
    pub async fn computed_changed(
        &self,
        pool: &sqlx::PgPool,
        changed: &[(String, Option<[f64; 4]>)],
    ) -> Vec<(&'static str, [f64; 4])> {
        let (circles, gaps) = tokio::join!(
            self.update_circles(pool, changed),
            self.update_gaps(pool, changed)
        );
        circles.into_iter().chain(gaps).collect()
    }

    async fn update_circles(
        &self,
        pool: &sqlx::PgPool,
        changed: &[(String, Option<[f64; 4]>)],
    ) -> Option<(&'static str, [f64; 4])> {
        let inputs = gridmap_tiles::layers::SERVICE_CIRCLE_INPUTS;
        if !changed
            .iter()
            .any(|(table, _)| inputs.contains(&table.as_str()))
        {
            return None;
        }
        let _computing = self.circles.lock.lock().await;
        let old = self.circles.current.load_full()?;
        let road_changes: Vec<Option<[f64; 4]>> = changed
            .iter()
            .filter(|(table, _)| table == "roads")
            .map(|(_, bbox)| *bbox)
            .collect();
        let updated = async {
            let inputs = gridmap_tiles::fetch_circle_inputs(pool, !road_changes.is_empty()).await?;
            let previous = Arc::clone(&old);
            tokio::task::spawn_blocking(move || previous.update(inputs, &road_changes))
                .await
                .map_err(|err| anyhow::anyhow!("updating the service circles: {err}"))
        };
        let new = match updated.await {
            Ok(new) => Arc::new(new),
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "updating the service circles");
                return None;
            }
        };
        self.circles.current.store(Some(Arc::clone(&new)));
        let extent = ComputedLayer::changed_extent(Some(old.layer()), new.layer())?;
        Some((new.layer().def().name, extent))
    }

    async fn update_gaps(
        &self,
        pool: &sqlx::PgPool,
        changed: &[(String, Option<[f64; 4]>)],
    ) -> Option<(&'static str, [f64; 4])> {
        let changes: Vec<Option<[f64; 4]>> = changed
            .iter()
            .filter(|(table, _)| gridmap_tiles::gap_layer::gap_input(table))
            .map(|(_, bbox)| *bbox)
            .collect();
        if changes.is_empty() {
            return None;
        }
        let _computing = self.gaps.lock.lock().await;
        let old = self.gaps.current.load_full()?;
        let updated = async {
            let inputs = gridmap_tiles::fetch_gap_inputs(pool, Some(&changes)).await?;
            let previous = Arc::clone(&old);
            tokio::task::spawn_blocking(move || previous.update(inputs))
                .await
                .map_err(|err| anyhow::anyhow!("updating the gap findings: {err}"))
        };
        let new = match updated.await {
            Ok(new) => Arc::new(new),
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "updating the gap findings");
                return None;
            }
        };
        self.gaps.current.store(Some(Arc::clone(&new)));
        let extent = ComputedLayer::changed_extent(Some(old.layer()), new.layer())?;
        Some((new.layer().def().name, extent))
    }

    /// Bumps the invalidation count before tiles are dropped, so a tile
    /// still being encoded sees it when it is done.
    fn count_invalidation(&self) {
        self.invalidations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every cached tile that shows `layer` and meets `bbox` (degrees).
    pub fn invalidate_layer(&self, layer: &'static str, bbox: [f64; 4]) {
        self.count_invalidation();
        let predicate = move |key: &(String, TileCoord), _: &CachedTile| {
            key.0.split(',').any(|name| name == layer) && {
                let [w, s, e, n] = bbox;
                let [tw, ts, te, tn] = key.1.bounds_lonlat(BUFFER_MARGIN);
                tw <= e && w <= te && ts <= n && s <= tn
            }
        };
        if let Err(err) = self.cache.invalidate_entries_if(predicate) {
            tracing::warn!(%err, "cannot invalidate selectively; dropping all tiles");
            self.cache.invalidate_all();
        }
    }

    /// Reads the polygon layers and builds their generalised snapshot (on the
    /// blocking pool), then swaps it in. Returns the snapshot it replaced.
    ///
    /// # Errors
    /// When the layers cannot be read.
    pub async fn load_polygons(
        &self,
        pool: &sqlx::PgPool,
    ) -> anyhow::Result<Option<Arc<GeneralisedPolygons>>> {
        let _loading = self.polygons.lock.lock().await;
        let snapshot = build_polygons(pool).await?;
        Ok(self.polygons.current.swap(Some(Arc::new(snapshot))))
    }

    /// The current snapshot, loading it on first use. `None` (PostGIS draws
    /// every layer) when it cannot be loaded.
    async fn polygons(&self, pool: &sqlx::PgPool) -> Option<Arc<GeneralisedPolygons>> {
        self.polygons
            .get_or_load("loading the polygon layers", build_polygons(pool))
            .await
    }

    /// The copy of the point, line and building layers, loading it on first
    /// use. `None` (PostGIS draws those layers) when it cannot be loaded.
    async fn stored(&self, pool: &sqlx::PgPool) -> Option<Arc<StoredLayers>> {
        let load = async {
            let started = std::time::Instant::now();
            let rows = StoredLayers::fetch(pool).await?;
            let copy = tokio::task::spawn_blocking(move || StoredLayers::build(rows))
                .await
                .map_err(|err| anyhow::anyhow!("indexing the stored layers: {err}"))?;
            tracing::info!(
                buildings = copy.feature_count("buildings"),
                elapsed_ms = started.elapsed().as_millis(),
                "copied the point, line and building layers"
            );
            Ok(copy)
        };
        self.stored
            .get_or_load("copying the point, line and building layers", load)
            .await
    }

    /// Loads the stored layers now, so the first tile does not wait.
    pub async fn warm_stored(&self, pool: &sqlx::PgPool) {
        self.stored(pool).await;
    }

    /// After committed changes: brings the stored layers of every changed
    /// table up to date (only once the copy exists), before any tile is
    /// dropped. A change with an extent re-reads only the rows meeting it
    /// (the extent covers the old and new places of every changed row); one
    /// without re-reads the whole table.
    pub async fn stored_changed(
        &self,
        pool: &sqlx::PgPool,
        changed: &[(String, Option<[f64; 4]>)],
    ) {
        let work: Vec<(&'static LayerDef, Option<[f64; 4]>)> = changed
            .iter()
            .flat_map(|(table, bbox)| {
                StoredLayers::layers_of(table)
                    .into_iter()
                    .map(|def| (def, bbox.map(gridmap_tiles::stored::mercator_box)))
            })
            .collect();
        if work.is_empty() {
            return;
        }
        let _loading = self.stored.lock.lock().await;
        let Some(current) = self.stored.current.load_full() else {
            return;
        };
        let started = std::time::Instant::now();
        let reloaded = async {
            let mut rows = Vec::with_capacity(work.len());
            for (def, within) in &work {
                rows.push((
                    StoredLayers::fetch_layer_within(pool, def, *within).await?,
                    *within,
                ));
            }
            tokio::task::spawn_blocking(move || {
                let mut copy = (*current).clone();
                for (rows, within) in rows {
                    copy = match within {
                        Some(within) => copy.updated(rows, within),
                        None => copy.replaced(vec![rows]),
                    };
                }
                copy
            })
            .await
            .map_err(|err| anyhow::anyhow!("indexing the stored layers: {err}"))
        };
        match reloaded.await {
            Ok(copy) => {
                tracing::debug!(
                    layers = work.len(),
                    elapsed_ms = started.elapsed().as_millis(),
                    "updated stored layers"
                );
                self.stored.current.store(Some(Arc::new(copy)));
            }
            Err(err) => {
                // Without a current copy, PostGIS draws these layers again
                // rather than the server showing stale features.
                tracing::error!(error = format!("{err:#}"), "updating stored layers");
                self.stored.current.store(None);
            }
        }
    }

    /// After a committed change of `table` within `bbox` (degrees; `None`
    /// for the whole table): rebuilds the snapshot when `table` feeds it and
    /// returns the extents to invalidate as `(table, bbox)`. A polygon
    /// table's change may move the simplified shared edges of every polygon
    /// layer, as far as the chains through the change reach.
    pub async fn polygons_changed(
        &self,
        pool: &sqlx::PgPool,
        changed: &[(String, Option<[f64; 4]>)],
    ) -> Vec<(String, Option<[f64; 4]>)> {
        let polygon_tables: Vec<&str> = gridmap_tiles::GENERALISED_LAYERS
            .iter()
            .filter_map(|name| find_layer(name))
            .map(|layer| layer.table)
            .collect();
        let mut extents = changed.to_vec();
        let touched: Vec<Option<[f64; 4]>> = changed
            .iter()
            .filter(|(table, _)| polygon_tables.contains(&table.as_str()))
            .map(|(_, bbox)| *bbox)
            .collect();
        if touched.is_empty() || self.polygons.current.load().is_none() {
            return extents;
        }
        let old = match self.load_polygons(pool).await {
            Ok(old) => old,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "rebuilding the polygon layers");
                None
            }
        };
        let new = self.polygons.current.load_full();
        for bbox in touched {
            let grown = bbox.map(|bbox| {
                [old.as_deref(), new.as_deref()]
                    .into_iter()
                    .flatten()
                    .map(|snapshot| snapshot.affected_extent(bbox))
                    .fold(bbox, |a, b| {
                        [
                            a[0].min(b[0]),
                            a[1].min(b[1]),
                            a[2].max(b[2]),
                            a[3].max(b[3]),
                        ]
                    })
            });
            extents.extend(
                polygon_tables
                    .iter()
                    .map(|table| ((*table).to_owned(), grown)),
            );
        }
        extents
    }

    /// Drops every cached tile that shows `table` and meets `bbox`
    /// (`[west, south, east, north]` in degrees; `None` for the whole table).
    pub fn invalidate(&self, table: &str, bbox: Option<[f64; 4]>) {
        self.count_invalidation();
        let table = table.to_owned();
        let predicate = move |key: &(String, TileCoord), _: &CachedTile| {
            // Computed layers are dropped by what changed in them instead
            // (see `computed_changed`).
            let shows_table = key
                .0
                .split(',')
                .filter_map(find_any_layer)
                .any(|layer| layer.computed_from.is_empty() && layer.table == table);
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

/// Reads the polygon layers and builds their generalised snapshot (on the
/// blocking pool).
async fn build_polygons(pool: &sqlx::PgPool) -> anyhow::Result<GeneralisedPolygons> {
    let started = std::time::Instant::now();
    let rows = GeneralisedPolygons::fetch(pool).await?;
    let snapshot = tokio::task::spawn_blocking(move || GeneralisedPolygons::build(rows))
        .await
        .map_err(|err| anyhow::anyhow!("building the generalised snapshot: {err}"))?;
    tracing::info!(
        chains = snapshot.chain_count(),
        elapsed_ms = started.elapsed().as_millis(),
        "generalised polygon layers"
    );
    Ok(snapshot)
}

/// Ok when `layers` holds no internal layer or `caller` may see them:
/// [`ApiError::Unauthorized`] without credentials, [`ApiError::Forbidden`]
/// for a role that may not; every denial is logged.
fn require_access(
    layers: &[&'static LayerDef],
    caller: Result<MaybeCaller, ApiError>,
) -> Result<bool, ApiError> {
    let Some(internal) = layers.iter().find(|layer| layer.internal) else {
        return Ok(false);
    };
    let MaybeCaller(caller) = caller?;
    let Some(caller) = caller else {
        tracing::warn!(
            caller = "anonymous",
            layer = internal.name,
            reason = "no credentials",
            "internal tile layer denied"
        );
        return Err(ApiError::Unauthorized(format!(
            "layer {} is internal: log in or send Authorization: Bearer <token>",
            internal.name
        )));
    };
    if !caller.is_staff() {
        tracing::warn!(
            caller = %caller.name,
            role = caller.role.as_str(),
            layer = internal.name,
            reason = "role may not see internal layers",
            "internal tile layer denied"
        );
        return Err(ApiError::Forbidden(format!(
            "{} may not see layer {}: role {} does not see internal layers",
            caller.name,
            internal.name,
            caller.role.as_str()
        )));
    }
    Ok(true)
}

pub(crate) fn parse_layers(spec: &str) -> Result<Vec<&'static LayerDef>, ApiError> {
    spec.split(',')
        .map(|name| {
            find_any_layer(name.trim()).ok_or_else(|| {
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
pub(crate) fn base_url(headers: &HeaderMap) -> String {
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
    State(state): State<SharedState>,
    Path(layers): Path<String>,
    headers: HeaderMap,
    caller: Result<MaybeCaller, ApiError>,
) -> Result<Response, ApiError> {
    let spec = layers.strip_suffix(".json").unwrap_or(&layers);
    let layers = parse_layers(spec)?;
    let internal = require_access(&layers, caller)?;
    let document = gridmap_tiles::tilejson_for(&layers, &base_url(&headers), state.bounds);
    // The page and MapLibre both read it: let the second read hit the cache.
    let cache_control = if internal {
        "private, max-age=60"
    } else {
        "public, max-age=60"
    };
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        )],
        Json(document),
    )
        .into_response())
}

pub async fn tile(
    State(state): State<SharedState>,
    Path((layers, z, x, y)): Path<(String, String, String, String)>,
    request_headers: HeaderMap,
    caller: Result<MaybeCaller, ApiError>,
) -> Result<Response, ApiError> {
    let layer_defs = parse_layers(&layers)?;
    let internal = require_access(&layer_defs, caller)?;
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
    let tile_cache = state.tile_cache.clone();
    let key = (layers.clone(), coord);
    let tile = state
        .tile_cache
        .cache
        .try_get_with(key.clone(), async move {
            // Read before any snapshot: snapshots are swapped before the
            // count is bumped, so an unchanged count at the end means this
            // tile was drawn from the current state.
            let invalidations_before = tile_cache
                .invalidations
                .load(std::sync::atomic::Ordering::SeqCst);
            let shows = |name: &str| layer_defs.iter().any(|layer| layer.name == name);
            let polygons = if layer_defs
                .iter()
                .any(|layer| gridmap_tiles::GENERALISED_LAYERS.contains(&layer.name))
            {
                tile_cache.polygons(&pool).await
            } else {
                None
            };
            let stored = if layer_defs
                .iter()
                .any(|layer| gridmap_tiles::STORED_LAYERS.contains(&layer.name))
            {
                tile_cache.stored(&pool).await
            } else {
                None
            };
            let circles = if shows(gridmap_tiles::circle_layer::SERVICE_CIRCLES) {
                tile_cache.circles(&pool).await
            } else {
                None
            };
            let gaps = if shows(gridmap_tiles::gap_layer::GAP_FINDINGS) {
                tile_cache.gaps(&pool).await
            } else {
                None
            };
            let computed: Vec<&ComputedLayer> = circles
                .iter()
                .map(|snapshot| snapshot.layer())
                .chain(gaps.iter().map(|snapshot| snapshot.layer()))
                .collect();
            let sources = TileSources {
                polygons: polygons.as_deref(),
                stored: stored.as_deref(),
                computed: &computed,
            };
            let body = gridmap_tiles::encode_tile_from(&pool, &sources, &layer_defs, coord).await?;
            let mut tile = CachedTile::new(body);
            tile.encoded_across_a_change = tile_cache
                .invalidations
                .load(std::sync::atomic::Ordering::SeqCst)
                != invalidations_before;
            Ok::<_, anyhow::Error>(tile)
        })
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("{err:#}")))?;
    if tile.encoded_across_a_change {
        // Answer this request (it began before the change was applied) but
        // keep the tile no longer: the next request draws the new state.
        state.tile_cache.cache.invalidate(&key).await;
    }
    Ok(tile_response(&tile, &request_headers, internal))
}

/// How long a browser or proxy may use a tile without asking; after that it
/// revalidates with the tile's tag, which the cache answers with a 304.
const TILE_CACHE_CONTROL: &str = "public, max-age=60, must-revalidate";
/// The same for tiles holding an internal layer: no shared cache keeps them.
const PRIVATE_TILE_CACHE_CONTROL: &str = "private, max-age=60, must-revalidate";

/// 304 when the client holds this content in any encoding; else the tile in
/// the best coding the client accepts.
fn tile_response(tile: &CachedTile, request_headers: &HeaderMap, internal: bool) -> Response {
    // An empty tile is sent as is: a compressed empty body is larger.
    let coding = if tile.raw.is_empty() {
        Coding::Identity
    } else {
        negotiate(request_headers)
    };
    let etag =
        HeaderValue::from_str(&tile.etag(coding)).unwrap_or(HeaderValue::from_static("\"\""));
    let cache_control = HeaderValue::from_static(if internal {
        PRIVATE_TILE_CACHE_CONTROL
    } else {
        TILE_CACHE_CONTROL
    });
    let vary = HeaderValue::from_static("accept-encoding");
    let client_has_it = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == "*" || tile.matches(tag));
    if client_has_it {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache_control),
                (header::VARY, vary),
            ],
        )
            .into_response();
    }
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(MVT_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, cache_control),
            (header::ETAG, etag),
            (header::VARY, vary),
        ],
        tile.body(coding),
    )
        .into_response();
    if let Some(content_encoding) = coding.header() {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, content_encoding);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;

    fn negotiated(accept_encoding: &str) -> Coding {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept_encoding).unwrap(),
        );
        negotiate(&headers)
    }

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate(&HeaderMap::new()), Coding::Identity);
        assert_eq!(negotiated("gzip, deflate, br, zstd"), Coding::Brotli);
        assert_eq!(negotiated("gzip"), Coding::Gzip);
        assert_eq!(negotiated("br;q=0.5, gzip"), Coding::Gzip);
        assert_eq!(negotiated("br, gzip;q=0.8"), Coding::Brotli);
        assert_eq!(negotiated("gzip;q=0, br;q=0"), Coding::Identity);
        assert_eq!(negotiated("*"), Coding::Brotli);
        assert_eq!(negotiated("*;q=0.5, br;q=0"), Coding::Gzip);
        assert_eq!(negotiated("identity, gzip;q=0.5"), Coding::Identity);
        assert_eq!(negotiated("GZIP;Q=0.9"), Coding::Gzip);
        assert_eq!(negotiated("deflate"), Coding::Identity);
    }

    #[test]
    fn each_coding_is_compressed_once_and_decodes_to_the_tile() {
        use std::io::Read as _;
        let raw = b"\x1a\x02layer".repeat(1000);
        let tile = CachedTile::new(raw.clone());
        let clone = tile.clone();
        assert!(tile.brotli.get().is_none() && tile.gzip.get().is_none());
        let brotli_body = clone.body(Coding::Brotli);
        // Compressed through the clone the cache handed out, kept for all.
        assert_eq!(tile.brotli.get(), Some(&brotli_body));
        assert!(tile.gzip.get().is_none());
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&brotli_body[..], 4096)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, raw);
        let gzip_body = tile.body(Coding::Gzip);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip_body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, raw);
        assert_eq!(tile.body(Coding::Identity), raw);
        assert!(brotli_body.len() + gzip_body.len() < raw.len());
        assert!(tile.weight() >= raw.len() + brotli_body.len() + gzip_body.len());
    }

    #[test]
    fn every_encoding_has_its_own_tag_and_any_matches() {
        let tile = CachedTile::new(b"\x1a\x02layer".repeat(100));
        let tags: Vec<String> = [Coding::Identity, Coding::Gzip, Coding::Brotli]
            .into_iter()
            .map(|coding| tile.etag(coding))
            .collect();
        assert_eq!(tags[1], format!("{}-gz\"", tags[0].trim_end_matches('"')));
        assert_eq!(tags[2], format!("{}-br\"", tags[0].trim_end_matches('"')));
        for tag in &tags {
            assert!(tile.matches(tag), "{tag}");
            assert!(tile.matches(&format!("W/{tag}")), "{tag}");
        }
        assert!(!tile.matches("\"0000000000000000-br\""));
    }
}
