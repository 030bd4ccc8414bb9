//! `GET /style.json`: the MapLibre style (version 8) of the default map, over
//! one vector source joining every public layer (`/tiles/{all}.json`), so the
//! map needs one tile request per tile instead of one per layer.
//!
//! Everything it names is served by this server (offline intranets): the
//! TileJSON URL is absolute, built from the request's Host like TileJSON's
//! tile URLs, `glyphs` points to `/fonts/{fontstack}/{range}.pbf` (SDF glyphs
//! rendered from local fonts, `fonts.rs`) and `sprite` to `/sprites/gridmap`
//! (station icons drawn at start-up, `sprites.rs`). [`StyleAssets`] holds both.

use crate::fonts::{self, Fonts};
use crate::sprites::{self, Sprites, FALLBACK_STATION_ICON, SPRITE_SHEET};
use crate::tiles::base_url;
use axum::extract::FromRef;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gridmap_model::StationKind;
use gridmap_tiles::circle_layer::SERVICE_CIRCLES;
use gridmap_tiles::{Drawing, LayerDef, LAYERS};
use serde_json::{json, Value};
use std::path::PathBuf;

/// What the style names besides tiles: glyphs and sprites.
#[derive(Debug, Clone)]
pub struct StyleAssets {
    pub fonts: Fonts,
    pub sprites: Sprites,
}

impl StyleAssets {
    /// Glyphs from the faces of `font_files` (missing files are logged at WARN
    /// and left out) and the sprite sheets, drawn now.
    #[must_use]
    pub fn open(font_files: &[PathBuf]) -> Self {
        Self {
            fonts: Fonts::open(font_files),
            sprites: Sprites::draw(),
        }
    }

    /// Glyphs from Debian's Noto Sans CJK, see [`fonts::DEBIAN_FONT_FILES`].
    #[must_use]
    pub fn debian_default() -> Self {
        Self {
            fonts: Fonts::debian_default(),
            sprites: Sprites::draw(),
        }
    }
}

/// `/style.json`, `/fonts/…` and `/sprites/…`, for any state holding the assets.
pub fn routes<S>() -> Router<S>
where
    StyleAssets: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/style.json", get(style))
        .route("/fonts/{fontstack}/{range}", get(fonts::glyphs))
        .route("/sprites/{file}", get(sprites::sprite))
}

/// The one source of the style.
pub const SOURCE: &str = "gridmap";
/// The font stack of every text layer: a face of Debian's Noto Sans CJK
/// collection (Chinese, Latin and digits), see `fonts.rs`.
pub const FONT_STACK: &str = "Noto Sans CJK SC Regular";

/// 网格五色管理法: the status colour of a grid, as the web map draws it.
const STATUS_COLOURS: [(&str, &str); 5] = [
    ("green", "#2e9d4f"),
    ("blue", "#2f6fd6"),
    ("yellow", "#e8c21b"),
    ("orange", "#f08a24"),
    ("red", "#d93636"),
];
/// The zoom from which building names show on their polygons.
const BUILDING_NAME_MINZOOM: u8 = 16;
/// The zoom from which station names show beside their icons.
const STATION_NAME_MINZOOM: u8 = 14;

pub async fn style(headers: HeaderMap) -> Response {
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        )],
        Json(style_for(&base_url(&headers))),
    )
        .into_response()
}

/// The style document for a server reached at `base_url` (scheme and host).
#[must_use]
pub fn style_for(base_url: &str) -> Value {
    let all: Vec<&str> = LAYERS.iter().map(|layer| layer.name).collect();
    // Fills first, then lines, points and text, so nothing hides a label;
    // symbols (icons and text) go last of all, in the same order.
    let mut layers = vec![json!({
        "id": "background",
        "type": "background",
        "paint": { "background-color": "#f4f2ed" },
    })];
    let mut symbols = Vec::new();
    for drawing in [
        Drawing::Fill,
        Drawing::Line,
        Drawing::Circle,
        Drawing::Label,
    ] {
        for layer in LAYERS
            .iter()
            .filter(|layer| layer.drawing == drawing && layer.name != SERVICE_CIRCLES)
        {
            let (symbol, other): (Vec<Value>, Vec<Value>) = style_layers(layer)
                .into_iter()
                .partition(|style_layer| style_layer["type"] == "symbol");
            if layer.name == "grids" {
                // Service circles over the grids' status colours, under
                // their outlines, so both stay readable.
                let mut grids = other.into_iter();
                layers.extend(grids.next());
                layers.extend(
                    gridmap_tiles::find_layer(SERVICE_CIRCLES)
                        .map(service_circle_layers)
                        .unwrap_or_default(),
                );
                layers.extend(grids);
            } else {
                layers.extend(other);
            }
            symbols.extend(symbol);
        }
    }
    layers.extend(symbols);
    json!({
        "version": 8,
        "name": "gridmap",
        "sources": {
            SOURCE: {
                "type": "vector",
                "url": format!("{base_url}/tiles/{}.json", all.join(",")),
            },
        },
        "glyphs": format!("{base_url}/fonts/{{fontstack}}/{{range}}.pbf"),
        "sprite": format!("{base_url}/sprites/{SPRITE_SHEET}"),
        "layers": layers,
    })
}

