//! The point, line and building layers drawn in process from the copy of
//! their tables (`gridmap_tiles::StoredLayers`) carry what PostGIS's
//! `ST_AsMVT` draws for the same tile: both are decoded with GDAL's MVT driver
//! and compared feature by feature (attributes with their types, and
//! geometry up to the snapping both do), at every zoom of each layer.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use gdal::vector::{FieldValue, LayerAccess as _};
use gridmap_tiles::{find_layer, StoredLayers, TileCoord, STORED_LAYERS};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A decoded feature: its attributes (value and whether GDAL typed it as an
/// integer) and geometry measures in Web Mercator.
#[derive(Debug, Clone)]
struct Decoded {
    attributes: BTreeMap<String, (String, bool)>,
    kind: String,
    area: f64,
    length: f64,
    points: Vec<(f64, f64)>,
}

fn decode(
    scratch: &std::path::Path,
    side: &str,
    layer: &str,
    tile: TileCoord,
    bytes: &[u8],
) -> Vec<Decoded> {
    let Some(dataset) =
        gridmap_e2e::open_tile_with_gdal(scratch, &format!("{side}-{layer}"), tile, bytes)
    else {
        return Vec::new();
    };
    let Ok(mut decoded_layer) = dataset.layer_by_name(layer) else {
        return Vec::new();
    };
    let mut features = Vec::new();
    for feature in decoded_layer.features() {
        let mut attributes = BTreeMap::new();
        for (name, value) in feature.fields() {
            if name == "mvt_id" {
                continue;
            }
            let entry = match value {
                Some(FieldValue::IntegerValue(v)) => (v.to_string(), true),
                Some(FieldValue::Integer64Value(v)) => (v.to_string(), true),
                Some(FieldValue::StringValue(v)) => (v, false),
                Some(FieldValue::RealValue(v)) => (v.to_string(), false),
                Some(other) => (format!("{other:?}"), false),
                None => continue,
            };
            attributes.insert(name, entry);
        }
        let geometry = feature.geometry().unwrap();
        let kind = geometry.geometry_name();
        let points = if kind.contains("POINT") {
            let mut coords = Vec::new();
            if geometry.geometry_count() == 0 {
                let (x, y, _) = geometry.get_point(0);
                coords.push((x, y));
            } else {
                for i in 0..geometry.geometry_count() {
                    let (x, y, _) = geometry.get_geometry(i).get_point(0);
                    coords.push((x, y));
                }
            }
            coords
        } else {
            Vec::new()
        };
        features.push(Decoded {
            attributes,
            kind: kind.trim_start_matches("MULTI").to_owned(),
            area: geometry.area(),
            length: geometry.length(),
            points,
        });
    }
    features
}

/// The features of one side in a comparable order: by code where the layer
/// has one, else by all attributes and size.
fn sorted(mut features: Vec<Decoded>) -> Vec<Decoded> {
    features.sort_by(|a, b| {
        a.attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .cmp(b.attributes.iter().map(|(k, v)| (k.clone(), v.0.clone())))
            .then(a.length.total_cmp(&b.length))
    });
    features
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridmap-tiles-stored-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Tiles around the `n` features of `layer` at evenly spaced codes (or ids).
async fn tiles_around(pool: &sqlx::PgPool, layer: &str, n: i64) -> Vec<(f64, f64)> {
    let def = find_layer(layer).unwrap();
    let filter = def.filter.filter(|f| !f.contains("$1")).unwrap_or("true");
    let key = if def.table == "roads" { "id" } else { "code" };
    sqlx::query_as(&format!(
        "SELECT ST_X(p), ST_Y(p) FROM (
           SELECT ST_PointOnSurface(ST_Transform({geometry}, 4326)) p, row_number() OVER (ORDER BY {key}) r,
                  count(*) OVER () c
             FROM {table} WHERE {filter}) x
          WHERE r % GREATEST(c / $1, 1) = 0 LIMIT $1",
        geometry = def.geometry,
        table = def.table,
    ))
    .bind(n)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn stored_layers_draw_what_postgis_draws() {
    let pool = gridmap_e2e::demo_pool().await;
    let stored = StoredLayers::build(StoredLayers::fetch(&pool).await.unwrap());
    let scratch = scratch_dir();
    let mut compared = BTreeMap::<&str, usize>::new();
    for name in STORED_LAYERS {
        let def = find_layer(name).unwrap();
        assert!(
            stored.feature_count(name).unwrap() > 0,
            "{name}: empty copy"
        );
        for (lon, lat) in tiles_around(&pool, name, 6).await {
            for z in def.minzoom..=def.maxzoom {
                let tile = TileCoord::containing(lon, lat, z);
                let ours = stored.encode_layer(name, tile).unwrap();
                let theirs = gridmap_tiles::encode_layer(&pool, def, tile).await.unwrap();
                let at = format!("{name} {}/{}/{}", tile.z, tile.x, tile.y);
                let ours = sorted(decode(&scratch, "ours", name, tile, &ours));
                let theirs = sorted(decode(&scratch, "postgis", name, tile, &theirs));
                if ours.len() != theirs.len() {
                    let show = |list: &[Decoded]| {
                        list.iter()
                            .map(|d| format!("{:?} {} {}", d.attributes, d.length, d.area))
                            .collect::<Vec<_>>()
                    };
                    let (a, b) = (show(&ours), show(&theirs));
                    let only_ours: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
                    let only_theirs: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
                    panic!("{at}: feature counts {} vs {}; only ours {only_ours:#?}; only PostGIS {only_theirs:#?}", a.len(), b.len());
                }
                // One tile unit in metres at this zoom.
                let unit = 40_075_016.685_578_5 / f64::from(1_u32 << z) / 4096.0;
                for (a, b) in ours.iter().zip(&theirs) {
                    assert_eq!(
                        a.attributes, b.attributes,
                        "{at}: attributes (value, integer)"
                    );
                    assert_eq!(a.kind, b.kind, "{at}: geometry type of {:?}", a.attributes);
                    let close =
                        |x: f64, y: f64, slack: f64| (x - y).abs() <= slack + 0.005 * y.abs();
                    assert!(
                        close(a.area, b.area, 2.0 * unit * unit),
                        "{at}: area {} vs {} of {:?}",
                        a.area,
                        b.area,
                        a.attributes
                    );
                    assert!(
                        close(a.length, b.length, 2.0 * unit),
                        "{at}: length {} vs {} of {:?}",
                        a.length,
                        b.length,
                        a.attributes
                    );
                    assert_eq!(a.points, b.points, "{at}: points of {:?}", a.attributes);
                }
                *compared.entry(name).or_default() += ours.len();
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    for name in STORED_LAYERS {
        assert!(
            compared.get(name).copied().unwrap_or(0) >= 10,
            "{name}: only {:?} features compared",
            compared.get(name)
        );
    }
    // Floors must arrive as integers on both sides (the assertion above
    // compares the flag); make sure the comparison saw some.
    let floors: i64 = sqlx::query_scalar("SELECT count(*) FROM buildings WHERE floors IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(floors > 0, "the demo city has no floors to compare");
}
