//! `GET /fonts/{fontstack}/{range}.pbf`: the glyph ranges `style.json` names.
//!
//! No SDF glyphs are generated yet, so every valid range is answered with an
//! empty glyph set (a zero-length protobuf message is a valid `glyphs`
//! message). MapLibre then draws CJK ideographs itself from a local font
//! (its `localIdeographFontFamily`, `sans-serif` by default), so Chinese names
//! show without any download; Latin letters and digits in a label are not
//! drawn until real glyph ranges are served here.

use crate::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Glyph ranges never change for a given build: let browsers keep them a day.
const FONT_CACHE_CONTROL: &str = "public, max-age=86400";

pub async fn glyphs(
    Path((_font_stack, range)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let range = range.strip_suffix(".pbf").unwrap_or(&range);
    let valid = range
        .split_once('-')
        .and_then(|(start, end)| Some((start.parse::<u32>().ok()?, end.parse::<u32>().ok()?)))
        .is_some_and(|(start, end)| start % 256 == 0 && end == start + 255 && end <= 65_535);
    if !valid {
        return Err(ApiError::NotFound(format!(
            "no glyph range {range:?}: ranges are 256 code points, e.g. 0-255"
        )));
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(FONT_CACHE_CONTROL),
            ),
        ],
        Vec::<u8>::new(),
    )
        .into_response())
}
