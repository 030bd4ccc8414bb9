//! `gridmap-export --tiles`: a set of tile layers written to one PMTiles v3 or
//! MBTiles 1.3 file, for community portals on intranets without the server.
//!
//! Every tile is the one the server sends for the same composite layer set:
//! it is encoded by [`gridmap_tiles::encode_tile_from`] from the snapshots the
//! server builds: the generalised polygon layers when the set holds one, the
//! service circles when it holds `service_circles` (computed here once, for
//! the whole city). Tiles whose message is empty are left out. A few tiles are encoded at once
//! (each costs one PostGIS statement) and written in tile order by one
//! blocking writer (PMTiles: ascending tile id, so the archive is clustered).
//! Tiles are stored gzip-compressed in both formats, as their readers expect.
//!
//! **Feature order.** `ST_AsMVT` writes features in the order the scan
//! returns rows, and that order depends on the plan: a bitmap heap scan (the
//! custom plan for one tile) returns table order, an index scan (the generic
//! plan PostgreSQL switches a prepared statement to after five executions on
//! one connection) returns index order, and a parallel scan any order. The
//! archive's connections therefore plan every tile for its own parameters
//! with no parallel workers ([`SESSION_SETTINGS`]), so the same database gives
//! the same bytes on every run: those of the server's encoder under a custom
//! plan.
//!
//! The request is checked before anything is written: known layers, a zoom
//! range, a sane extent, at most [`ArchiveOptions::max_tiles`] tiles, and no
//! existing output. The archive is written to a hidden file beside the output
//! and moved into place only when complete, so a failure or an interrupted run
//! never leaves a half-written FILE.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridmap_tiles::circle_layer::SERVICE_CIRCLES;
use gridmap_tiles::coord::MAX_ZOOM;
use gridmap_tiles::{
    find_layer, CircleSnapshot, ComputedLayer, EncodeError, GeneralisedPolygons, LayerDef,
    SnapshotError, TileCoord, TileSources, GENERALISED_LAYERS, LAYERS,
};
use sqlx::PgPool;

use crate::Progress;

/// The largest request written without raising [`ArchiveOptions::max_tiles`]:
/// about a province at z14, or a large city at z16.
pub const DEFAULT_MAX_TILES: u64 = 2_000_000;

/// Tiles encoded at once by default: the PostGIS part is one statement per tile.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Session settings of the connections that encode tiles (the server's too):
/// a custom plan per tile and no parallel workers, so rows, hence tile bytes,
/// come in one order.
pub use gridmap_store::SESSION_SETTINGS;

/// Web Mercator's latitude limit: tiles exist only between these parallels.
const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// The container written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// PMTiles v3: one file read by HTTP range requests or from disk.
    Pmtiles,
    /// MBTiles 1.3: an SQLite database, rows in the TMS scheme.
    Mbtiles,
}

impl ArchiveFormat {
    /// The format named by the extension of `path` (`.pmtiles`, `.mbtiles`).
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "pmtiles" => Some(Self::Pmtiles),
            "mbtiles" => Some(Self::Mbtiles),
            _ => None,
        }
    }
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pmtiles => "PMTiles",
            Self::Mbtiles => "MBTiles",
        })
    }
}

