//! A native reader for plain GeoPackage area layers: rusqlite reads the
//! feature table and the geometry blobs (a small GeoPackage header, then
//! WKB) directly, without GDAL's per-feature objects.
//!
//! Like `geojson.rs` it takes only files it reads exactly as GDAL would and
//! leaves the rest to GDAL before anything was sent. "Plain" means one layer
//! (one row in `gpkg_contents`, a `features` table) in EPSG:4490 with 2D
//! Polygon or MultiPolygon geometries, columns declared `TEXT` (no NUL in
//! any value, every value text or null) or `INTEGER` (every value an integer
//! or null) besides the `fid` and the geometry, every blob a standard,
//! non-empty GeoPackage geometry whose WKB passes the checks of the GDAL path,
//! and no `--crs`. A first pass (SQL for the values, a scan of the blobs)
//! confirms it; the second sends the features in `fid` order, GDAL's order.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::fields::LayerSpec;
use crate::problem::ImportError;
use crate::read::{NativeStart, RawFeature, ReadMessage, CHINA_LAT, CHINA_LON};
use crate::{ImportOptions, Source};

/// Environment variable that turns the native reader off (`0`).
pub(crate) const NATIVE_SWITCH: &str = "GRIDMAP_IMPORT_NATIVE_GPKG";

/// The layer of a plain file: its table, columns and geometry column.
struct Plain {
    table: String,
    fid: String,
    geometry: String,
    /// Field names in table order (GDAL's), and whether each is an integer.
    fields: Vec<(String, bool)>,
}

