//! `GET /sprites/gridmap.json|.png` and `gridmap@2x.json|.png`: the sprite
//! sheet of the default style (`"sprite"` in `style.json`), one icon per
//! station kind.
//!
//! The icons are drawn from vector shapes with tiny-skia when the server
//! starts (a few milliseconds), at 1× and 2× for high-density screens, so the
//! server ships no image files and fetches nothing. Each is a badge in the
//! kind's colour with a white sign: a house for a service centre (党群服务中心),
//! a star for a red station (红色驿站), a grid for a grid station (网格驿站), a
//! cup for a rider rest stop (骑手驿站).

use crate::style::StyleAssets;
use crate::ApiError;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gridmap_model::StationKind;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// The sheet's name in URLs: `/sprites/gridmap`, as `style.json` names it.
pub const SPRITE_SHEET: &str = "gridmap";
/// The icon of a station of an unknown kind.
pub const FALLBACK_STATION_ICON: &str = "station";

/// Icons may change with a new build: revalidate within the hour.
const SPRITE_CACHE_CONTROL: &str = "public, max-age=3600";
/// Icon width and height at 1×, in CSS pixels.
const ICON_SIZE: u32 = 22;
/// Space between icons on the sheet, so linear filtering never bleeds.
const ICON_GAP: u32 = 2;

/// The sign drawn on a badge.
#[derive(Debug, Clone, Copy)]
enum Sign {
    House,
    Star,
    Grid,
    Cup,
    Dot,
}

/// The badge colour (kept away from the five status hues) and sign of a kind;
/// exhaustive, so a new kind cannot go without an icon.
fn station_look(kind: StationKind) -> ([u8; 3], Sign) {
    match kind {
        StationKind::ServiceCentre => ([0x6a, 0x1b, 0x9a], Sign::House),
        StationKind::RedStation => ([0xa3, 0x15, 0x45], Sign::Star),
        StationKind::GridStation => ([0x00, 0x83, 0x8f], Sign::Grid),
        StationKind::RiderRestStop => ([0x5d, 0x40, 0x37], Sign::Cup),
    }
}

/// `(icon name, badge colour, sign)` of every icon on the sheet.
fn icons() -> Vec<(String, [u8; 3], Sign)> {
    StationKind::ALL
        .iter()
        .map(|&kind| {
            let (colour, sign) = station_look(kind);
            (station_icon(kind), colour, sign)
        })
        .chain([(
            FALLBACK_STATION_ICON.to_owned(),
            [0x5d, 0x40, 0x37],
            Sign::Dot,
        )])
        .collect()
}

/// The icon of stations of `kind`.
#[must_use]
pub fn station_icon(kind: StationKind) -> String {
    format!("station-{}", kind.as_str())
}

/// One sheet: its index (JSON) and image (PNG).
#[derive(Debug)]
struct Sheet {
    json: Bytes,
    png: Bytes,
}

/// The sheets at 1× and 2×.
#[derive(Debug, Clone)]
pub struct Sprites {
    sheets: Arc<[Sheet; 2]>,
}

impl Sprites {
    /// Draws the sheets.
    ///
    /// # Panics
    /// Never for the fixed icon set: sizes are constant and non-zero, and a
    /// PNG of a valid pixmap always encodes.
    #[must_use]
    pub fn draw() -> Self {
        #[allow(clippy::expect_used, reason = "fixed sizes; covered by the unit test")]
        let sheets = [1, 2].map(|ratio| draw_sheet(ratio).expect("the sprite sheet draws"));
        Self {
            sheets: Arc::new(sheets),
        }
    }
}

fn draw_sheet(ratio: u32) -> Result<Sheet, String> {
    let icons = icons();
    let count = u32::try_from(icons.len()).map_err(|err| err.to_string())?;
    let step = (ICON_SIZE + ICON_GAP) * ratio;
    let mut pixmap = Pixmap::new(step * count, ICON_SIZE * ratio).ok_or("empty sprite sheet")?;
    let mut index = Map::new();
    for (slot, (name, colour, sign)) in (0..).zip(icons) {
        let x = slot * step;
        // Shapes are laid out on a 22-unit square, scaled to the ratio.
        #[allow(clippy::cast_precision_loss, reason = "small pixel offsets")]
        let transform =
            Transform::from_scale(ratio as f32, ratio as f32).post_translate(x as f32, 0.0);
        draw_icon(&mut pixmap, transform, colour, sign)?;
        index.insert(
            name,
            json!({
                "x": x,
                "y": 0,
                "width": ICON_SIZE * ratio,
                "height": ICON_SIZE * ratio,
                "pixelRatio": ratio,
            }),
        );
    }
    let png = pixmap.encode_png().map_err(|err| err.to_string())?;
    Ok(Sheet {
        json: Bytes::from(Value::Object(index).to_string()),
        png: Bytes::from(png),
    })
}

