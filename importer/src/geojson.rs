//! A native reader for plain GeoJSON area layers, several times faster than
//! GDAL's GeoJSON driver (which parses the whole file once for its schema and
//! again for its features, building a JSON object tree per feature).
//!
//! It takes only files it can read exactly as GDAL would, and leaves every
//! other file to GDAL before anything was sent. "Plain" means:
//!
//! - a `FeatureCollection` on its first line, declaring
//!   `urn:ogc:def:crs:EPSG::4490` or no CRS at all (RFC 7946: WGS 84
//!   longitude/latitude, which GDAL reports as EPSG:4326 and the import
//!   stores as it is) and holding nothing but `type`, `name`, `crs` and
//!   `features`, then one feature per line, then the closing `]}` (the
//!   layout GDAL and gridmap-export write);
//! - features with `type`, `properties` and `geometry` only (no `id`, which
//!   GDAL may turn into a field), properties that are strings, whole numbers
//!   fitting an `i64`, or null (no reals, booleans, lists or objects, whose
//!   text GDAL formats in its own way) and no string that GDAL's type
//!   detection could take for a date or time;
//! - numbers of at most 15 significant digits and 22 decimals, without
//!   exponent, which serde_json parses to the correctly rounded double (the
//!   digits as an exact integer divided by an exact power of ten), as GDAL's
//!   `strtod` does;
//! - 2D Polygons and MultiPolygons that pass every check of the GDAL path
//!   (not empty, rings closed with at least 4 points, inside China or, with
//!   `--outside-china`, in degrees), so that no problem needs GDAL's wording;
//! - no `--crs` given.
//!
//! A first pass checks all of that and collects the field names in order of
//! first appearance (GDAL's schema); the second pass sends the features. The
//! field text and the WKB are what the GDAL path produces for the same file:
//! whole numbers in decimal, strings as they are, geometries as
//! little-endian 2D WKB (`importer/tests/formats.rs` compares the stored rows
//! of both paths).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::fields::LayerSpec;
use crate::problem::ImportError;
use crate::read::{NativeStart, RawFeature, ReadMessage, CHINA_LAT, CHINA_LON};
use crate::{ImportOptions, Source};

/// The one CRS declaration taken; any other is left to GDAL.
const CGCS2000_URN: &str = "urn:ogc:def:crs:EPSG::4490";

/// Environment variable that turns the native reader off (`0`), for
/// comparing both paths on the same file.
pub(crate) const NATIVE_SWITCH: &str = "GRIDMAP_IMPORT_NATIVE_GEOJSON";

/// Reads `source` natively when it is plain GeoJSON of an area layer:
/// `Ok(None)` (nothing sent) when it is not and GDAL must read it.
///
/// # Errors
/// [`ImportError::Io`] when the file cannot be read between the passes.
pub(crate) fn read_plain(
    source: &Source,
    options: &ImportOptions,
    sender: &tokio::sync::mpsc::Sender<ReadMessage>,
) -> Result<Option<u64>, ImportError> {
    let spec = LayerSpec::of(source.entity);
    if !crate::read::native_reader_may_read(source, options, NATIVE_SWITCH)
        || !is_geojson_path(&source.path)
    {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let io_error = |err| ImportError::Io {
        path: source.path.clone(),
        source: err,
    };
    let Scanned {
        names,
        header_lines,
        features,
        epsg,
    } = match scan(&source.path, options.outside_china).map_err(io_error)? {
        Ok(scanned) => scanned,
        Err(reason) => {
            tracing::debug!(file = %source.file_name(), %reason, "read through GDAL");
            return Ok(None);
        }
    };
    let file_name = source.file_name();
    let (field_index, crs) = match crate::read::start_native_layer(
        source,
        spec,
        options,
        (&names, features),
        epsg,
        sender,
    )? {
        NativeStart::Gdal => return Ok(None),
        NativeStart::Stopped => return Ok(Some(0)),
        NativeStart::Read { field_index, crs } => (field_index, crs),
    };
    let file = File::open(&source.path).map_err(io_error)?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    // The header was checked by the scan.
    for _ in 0..header_lines {
        lines.next().transpose().map_err(io_error)?;
    }
    let mut batch = crate::read::BatchSender::new(sender, options);
    let mut count = 0u64;
    for line in lines {
        let line = line.map_err(io_error)?;
        let Some(text) = feature_text(&line) else {
            continue;
        };
        let feature: Feature = serde_json::from_str(text)
            .map_err(|err| crate::read::changed_while_read(source, err))?;
        count += 1;
        let values = field_index
            .iter()
            .map(|index| {
                index.and_then(|index| {
                    let name = &names[index];
                    feature
                        .properties
                        .iter()
                        .find(|(key, _)| key == name)
                        .and_then(|(_, value)| value.text())
                        .map(|text| text.trim().to_owned())
                        .filter(|text| !text.is_empty())
                })
            })
            .collect();
        if !batch.push(RawFeature {
            number: count,
            values,
            wkb: Some(feature.geometry.wkb()),
        }) {
            return Ok(Some(count));
        }
    }
    batch.finish();
    tracing::info!(
        file = %file_name,
        entity = %spec.entity,
        features = count,
        crs = %crs,
        elapsed_ms = started.elapsed().as_millis(),
        "read (native GeoJSON)"
    );
    Ok(Some(count))
}

fn is_geojson_path(path: &Path) -> bool {
    path.extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|extension| extension == "geojson" || extension == "json")
}

