//! Glyph ranges and sprites as a MapLibre client receives them, checked
//! against tools that share no code with the server:
//!
//! - glyph PBFs are decoded by `tests/decode_glyphs.mjs` (node, the `pbf`
//!   package compiled from the published glyphs.proto), not by prost;
//! - which code points a range must hold comes from fontconfig's `fc-query`
//!   charset of the same face;
//! - sprite PNG sizes are read from the PNG header bytes.
//!
//! Needs Debian's fonts-noto-cjk, fontconfig and node with web-map's
//! node_modules (`scripts/install-deps`). No database.

#![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use gridmap_server::{style_asset_router, StyleAssets, DEBIAN_FONT_FILES};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use tower::ServiceExt as _;

const REGULAR: &str = "Noto Sans CJK SC Regular";
const BOLD: &str = "Noto Sans CJK SC Bold";
/// The 3 px SDF buffer on every side MapLibre assumes.
const BUFFER: u32 = 3;

#[derive(Debug, Deserialize)]
struct Decoded {
    stacks: Vec<Stack>,
}

#[derive(Debug, Deserialize)]
struct Stack {
    name: String,
    range: String,
    glyphs: Vec<DecodedGlyph>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct DecodedGlyph {
    id: u32,
    width: u32,
    height: u32,
    left: i32,
    top: i32,
    advance: u32,
    bitmap_length: u32,
}

fn app() -> Router {
    for file in DEBIAN_FONT_FILES {
        assert!(
            Path::new(file).is_file(),
            "{file} is missing: apt-get install fonts-noto-cjk (scripts/install-deps)"
        );
    }
    style_asset_router(StyleAssets::debian_default())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body.to_vec())
}

fn glyph_uri(stack: &str, start: u32) -> String {
    format!(
        "/fonts/{}/{start}-{}.pbf",
        stack.replace(' ', "%20"),
        start + 255
    )
}