fn draw_icon(
    pixmap: &mut Pixmap,
    transform: Transform,
    [r, g, b]: [u8; 3],
    sign: Sign,
) -> Result<(), String> {
    let mut badge = Paint::default();
    badge.set_color_rgba8(r, g, b, 255);
    let mut white = Paint::default();
    white.set_color_rgba8(255, 255, 255, 255);
    let outline = Stroke {
        width: 1.5,
        ..Stroke::default()
    };
    let sign_stroke = Stroke {
        width: 1.4,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..Stroke::default()
    };

    let circle = PathBuilder::from_circle(11.0, 11.0, 9.8).ok_or("badge")?;
    pixmap.fill_path(&circle, &badge, FillRule::Winding, transform, None);
    pixmap.stroke_path(&circle, &white, &outline, transform, None);

    let mut path = PathBuilder::new();
    let mut stroked = PathBuilder::new();
    match sign {
        Sign::House => {
            path.move_to(11.0, 5.0);
            path.line_to(17.0, 10.5);
            path.line_to(15.0, 10.5);
            path.line_to(15.0, 16.5);
            path.line_to(12.4, 16.5);
            path.line_to(12.4, 13.0);
            path.line_to(9.6, 13.0);
            path.line_to(9.6, 16.5);
            path.line_to(7.0, 16.5);
            path.line_to(7.0, 10.5);
            path.line_to(5.0, 10.5);
            path.close();
        }
        Sign::Star => {
            // Five points, the first straight up.
            for point in 0..10u8 {
                let radius = if point % 2 == 0 { 6.6 } else { 2.7 };
                let angle = f32::from(point) * std::f32::consts::PI / 5.0;
                let (x, y) = (11.0 + radius * angle.sin(), 11.6 - radius * angle.cos());
                if point == 0 {
                    path.move_to(x, y);
                } else {
                    path.line_to(x, y);
                }
            }
            path.close();
        }
        Sign::Grid => {
            let square = Rect::from_xywh(6.0, 6.0, 10.0, 10.0).ok_or("grid")?;
            stroked.push_rect(square);
            stroked.move_to(11.0, 6.0);
            stroked.line_to(11.0, 16.0);
            stroked.move_to(6.0, 11.0);
            stroked.line_to(16.0, 11.0);
        }
        Sign::Cup => {
            path.move_to(6.0, 8.0);
            path.line_to(14.0, 8.0);
            path.line_to(14.0, 12.0);
            path.quad_to(14.0, 15.5, 10.0, 15.5);
            path.quad_to(6.0, 15.5, 6.0, 12.0);
            path.close();
            stroked.push_circle(14.6, 10.8, 1.9);
            stroked.move_to(5.5, 17.0);
            stroked.line_to(14.5, 17.0);
        }
        Sign::Dot => path.push_circle(11.0, 11.0, 3.5),
    }
    if let Some(path) = path.finish() {
        pixmap.fill_path(&path, &white, FillRule::Winding, transform, None);
    }
    if let Some(path) = stroked.finish() {
        pixmap.stroke_path(&path, &white, &sign_stroke, transform, None);
    }
    Ok(())
}

pub async fn sprite(
    State(assets): State<StyleAssets>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no sprite file {file:?}: this server has {SPRITE_SHEET}.json, {SPRITE_SHEET}.png, \
             {SPRITE_SHEET}@2x.json and {SPRITE_SHEET}@2x.png"
        ))
    };
    let (stem, extension) = file.rsplit_once('.').ok_or_else(not_found)?;
    let sheet = match stem.strip_prefix(SPRITE_SHEET).ok_or_else(not_found)? {
        "" => &assets.sprites.sheets[0],
        "@2x" => &assets.sprites.sheets[1],
        _ => return Err(not_found()),
    };
    let (content_type, body) = match extension {
        "json" => ("application/json", sheet.json.clone()),
        "png" => ("image/png", sheet.png.clone()),
        _ => return Err(not_found()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(SPRITE_CACHE_CONTROL),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;

    #[test]
    fn every_icon_is_indexed_inside_its_sheet_and_drawn() {
        for (slot, ratio) in [1u32, 2].into_iter().enumerate() {
            let sheet = draw_sheet(ratio).unwrap();
            let pixmap = Pixmap::decode_png(&sheet.png).unwrap();
            let index: Value = serde_json::from_slice(&sheet.json).unwrap();
            let names: Vec<String> = icons().into_iter().map(|(name, _, _)| name).collect();
            assert_eq!(index.as_object().unwrap().len(), names.len());
            for name in &names {
                let entry = &index[name];
                assert_eq!(entry["pixelRatio"], ratio, "{name}");
                let [x, y, width, height] =
                    ["x", "y", "width", "height"].map(|key| entry[key].as_u64().unwrap() as u32);
                assert!(x + width <= pixmap.width() && y + height <= pixmap.height());
                // The badge's centre is opaque and its corner transparent.
                let centre = pixmap.pixel(x + width / 2, y + height / 2 + ratio).unwrap();
                assert_eq!(centre.alpha(), 255, "{name} at {ratio}x (slot {slot})");
                assert_eq!(pixmap.pixel(x, y).unwrap().alpha(), 0, "{name}");
            }
        }
        assert_eq!(station_icon(StationKind::RedStation), "station-red_station");
    }
}
