//! `GET /fonts/{fontstack}/{range}.pbf`: the glyph ranges `style.json` names,
//! as MapLibre reads them: a `glyphs` protobuf message with one font stack
//! holding the glyphs of the range that the fonts cover, each a signed
//! distance field rendered at 24 px with a 3 px buffer (radius 8, cutoff
//! 0.25, as node-fontnik makes them), with its metrics.
//!
//! The glyphs come from font files on this machine (offline intranets): by
//! default Debian's Noto Sans CJK collections (package `fonts-noto-cjk`), whose
//! every face is served under its FreeType family and style name, e.g.
//! `Noto Sans CJK SC Regular` or `Noto Sans CJK SC Bold`. A stack of several
//! comma-separated fonts combines them the way MapLibre expects: the first font
//! that has a code point gives its glyph. A range is rendered on the blocking
//! pool the first time any stack asks for it (FreeType rasterises each glyph,
//! `sdf_glyph_renderer` turns the bitmap into a distance field, the message
//! types are `pbf_font_tools`'), then kept encoded in a cache bounded in
//! bytes; concurrent first requests for one range render it once.
//!
//! A configured font file that is missing is reported at start-up (WARN) and
//! the server runs without it; requests naming fonts nobody serves get a 404
//! that says which fonts exist and which files are missing.

use crate::style::StyleAssets;
use crate::ApiError;
use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use freetype::face::LoadFlag;
use freetype::{Face, Library};
use pbf_font_tools::prost::Message as _;
use pbf_font_tools::{Fontstack, Glyph, Glyphs};
use sdf_glyph_renderer::{clamp_to_u8, BitmapGlyph};
use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// Debian's Noto Sans CJK collections (`apt-get install fonts-noto-cjk`).
pub const DEBIAN_FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
];

/// Glyph ranges never change for a given set of font files: let browsers keep
/// them a day.
const FONT_CACHE_CONTROL: &str = "public, max-age=86400";
/// The size MapLibre's SDF text shader expects glyphs rendered at, in pixels.
const GLYPH_SIZE: isize = 24;
/// The border around each glyph's bitmap MapLibre expects, in pixels.
const SDF_BUFFER: usize = 3;
/// How far from the outline the distance field reaches, in pixels.
const SDF_RADIUS: usize = 8;
/// The share of the byte range that encodes the inside of a glyph.
const SDF_CUTOFF: f64 = 0.25;
/// Code points per range; MapLibre asks for `{start}-{start + 255}`.
const RANGE_SIZE: u32 = 256;
/// More fonts in one stack would only cost combining time.
const MAX_STACK_FONTS: usize = 8;
/// Ranges are kept until this many bytes are cached (a CJK range is about
/// 220 kB, so some 300 ranges; a Latin range about 40 kB).
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// One face of a font file.
#[derive(Debug)]
struct FaceSource {
    /// `"{family} {style}"`, the name a style's `text-font` uses.
    name: String,
    path: PathBuf,
    /// The face's index in its file (collections hold several).
    index: isize,
}

/// The fonts this server renders glyphs from, and the cache of rendered ranges.
#[derive(Clone)]
pub struct Fonts {
    inner: Arc<FontsInner>,
}

struct FontsInner {
    faces: Vec<FaceSource>,
    /// Font files that were configured but could not be read.
    unavailable: Vec<PathBuf>,
    /// Encoded single-font `glyphs` messages by (face, range start).
    ranges: moka::future::Cache<(usize, u32), Bytes>,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts")
            .field("faces", &self.names())
            .field("unavailable", &self.inner.unavailable)
            .finish_non_exhaustive()
    }
}

impl Fonts {
    /// Reads the faces of `files` (fonts or font collections). A file that is
    /// missing or unreadable is logged at WARN and left out.
    #[must_use]
    pub fn open(files: &[PathBuf]) -> Self {
        let mut faces = Vec::new();
        let mut unavailable = Vec::new();
        for path in files {
            match read_faces(path) {
                Ok(found) => {
                    tracing::info!(
                        path = %path.display(),
                        faces = found.len(),
                        "serving glyphs from font file"
                    );
                    faces.extend(found);
                }
                Err(err) => {
                    tracing::warn!(
                        path = %path.display(),
                        %err,
                        "font file unavailable: labels in its fonts will not be drawn \
                         (install fonts-noto-cjk or pass --font-file)"
                    );
                    unavailable.push(path.clone());
                }
            }
        }
        let ranges = moka::future::Cache::builder()
            .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
            .max_capacity(CACHE_BYTES)
            .build();
        Self {
            inner: Arc::new(FontsInner {
                faces,
                unavailable,
                ranges,
            }),
        }
    }