/// Fetches one range and decodes it with node.
async fn fetch_decoded(app: &Router, stack: &str, start: u32) -> Stack {
    let uri = glyph_uri(stack, start);
    let (status, content_type, body) = get(app, &uri).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(content_type, "application/x-protobuf", "{uri}");
    let file = std::env::temp_dir().join(format!(
        "gridmap-glyphs-{}-{}-{start}.pbf",
        std::process::id(),
        stack.replace([' ', ','], "_")
    ));
    std::fs::write(&file, &body).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/decode_glyphs.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("node runs (scripts/install-deps)");
    std::fs::remove_file(&file).ok();
    assert!(
        output.status.success(),
        "decoding {uri} with node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut decoded: Decoded = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decoded.stacks.len(), 1, "{uri}: one font stack per message");
    decoded.stacks.remove(0)
}

/// The code points fontconfig finds in the face `family` `style` of `file`.
fn fc_query_charset(file: &str, family: &str, style: &str) -> BTreeSet<u32> {
    let output = Command::new("fc-query")
        .args(["--format", "%{family[0]}\t%{style[0]}\t%{charset}\n", file])
        .output()
        .expect("fc-query runs (apt-get install fontconfig)");
    assert!(output.status.success(), "fc-query {file} failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("{family}\t{style}\t")))
        .unwrap_or_else(|| panic!("fc-query finds no face {family} {style} in {file}"));
    let charset = line.rsplit('\t').next().unwrap();
    let mut code_points = BTreeSet::new();
    for range in charset.split_whitespace() {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let hex = |value: &str| u32::from_str_radix(value, 16).unwrap();
        code_points.extend(hex(first)..=hex(last));
    }
    code_points
}

#[tokio::test]
async fn cjk_and_latin_ranges_hold_every_code_point_the_face_covers() {
    let app = app();
    let covered = fc_query_charset(DEBIAN_FONT_FILES[0], "Noto Sans CJK SC", "Regular");
    let (zhong, guo) = (u32::from('中'), u32::from('国'));
    let starts = [0, zhong & !0xff, guo & !0xff];
    assert_eq!(starts[1], 19_968, "中 lies in 19968-20223");
    let mut by_id = BTreeMap::new();
    for start in starts {
        let stack = fetch_decoded(&app, REGULAR, start).await;
        assert_eq!(stack.name, REGULAR);
        assert_eq!(stack.range, format!("{start}-{}", start + 255));
        let ids: BTreeSet<u32> = stack.glyphs.iter().map(|glyph| glyph.id).collect();
        assert_eq!(
            ids.len(),
            stack.glyphs.len(),
            "{start}: duplicate glyph ids"
        );
        let expected: BTreeSet<u32> = covered.range(start..=start + 255).copied().collect();
        assert!(!expected.is_empty(), "{start}: fc-query finds nothing");
        assert_eq!(
            stack.glyphs.len(),
            expected.len(),
            "{start}: glyph count against fc-query; only served {:?}, only in fc-query {:?}",
            ids.difference(&expected).collect::<Vec<_>>(),
            expected.difference(&ids).collect::<Vec<_>>(),
        );
        assert_eq!(ids, expected, "{start}");
        for glyph in stack.glyphs {
            assert_eq!(
                glyph.bitmap_length,
                (glyph.width + 2 * BUFFER) * (glyph.height + 2 * BUFFER),
                "{start}: glyph {} bitmap size",
                glyph.id
            );
            by_id.insert(glyph.id, glyph);
        }
    }
    // Ideographs are full-width: one em, 24 px at MapLibre's 24 px size.
    for code_point in [zhong, guo] {
        let glyph = &by_id[&code_point];
        assert_eq!(glyph.advance, 24, "{code_point:#x}: {glyph:?}");
        assert!(glyph.width > 10 && glyph.height > 10, "{glyph:?}");
    }
    for character in ['A', 'g', '1', '0'] {
        let glyph = &by_id[&u32::from(character)];
        assert!(
            glyph.advance > 0 && glyph.advance < 24,
            "{character}: {glyph:?}"
        );
        assert!(
            glyph.width > 0 && glyph.height > 0,
            "{character}: {glyph:?}"
        );
    }
    // A descender reaches below the baseline, a capital does not: `top` is
    // relative to the same line for both.
    let (capital, descender) = (&by_id[&u32::from('A')], &by_id[&u32::from('g')]);
    assert!(
        i64::from(descender.top) - i64::from(descender.height)
            < i64::from(capital.top) - i64::from(capital.height),
        "{capital:?} {descender:?}"
    );
    // A space has an advance and nothing to draw.
    let space = &by_id[&u32::from(' ')];
    assert!(space.advance > 0 && space.width == 0, "{space:?}");
}

#[tokio::test]
async fn a_stack_takes_each_code_point_from_its_first_font() {
    let app = app();
    let start = u32::from('中') & !0xff;
    let regular = fetch_decoded(&app, REGULAR, start).await;
    let bold = fetch_decoded(&app, BOLD, start).await;
    assert_eq!(bold.name, BOLD);
    // Bold strokes are wider: the same ideograph differs in its bitmap.
    assert_ne!(regular.glyphs, bold.glyphs);

    let bold_first = fetch_decoded(&app, &format!("{BOLD},{REGULAR}"), start).await;
    assert_eq!(bold_first.name, format!("{BOLD}, {REGULAR}"));
    assert_eq!(bold_first.glyphs, bold.glyphs);
    let regular_first = fetch_decoded(&app, &format!("{REGULAR}, {BOLD}"), start).await;
    assert_eq!(regular_first.glyphs, regular.glyphs);
}

#[tokio::test]
async fn unknown_fonts_and_ranges_are_404_with_a_reason() {
    let app = app();
    for (uri, reason) in [
        (glyph_uri("Arial Regular", 0), "Arial Regular"),
        (glyph_uri(&format!("{REGULAR},Open Sans"), 0), "Open Sans"),
        (
            format!("/fonts/{}/0-511.pbf", REGULAR.replace(' ', "%20")),
            "256 code points",
        ),
        (glyph_uri(REGULAR, 65_536), "65535"),
    ] {
        let (status, _, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains(reason), "{uri}: {body}");
    }
    let (status, _, _) = get(&app, &glyph_uri(REGULAR, 65_280)).await;
    assert_eq!(status, StatusCode::OK, "the last range is served");

    // A server whose font file is missing still serves, and says why not.
    let without_fonts = style_asset_router(StyleAssets::open(&[PathBuf::from(
        "/nonexistent/Fonts.ttc",
    )]));
    let (status, _, body) = get(&without_fonts, &glyph_uri(REGULAR, 0)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("/nonexistent/Fonts.ttc"), "{body}");
    let (status, _, _) = get(&without_fonts, "/sprites/gridmap.png").await;
    assert_eq!(status, StatusCode::OK);
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u64, u64) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let word = |at: usize| u64::from(u32::from_be_bytes(png[at..at + 4].try_into().unwrap()));
    (word(16), word(20))
}

#[tokio::test]
async fn sprites_index_every_icon_the_style_uses_inside_the_image() {
    let app = app();
    let (status, _, body) = get(&app, "/style.json").await;
    assert_eq!(status, StatusCode::OK);
    let style: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sprite = style["sprite"].as_str().unwrap();
    let path = sprite.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    assert_eq!(path, "/sprites/gridmap");

    // Every icon name a symbol layer can pick (the outputs of its `match`).
    let mut used = BTreeSet::new();
    let mut icon_layers = 0;
    for layer in style["layers"].as_array().unwrap() {
        let Some(icon) = layer["layout"].get("icon-image") else {
            continue;
        };
        icon_layers += 1;
        let outputs = icon.as_array().unwrap();
        assert_eq!(outputs[0], "match", "{icon}");
        used.extend(
            outputs[2..]
                .iter()
                .skip(1)
                .step_by(2)
                .chain(outputs.last())
                .map(|name| name.as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(icon_layers, 2, "stations and rider rest stops have icons");
    for kind in [
        "service_centre",
        "red_station",
        "grid_station",
        "rider_rest_stop",
    ] {
        assert!(
            used.contains(&format!("station-{kind}")),
            "{kind}: {used:?}"
        );
    }

    for (suffix, ratio) in [("", 1), ("@2x", 2)] {
        let (status, content_type, index) = get(&app, &format!("{path}{suffix}.json")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
        let (status, content_type, png) = get(&app, &format!("{path}{suffix}.png")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "image/png");
        let (width, height) = png_size(&png);
        for name in &used {
            let entry = &index[name];
            assert_eq!(entry["pixelRatio"], ratio, "{name}{suffix}");
            let [x, y, w, h] =
                ["x", "y", "width", "height"].map(|key| entry[key].as_u64().unwrap());
            assert_eq!((w, h), (22 * ratio, 22 * ratio), "{name}{suffix}");
            assert!(
                x + w <= width && y + h <= height,
                "{name}{suffix} outside {width}×{height}"
            );
        }
    }
    let (status, _, _) = get(&app, "/sprites/gridmap@3x.png").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