/// What the first pass found in a plain file.
struct Scanned {
    /// The field names in order of first appearance, as GDAL lists them.
    names: Vec<String>,
    /// The lines up to and including `"features": [`.
    header_lines: usize,
    /// The number of features.
    features: u64,
    /// The declared CRS: 4490, or 4326 when the file declares none.
    epsg: u32,
}

/// Features after the header below which the first pass runs on one thread.
const PARALLEL_SCAN_BYTES: u64 = 4 << 20;

/// The first pass: `Ok(Ok(scanned))` when the file is plain,
/// `Ok(Err(reason))` when it is not. A large file's features are checked in
/// two halves on two threads: nothing can be written before this pass ends,
/// so the database is idle and the second core free.
fn scan(path: &Path, outside_china: bool) -> std::io::Result<Result<Scanned, String>> {
    let file = File::open(path)?;
    let length = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // GDAL writes the collection's members one per line, `{` first; the
    // fixtures write them on one line.
    let mut header = String::new();
    let mut header_lines = 0;
    let mut header_bytes = 0u64;
    let mut line = String::new();
    while !header.trim_end().ends_with('[') {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 {
            return Ok(Err("no features member".to_owned()));
        }
        header_bytes += read as u64;
        header.push_str(line.trim_end_matches('\n').trim_end_matches('\r'));
        header.push('\n');
        header_lines += 1;
        if header_lines > 16 || header.len() > 4096 {
            return Ok(Err("no features member in the first lines".to_owned()));
        }
    }
    let epsg = match check_header(&header) {
        Ok(epsg) => epsg,
        Err(reason) => return Ok(Err(reason)),
    };
    let rest = length.saturating_sub(header_bytes);
    let parts = if rest < PARALLEL_SCAN_BYTES {
        vec![scan_part(reader, header_bytes, None, outside_china)?]
    } else {
        let middle = header_bytes + rest / 2;
        std::thread::scope(|scope| {
            let second = scope.spawn(|| -> std::io::Result<_> {
                // The second half starts with the first line that starts
                // at or after the middle; the first half ends before it.
                let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
                reader.seek(SeekFrom::Start(middle - 1))?;
                let mut partial = Vec::new();
                reader.read_until(b'\n', &mut partial)?;
                let start = middle - 1 + partial.len() as u64;
                scan_part(reader, start, None, outside_china)
            });
            let first = scan_part(reader, header_bytes, Some(middle), outside_china);
            let second = second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Ok::<_, std::io::Error>(vec![first?, second?])
        })?
    };
    let mut names: Vec<String> = Vec::new();
    let mut lowercase: Vec<String> = Vec::new();
    let mut features = 0u64;
    let mut closed = false;
    for part in parts {
        let part = match part {
            Ok(part) => part,
            Err(reason) => return Ok(Err(reason)),
        };
        if closed && part.features > 0 {
            return Ok(Err("text after the feature collection".to_owned()));
        }
        // First appearance in the file: the first half's names, then the
        // second's new ones.
        for key in part.names {
            if !names.contains(&key) {
                let lower = key.to_lowercase();
                if lowercase.contains(&lower) {
                    return Ok(Err(format!("{key}: two fields differ only by case")));
                }
                names.push(key);
                lowercase.push(lower);
            }
        }
        features += part.features;
        closed = part.closed;
    }
    if !closed {
        return Ok(Err("the feature collection is not closed".to_owned()));
    }
    Ok(Ok(Scanned {
        names,
        header_lines,
        features,
        epsg,
    }))
}