/// The colour of a service circle by its station's kind.
const CIRCLE_COLOURS: [(&str, &str); 4] = [
    ("red_station", "#c62828"),
    ("service_centre", "#ad1457"),
    ("grid_station", "#1565c0"),
    ("rider_rest_stop", "#ef6c00"),
];

/// Translucent fills by kind with a faint edge of the same colour: circles
/// overlap, and each stays visible through the others.
fn service_circle_layers(layer: &LayerDef) -> Vec<Value> {
    let colour = match_colour("kind", &CIRCLE_COLOURS, "#6d4c41");
    let base = |suffix: &str, kind: &str| {
        json!({
            "id": format!("{}-{suffix}", layer.name),
            "type": kind,
            "source": SOURCE,
            "source-layer": layer.name,
            "minzoom": layer.minzoom,
            "maxzoom": f64::from(layer.maxzoom) + 1.0,
        })
    };
    let mut fill = base("fill", "fill");
    fill["paint"] = json!({ "fill-color": colour, "fill-opacity": 0.12 });
    let mut outline = base("outline", "line");
    outline["paint"] = json!({ "line-color": colour, "line-opacity": 0.45, "line-width": 0.8 });
    vec![fill, outline]
}

fn match_colour(property: &str, colours: &[(&str, &str)], fallback: &str) -> Value {
    let mut expression = vec![json!("match"), json!(["get", property])];
    for (value, colour) in colours {
        expression.push(json!(value));
        expression.push(json!(colour));
    }
    expression.push(json!(fallback));
    Value::Array(expression)
}