/// Reads `source` natively when it is a plain GeoPackage of an area layer:
/// `Ok(None)` (nothing sent) when it is not and GDAL must read it.
///
/// # Errors
/// [`ImportError::Io`] when SQLite fails after the file was found plain.
pub(crate) fn read_plain(
    source: &Source,
    options: &ImportOptions,
    sender: &tokio::sync::mpsc::Sender<ReadMessage>,
) -> Result<Option<u64>, ImportError> {
    let spec = LayerSpec::of(source.entity);
    let is_gpkg = source
        .path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gpkg"));
    if !crate::read::native_reader_may_read(source, options, NATIVE_SWITCH) || !is_gpkg {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let file_name = source.file_name();
    let Ok(connection) = Connection::open_with_flags(
        &source.path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return Ok(None);
    };
    let plain = match find_plain(&connection, &source.path, options.outside_china) {
        Ok(plain) => plain,
        Err(reason) => {
            tracing::debug!(file = %file_name, %reason, "read through GDAL");
            return Ok(None);
        }
    };
    let names: Vec<String> = plain.fields.iter().map(|(name, _)| name.clone()).collect();
    let sqlite_error = |err: rusqlite::Error| ImportError::Io {
        path: source.path.clone(),
        source: std::io::Error::other(err),
    };
    let features: i64 = connection
        .query_row(
            &format!("SELECT count(*) FROM {}", quote(&plain.table)),
            [],
            |row| row.get(0),
        )
        .map_err(sqlite_error)?;
    let (field_index, crs) = match crate::read::start_native_layer(
        source,
        spec,
        options,
        (&names, features.unsigned_abs()),
        4490,
        sender,
    )? {
        NativeStart::Gdal => return Ok(None),
        NativeStart::Stopped => return Ok(Some(0)),
        NativeStart::Read { field_index, crs } => (field_index, crs),
    };
    // Only the columns that feed a column are selected.
    let used: Vec<usize> = field_index.iter().flatten().copied().collect();
    let mut select = format!("SELECT {}", quote(&plain.geometry));
    for index in &used {
        select.push_str(", ");
        select.push_str(&quote(&plain.fields[*index].0));
    }
    select.push_str(&format!(
        " FROM {} ORDER BY {}",
        quote(&plain.table),
        quote(&plain.fid)
    ));
    let mut statement = connection.prepare(&select).map_err(sqlite_error)?;
    let mut rows = statement.query([]).map_err(sqlite_error)?;
    let mut batch = crate::read::BatchSender::new(sender, options);
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(sqlite_error)? {
        count += 1;
        let blob: Vec<u8> = row.get(0).map_err(sqlite_error)?;
        let wkb = geometry_wkb(&blob)
            .and_then(|wkb| little_endian(wkb).map(|(wkb, _)| wkb))
            .map_err(|reason| crate::read::changed_while_read(source, reason))?;
        let mut values = Vec::with_capacity(field_index.len());
        for index in &field_index {
            let value = match index {
                Some(index) => {
                    let position = 1 + used.iter().position(|used| used == index).unwrap_or(0);
                    let text: Option<String> = if plain.fields[*index].1 {
                        row.get::<_, Option<i64>>(position)
                            .map_err(sqlite_error)?
                            .map(|number| number.to_string())
                    } else {
                        row.get::<_, Option<String>>(position)
                            .map_err(sqlite_error)?
                    };
                    text.map(|text| text.trim().to_owned())
                        .filter(|text| !text.is_empty())
                }
                None => None,
            };
            values.push(value);
        }
        if !batch.push(RawFeature {
            number: count,
            values,
            wkb: Some(wkb),
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
        "read (native GeoPackage)"
    );
    Ok(Some(count))
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The first pass: the layer when the file is plain, else why not.
fn find_plain(connection: &Connection, path: &Path, outside_china: bool) -> Result<Plain, String> {
    let sql_error = |err: rusqlite::Error| format!("{}: {err}", path.display());
    let contents: Vec<(String, String)> = connection
        .prepare("SELECT table_name, data_type FROM gpkg_contents")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(sql_error)?;
    let [(table, data_type)] = contents.as_slice() else {
        return Err(format!("{} layers", contents.len()));
    };
    if data_type != "features" {
        return Err(format!("a {data_type} table"));
    }
    let (geometry, type_name, srs_id, z, m): (String, String, i64, i64, i64) = connection
        .query_row(
            "SELECT column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns \
             WHERE table_name = ?1",
            [table],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )
        .map_err(sql_error)?;
    if !matches!(type_name.as_str(), "POLYGON" | "MULTIPOLYGON" | "GEOMETRY") || z != 0 || m != 0 {
        return Err(format!("geometry type {type_name}, z {z}, m {m}"));
    }
    let (organization, code): (String, i64) = connection
        .query_row(
            "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys \
             WHERE srs_id = ?1",
            [srs_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(sql_error)?;
    if !organization.eq_ignore_ascii_case("EPSG") || code != 4490 {
        return Err(format!("CRS {organization}:{code}"));
    }
    // Extensions (a column's own schema, constraints, related tables) can
    // change how GDAL reads a field.
    let extensions: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'gpkg_data_columns'",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    if extensions > 0 {
        return Err("gpkg_data_columns present".to_owned());
    }
    let columns: Vec<(String, String, bool)> = connection
        .prepare(&format!(
            "SELECT name, type, pk FROM pragma_table_info({})",
            sql_text(table)
        ))
        .and_then(|mut statement| {
            statement
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? > 0))
                })?
                .collect()
        })
        .map_err(sql_error)?;
    let mut fid = None;
    let mut fields = Vec::new();
    for (name, declared, primary) in columns {
        if primary {
            if declared.eq_ignore_ascii_case("INTEGER") && fid.is_none() {
                fid = Some(name);
                continue;
            }
            return Err(format!("primary key {name} {declared}"));
        }
        if name == geometry {
            continue;
        }
        let upper = declared.to_ascii_uppercase();
        let integer = match upper.as_str() {
            "INTEGER" | "MEDIUMINT" => true,
            text if text == "TEXT" || (text.starts_with("TEXT(") && text.ends_with(')')) => false,
            _ => return Err(format!("column {name} of type {declared}")),
        };
        let wanted = if integer { "'integer'" } else { "'text'" };
        let nul = if integer {
            String::new()
        } else {
            format!(" OR instr({}, char(0)) > 0", quote(&name))
        };
        let odd: i64 = connection
            .query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE typeof({col}) NOT IN ({wanted}, 'null'){nul}",
                    quote(table),
                    col = quote(&name)
                ),
                [],
                |row| row.get(0),
            )
            .map_err(sql_error)?;
        if odd > 0 {
            return Err(format!("column {name}: {odd} values of another type"));
        }
        fields.push((name, integer));
    }
    let Some(fid) = fid else {
        return Err("no integer primary key".to_owned());
    };
    let mut lowercase: Vec<String> = Vec::new();
    for (name, _) in &fields {
        let lower = name.to_lowercase();
        if lowercase.contains(&lower) {
            return Err(format!("{name}: two fields differ only by case"));
        }
        lowercase.push(lower);
    }
    let mut statement = connection
        .prepare(&format!(
            "SELECT {} FROM {}",
            quote(&geometry),
            quote(table)
        ))
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let blob: Option<Vec<u8>> = row.get(0).map_err(sql_error)?;
        let blob = blob.ok_or("a feature without geometry")?;
        let wkb = geometry_wkb(&blob)?;
        let (_, extent) = little_endian(wkb)?;
        check_extent(extent, outside_china)?;
    }
    Ok(Plain {
        table: table.clone(),
        fid,
        geometry,
        fields,
    })
}

fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The WKB of a standard GeoPackage geometry blob (`GP`, version 0, not
/// empty, no extended type), after its header and envelope.
fn geometry_wkb(blob: &[u8]) -> Result<&[u8], String> {
    let [b'G', b'P', 0, flags, ..] = blob else {
        return Err("not a GeoPackage geometry".to_owned());
    };
    if flags & 0b0011_0000 != 0 {
        return Err("an empty or extended geometry".to_owned());
    }
    let envelope = match (flags >> 1) & 0b111 {
        0 => 0,
        1 => 32,
        2 | 3 => 48,
        4 => 64,
        other => return Err(format!("envelope indicator {other}")),
    };
    blob.get(8 + envelope..)
        .ok_or_else(|| "a truncated geometry".to_owned())
}

/// A 2D Polygon or MultiPolygon as little-endian WKB (what GDAL's `wkb()`
/// writes), with its extent, after the checks of the GDAL path: not empty,
/// rings closed with at least 4 points.
fn little_endian(wkb: &[u8]) -> Result<(Vec<u8>, [f64; 4]), String> {
    let mut reader = WkbReader { wkb, position: 0 };
    let mut out = Vec::with_capacity(wkb.len());
    let mut extent = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let little = reader.byte_order()?;
    let kind = reader.u32(little)?;
    out.push(1);
    out.extend_from_slice(&kind.to_le_bytes());
    match kind {
        3 => reader.polygon(little, &mut out, &mut extent)?,
        6 => {
            let parts = reader.u32(little)?;
            if parts == 0 {
                return Err("an empty MultiPolygon".to_owned());
            }
            out.extend_from_slice(&parts.to_le_bytes());
            for _ in 0..parts {
                let little = reader.byte_order()?;
                if reader.u32(little)? != 3 {
                    return Err("a MultiPolygon part that is no 2D Polygon".to_owned());
                }
                out.push(1);
                out.extend_from_slice(&3u32.to_le_bytes());
                reader.polygon(little, &mut out, &mut extent)?;
            }
        }
        other => return Err(format!("WKB type {other}")),
    }
    if reader.position != wkb.len() {
        return Err("bytes after the geometry".to_owned());
    }
    Ok((out, extent))
}

struct WkbReader<'a> {
    wkb: &'a [u8],
    position: usize,
}

