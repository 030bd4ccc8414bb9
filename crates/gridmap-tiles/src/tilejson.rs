//! TileJSON 3.0 for one or more layers.

use crate::LayerDef;
use std::collections::BTreeMap;
use tilejson::{tilejson, Bounds, Center, TileJSON, VectorLayer};

/// TileJSON for the layers joined in one source, served under `base_url`
/// (scheme and host, no trailing slash). `bounds` is `[west, south, east, north]`;
/// with bounds the document also has a `center`: see [`center_of`].
#[must_use]
pub fn tilejson_for(layers: &[&LayerDef], base_url: &str, bounds: Option<[f64; 4]>) -> TileJSON {
    let names: Vec<&str> = layers.iter().map(|layer| layer.name).collect();
    let joined = names.join(",");
    let minzoom = layers.iter().map(|layer| layer.minzoom).min().unwrap_or(0);
    let maxzoom = layers.iter().map(|layer| layer.maxzoom).max().unwrap_or(0);
    let vector_layers = layers
        .iter()
        .map(|layer| {
            let fields: BTreeMap<String, String> = layer
                .columns
                .iter()
                .map(|(_, attr, description)| ((*attr).to_owned(), (*description).to_owned()))
                .collect();
            let mut vector_layer = VectorLayer::new(layer.name.to_owned(), fields);
            vector_layer.description = Some(layer.description.to_owned());
            vector_layer.minzoom = Some(layer.minzoom);
            vector_layer.maxzoom = Some(layer.maxzoom);
            vector_layer
        })
        .collect();
    let mut document = tilejson! {
        tiles: vec![format!("{base_url}/tiles/{joined}/{{z}}/{{x}}/{{y}}")],
        name: joined.clone(),
        minzoom: minzoom,
        maxzoom: maxzoom,
        vector_layers: vector_layers,
        attribution: "gridmap".to_owned(),
    };
    document.bounds = bounds.map(|[w, s, e, n]| Bounds::new(w, s, e, n));
    document.center = bounds.map(|bounds| center_of(bounds, minzoom, maxzoom));
    document
}

/// The viewport a default view is chosen for, in pixels of 512-pixel tiles
/// (MapLibre's): a laptop browser window.
const VIEW_WIDTH_TILES: f64 = 1024.0 / 512.0;
const VIEW_HEIGHT_TILES: f64 = 768.0 / 512.0;

/// The centre of `[west, south, east, north]` (degrees) and the largest zoom
/// at which all of it fits a 1024 × 768 view, within `minzoom..=maxzoom`
/// (TileJSON 3.0 §3.6 asks for a zoom in that range).
fn center_of([west, south, east, north]: [f64; 4], minzoom: u8, maxzoom: u8) -> Center {
    // Width and height as shares of the Web Mercator square (1 at zoom 0).
    let mercator_y = |lat: f64| {
        let lat = lat.clamp(-85.051_128_78, 85.051_128_78).to_radians();
        (std::f64::consts::FRAC_PI_4 + lat / 2.0).tan().ln() / std::f64::consts::TAU
    };
    let width = (east - west) / 360.0;
    let height = mercator_y(north) - mercator_y(south);
    // Infinite for an empty extent (a single point): then the largest zoom.
    let fits = (VIEW_WIDTH_TILES / width)
        .log2()
        .min((VIEW_HEIGHT_TILES / height).log2())
        .floor();
    let zoom = if fits.is_nan() {
        f64::from(minzoom)
    } else {
        fits.clamp(f64::from(minzoom), f64::from(maxzoom.max(minzoom)))
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a whole number clamped to the u8 zoom range"
    )]
    let zoom = zoom as u8;
    Center::new(f64::midpoint(west, east), f64::midpoint(south, north), zoom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find_layer;

    #[test]
    fn tilejson_names_the_layer_and_its_fields() {
        let grids = find_layer("grids").unwrap();
        let doc = tilejson_for(
            &[grids],
            "http://127.0.0.1:8080",
            Some([120.0, 37.0, 121.0, 38.0]),
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["tilejson"], "3.0.0");
        assert_eq!(
            json["tiles"][0],
            "http://127.0.0.1:8080/tiles/grids/{z}/{x}/{y}"
        );
        assert_eq!(json["vector_layers"][0]["id"], "grids");
        assert!(json["vector_layers"][0]["fields"]["status"].is_string());
        assert_eq!(
            json["bounds"],
            serde_json::json!([120.0, 37.0, 121.0, 38.0])
        );
        assert_eq!(json["minzoom"], 9);
        // One degree at 37–38°N is 1/360 of the Mercator square's width
        // (2 tiles fit up to z = 9) and 0.0035 of its height (1.5 tiles fit
        // up to z = 8); the grids layer starts at z = 9, so 9.
        assert_eq!(json["center"], serde_json::json!([120.5, 37.5, 9]));
        assert_eq!(
            tilejson_for(&[grids], "http://h", None).center,
            None,
            "no bounds, no center"
        );
    }

    #[test]
    fn center_zoom_is_the_largest_that_fits_within_the_layer_zooms() {
        // The extent in pixels at zoom z, from the spherical Mercator
        // formulas as PostGIS's ST_Transform(…, 3857) applies them.
        let pixels = |[w, s, e, n]: [f64; 4], z: u8| {
            let metres_y = |lat: f64| 6_378_137.0 * (45.0 + lat / 2.0).to_radians().tan().ln();
            let world = 2.0 * std::f64::consts::PI * 6_378_137.0;
            let scale = 512.0 * 2f64.powi(i32::from(z)) / world;
            (
                (e - w).to_radians() * 6_378_137.0 * scale,
                (metres_y(n) - metres_y(s)) * scale,
            )
        };
        for bounds in [
            [120.0, 37.0, 121.0, 38.0],
            [116.2, 39.8, 116.6, 40.05],
            [121.40, 31.20, 121.42, 31.21],
            [73.5, 18.0, 135.0, 53.5],
        ] {
            let center = center_of(bounds, 0, 22);
            let (width, height) = pixels(bounds, center.zoom);
            assert!(
                width <= 1024.0 && height <= 768.0,
                "{bounds:?} at {center:?}"
            );
            let (width, height) = pixels(bounds, center.zoom + 1);
            assert!(width > 1024.0 || height > 768.0, "{bounds:?} at {center:?}");
            assert!((center.longitude - (bounds[0] + bounds[2]) / 2.0).abs() < 1e-12);
            assert!((center.latitude - (bounds[1] + bounds[3]) / 2.0).abs() < 1e-12);
        }
        // Clamped to the layers' zooms; a single point gets the largest.
        assert_eq!(center_of([73.5, 18.0, 135.0, 53.5], 9, 16).zoom, 9);
        assert_eq!(center_of([120.0, 37.0, 120.0, 37.0], 9, 16).zoom, 16);
    }
}
