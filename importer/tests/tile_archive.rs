//! `gridmap-export --tiles` over the demo city (`GRIDMAP_DEMO_DATABASE_URL`,
//! only read), each archive read back by tools that share no code with the
//! writer:
//!
//! - PMTiles by protomaps' reference reader (the npm package `pmtiles`, run by
//!   node: `pmtiles_reader/read_pmtiles.mjs`);
//! - MBTiles by SQLite and by GDAL's MBTiles driver, whose features are
//!   counted and placed against PostGIS.
//!
//! The expected tiles are the server's: `encode_tile_from` with a generalised
//! snapshot (and, for `service_circles`, a circle snapshot) built here, as
//! gridmap-server builds them, for every tile of a range computed here.

#![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::str::FromStr as _;

use gdal::vector::LayerAccess as _;
use gdal::{Dataset, DatasetOptions};
use gridmap_import::tile_archive::{
    all_layers, export_tiles, ArchiveError, ArchiveOptions, ArchiveReport, SESSION_SETTINGS,
};
use gridmap_tiles::circle_layer::SERVICE_CIRCLES;
use gridmap_tiles::{
    CircleSnapshot, ComputedLayer, GeneralisedPolygons, LayerDef, TileCoord, TileSources,
    GENERALISED_LAYERS, LAYERS,
};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

const EXPORT_BINARY: &str = env!("CARGO_BIN_EXE_gridmap-export");

/// A folder under the system temp folder, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "gridmap-tile-archive-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
const MINZOOM: u8 = 12;
const MAXZOOM: u8 = 16;

type Tiles = BTreeMap<(u8, u32, u32), Vec<u8>>;

async fn demo_pool() -> PgPool {
    let url = std::env::var("GRIDMAP_DEMO_DATABASE_URL").unwrap_or_else(|_| {
        panic!("GRIDMAP_DEMO_DATABASE_URL is unset: run with scripts/test, which imports the demo city")
    });
    // The archive's session settings: the same rows in the same order.
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options(SESSION_SETTINGS.iter().copied());
    PgPoolOptions::new()
        .max_connections(6)
        .connect_with(options)
        .await
        .unwrap()
}

/// The layers stored in tables (the computed service circles take seconds
/// to build; the PMTiles test covers them).
fn table_layers() -> Vec<&'static LayerDef> {
    LAYERS
        .iter()
        .filter(|layer| layer.computed_from.is_empty())
        .collect()
}