impl WkbReader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self
            .wkb
            .get(self.position..self.position + N)
            .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
            .ok_or("truncated WKB")?;
        self.position += N;
        Ok(bytes)
    }

    fn byte_order(&mut self) -> Result<bool, String> {
        match self.take::<1>()? {
            [1] => Ok(true),
            [0] => Ok(false),
            _ => Err("no WKB byte order mark".to_owned()),
        }
    }

    fn u32(&mut self, little: bool) -> Result<u32, String> {
        let bytes = self.take::<4>()?;
        Ok(if little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }

    fn f64(&mut self, little: bool) -> Result<f64, String> {
        let bytes = self.take::<8>()?;
        Ok(if little {
            f64::from_le_bytes(bytes)
        } else {
            f64::from_be_bytes(bytes)
        })
    }

    fn polygon(
        &mut self,
        little: bool,
        out: &mut Vec<u8>,
        extent: &mut [f64; 4],
    ) -> Result<(), String> {
        let rings = self.u32(little)?;
        if rings == 0 {
            return Err("a polygon without rings".to_owned());
        }
        out.extend_from_slice(&rings.to_le_bytes());
        for _ in 0..rings {
            let points = self.u32(little)?;
            if points < 4 {
                return Err("a ring of fewer than 4 points".to_owned());
            }
            out.extend_from_slice(&points.to_le_bytes());
            let mut first = (0.0, 0.0);
            let mut last = (0.0, 0.0);
            for index in 0..points {
                let (x, y) = (self.f64(little)?, self.f64(little)?);
                if !x.is_finite() || !y.is_finite() {
                    return Err("a coordinate that is no number".to_owned());
                }
                if index == 0 {
                    first = (x, y);
                }
                last = (x, y);
                extent[0] = extent[0].min(x);
                extent[1] = extent[1].max(x);
                extent[2] = extent[2].min(y);
                extent[3] = extent[3].max(y);
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
            if first != last {
                return Err("an unclosed ring".to_owned());
            }
        }
        Ok(())
    }
}

fn check_extent([min_x, max_x, min_y, max_y]: [f64; 4], outside_china: bool) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_wkb_comes_out_as_gdal_writes_it() {
        let geometry = gdal::vector::Geometry::from_wkt(
            "MULTIPOLYGON (((120 37,120.1 37,120.1 37.1,120 37)),((121 37,121.1 37,121.1 37.1,121 37)))",
        )
        .unwrap();
        let gdal_wkb = geometry.wkb().unwrap();
        // The same geometry big-endian, as another writer may store it.
        let mut big = vec![0u8];
        big.extend_from_slice(&6u32.to_be_bytes());
        big.extend_from_slice(&2u32.to_be_bytes());
        for west in [120.0f64, 121.0] {
            big.push(0);
            big.extend_from_slice(&3u32.to_be_bytes());
            big.extend_from_slice(&1u32.to_be_bytes());
            big.extend_from_slice(&4u32.to_be_bytes());
            for (x, y) in [
                (west, 37.0_f64),
                (west + 0.1, 37.0),
                (west + 0.1, 37.1),
                (west, 37.0),
            ] {
                big.extend_from_slice(&x.to_be_bytes());
                big.extend_from_slice(&y.to_be_bytes());
            }
        }
        let (little, extent) = little_endian(&big).unwrap();
        assert_eq!(little, gdal_wkb);
        assert_eq!(extent, [120.0, 121.1, 37.0, 37.1]);
        assert_eq!(little_endian(&gdal_wkb).unwrap().0, gdal_wkb);
        let mut blob = b"GP\0\x03".to_vec();
        blob.extend_from_slice(&4490i32.to_le_bytes());
        blob.extend_from_slice(&[0u8; 32]);
        blob.extend_from_slice(&gdal_wkb);
        assert_eq!(geometry_wkb(&blob).unwrap(), gdal_wkb.as_slice());
        let unclosed =
            gdal::vector::Geometry::from_wkt("POLYGON ((120 37,120.1 37,120.1 37.1,120 37.1))")
                .unwrap()
                .wkb()
                .unwrap();
        assert!(little_endian(&unclosed).is_err());
    }
}