/// What the first pass found in a run of lines.
struct ScannedPart {
    names: Vec<String>,
    features: u64,
    /// Whether the run ends with the collection's closing.
    closed: bool,
}

/// Checks the lines of `reader`, positioned at byte `start`, up to the first
/// line starting at or after `end` (the end of the file without one). A run
/// with an `end` must hold features only: the closing belongs to the last.
fn scan_part(
    mut reader: BufReader<File>,
    start: u64,
    end: Option<u64>,
    outside_china: bool,
) -> std::io::Result<Result<ScannedPart, String>> {
    let mut names: Vec<String> = Vec::new();
    let mut lowercase: Vec<String> = Vec::new();
    let mut features = 0u64;
    let mut bracket = false;
    let mut closed = false;
    let mut position = start;
    let mut line = String::new();
    loop {
        if end.is_some_and(|end| position >= end) {
            break;
        }
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 {
            break;
        }
        let at = position;
        position += read as u64;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if closed {
            return Ok(Err("text after the feature collection".to_owned()));
        }
        match trimmed {
            "]}" | "]" | "}" if end.is_some() => {
                return Ok(Err(format!(
                    "the collection ends in its first half (byte {at})"
                )));
            }
            "]}" => {
                closed = true;
                continue;
            }
            "]" => {
                bracket = true;
                continue;
            }
            "}" if bracket => {
                closed = true;
                continue;
            }
            _ if bracket => return Ok(Err(format!("line at byte {at} after the features"))),
            _ => {}
        }
        let Some(text) = feature_text(&line) else {
            return Ok(Err(format!("line at byte {at} holds no single feature")));
        };
        if let Err(reason) = check_numbers(text) {
            return Ok(Err(reason));
        }
        let feature: Feature = match serde_json::from_str(text) {
            Ok(feature) => feature,
            Err(err) => return Ok(Err(format!("line at byte {at}: {err}"))),
        };
        features += 1;
        for (key, value) in &feature.properties {
            if let Property::Text(text) = value {
                if may_be_a_date(text) {
                    return Ok(Err(format!("{key}: {text:?} may be read as a date")));
                }
            }
            if !names.contains(key) {
                let lower = key.to_lowercase();
                if lowercase.contains(&lower) {
                    return Ok(Err(format!("{key}: two fields differ only by case")));
                }
                names.push(key.clone());
                lowercase.push(lower);
            }
        }
        if let Err(reason) = feature.geometry.check(outside_china) {
            return Ok(Err(reason));
        }
    }
    Ok(Ok(ScannedPart {
        names,
        features,
        closed,
    }))
}

/// The opening: `{"type":"FeatureCollection", …, "features":[`; returns the
/// EPSG code of its CRS.
fn check_header(text: &str) -> Result<u32, String> {
    let text = text.trim().trim_start_matches('\u{feff}');
    let Some(opening) = text.strip_suffix('[') else {
        return Err("the features do not start on the first line".to_owned());
    };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Header {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        #[allow(dead_code)]
        name: Option<String>,
        #[serde(default)]
        crs: Option<Crs>,
        features: Vec<serde::de::IgnoredAny>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Crs {
        #[serde(rename = "type")]
        kind: String,
        properties: CrsName,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CrsName {
        name: String,
    }
    let header: Header =
        serde_json::from_str(&format!("{opening}[]}}")).map_err(|err| format!("header: {err}"))?;
    if header.kind != "FeatureCollection" || !header.features.is_empty() {
        return Err("not a FeatureCollection".to_owned());
    }
    // GDAL gives a GeoJSON without `crs` WGS 84 (EPSG:4326), which the
    // GDAL path stores untransformed (`read::plan_crs`); so does this one.
    let Some(crs) = header.crs else {
        return Ok(4326);
    };
    if crs.kind != "name" || crs.properties.name != CGCS2000_URN {
        return Err(format!("CRS {}", crs.properties.name));
    }
    Ok(4490)
}

/// The feature of one line, without the separating comma.
fn feature_text(line: &str) -> Option<&str> {
    let text = line.trim();
    let text = text.strip_suffix(',').unwrap_or(text).trim_end();
    (text.starts_with('{') && text.ends_with('}')).then_some(text)
}

/// Refuses numbers serde_json might round differently from `strtod`: more
/// than 15 significant digits, or an exponent. Strings are skipped.
fn check_numbers(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                index += 1;
                while index < bytes.len() && bytes[index] != b'"' {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
                index += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = index;
                let mut significant = 0;
                let mut leading = true;
                let mut fraction: Option<usize> = None;
                while index < bytes.len() {
                    if let (Some(digits), b'0'..=b'9') = (fraction.as_mut(), bytes[index]) {
                        *digits += 1;
                    }
                    match bytes[index] {
                        b'0' if leading => {}
                        b'0'..=b'9' => {
                            leading = false;
                            significant += 1;
                        }
                        b'.' => fraction = Some(0),
                        b'-' => {}
                        b'e' | b'E' | b'+' => {
                            return Err(format!("number with an exponent at byte {start}"))
                        }
                        _ => break,
                    }
                    index += 1;
                }
                // serde_json divides the digits by a power of ten, exact up
                // to 10^22.
                if significant > 15 || fraction.unwrap_or(0) > 22 {
                    return Err(format!("number of {significant} digits at byte {start}"));
                }
            }
            _ => index += 1,
        }
    }
    Ok(())
}