    /// Debian's Noto Sans CJK collections, see [`DEBIAN_FONT_FILES`].
    #[must_use]
    pub fn debian_default() -> Self {
        Self::open(&DEBIAN_FONT_FILES.map(PathBuf::from))
    }

    /// The font names served, in file and face order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.inner
            .faces
            .iter()
            .map(|face| face.name.as_str())
            .collect()
    }

    /// The encoded `glyphs` message of `range_start..range_start + 255` for a
    /// stack of comma-separated font names.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] for a font nobody serves (or a stack of more than
    /// eight fonts); an internal error when
    /// FreeType fails on a font file.
    pub async fn glyph_range(&self, font_stack: &str, range_start: u32) -> Result<Bytes, ApiError> {
        if font_stack.split(',').count() > MAX_STACK_FONTS {
            return Err(ApiError::NotFound(format!(
                "font stack {font_stack:?} names more than {MAX_STACK_FONTS} fonts"
            )));
        }
        let faces = font_stack
            .split(',')
            .map(|name| self.face(name.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if let [face] = faces.as_slice() {
            return self.face_range(*face, range_start).await;
        }
        let mut encoded = Vec::with_capacity(faces.len());
        for &face in &faces {
            encoded.push(self.face_range(face, range_start).await?);
        }
        let names: Vec<&str> = faces
            .iter()
            .map(|&face| self.inner.faces[face].name.as_str())
            .collect();
        combine(&names.join(", "), range_start, &encoded).map(Bytes::from)
    }

    fn face(&self, name: &str) -> Result<usize, ApiError> {
        if let Some(index) = self.inner.faces.iter().position(|face| face.name == name) {
            return Ok(index);
        }
        let mut message = format!("unknown font {name:?}");
        if self.inner.faces.is_empty() {
            message.push_str(": this server has no fonts");
        } else {
            message.push_str(&format!("; fonts here: {}", self.names().join(", ")));
        }
        if !self.inner.unavailable.is_empty() {
            let files: Vec<String> = self
                .inner
                .unavailable
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            message.push_str(&format!(
                " (font files missing on the server: {})",
                files.join(", ")
            ));
        }
        Err(ApiError::NotFound(message))
    }

    /// One face's range, rendered on first use.
    async fn face_range(&self, face: usize, range_start: u32) -> Result<Bytes, ApiError> {
        let inner = Arc::clone(&self.inner);
        self.inner
            .ranges
            .try_get_with((face, range_start), async move {
                tokio::task::spawn_blocking(move || {
                    let source = &inner.faces[face];
                    render_range(source, range_start).map(|glyphs| {
                        tracing::debug!(font = %source.name, range_start, "rendered glyph range");
                        Bytes::from(glyphs.encode_to_vec())
                    })
                })
                .await
                .map_err(|err| anyhow::anyhow!("glyph rendering task failed: {err}"))?
            })
            .await
            .map_err(|err: Arc<anyhow::Error>| {
                ApiError::Internal(anyhow::anyhow!("rendering glyphs: {err:#}"))
            })
    }
}

/// The faces of one font file with their names.
fn read_faces(path: &FsPath) -> anyhow::Result<Vec<FaceSource>> {
    if !path.is_file() {
        anyhow::bail!("no such file");
    }
    let library = Library::init().context("initialising FreeType")?;
    let first = library.new_face(path, 0).context("reading the font")?;
    let mut faces = Vec::new();
    for index in 0..isize::from(first.num_faces()) {
        let face = library
            .new_face(path, index)
            .with_context(|| format!("reading face {index}"))?;
        let family = face
            .family_name()
            .with_context(|| format!("face {index} has no family name"))?;
        let name = match face.style_name() {
            Some(style) => format!("{family} {style}"),
            None => family,
        };
        faces.push(FaceSource {
            name,
            path: path.to_owned(),
            index,
        });
    }
    Ok(faces)
}

/// Renders the glyphs of one face in `range_start..=range_start + 255`.
fn render_range(source: &FaceSource, range_start: u32) -> anyhow::Result<Glyphs> {
    // A FreeType face may not cross threads; opening one costs a few
    // milliseconds next to the range's rendering.
    let library = Library::init().context("initialising FreeType")?;
    let face = library
        .new_face(&source.path, source.index)
        .with_context(|| format!("opening {} face {}", source.path.display(), source.index))?;
    // 26.6 fixed point; 0 dpi means FreeType's 72, so points are pixels.
    face.set_char_size(0, GLYPH_SIZE << 6, 0, 0)
        .context("setting the glyph size")?;
    let ascender = face
        .size_metrics()
        .map(|metrics| metrics.ascender >> 6)
        .context("the face has no size metrics")?;
    let mut glyphs = Vec::new();
    for code_point in range_start..range_start + RANGE_SIZE {
        // Code points the face lacks are left out; a later font of a stack may have them.
        let Some(index) = face.get_char_index(code_point as usize) else {
            continue;
        };
        let glyph = render_glyph(&face, index, code_point, ascender)
            .with_context(|| format!("rendering U+{code_point:04X} of {}", source.name))?;
        glyphs.push(glyph);
    }
    Ok(Glyphs {
        stacks: vec![Fontstack {
            name: source.name.clone(),
            range: format!("{range_start}-{}", range_start + RANGE_SIZE - 1),
            glyphs,
        }],
    })
}

/// One glyph as node-fontnik lays it out: `top` is measured from the
/// ascender, the bitmap is the SDF of the unhinted glyph with its buffer.
fn render_glyph(face: &Face, index: u32, code_point: u32, ascender: i64) -> anyhow::Result<Glyph> {
    face.load_glyph(index, LoadFlag::NO_HINTING | LoadFlag::RENDER)?;
    let slot = face.glyph();
    let bitmap = slot.bitmap();
    let width = usize::try_from(bitmap.width())?;
    let height = usize::try_from(bitmap.rows())?;
    // Rows may be padded: copy `width` bytes from each `pitch`-long row.
    let pitch = usize::try_from(bitmap.pitch().unsigned_abs())?;
    let buffer = bitmap.buffer();
    let mut alpha = Vec::with_capacity(width * height);
    for row in 0..height {
        let at = row * pitch;
        alpha.extend_from_slice(buffer.get(at..at + width).context("short glyph bitmap")?);
    }
    let sdf =
        BitmapGlyph::from_unbuffered(&alpha, width, height, SDF_BUFFER)?.render_sdf(SDF_RADIUS);
    Ok(Glyph {
        id: code_point,
        bitmap: Some(clamp_to_u8(&sdf, SDF_CUTOFF)?),
        width: u32::try_from(width)?,
        height: u32::try_from(height)?,
        left: slot.bitmap_left(),
        top: i32::try_from(i64::from(slot.bitmap_top()) - ascender)?,
        advance: u32::try_from(slot.metrics().horiAdvance >> 6)?,
    })
}

/// One message for a stack of fonts: per code point, the first font's glyph.
fn combine(name: &str, range_start: u32, encoded: &[Bytes]) -> Result<Vec<u8>, ApiError> {
    let mut glyphs: BTreeMap<u32, Glyph> = BTreeMap::new();
    for bytes in encoded {
        let message = Glyphs::decode(bytes.as_ref())
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("decoding cached glyphs: {err}")))?;
        for glyph in message.stacks.into_iter().flat_map(|stack| stack.glyphs) {
            glyphs.entry(glyph.id).or_insert(glyph);
        }
    }
    Ok(Glyphs {
        stacks: vec![Fontstack {
            name: name.to_owned(),
            range: format!("{range_start}-{}", range_start + RANGE_SIZE - 1),
            glyphs: glyphs.into_values().collect(),
        }],
    }
    .encode_to_vec())
}