/// The style layers drawing one tile layer.
fn style_layers(layer: &LayerDef) -> Vec<Value> {
    let base = |suffix: &str, kind: &str| {
        json!({
            "id": format!("{}-{suffix}", layer.name),
            "type": kind,
            "source": SOURCE,
            "source-layer": layer.name,
            "minzoom": layer.minzoom,
            "maxzoom": f64::from(layer.maxzoom) + 1.0,
        })
    };
    let with = |mut value: Value, key: &str, content: Value| {
        value[key] = content;
        value
    };
    match layer.drawing {
        Drawing::Fill => {
            let (fill, opacity, outline, width) = match layer.name {
                "grids" => (
                    match_colour("status", &STATUS_COLOURS, "#999999"),
                    0.38,
                    "#3c3c3c",
                    1.0,
                ),
                "buildings" => (json!("#8c8f94"), 0.55, "#5f6368", 0.5),
                "grid_units" => (json!("#ffffff"), 0.0, "#6b6b6b", 0.5),
                "communities" => (json!("#ffffff"), 0.0, "#404040", 1.2),
                "streets" => (json!("#ffffff"), 0.0, "#262626", 2.0),
                _ => (json!("#ffffff"), 0.0, "#111111", 3.0),
            };
            let mut layers = vec![
                with(
                    base("fill", "fill"),
                    "paint",
                    json!({ "fill-color": fill, "fill-opacity": opacity }),
                ),
                with(
                    base("outline", "line"),
                    "paint",
                    json!({ "line-color": outline, "line-width": width }),
                ),
            ];
            // Buildings have no label layer of their own: their names (楼号,
            // mostly digits) show on the polygons, at the closest zooms only.
            if layer.name == "buildings" {
                let mut label = with(
                    base("label", "symbol"),
                    "layout",
                    json!({
                        "text-field": ["get", "name"],
                        "text-font": [FONT_STACK],
                        "text-size": 10,
                        "text-max-width": 6,
                    }),
                );
                label["minzoom"] = json!(BUILDING_NAME_MINZOOM);
                layers.push(with(label, "paint", text_paint()));
            }
            layers
        }
        Drawing::Line => vec![with(
            base("line", "line"),
            "paint",
            json!({
                "line-color": match_colour(
                    "class",
                    &[("primary", "#9e7d5a"), ("secondary", "#b09a7e")],
                    "#c2b8aa",
                ),
                "line-width": [
                    "interpolate", ["linear"], ["zoom"],
                    10, ["match", ["get", "class"], "primary", 1.6, "secondary", 1, 0.4],
                    16, ["match", ["get", "class"], "primary", 7, "secondary", 5, 3],
                ],
            }),
        )],
        Drawing::Circle if layer.name == "addresses" => vec![with(
            base("circle", "circle"),
            "paint",
            json!({
                "circle-color": "#455a64",
                "circle-radius": 2.0,
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1,
            }),
        )],
        // Stations: the icon of their kind from the sprite, named from z14.
        Drawing::Circle => {
            let mut icon = vec![json!("match"), json!(["get", "kind"])];
            for &kind in StationKind::ALL {
                icon.push(json!(kind.as_str()));
                icon.push(json!(sprites::station_icon(kind)));
            }
            icon.push(json!(FALLBACK_STATION_ICON));
            let symbol = with(
                base("icon", "symbol"),
                "layout",
                json!({
                    "icon-image": icon,
                    "icon-allow-overlap": true,
                    "text-field": ["step", ["zoom"], "", STATION_NAME_MINZOOM, ["get", "name"]],
                    "text-font": [FONT_STACK],
                    "text-size": 11,
                    "text-anchor": "top",
                    "text-offset": [0, 1.0],
                    "text-max-width": 8,
                    "text-optional": true,
                }),
            );
            let mut symbol = with(symbol, "paint", text_paint());
            if layer.name == "stations" {
                // Rider rest stops have their own layer from its minzoom on
                // (with opening hours): draw each icon once.
                let own_layer = gridmap_tiles::find_layer("rider_rest_stops")
                    .map_or(layer.minzoom, |rest_stops| rest_stops.minzoom);
                symbol["filter"] = json!([
                    "any",
                    ["!=", ["get", "kind"], StationKind::RiderRestStop.as_str()],
                    ["<", ["zoom"], own_layer],
                ]);
            }
            vec![symbol]
        }
        Drawing::Label => {
            let size = match layer.table {
                "districts" => 18,
                "streets" => 16,
                "communities" => 14,
                _ => 12,
            };
            let label = with(
                base("label", "symbol"),
                "layout",
                json!({
                    "text-field": ["get", "name"],
                    "text-font": [FONT_STACK],
                    "text-size": size,
                    "text-max-width": 8,
                }),
            );
            vec![with(label, "paint", text_paint())]
        }
    }
}

fn text_paint() -> Value {
    json!({
        "text-color": "#1f1f1f",
        "text-halo-color": "#ffffff",
        "text-halo-width": 1.5,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;

    #[test]
    fn every_source_layer_is_catalogued_and_every_layer_drawn() {
        let style = style_for("http://gridmap.test");
        assert_eq!(style["version"], 8);
        let layers = style["layers"].as_array().unwrap();
        let mut drawn = std::collections::BTreeSet::new();
        for layer in layers.iter().skip(1) {
            let name = layer["source-layer"].as_str().unwrap();
            assert!(gridmap_tiles::find_layer(name).is_some(), "{name}");
            assert_eq!(layer["source"], SOURCE);
            drawn.insert(name);
        }
        assert_eq!(drawn.len(), LAYERS.len());
        for internal in gridmap_tiles::INTERNAL_LAYERS {
            assert!(!drawn.contains(internal.name), "{}", internal.name);
            let url = style["sources"][SOURCE]["url"].as_str().unwrap();
            assert!(!url.contains(internal.name), "{url}");
        }
    }

    #[test]
    fn service_circles_lie_between_the_grid_fills_and_their_outlines() {
        let style = style_for("http://gridmap.test");
        let ids: Vec<&str> = style["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["id"].as_str().unwrap())
            .collect();
        let at = |id: &str| ids.iter().position(|known| *known == id).unwrap();
        assert!(at("grids-fill") < at("service_circles-fill"));
        assert!(at("service_circles-fill") < at("service_circles-outline"));
        assert!(at("service_circles-outline") < at("grids-outline"));
    }
}
