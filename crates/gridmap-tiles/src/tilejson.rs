//! TileJSON 3.0 for one or more layers.

use crate::LayerDef;
use std::collections::BTreeMap;
use tilejson::{tilejson, Bounds, TileJSON, VectorLayer};

/// TileJSON for the layers joined in one source, served under `base_url`
/// (scheme and host, no trailing slash). `bounds` is `[west, south, east, north]`.
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
    document
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
    }
}