/// The start of a range named `{start}-{end}` (with or without `.pbf`).
fn parse_range(range: &str) -> Option<u32> {
    let range = range.strip_suffix(".pbf").unwrap_or(range);
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.parse::<u32>().ok()?, end.parse::<u32>().ok()?);
    (start % RANGE_SIZE == 0 && end == start + RANGE_SIZE - 1 && end <= 65_535).then_some(start)
}

pub async fn glyphs(
    State(assets): State<StyleAssets>,
    Path((font_stack, range)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(range_start) = parse_range(&range) else {
        return Err(ApiError::NotFound(format!(
            "no glyph range {range:?}: ranges are 256 code points up to 65535, e.g. 0-255.pbf"
        )));
    };
    let body = assets.fonts.glyph_range(&font_stack, range_start).await?;
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
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_aligned_blocks_of_256_up_to_65535() {
        assert_eq!(parse_range("0-255.pbf"), Some(0));
        assert_eq!(parse_range("19968-20223"), Some(19_968));
        assert_eq!(parse_range("65280-65535.pbf"), Some(65_280));
        for bad in ["1-256", "0-254", "65536-65791", "a-b", "0", "-255"] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_missing_font_file_leaves_no_fonts_and_says_so() {
        let fonts = Fonts::open(&[PathBuf::from("/nonexistent/NoSuchFont.ttc")]);
        assert!(fonts.names().is_empty());
        let Err(ApiError::NotFound(message)) = fonts.face("Noto Sans CJK SC Regular") else {
            panic!("an unknown font must be a 404");
        };
        assert!(message.contains("/nonexistent/NoSuchFont.ttc"), "{message}");
    }
}