/// Whether GDAL's field type detection could read `text` as a date, time or
/// date-time (it tries strings that start with a digit and hold `-`, `/` or `:`).
fn may_be_a_date(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with(|c: char| c.is_ascii_digit()) && text.contains(['-', '/', ':'])
}

/// One line's feature.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Feature {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: FeatureTag,
    #[serde(deserialize_with = "ordered_properties")]
    properties: Vec<(String, Property)>,
    geometry: AreaGeometry,
}

#[derive(Deserialize)]
enum FeatureTag {
    Feature,
}

/// A property value the plain path takes.
#[derive(Debug, PartialEq)]
enum Property {
    Null,
    Text(String),
    Integer(i64),
}

impl Property {
    /// The text GDAL's `field_as_string` gives for the value.
    fn text(&self) -> Option<String> {
        match self {
            Property::Null => None,
            Property::Text(text) => Some(text.clone()),
            Property::Integer(number) => Some(number.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Property {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PropertyVisitor;
        impl Visitor<'_> for PropertyVisitor {
            type Value = Property;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string, a whole number or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Property, E> {
                Ok(Property::Null)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Property, E> {
                Ok(Property::Text(text.to_owned()))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Property, E> {
                Ok(Property::Text(text))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Property, E> {
                Ok(Property::Integer(number))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Property, E> {
                i64::try_from(number)
                    .map(Property::Integer)
                    .map_err(|_| E::custom("a whole number beyond 64 bits"))
            }
        }
        deserializer.deserialize_any(PropertyVisitor)
    }
}

/// The properties in the order of the file (GDAL numbers fields by first
/// appearance); `null` properties are none.
fn ordered_properties<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, Property)>, D::Error> {
    struct OrderedVisitor;
    impl<'de> Visitor<'de> for OrderedVisitor {
        type Value = Vec<(String, Property)>;
        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("an object of properties")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut properties: Vec<(String, Property)> = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, Property>()? {
                if properties.iter().any(|(known, _)| *known == key) {
                    return Err(de::Error::custom(format!("property {key} given twice")));
                }
                properties.push((key, value));
            }
            Ok(properties)
        }
    }
    deserializer.deserialize_any(OrderedVisitor)
}

/// A Polygon or MultiPolygon of 2D positions.
#[derive(Deserialize)]
#[serde(tag = "type", content = "coordinates", deny_unknown_fields)]
enum AreaGeometry {
    Polygon(Vec<Vec<[f64; 2]>>),
    MultiPolygon(Vec<Vec<Vec<[f64; 2]>>>),
}

impl AreaGeometry {
    fn polygons(&self) -> &[Vec<Vec<[f64; 2]>>] {
        match self {
            AreaGeometry::Polygon(polygon) => std::slice::from_ref(polygon),
            AreaGeometry::MultiPolygon(polygons) => polygons,
        }
    }

    /// The checks of the GDAL path; any failure leaves the file to GDAL,
    /// which words the problem.
    fn check(&self, outside_china: bool) -> Result<(), String> {
        let polygons = self.polygons();
        if polygons.is_empty() {
            return Err("empty geometry".to_owned());
        }
        let (mut min_x, mut max_x, mut min_y, mut max_y) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for polygon in polygons {
            if polygon.is_empty() {
                return Err("polygon without rings".to_owned());
            }
            for ring in polygon {
                if ring.len() < 4 || ring.first() != ring.last() {
                    return Err("short or unclosed ring".to_owned());
                }
                for [x, y] in ring {
                    min_x = min_x.min(*x);
                    max_x = max_x.max(*x);
                    min_y = min_y.min(*y);
                    max_y = max_y.max(*y);
                }
            }
        }
        let inside = if outside_china {
            min_x >= -180.0 && max_x <= 180.0 && min_y >= -90.0 && max_y <= 90.0
        } else {
            CHINA_LON.contains(&min_x)
                && CHINA_LON.contains(&max_x)
                && CHINA_LAT.contains(&min_y)
                && CHINA_LAT.contains(&max_y)
        };
        if inside {
            Ok(())
        } else {
            Err("coordinates outside the accepted extent".to_owned())
        }
    }

    /// Little-endian 2D WKB, as GDAL's `wkb()` writes it.
    fn wkb(&self) -> Vec<u8> {
        let polygons = self.polygons();
        let points: usize = polygons.iter().flatten().map(Vec::len).sum();
        let mut wkb = Vec::with_capacity(9 + polygons.len() * 9 + points * 16);
        let count = |value: usize| u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes();
        let polygon_wkb = |wkb: &mut Vec<u8>, polygon: &Vec<Vec<[f64; 2]>>| {
            wkb.push(1);
            wkb.extend_from_slice(&3u32.to_le_bytes());
            wkb.extend_from_slice(&count(polygon.len()));
            for ring in polygon {
                wkb.extend_from_slice(&count(ring.len()));
                for [x, y] in ring {
                    wkb.extend_from_slice(&x.to_le_bytes());
                    wkb.extend_from_slice(&y.to_le_bytes());
                }
            }
        };
        match self {
            AreaGeometry::Polygon(polygon) => polygon_wkb(&mut wkb, polygon),
            AreaGeometry::MultiPolygon(polygons) => {
                wkb.push(1);
                wkb.extend_from_slice(&6u32.to_le_bytes());
                wkb.extend_from_slice(&count(polygons.len()));
                for polygon in polygons {
                    polygon_wkb(&mut wkb, polygon);
                }
            }
        }
        wkb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_exact_parsing_are_refused() {
        assert!(check_numbers(r#"{"a":120.4854629,"b":"3706810010010010010001"}"#).is_ok());
        assert!(check_numbers(r#"{"a":120.48546291234567}"#).is_err());
        assert!(check_numbers(r#"{"a":1.2e2}"#).is_err());
        assert!(check_numbers(r#"{"a":"x\"1.2e2"}"#).is_ok());
        assert!(check_numbers(r#"{"a":0.00001234567890123456}"#).is_err());
        assert!(check_numbers(r#"{"a":0.000012345678901234}"#).is_ok());
        assert!(check_numbers(r#"{"a":0.00000000000000000000012}"#).is_err());
    }

    #[test]
    fn features_parse_in_file_order_and_refuse_what_gdal_would_format() {
        let line = r#"{"type":"Feature","properties":{"LDBM":"1","HS":66,"CS":null},"geometry":{"type":"Polygon","coordinates":[[[120,37],[120.1,37],[120.1,37.1],[120,37]]]}}"#;
        let feature: Feature = serde_json::from_str(line).unwrap();
        assert_eq!(
            feature.properties,
            vec![
                ("LDBM".to_owned(), Property::Text("1".to_owned())),
                ("HS".to_owned(), Property::Integer(66)),
                ("CS".to_owned(), Property::Null),
            ]
        );
        assert!(feature.geometry.check(false).is_ok());
        let wkb = feature.geometry.wkb();
        let gdal =
            gdal::vector::Geometry::from_wkt("POLYGON ((120 37,120.1 37,120.1 37.1,120 37))")
                .unwrap()
                .wkb()
                .unwrap();
        assert_eq!(wkb, gdal);
        for refused in [
            r#"{"type":"Feature","properties":{"a":1.5},"geometry":null}"#,
            r#"{"type":"Feature","properties":{"a":true},"geometry":{"type":"Polygon","coordinates":[]}}"#,
            r#"{"type":"Feature","id":1,"properties":{},"geometry":{"type":"Polygon","coordinates":[]}}"#,
            r#"{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[120,37,5]]]}}"#,
            r#"{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[120,37]}}"#,
        ] {
            assert!(
                serde_json::from_str::<Feature>(refused).is_err(),
                "{refused}"
            );
        }
        assert!(may_be_a_date("2026-10-05"));
        assert!(may_be_a_date("08:30"));
        assert!(!may_be_a_date("盛世家园1号楼"));
        assert!(!may_be_a_date("3706810010010010010001"));
    }
}