/// About 1.8 km × 1.8 km around the station nearest the middle of the grids,
/// so the small archive holds stations, grids, buildings and roads.
async fn small_area(pool: &PgPool) -> [f64; 4] {
    let (lon, lat): (f64, f64) = sqlx::query_as(
        "SELECT ST_X(geom), ST_Y(geom) FROM stations
          ORDER BY geom <-> (SELECT ST_SetSRID(ST_Centroid(ST_Extent(geom)::geometry), 4490) FROM grids)
          LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    [lon - 0.01, lat - 0.008, lon + 0.01, lat + 0.008]
}

/// The XYZ tiles meeting `bbox` at zoom `z`, by the slippy-map formula.
fn tile_range(bbox: [f64; 4], z: u8) -> Vec<TileCoord> {
    let n = f64::from(1_u32 << z);
    let column = |lon: f64| ((lon + 180.0) / 360.0 * n).floor() as u32;
    let row = |lat: f64| {
        let lat = lat.to_radians();
        ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u32
    };
    let [west, south, east, north] = bbox;
    let mut tiles = Vec::new();
    for x in column(west)..=column(east) {
        for y in row(north)..=row(south) {
            tiles.push(TileCoord::new(u32::from(z), x, y).unwrap());
        }
    }
    tiles
}

/// The server's non-empty tiles of `layers` over `bbox` and the number of
/// tiles looked at.
async fn server_tiles(pool: &PgPool, layers: &[&'static LayerDef], bbox: [f64; 4]) -> (Tiles, u64) {
    let polygons = if layers
        .iter()
        .any(|layer| GENERALISED_LAYERS.contains(&layer.name))
    {
        let rows = GeneralisedPolygons::fetch(pool).await.unwrap();
        Some(GeneralisedPolygons::build(rows))
    } else {
        None
    };
    let circles = if layers.iter().any(|layer| layer.name == SERVICE_CIRCLES) {
        let inputs = gridmap_tiles::fetch_circle_inputs(pool, true)
            .await
            .unwrap();
        Some(
            tokio::task::spawn_blocking(move || CircleSnapshot::build(inputs))
                .await
                .unwrap(),
        )
    } else {
        None
    };
    let computed: Vec<&ComputedLayer> = circles.iter().map(CircleSnapshot::layer).collect();
    let sources = TileSources {
        polygons: polygons.as_ref(),
        stored: None,
        computed: &computed,
    };
    let mut tiles = Tiles::new();
    let mut looked_at = 0;
    for z in MINZOOM..=MAXZOOM {
        for coord in tile_range(bbox, z) {
            looked_at += 1;
            let body = gridmap_tiles::encode_tile_from(pool, &sources, layers, coord)
                .await
                .unwrap();
            if !body.is_empty() {
                tiles.insert((coord.z, coord.x, coord.y), body);
            }
        }
    }
    (tiles, looked_at)
}

async fn export(
    pool: &PgPool,
    layers: Vec<&'static LayerDef>,
    bbox: [f64; 4],
    out: &Path,
) -> Result<ArchiveReport, ArchiveError> {
    let mut options = ArchiveOptions::new(layers, out.to_owned())?;
    options.minzoom = Some(MINZOOM);
    options.maxzoom = Some(MAXZOOM);
    options.bbox = Some(bbox);
    export_tiles(pool, &options).await
}

fn per_zoom(tiles: &Tiles) -> Vec<(u8, u64)> {
    (MINZOOM..=MAXZOOM)
        .map(|z| (z, tiles.keys().filter(|(tz, _, _)| *tz == z).count() as u64))
        .collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `vector_layers` lists the layers in order with their attribute names and
/// zoom ranges, as the server's TileJSON does.
fn assert_vector_layers(vector_layers: &Value, layers: &[&LayerDef]) {
    let listed = vector_layers.as_array().unwrap();
    assert_eq!(listed.len(), layers.len());
    for (entry, layer) in listed.iter().zip(layers) {
        assert_eq!(entry["id"], layer.name);
        assert_eq!(entry["minzoom"], layer.minzoom);
        assert_eq!(entry["maxzoom"], layer.maxzoom);
        let fields: BTreeSet<&str> = entry["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let columns: BTreeSet<&str> = layer.columns.iter().map(|(_, attr, _)| *attr).collect();
        assert_eq!(fields, columns, "{}", layer.name);
    }
}

#[tokio::test]
async fn pmtiles_of_the_default_layers_read_by_the_reference_reader_hold_the_servers_tiles() {
    let pool = demo_pool().await;
    let bbox = small_area(&pool).await;
    let layers = all_layers();
    assert!(layers.iter().any(|layer| layer.name == SERVICE_CIRCLES));
    let (expected, looked_at) = server_tiles(&pool, &layers, bbox).await;
    let dir = TempDir::new("pmtiles");
    let out = dir.path().join("龙口.pmtiles");
    let report = export(&pool, layers.clone(), bbox, &out).await.unwrap();
    assert_eq!(report.tiles_encoded, looked_at);
    assert_eq!(report.tiles_per_zoom, per_zoom(&expected));
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());
    // Only the archive: the temporary file was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let reader = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pmtiles_reader");
    assert!(
        reader.join("node_modules/pmtiles").is_dir(),
        "run scripts/install-deps (npm ci in {})",
        reader.display()
    );
    let output = Command::new("node")
        .arg(reader.join("read_pmtiles.mjs"))
        .arg(&out)
        .output()
        .expect("node runs (scripts/install-deps)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    let header = &read["header"];
    assert_eq!(header["specVersion"], 3);
    assert_eq!(header["tileType"], 1, "MVT");
    assert_eq!(header["tileCompression"], 2, "gzip");
    assert_eq!(header["internalCompression"], 2, "gzip");
    assert_eq!(header["minZoom"], MINZOOM);
    assert_eq!(header["maxZoom"], MAXZOOM);
    assert_eq!(header["clustered"], true);
    for (key, value) in ["minLon", "minLat", "maxLon", "maxLat"].iter().zip(bbox) {
        // The header stores degrees × 10⁷ as integers.
        let stored = header[key].as_f64().unwrap();
        assert!((stored - value).abs() < 1e-6, "{key}: {stored} vs {value}");
    }
    let centre = header["centerZoom"].as_u64().unwrap();
    assert!((u64::from(MINZOOM)..=u64::from(MAXZOOM)).contains(&centre));
    assert_eq!(header["numAddressedTiles"], expected.len());

    assert_vector_layers(&read["metadata"]["vector_layers"], &layers);
    assert!(read["metadata"]["name"].as_str().unwrap().contains("grids"));

    let tiles: Tiles = read["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tile| {
            let coordinate = |key: &str| tile[key].as_u64().unwrap();
            (
                (
                    u8::try_from(coordinate("z")).unwrap(),
                    u32::try_from(coordinate("x")).unwrap(),
                    u32::try_from(coordinate("y")).unwrap(),
                ),
                from_hex(tile["data"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        tiles.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the archive holds exactly the non-empty tiles"
    );
    for (coord, body) in &expected {
        assert!(
            tiles[coord] == *body,
            "tile {coord:?} differs from the server's"
        );
    }
    // Enough to mean something: every zoom has tiles.
    assert!(per_zoom(&expected).iter().all(|(_, count)| *count > 0));
}

/// `tile_data` decompressed.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut body)
        .unwrap();
    body
}

/// The MBTiles driver of GDAL, at `zoom`, with `open_options` added.
fn open_mbtiles(path: &Path, zoom: u8, clip: bool) -> Dataset {
    let zoom_option = format!("ZOOM_LEVEL={zoom}");
    let clip_option = format!("CLIP={}", if clip { "YES" } else { "NO" });
    let open_options = [zoom_option.as_str(), clip_option.as_str()];
    Dataset::open_ex(
        path,
        DatasetOptions {
            open_options: Some(&open_options),
            allowed_drivers: Some(&["MBTiles"]),
            ..DatasetOptions::default()
        },
    )
    .unwrap_or_else(|err| panic!("GDAL cannot open {}: {err}", path.display()))
}

#[tokio::test]
async fn mbtiles_read_by_sqlite_and_gdal_hold_the_servers_tiles_in_tms_rows() {
    let pool = demo_pool().await;
    let bbox = small_area(&pool).await;
    let layers = table_layers();
    let (expected, _) = server_tiles(&pool, &layers, bbox).await;
    let dir = TempDir::new("mbtiles");
    let out = dir.path().join("longkou.mbtiles");
    let report = export(&pool, layers.clone(), bbox, &out).await.unwrap();
    assert_eq!(report.tiles_per_zoom, per_zoom(&expected));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // SQLite: metadata and every row, its TMS row flipped back to XYZ.
    let database =
        rusqlite::Connection::open_with_flags(&out, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let metadata: BTreeMap<String, String> = database
        .prepare("SELECT name, value FROM metadata")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(metadata["format"], "pbf");
    assert_eq!(metadata["minzoom"], MINZOOM.to_string());
    assert_eq!(metadata["maxzoom"], MAXZOOM.to_string());
    let bounds: Vec<f64> = metadata["bounds"]
        .split(',')
        .map(|value| value.parse().unwrap())
        .collect();
    assert_eq!(bounds, bbox.to_vec());
    assert_eq!(metadata["center"].split(',').count(), 3);
    let json: Value = serde_json::from_str(&metadata["json"]).unwrap();
    assert_vector_layers(&json["vector_layers"], &layers);

    let rows: Vec<(u8, u32, u32, Vec<u8>)> = database
        .prepare("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), expected.len());
    for (z, x, tms_row, data) in &rows {
        let y = (1_u32 << z) - 1 - tms_row;
        let body = expected
            .get(&(*z, *x, y))
            .unwrap_or_else(|| panic!("row {z}/{x}/{tms_row} is no non-empty tile {z}/{x}/{y}"));
        assert!(
            gunzip(data) == *body,
            "tile {z}/{x}/{y} differs from the server's"
        );
    }
    drop(database);

    // GDAL without clipping: every tile's stations, buffer included, as many
    // as PostGIS finds in each buffered tile envelope.
    let dataset = open_mbtiles(&out, MAXZOOM, false);
    let mut stations = dataset.layer_by_name("stations").unwrap();
    let decoded = stations.features().count();
    let mut in_buffers = 0_i64;
    for (z, x, y) in expected.keys().filter(|(z, _, _)| *z == MAXZOOM) {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM stations
              WHERE ST_Intersects(geom_3857, ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096))",
        )
        .bind(i32::from(*z))
        .bind(i32::try_from(*x).unwrap())
        .bind(i32::try_from(*y).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
        in_buffers += count;
    }
    assert!(in_buffers > 0, "the area holds no station");
    assert_eq!(i64::try_from(decoded).unwrap(), in_buffers);
    drop(dataset);

    // GDAL clipped to the tiles: each station once, where PostGIS has it.
    // A tile stored under an unflipped row would put its stations
    // kilometres away.
    let dataset = open_mbtiles(&out, MAXZOOM, true);
    let mut stations = dataset.layer_by_name("stations").unwrap();
    let mut placed = BTreeMap::new();
    for feature in stations.features() {
        let code = feature
            .field_as_string(feature.field_index("code").unwrap())
            .unwrap()
            .unwrap();
        let (x, y, _) = feature.geometry().unwrap().get_point(0);
        placed.insert(code, (x, y));
    }
    let z16: Vec<&(u8, u32, u32)> = expected.keys().filter(|(z, _, _)| *z == MAXZOOM).collect();
    let (x_min, x_max) = (
        z16.iter().map(|(_, x, _)| *x).min().unwrap(),
        z16.iter().map(|(_, x, _)| *x).max().unwrap(),
    );
    let (y_min, y_max) = (
        z16.iter().map(|(_, _, y)| *y).min().unwrap(),
        z16.iter().map(|(_, _, y)| *y).max().unwrap(),
    );
    let truth: Vec<(String, f64, f64)> = sqlx::query_as(
        "SELECT code, ST_X(geom_3857), ST_Y(geom_3857) FROM stations
          WHERE geom_3857 && ST_MakeEnvelope(
                  ST_XMin(ST_TileEnvelope($1, $2, $4)), ST_YMin(ST_TileEnvelope($1, $2, $5)),
                  ST_XMax(ST_TileEnvelope($1, $3, $4)), ST_YMax(ST_TileEnvelope($1, $3, $4)),
                  3857)
          ORDER BY code",
    )
    .bind(i32::from(MAXZOOM))
    .bind(i32::try_from(x_min).unwrap())
    .bind(i32::try_from(x_max).unwrap())
    .bind(i32::try_from(y_min).unwrap())
    .bind(i32::try_from(y_max).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!truth.is_empty());
    // Every station inside the stored tiles was decoded near its true place
    // (a z16 tile unit is 0.15 m).
    for (code, x, y) in &truth {
        let Some((gx, gy)) = placed.get(code) else {
            // Only a tile without any feature is missing, and a station makes
            // its tile non-empty.
            panic!("station {code} at {x},{y} was not decoded by GDAL");
        };
        let distance = (gx - x).hypot(gy - y);
        assert!(
            distance < 0.5,
            "station {code}: GDAL places it {distance} m away"
        );
    }
}

#[tokio::test]
async fn a_failure_while_writing_leaves_no_file() {
    // A database without the schema: the first tile query fails after the
    // temporary archive was created.
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for database tests");
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path.split_once('?').map(|(_, query)| query);
    let postgres = match query {
        Some(query) => format!("{scheme}://{authority}/postgres?{query}"),
        None => format!("{scheme}://{authority}/postgres"),
    };
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&postgres)
        .await
        .unwrap();
    let dir = TempDir::new("failure");
    for name in ["broken.pmtiles", "broken.mbtiles"] {
        let out = dir.path().join(name);
        let err = export(
            &pool,
            vec![gridmap_tiles::find_layer("stations").unwrap()],
            [120.4, 37.6, 120.41, 37.61],
            &out,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Encode(_)), "{err:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{name}: left behind {left:?}");
    }
}

/// Runs the exporter with a database URL nothing listens on: a refusal must
/// come before any connection.
fn refused(args: &[&str], dir: &Path) -> String {
    let output = Command::new(EXPORT_BINARY)
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(64),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let dir = TempDir::new("refusals");
    let stderr = refused(
        &["--tiles", "grids,gridz", "--out", "city.pmtiles"],
        dir.path(),
    );
    assert!(stderr.contains("no tile layer \"gridz\""), "{stderr}");
    assert!(stderr.contains("communities"), "lists the layers: {stderr}");

    let stderr = refused(
        &[
            "--tiles",
            "grids",
            "--minzoom",
            "15",
            "--maxzoom",
            "12",
            "--out",
            "city.mbtiles",
        ],
        dir.path(),
    );
    assert!(
        stderr.contains("--minzoom 15 is above --maxzoom 12"),
        "{stderr}"
    );

    let stderr = refused(&["--tiles", "--out", "city.zip"], dir.path());
    assert!(stderr.contains("FILE.pmtiles or FILE.mbtiles"), "{stderr}");

    let stderr = refused(
        &[
            "--tiles",
            "grids",
            "--bbox",
            "121,37,120,38",
            "--out",
            "city.pmtiles",
        ],
        dir.path(),
    );
    assert!(stderr.contains("west must be less than east"), "{stderr}");

    let stderr = refused(
        &[
            "--tiles",
            "grids",
            "--layer",
            "grids",
            "--out",
            "city.pmtiles",
        ],
        dir.path(),
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let existing = dir.write("city.mbtiles", "a portal's archive");
    let stderr = refused(&["--tiles", "--out", "city.mbtiles"], dir.path());
    assert!(stderr.contains("city.mbtiles exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "a portal's archive"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn an_oversized_request_is_refused_before_reading_or_writing() {
    // Nothing listens there: the refusal must come without a query.
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let dir = TempDir::new("oversized");
    let out = dir.path().join("china.pmtiles");
    let mut options = ArchiveOptions::new(table_layers(), out).unwrap();
    options.bbox = Some([73.0, 18.0, 135.0, 54.0]);
    options.maxzoom = Some(16);
    let err = export_tiles(&pool, &options).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("raise --max-tiles"), "{text}");
    let ArchiveError::TooManyTiles { tiles, limit } = err else {
        panic!("{err:?}");
    };
    assert!(tiles > limit, "{tiles} {limit}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