/// Why an archive was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("no tile layer {name:?}; layers are: {known}")]
    UnknownLayer { name: String, known: String },
    #[error("no tile layer given")]
    NoLayers,
    #[error("layer {name} is computed by the server and cannot be exported")]
    NotExportable { name: String },
    #[error("cannot tell the archive format of {}: name it FILE.pmtiles or FILE.mbtiles", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{} exists; remove it or choose another name", path.display())]
    OutputExists { path: PathBuf },
    #[error("--minzoom {minzoom} is above --maxzoom {maxzoom}")]
    ZoomOrder { minzoom: u8, maxzoom: u8 },
    #[error("zoom {zoom} is beyond the deepest zoom {MAX_ZOOM}")]
    ZoomTooDeep { zoom: u8 },
    #[error("no layer of {layers} is drawn at zooms {minzoom}–{maxzoom}")]
    NothingAtZooms {
        layers: String,
        minzoom: u8,
        maxzoom: u8,
    },
    #[error("bad extent {bbox:?}: {reason}")]
    BadExtent { bbox: [f64; 4], reason: String },
    #[error("the database holds no districts to take the extent from; pass --bbox W,S,E,N")]
    NoExtent,
    #[error(
        "{tiles} tiles requested, more than the limit of {limit}; narrow --bbox or --maxzoom, \
         or raise --max-tiles"
    )]
    TooManyTiles { tiles: u64, limit: u64 },
    #[error("connecting to the database for encoding tiles")]
    Connect(#[source] sqlx::Error),
    #[error("reading the extent of the data")]
    Extent(#[source] gridmap_store::StoreError),
    #[error("loading the generalised polygon layers")]
    Snapshot(#[source] SnapshotError),
    #[error("loading the stations and roads of the service circles")]
    Circles(#[source] SnapshotError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("writing {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the PMTiles archive")]
    Pmtiles(#[source] pmtiles::PmtError),
    #[error("writing the MBTiles database")]
    Sqlite(#[source] rusqlite::Error),
    #[error("{what} stopped unexpectedly")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ArchiveError {
    /// The request itself was refused (usage, not a failure while writing).
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::UnknownLayer { .. }
                | Self::NoLayers
                | Self::NotExportable { .. }
                | Self::UnknownFormat { .. }
                | Self::OutputExists { .. }
                | Self::ZoomOrder { .. }
                | Self::ZoomTooDeep { .. }
                | Self::NothingAtZooms { .. }
                | Self::BadExtent { .. }
                | Self::NoExtent
                | Self::TooManyTiles { .. }
        )
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The public layers named in `spec` (`grids,stations`), in that order.
/// Internal layers are not found: an archive has no access control.
///
/// # Errors
/// [`ArchiveError::UnknownLayer`] naming the first unknown name and the known
/// ones; [`ArchiveError::NoLayers`] for an empty list.
pub fn parse_layers(spec: &str) -> Result<Vec<&'static LayerDef>, ArchiveError> {
    let layers = spec
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            find_layer(name).ok_or_else(|| ArchiveError::UnknownLayer {
                name: name.to_owned(),
                known: LAYERS
                    .iter()
                    .map(|layer| layer.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if layers.is_empty() {
        return Err(ArchiveError::NoLayers);
    }
    Ok(layers)
}

/// Every public layer of the catalogue, in catalogue order: the default set.
#[must_use]
pub fn all_layers() -> Vec<&'static LayerDef> {
    LAYERS.iter().collect()
}

/// What to write.
#[derive(Clone)]
pub struct ArchiveOptions {
    /// The composite layer set, in the order the server's URL would name it.
    pub layers: Vec<&'static LayerDef>,
    /// Default: the lowest minimum zoom of the layers.
    pub minzoom: Option<u8>,
    /// Default: the highest maximum zoom of the layers.
    pub maxzoom: Option<u8>,
    /// `[west, south, east, north]` in degrees; default: the districts' extent.
    pub bbox: Option<[f64; 4]>,
    /// The file to create; it must not exist. Its directory must.
    pub out: PathBuf,
    pub format: ArchiveFormat,
    /// Refuse requests of more tiles than this.
    pub max_tiles: u64,
    /// Tiles encoded at once.
    pub concurrency: usize,
    pub progress: Option<Arc<dyn Progress>>,
}

impl ArchiveOptions {
    /// Options for `layers` written to `out` in the format its extension names,
    /// with the default zooms, extent and limits.
    ///
    /// # Errors
    /// [`ArchiveError::UnknownFormat`] when the extension is neither
    /// `.pmtiles` nor `.mbtiles`.
    pub fn new(layers: Vec<&'static LayerDef>, out: PathBuf) -> Result<Self, ArchiveError> {
        let format = ArchiveFormat::from_path(&out)
            .ok_or_else(|| ArchiveError::UnknownFormat { path: out.clone() })?;
        Ok(Self {
            layers,
            minzoom: None,
            maxzoom: None,
            bbox: None,
            out,
            format,
            max_tiles: DEFAULT_MAX_TILES,
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
        })
    }

    /// The zoom range to write: the options' or the layers'.
    ///
    /// # Errors
    /// When the range is inverted, too deep or shows none of the layers.
    pub fn zoom_range(&self) -> Result<(u8, u8), ArchiveError> {
        if self.layers.is_empty() {
            return Err(ArchiveError::NoLayers);
        }
        if let Some(layer) = self
            .layers
            .iter()
            .find(|layer| !layer.computed_from.is_empty() && layer.name != SERVICE_CIRCLES)
        {
            return Err(ArchiveError::NotExportable {
                name: layer.name.to_owned(),
            });
        }
        let layers_min = self.layers.iter().map(|layer| layer.minzoom).min();
        let layers_max = self.layers.iter().map(|layer| layer.maxzoom).max();
        let minzoom = self.minzoom.or(layers_min).unwrap_or(0);
        let maxzoom = self.maxzoom.or(layers_max).unwrap_or(0);
        for zoom in [minzoom, maxzoom] {
            if zoom > MAX_ZOOM {
                return Err(ArchiveError::ZoomTooDeep { zoom });
            }
        }
        if minzoom > maxzoom {
            return Err(ArchiveError::ZoomOrder { minzoom, maxzoom });
        }
        if !self
            .layers
            .iter()
            .any(|layer| layer.minzoom <= maxzoom && minzoom <= layer.maxzoom)
        {
            return Err(ArchiveError::NothingAtZooms {
                layers: layer_names(&self.layers),
                minzoom,
                maxzoom,
            });
        }
        Ok((minzoom, maxzoom))
    }

    /// Everything that can be checked without the database: layers, format,
    /// zooms, the extent if given, and that the output does not exist.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<(), ArchiveError> {
        self.zoom_range()?;
        if ArchiveFormat::from_path(&self.out) != Some(self.format) {
            return Err(ArchiveError::UnknownFormat {
                path: self.out.clone(),
            });
        }
        if let Some(bbox) = self.bbox {
            check_bbox(bbox)?;
        }
        if self.out.symlink_metadata().is_ok() {
            return Err(ArchiveError::OutputExists {
                path: self.out.clone(),
            });
        }
        Ok(())
    }
}

fn layer_names(layers: &[&LayerDef]) -> String {
    layers
        .iter()
        .map(|layer| layer.name)
        .collect::<Vec<_>>()
        .join(",")
}

/// Longitudes in [-180, 180], latitudes in [-90, 90], west < east, south < north.
fn check_bbox(bbox: [f64; 4]) -> Result<(), ArchiveError> {
    let [west, south, east, north] = bbox;
    let bad = |reason: &str| {
        Err(ArchiveError::BadExtent {
            bbox,
            reason: reason.to_owned(),
        })
    };
    if bbox.iter().any(|value| !value.is_finite()) {
        return bad("not a number");
    }
    if !(-180.0..=180.0).contains(&west) || !(-180.0..=180.0).contains(&east) {
        return bad("longitudes lie in [-180, 180]");
    }
    if !(-90.0..=90.0).contains(&south) || !(-90.0..=90.0).contains(&north) {
        return bad("latitudes lie in [-90, 90]");
    }
    if west >= east {
        return bad("west must be less than east");
    }
    if south >= north {
        return bad("south must be less than north");
    }
    Ok(())
}

/// The tiles of one zoom that meet an extent: inclusive column and row ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRange {
    pub z: u8,
    pub x: (u32, u32),
    pub y: (u32, u32),
}

impl TileRange {
    /// The tiles at zoom `z` meeting `[west, south, east, north]` (degrees;
    /// latitudes are clamped to Web Mercator's).
    #[must_use]
    pub fn covering(bbox: [f64; 4], z: u8) -> Self {
        let [west, south, east, north] = bbox;
        let north_west = TileCoord::containing(west, north.clamp(-MAX_LATITUDE, MAX_LATITUDE), z);
        let south_east = TileCoord::containing(east, south.clamp(-MAX_LATITUDE, MAX_LATITUDE), z);
        Self {
            z,
            x: (north_west.x, south_east.x),
            y: (north_west.y, south_east.y),
        }
    }

    #[must_use]
    pub fn len(&self) -> u64 {
        (u64::from(self.x.1 - self.x.0) + 1) * (u64::from(self.y.1 - self.y.0) + 1)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tile of the range, column by column.
    pub fn tiles(&self) -> impl Iterator<Item = TileCoord> + '_ {
        (self.x.0..=self.x.1)
            .flat_map(move |x| (self.y.0..=self.y.1).map(move |y| TileCoord { z: self.z, x, y }))
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveReport {
    pub format: ArchiveFormat,
    pub minzoom: u8,
    pub maxzoom: u8,
    pub bbox: [f64; 4],
    /// Tiles encoded (the whole range of every zoom).
    pub tiles_encoded: u64,
    /// Non-empty tiles stored, per zoom from `minzoom`.
    pub tiles_per_zoom: Vec<(u8, u64)>,
    /// Size of the archive in bytes.
    pub bytes: u64,
    pub elapsed: Duration,
}

impl ArchiveReport {
    /// Non-empty tiles stored.
    #[must_use]
    pub fn tiles_written(&self) -> u64 {
        self.tiles_per_zoom.iter().map(|(_, tiles)| tiles).sum()
    }
}

/// Writes the archive `options` describe, reading tiles from the database of
/// `pool` over connections of its own ([`SESSION_SETTINGS`]).
///
/// # Errors
/// A refused request (see [`ArchiveOptions::check`], [`ArchiveError::NoExtent`],
/// [`ArchiveError::TooManyTiles`]) before anything is written; a database,
/// encoding or file error after, in which case the partial file is removed.
pub async fn export_tiles(
    pool: &PgPool,
    options: &ArchiveOptions,
) -> Result<ArchiveReport, ArchiveError> {
    let started = Instant::now();
    options.check()?;
    let (minzoom, maxzoom) = options.zoom_range()?;
    let bbox = match options.bbox {
        Some(bbox) => bbox,
        None => {
            let extent = gridmap_store::queries::extent(pool)
                .await
                .map_err(ArchiveError::Extent)?
                .ok_or(ArchiveError::NoExtent)?;
            check_bbox(extent)?;
            extent
        }
    };
    let ranges: Vec<TileRange> = (minzoom..=maxzoom)
        .map(|z| TileRange::covering(bbox, z))
        .collect();
    let tiles: u64 = ranges.iter().map(TileRange::len).sum();
    if tiles > options.max_tiles {
        return Err(ArchiveError::TooManyTiles {
            tiles,
            limit: options.max_tiles,
        });
    }
    let pool = &encoding_pool(pool, options.concurrency).await?;
    let layers: Arc<[&'static LayerDef]> = options.layers.clone().into();
    tracing::info!(
        layers = %layer_names(&layers),
        minzoom,
        maxzoom,
        bbox = ?bbox,
        tiles,
        "writing {} {}",
        options.format,
        options.out.display()
    );

    // The server draws polygon layers from the snapshot only when the set
    // holds one; otherwise PostGIS encodes the whole tile in one statement.
    let snapshot = if layers
        .iter()
        .any(|layer| GENERALISED_LAYERS.contains(&layer.name))
    {
        let loading = Instant::now();
        let rows = GeneralisedPolygons::fetch(pool)
            .await
            .map_err(ArchiveError::Snapshot)?;
        let snapshot = tokio::task::spawn_blocking(move || GeneralisedPolygons::build(rows))
            .await
            .map_err(|source| ArchiveError::Task {
                what: "building the generalised snapshot",
                source,
            })?;
        tracing::info!(
            chains = snapshot.chain_count(),
            elapsed_ms = loading.elapsed().as_millis(),
            "generalised polygon layers"
        );
        Some(Arc::new(snapshot))
    } else {
        None
    };
    let circles = if layers.iter().any(|layer| layer.name == SERVICE_CIRCLES) {
        let loading = Instant::now();
        let inputs = gridmap_tiles::fetch_circle_inputs(pool, true)
            .await
            .map_err(ArchiveError::Circles)?;
        let circles = tokio::task::spawn_blocking(move || CircleSnapshot::build(inputs))
            .await
            .map_err(|source| ArchiveError::Task {
                what: "computing the service circles",
                source,
            })?;
        tracing::info!(
            circles = circles.circle_count(),
            elapsed_ms = loading.elapsed().as_millis(),
            "service circles"
        );
        Some(Arc::new(circles))
    } else {
        None
    };
    let snapshots = Snapshots {
        polygons: snapshot,
        circles,
    };

    let header = ArchiveHeader {
        layers: Arc::clone(&layers),
        minzoom,
        maxzoom,
        bbox,
        center_zoom: center_zoom(&ranges),
    };
    let partial = PartialFile::create(&options.out)?;
    let writer = match options.format {
        ArchiveFormat::Pmtiles => TileWriter::pmtiles(&partial.path, &header)?,
        ArchiveFormat::Mbtiles => TileWriter::mbtiles(&partial.path, &header)?,
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(TileCoord, Vec<u8>)>(64);
    let writing = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut per_zoom = std::collections::BTreeMap::<u8, u64>::new();
        while let Some((coord, body)) = receiver.blocking_recv() {
            writer.add(coord, &body)?;
            *per_zoom.entry(coord.z).or_default() += 1;
        }
        writer.finish()?;
        Ok::<_, ArchiveError>(per_zoom)
    });

    if let Some(progress) = &options.progress {
        progress.stage("encoding", Some(tiles));
    }
    let encoded = encode_in_order(
        pool,
        &snapshots,
        &layers,
        &ranges,
        options.concurrency.max(1),
        options.progress.as_deref(),
        &sender,
    )
    .await;
    drop(sender);
    let written = writing.await.map_err(|source| ArchiveError::Task {
        what: "the archive writer",
        source,
    });
    // An encoding error explains a writer that saw its channel close early.
    encoded?;
    let per_zoom = written??;

    pool.close().await;
    partial.sync()?;
    let bytes = std::fs::metadata(&partial.path)
        .map_err(ArchiveError::io(&partial.path))?
        .len();
    partial.commit()?;
    let report = ArchiveReport {
        format: options.format,
        minzoom,
        maxzoom,
        bbox,
        tiles_encoded: tiles,
        tiles_per_zoom: (minzoom..=maxzoom)
            .map(|z| (z, per_zoom.get(&z).copied().unwrap_or(0)))
            .collect(),
        bytes,
        elapsed: started.elapsed(),
    };
    Ok(report)
}

/// A pool on the database of `pool` whose sessions use [`SESSION_SETTINGS`]:
/// one connection per tile encoded at once, and one for the snapshots.
async fn encoding_pool(pool: &PgPool, concurrency: usize) -> Result<PgPool, ArchiveError> {
    let connect_options = (*pool.connect_options())
        .clone()
        .options(SESSION_SETTINGS.iter().copied());
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(
            u32::try_from(concurrency.max(1))
                .unwrap_or(u32::MAX)
                .saturating_add(1),
        )
        .connect_with(connect_options)
        .await
        .map_err(ArchiveError::Connect)
}

/// The in-process layers tiles are drawn from, shared by the encoding tasks.
#[derive(Clone)]
struct Snapshots {
    polygons: Option<Arc<GeneralisedPolygons>>,
    circles: Option<Arc<CircleSnapshot>>,
}

impl Snapshots {
    /// Encodes one tile as the server does.
    async fn encode(
        &self,
        pool: &PgPool,
        layers: &[&'static LayerDef],
        coord: TileCoord,
    ) -> Result<Vec<u8>, EncodeError> {
        let computed: Vec<&ComputedLayer> =
            self.circles.iter().map(|circles| circles.layer()).collect();
        let sources = TileSources {
            polygons: self.polygons.as_deref(),
            stored: None,
            computed: &computed,
        };
        gridmap_tiles::encode_tile_from(pool, &sources, layers, coord).await
    }
}

/// Encodes every tile of `ranges` with up to `concurrency` at once and sends
/// the non-empty ones to the writer in tile order.
async fn encode_in_order(
    pool: &PgPool,
    snapshots: &Snapshots,
    layers: &Arc<[&'static LayerDef]>,
    ranges: &[TileRange],
    concurrency: usize,
    progress: Option<&dyn Progress>,
    sender: &tokio::sync::mpsc::Sender<(TileCoord, Vec<u8>)>,
) -> Result<(), ArchiveError> {
    type Encoding = tokio::task::JoinHandle<Result<(TileCoord, Vec<u8>), EncodeError>>;
    let mut pending: VecDeque<Encoding> = VecDeque::with_capacity(concurrency);
    let result = async {
        for range in ranges {
            let zoom_started = Instant::now();
            let mut stored = 0_u64;
            // Ascending PMTiles tile id (Hilbert order within a zoom): the
            // order that keeps an archive clustered; harmless for MBTiles.
            let mut coords: Vec<TileCoord> = range.tiles().collect();
            coords.sort_by_cached_key(|coord| pmtiles_id(*coord));
            let mut coords = coords.into_iter();
            loop {
                while pending.len() < concurrency {
                    let Some(coord) = coords.next() else { break };
                    let pool = pool.clone();
                    let snapshots = snapshots.clone();
                    let layers = Arc::clone(layers);
                    pending.push_back(tokio::spawn(async move {
                        let body = snapshots.encode(&pool, &layers, coord).await?;
                        Ok((coord, body))
                    }));
                }
                let Some(next) = pending.pop_front() else {
                    break;
                };
                let (coord, body) = next.await.map_err(|source| ArchiveError::Task {
                    what: "encoding a tile",
                    source,
                })??;
                if let Some(progress) = progress {
                    progress.advance(1);
                }
                if body.is_empty() {
                    continue;
                }
                stored += 1;
                if sender.send((coord, body)).await.is_err() {
                    // The writer failed; its error is reported by the caller.
                    return Ok(());
                }
            }
            // On a terminal the bar shows progress; elsewhere a line per zoom does.
            let elapsed_ms = zoom_started.elapsed().as_millis();
            if progress.is_some() {
                tracing::debug!(
                    z = range.z,
                    tiles = range.len(),
                    stored,
                    elapsed_ms,
                    "zoom encoded"
                );
            } else {
                tracing::info!(
                    z = range.z,
                    tiles = range.len(),
                    stored,
                    elapsed_ms,
                    "zoom encoded"
                );
            }
        }
        Ok(())
    }
    .await;
    for encoding in pending {
        encoding.abort();
    }
    result
}

fn pmtiles_id(coord: TileCoord) -> u64 {
    pmtiles::TileCoord::new(coord.z, coord.x, coord.y)
        .map_or(u64::MAX, |coord| pmtiles::TileId::from(coord).value())
}

/// The deepest zoom of the range at which the extent spans at most three
/// tiles each way (a screen's width): where a portal opens.
fn center_zoom(ranges: &[TileRange]) -> u8 {
    ranges
        .iter()
        .rev()
        .find(|range| range.x.1 - range.x.0 < 3 && range.y.1 - range.y.0 < 3)
        .or_else(|| ranges.first())
        .map_or(0, |range| range.z)
}

/// What both formats record about the tile set.
struct ArchiveHeader {
    layers: Arc<[&'static LayerDef]>,
    minzoom: u8,
    maxzoom: u8,
    bbox: [f64; 4],
    center_zoom: u8,
}

impl ArchiveHeader {
    fn name(&self) -> String {
        format!("gridmap {}", layer_names(&self.layers))
    }

    fn description(&self) -> String {
        "Community grid governance layers exported by gridmap-export".to_owned()
    }

    fn center(&self) -> (f64, f64) {
        let [west, south, east, north] = self.bbox;
        (f64::midpoint(west, east), f64::midpoint(south, north))
    }

    /// `vector_layers` as the server's TileJSON lists them (id, fields,
    /// description, zoom range).
    fn vector_layers(&self) -> serde_json::Value {
        let document = gridmap_tiles::tilejson_for(&self.layers, "", None);
        serde_json::to_value(&document.vector_layers).unwrap_or_default()
    }

    /// The PMTiles metadata: TileJSON's descriptive keys and `vector_layers`.
    fn pmtiles_metadata(&self) -> String {
        serde_json::json!({
            "name": self.name(),
            "description": self.description(),
            "attribution": "gridmap",
            "type": "overlay",
            "format": "pbf",
            "version": "1",
            "vector_layers": self.vector_layers(),
        })
        .to_string()
    }
}

/// The archive being written, behind one `add` per tile.
enum TileWriter {
    Pmtiles(Box<pmtiles::PmTilesStreamWriter<File>>),
    Mbtiles {
        connection: rusqlite::Connection,
        gzip_level: flate2::Compression,
    },
}

impl TileWriter {
    fn pmtiles(path: &Path, header: &ArchiveHeader) -> Result<Self, ArchiveError> {
        let file = File::options()
            .write(true)
            .open(path)
            .map_err(ArchiveError::io(path))?;
        let (lon, lat) = header.center();
        let [west, south, east, north] = header.bbox;
        let writer = pmtiles::PmTilesWriter::new(pmtiles::TileType::Mvt)
            .tile_compression(pmtiles::Compression::Gzip)
            .internal_compression(pmtiles::Compression::Gzip)
            .min_zoom(header.minzoom)
            .max_zoom(header.maxzoom)
            .bounds(west, south, east, north)
            .center(lon, lat)
            .center_zoom(header.center_zoom)
            .metadata(header.pmtiles_metadata())
            .create(file)
            .map_err(ArchiveError::Pmtiles)?;
        Ok(Self::Pmtiles(Box::new(writer)))
    }

    /// An MBTiles 1.3 database: `metadata` and `tiles` (rows in the TMS
    /// scheme, gzip-compressed MVT), filled in one transaction.
    fn mbtiles(path: &Path, header: &ArchiveHeader) -> Result<Self, ArchiveError> {
        let connection = rusqlite::Connection::open(path).map_err(ArchiveError::Sqlite)?;
        let (lon, lat) = header.center();
        let [west, south, east, north] = header.bbox;
        let json = serde_json::json!({ "vector_layers": header.vector_layers() }).to_string();
        let metadata = [
            ("name", header.name()),
            ("description", header.description()),
            ("attribution", "gridmap".to_owned()),
            ("type", "overlay".to_owned()),
            ("version", "1".to_owned()),
            ("format", "pbf".to_owned()),
            ("bounds", format!("{west},{south},{east},{north}")),
            ("center", format!("{lon},{lat},{}", header.center_zoom)),
            ("minzoom", header.minzoom.to_string()),
            ("maxzoom", header.maxzoom.to_string()),
            ("json", json),
        ];
        // The file is a hidden temporary until complete and is discarded on
        // any failure, so a rollback journal would protect nothing.
        connection
            .execute_batch(
                "PRAGMA application_id = 0x4d504258;
                 PRAGMA journal_mode = OFF;
                 PRAGMA synchronous = OFF;
                 CREATE TABLE metadata (name TEXT NOT NULL, value TEXT);
                 CREATE UNIQUE INDEX name ON metadata (name);
                 CREATE TABLE tiles (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL,
                                     tile_row INTEGER NOT NULL, tile_data BLOB NOT NULL);
                 CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
                 BEGIN;",
            )
            .map_err(ArchiveError::Sqlite)?;
        {
            let mut insert = connection
                .prepare("INSERT INTO metadata (name, value) VALUES (?1, ?2)")
                .map_err(ArchiveError::Sqlite)?;
            for (name, value) in &metadata {
                insert
                    .execute((name, value))
                    .map_err(ArchiveError::Sqlite)?;
            }
        }
        Ok(Self::Mbtiles {
            connection,
            gzip_level: flate2::Compression::default(),
        })
    }

    fn add(&mut self, coord: TileCoord, body: &[u8]) -> Result<(), ArchiveError> {
        match self {
            Self::Pmtiles(writer) => {
                let coord = pmtiles::TileCoord::new(coord.z, coord.x, coord.y)
                    .map_err(ArchiveError::Pmtiles)?;
                writer.add_tile(coord, body).map_err(ArchiveError::Pmtiles)
            }
            Self::Mbtiles {
                connection,
                gzip_level,
            } => {
                let mut gzip = flate2::write::GzEncoder::new(Vec::new(), *gzip_level);
                let compressed =
                    gzip.write_all(body)
                        .and_then(|()| gzip.finish())
                        .map_err(|source| ArchiveError::Io {
                            path: PathBuf::from("(gzip)"),
                            source,
                        })?;
                // MBTiles rows count from the south (TMS), XYZ rows from the north.
                let tms_row = (1_u32 << coord.z) - 1 - coord.y;
                connection
                    .prepare_cached(
                        "INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut insert| {
                        insert.execute((coord.z, coord.x, tms_row, compressed.as_slice()))
                    })
                    .map_err(ArchiveError::Sqlite)?;
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<(), ArchiveError> {
        match self {
            Self::Pmtiles(writer) => writer.finalize().map_err(ArchiveError::Pmtiles),
            Self::Mbtiles { connection, .. } => {
                connection
                    .execute_batch("COMMIT;")
                    .map_err(ArchiveError::Sqlite)?;
                connection
                    .close()
                    .map_err(|(_, err)| ArchiveError::Sqlite(err))
            }
        }
    }
}

/// A hidden file beside the output, removed on drop unless committed.
struct PartialFile {
    path: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl PartialFile {
    /// Creates `.NAME.PID.partial` beside `out`, empty (SQLite takes an empty
    /// file as a new database).
    fn create(out: &Path) -> Result<Self, ArchiveError> {
        let name = out
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let directory = out
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = directory.join(format!(".{name}.{}.partial", std::process::id()));
        File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(ArchiveError::io(&path))?;
        Ok(Self {
            path,
            out: out.to_owned(),
            committed: false,
        })
    }

    fn sync(&self) -> Result<(), ArchiveError> {
        File::open(&self.path)
            .and_then(|file| file.sync_all())
            .map_err(ArchiveError::io(&self.path))
    }

    /// Moves the file to the output name, refusing to replace a file that
    /// appeared meanwhile: a hard link fails when the name exists.
    fn commit(mut self) -> Result<(), ArchiveError> {
        match std::fs::hard_link(&self.path, &self.out) {
            Ok(()) => {
                self.committed = true;
                std::fs::remove_file(&self.path).map_err(ArchiveError::io(&self.path))
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(ArchiveError::OutputExists {
                    path: self.out.clone(),
                })
            }
            // A file system without hard links: check, then rename.
            Err(_) => {
                if self.out.symlink_metadata().is_ok() {
                    return Err(ArchiveError::OutputExists {
                        path: self.out.clone(),
                    });
                }
                std::fs::rename(&self.path, &self.out).map_err(ArchiveError::io(&self.out))?;
                self.committed = true;
                Ok(())
            }
        }
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;

    #[test]
    fn layers_are_parsed_in_order_and_unknown_names_listed() {
        let layers = parse_layers("grids, stations").unwrap();
        assert_eq!(layer_names(&layers), "grids,stations");
        let err = parse_layers("grids,gridz").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("no tile layer \"gridz\""), "{text}");
        assert!(text.contains("communities"), "{text}");
        assert!(matches!(parse_layers(" , "), Err(ArchiveError::NoLayers)));
    }

    #[test]
    fn zooms_default_to_the_layers_and_are_checked() {
        let out = PathBuf::from("/nonexistent/city.pmtiles");
        let mut options = ArchiveOptions::new(parse_layers("buildings").unwrap(), out).unwrap();
        let buildings = find_layer("buildings").unwrap();
        assert_eq!(
            options.zoom_range().unwrap(),
            (buildings.minzoom, buildings.maxzoom)
        );
        options.minzoom = Some(16);
        options.maxzoom = Some(15);
        assert!(matches!(
            options.zoom_range(),
            Err(ArchiveError::ZoomOrder {
                minzoom: 16,
                maxzoom: 15
            })
        ));
        options.minzoom = Some(0);
        options.maxzoom = Some(buildings.minzoom - 1);
        assert!(matches!(
            options.zoom_range(),
            Err(ArchiveError::NothingAtZooms { .. })
        ));
        options.maxzoom = Some(MAX_ZOOM + 1);
        assert!(matches!(
            options.zoom_range(),
            Err(ArchiveError::ZoomTooDeep { .. })
        ));
    }

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(
            ArchiveFormat::from_path(Path::new("a/城市.PMTiles")),
            Some(ArchiveFormat::Pmtiles)
        );
        assert_eq!(
            ArchiveFormat::from_path(Path::new("city.mbtiles")),
            Some(ArchiveFormat::Mbtiles)
        );
        assert_eq!(ArchiveFormat::from_path(Path::new("city.gpkg")), None);
        assert!(matches!(
            ArchiveOptions::new(all_layers(), PathBuf::from("city.zip")),
            Err(ArchiveError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn extents_are_checked() {
        assert!(check_bbox([120.0, 37.0, 121.0, 38.0]).is_ok());
        assert!(check_bbox([121.0, 37.0, 120.0, 38.0]).is_err());
        assert!(check_bbox([120.0, 38.0, 121.0, 37.0]).is_err());
        assert!(check_bbox([120.0, 37.0, 181.0, 38.0]).is_err());
        assert!(check_bbox([f64::NAN, 37.0, 121.0, 38.0]).is_err());
    }

    #[test]
    fn ranges_cover_the_extent_and_count_their_tiles() {
        let bbox = [120.30, 37.50, 120.70, 37.80];
        let range = TileRange::covering(bbox, 14);
        // Each corner's tile is in the range, computed with PostGIS's formula
        // independently in `TileCoord::containing`; the range is their span.
        let nw = TileCoord::containing(120.30, 37.80, 14);
        let se = TileCoord::containing(120.70, 37.50, 14);
        assert_eq!(range.x, (nw.x, se.x));
        assert_eq!(range.y, (nw.y, se.y));
        assert_eq!(range.tiles().count() as u64, range.len());
        let whole = TileRange::covering([-180.0, -90.0, 180.0, 90.0], 3);
        assert_eq!(whole.len(), 64);
        assert_eq!(TileRange::covering(bbox, 0).len(), 1);
    }

    #[test]
    fn the_centre_zoom_is_the_deepest_that_fits_a_screen() {
        let bbox = [120.30, 37.50, 120.70, 37.80];
        let ranges: Vec<TileRange> = (5..=16).map(|z| TileRange::covering(bbox, z)).collect();
        let zoom = center_zoom(&ranges);
        let fits = |range: &TileRange| range.x.1 - range.x.0 < 3 && range.y.1 - range.y.0 < 3;
        assert!(fits(&TileRange::covering(bbox, zoom)));
        assert!(!fits(&TileRange::covering(bbox, zoom + 1)));
    }
}
