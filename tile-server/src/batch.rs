//! `POST /api/v1/lookup/batch`: the grid chain of many points, answered in
//! input order as a stream.
//!
//! - `text/csv` (header naming `id`, `lon`, `lat`) answers CSV with the columns
//!   `id,grid_code,grid_name,community_code,street_code,district_code,error`.
//! - `application/x-ndjson` (one `{"id":…,"lon":…,"lat":…}` per line),
//!   `application/json` (an array of such objects) and `application/geo+json`
//!   (a FeatureCollection of points; the id is the feature's `id` or
//!   `properties.id`) answer NDJSON, one object per input row.
//!
//! CSV and NDJSON are read and answered line by line, so a request of
//! millions of points never sits in memory. A JSON document has to be parsed
//! whole, so it is capped at [`MAX_JSON_BYTES`] (413 beyond). A bad row gets
//! its own `error` and never fails the batch; after [`MAX_ROWS`] rows one
//! error row says the rest was not read. The whole batch answers from one
//! snapshot of the index, even if it is rebuilt meanwhile.

use crate::grid_index::{GridChain, LookupIndex};
use crate::lookup::{check_point, parse_crs};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt as _;
use gridmap_crs::LonLatCrs;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Rows one request may carry; enough for a city's yearly events.
pub const MAX_ROWS: u64 = 10_000_000;
/// Size of a JSON or GeoJSON body, which is parsed whole.
pub const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;
/// Length of one CSV or NDJSON line; a longer one is an error row.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Answer bytes gathered before they are sent, so the stream carries a few
/// large chunks instead of one per row.
const FLUSH_BYTES: usize = 64 * 1024;
/// Chunks in flight between the lookup task and the socket; a slow reader
/// thus slows the lookups instead of growing memory.
const CHANNEL_CHUNKS: usize = 4;

const CSV_HEADER: &str = "id,grid_code,grid_name,community_code,street_code,district_code,error\n";

#[derive(Debug, Deserialize)]
pub struct BatchParams {
    /// CRS of every point: 4490 (default), 4326, gcj02 or bd09.
    crs: Option<String>,
}

pub async fn batch(
    State(state): State<AppState>,
    params: Result<Query<BatchParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let crs = parse_crs(params.crs.as_deref())?;
    let format = InputFormat::of(&headers)?;
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let rows = Rows {
        index: state.grid_index.load_full(),
        crs,
        n_rows: 0,
        max_rows: MAX_ROWS,
        done: false,
    };
    let content_type = match format {
        InputFormat::Csv => {
            let output = Output::new(OutputFormat::Csv, sender);
            tokio::spawn(answer_lines(body, CsvRows::new(rows), output));
            "text/csv; charset=utf-8"
        }
        InputFormat::Ndjson => {
            let output = Output::new(OutputFormat::Ndjson, sender);
            tokio::spawn(answer_lines(body, NdjsonRows(rows), output));
            "application/x-ndjson"
        }
        InputFormat::Json => {
            // Read and parse before answering, so a document too large or not
            // JSON at all is a plain client error rather than a stream.
            let values = read_json_rows(body).await?;
            let output = Output::new(OutputFormat::Ndjson, sender);
            tokio::spawn(answer_values(values, rows, output));
            "application/x-ndjson"
        }
    };
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk: Bytes = receiver.recv().await?;
        Some((Ok::<_, Infallible>(chunk), receiver))
    });
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputFormat {
    Csv,
    Ndjson,
    /// A JSON array of rows or a GeoJSON FeatureCollection.
    Json,
}

impl InputFormat {
    fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" | "application/csv" => Ok(Self::Csv),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Self::Ndjson),
            "application/json" | "application/geo+json" => Ok(Self::Json),
            _ => Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {content_type:?} is not read here; send text/csv, \
                 application/x-ndjson, application/json or application/geo+json"
            ))),
        }
    }
}

/// Reads lines of the body as they arrive and answers each in turn.
async fn answer_lines(body: Body, mut reader: impl LineRows, mut output: Output) {
    let mut splitter = LineSplitter::default();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                tracing::warn!(%err, "batch request body failed");
                output.error_row(&RowId::None, &format!("reading the request failed: {err}"));
                break;
            }
        };
        splitter.feed(&chunk, |line| reader.line(line, &mut output));
        if reader.done() || !output.flush_if_full().await {
            break;
        }
    }
    if !reader.done() {
        splitter.finish(|line| reader.line(line, &mut output));
    }
    output.finish().await;
}

/// Answers rows of a parsed JSON document.
async fn answer_values(values: Vec<Value>, mut rows: Rows, mut output: Output) {
    for value in values {
        let (id, point) = json_row(value);
        rows.answer(&id, point, &mut output);
        if rows.done || !output.flush_if_full().await {
            break;
        }
    }
    output.finish().await;
}

/// Reads a JSON array of rows or a GeoJSON FeatureCollection (whose features
/// become rows), refusing bodies beyond [`MAX_JSON_BYTES`].
async fn read_json_rows(body: Body) -> Result<Vec<Value>, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "a JSON batch is limited to {} MB; send larger batches as CSV or NDJSON, \
             which are streamed",
            MAX_JSON_BYTES / (1024 * 1024)
        ))
    };
    let bytes = http_body_util::Limited::new(body, MAX_JSON_BYTES)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::BadRequest(format!("reading the request failed: {err}"))
            }
        })?
        .to_bytes();
    let document: Value = serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::BadRequest(format!("the body is not JSON: {err}")))?;
    match document {
        Value::Array(rows) => Ok(rows),
        Value::Object(mut object)
            if object.get("type").and_then(Value::as_str) == Some("FeatureCollection") =>
        {
            match object.remove("features") {
                Some(Value::Array(features)) => Ok(features),
                _ => Err(ApiError::BadRequest(
                    "a FeatureCollection needs a \"features\" array".to_owned(),
                )),
            }
        }
        _ => Err(ApiError::BadRequest(
            "expected a JSON array of {\"id\", \"lon\", \"lat\"} objects or a GeoJSON \
             FeatureCollection of points"
                .to_owned(),
        )),
    }
}

/// The id a row was given, echoed in its answer.
#[derive(Debug, Clone, PartialEq)]
enum RowId {
    None,
    Text(String),
    Json(Value),
}

/// Counts rows, enforces the cap and writes each row's answer.
struct Rows {
    index: Arc<LookupIndex>,
    crs: LonLatCrs,
    n_rows: u64,
    max_rows: u64,
    done: bool,
}

impl Rows {
    fn answer(&mut self, id: &RowId, point: Result<(f64, f64), String>, output: &mut Output) {
        if self.done {
            return;
        }
        if self.n_rows == self.max_rows {
            self.done = true;
            output.error_row(
                &RowId::None,
                &format!(
                    "the request exceeds {} rows; the rest was not read",
                    self.max_rows
                ),
            );
            return;
        }
        self.n_rows += 1;
        match point {
            Ok((lon, lat)) => {
                let (x, y) = self.crs.to_cgcs2000(lon, lat);
                let chain = self.index.grids.locate(x, y).map(|hit| &hit.payload);
                output.answer_row(id, chain);
            }
            Err(message) => output.error_row(id, &message),
        }
    }
}

/// A line-oriented input format.
trait LineRows {
    fn line(&mut self, line: Result<&[u8], String>, output: &mut Output);
    fn done(&self) -> bool;
}

/// CSV rows after a header that names the columns.
struct CsvRows {
    rows: Rows,
    /// Positions of `id` (optional), `lon` and `lat`, once the header is read.
    columns: Option<(Option<usize>, usize, usize)>,
}

impl CsvRows {
    fn new(rows: Rows) -> Self {
        Self {
            rows,
            columns: None,
        }
    }
}

impl LineRows for CsvRows {
    fn line(&mut self, line: Result<&[u8], String>, output: &mut Output) {
        if self.rows.done {
            return;
        }
        let line = match line {
            Ok(line) => String::from_utf8_lossy(line),
            Err(message) => return self.rows.answer(&RowId::None, Err(message), output),
        };
        let Some((id_column, lon_column, lat_column)) = self.columns else {
            let header = split_csv(line.trim_start_matches('\u{feff}'));
            let position = |names: &[&str]| {
                header
                    .iter()
                    .position(|field| names.contains(&field.trim().to_ascii_lowercase().as_str()))
            };
            let lon = position(&["lon", "lng", "longitude"]);
            let lat = position(&["lat", "latitude"]);
            if let (Some(lon), Some(lat)) = (lon, lat) {
                self.columns = Some((position(&["id"]), lon, lat));
            } else {
                // Without coordinates no row can be answered: one error row.
                self.rows.done = true;
                output.error_row(
                    &RowId::None,
                    &format!("the CSV header must name the columns id, lon and lat; got {line:?}"),
                );
            }
            return;
        };
        let fields = split_csv(&line);
        let id = id_column
            .and_then(|column| fields.get(column))
            .map_or(RowId::None, |id| RowId::Text(id.clone()));
        let coordinate = |name: &str, column: usize| match fields.get(column) {
            None => Err(format!("missing column {name}")),
            Some(text) => text_coordinate(name, text),
        };
        let point = coordinate("lon", lon_column)
            .and_then(|lon| Ok((lon, coordinate("lat", lat_column)?)))
            .and_then(|(lon, lat)| check_point(lon, lat));
        self.rows.answer(&id, point, output);
    }

    fn done(&self) -> bool {
        self.rows.done
    }
}

/// NDJSON rows: one JSON object per line.
struct NdjsonRows(Rows);

impl LineRows for NdjsonRows {
    fn line(&mut self, line: Result<&[u8], String>, output: &mut Output) {
        let (id, point) = match line {
            Ok(line) => match serde_json::from_slice::<Value>(line) {
                Ok(value) => json_row(value),
                Err(err) => (RowId::None, Err(format!("the line is not JSON: {err}"))),
            },
            Err(message) => (RowId::None, Err(message)),
        };
        self.0.answer(&id, point, output);
    }

    fn done(&self) -> bool {
        self.0.done
    }
}

/// The id and point of a row object or a GeoJSON point feature.
fn json_row(value: Value) -> (RowId, Result<(f64, f64), String>) {
    let Value::Object(mut object) = value else {
        return (RowId::None, Err("a row must be a JSON object".to_owned()));
    };
    if object.get("type").and_then(Value::as_str) == Some("Feature") {
        let id = object
            .remove("id")
            .or_else(|| object.get_mut("properties")?.get_mut("id").map(Value::take))
            .map_or(RowId::None, RowId::Json);
        let point = match object.get("geometry") {
            Some(geometry) if geometry.get("type").and_then(Value::as_str) == Some("Point") => {
                let coordinates = &geometry["coordinates"];
                json_coordinate("lon", coordinates.get(0))
                    .and_then(|lon| Ok((lon, json_coordinate("lat", coordinates.get(1))?)))
                    .and_then(|(lon, lat)| check_point(lon, lat))
            }
            _ => Err("the feature's geometry must be a Point".to_owned()),
        };
        return (id, point);
    }
    let id = object.remove("id").map_or(RowId::None, RowId::Json);
    let point = json_coordinate("lon", object.get("lon"))
        .and_then(|lon| Ok((lon, json_coordinate("lat", object.get("lat"))?)))
        .and_then(|(lon, lat)| check_point(lon, lat));
    (id, point)
}

/// A coordinate given as a JSON number or as text.
fn json_coordinate(name: &str, value: Option<&Value>) -> Result<f64, String> {
    match value {
        None | Some(Value::Null) => Err(format!("missing {name}")),
        Some(Value::Number(number)) => number
            .as_f64()
            .ok_or_else(|| format!("{name} must be a finite number, got {number}")),
        Some(Value::String(text)) => text_coordinate(name, text),
        Some(other) => Err(format!("{name} must be a finite number, got {other}")),
    }
}

fn text_coordinate(name: &str, text: &str) -> Result<f64, String> {
    if text.trim().is_empty() {
        return Err(format!("missing {name}"));
    }
    crate::lookup::parse_number(name, Some(text))
}

/// Splits one CSV line into fields, honouring double quotes (a quoted field
/// may hold commas and doubled quotes, though not line breaks).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Cuts a byte stream into lines, dropping `\r` before `\n` and blank lines,
/// and reporting a line longer than [`MAX_LINE_BYTES`] once instead of
/// buffering it.
#[derive(Default)]
struct LineSplitter {
    pending: Vec<u8>,
    /// Inside an overlong line that was already reported.
    skipping: bool,
}

impl LineSplitter {
    fn feed(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(Result<&[u8], String>)) {
        while let Some(end) = chunk.iter().position(|&byte| byte == b'\n') {
            if self.skipping {
                self.skipping = false;
            } else if self.pending.is_empty() {
                emit(&chunk[..end], &mut on_line);
            } else {
                self.pending.extend_from_slice(&chunk[..end]);
                emit(&self.pending, &mut on_line);
                self.pending.clear();
            }
            chunk = &chunk[end + 1..];
        }
        if self.skipping {
            return;
        }
        self.pending.extend_from_slice(chunk);
        if self.pending.len() > MAX_LINE_BYTES {
            self.pending = Vec::new();
            self.skipping = true;
            on_line(Err(format!(
                "the line is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
    }

    /// Emits a last line that lacks its newline.
    fn finish(&mut self, mut on_line: impl FnMut(Result<&[u8], String>)) {
        if !self.skipping {
            emit(&self.pending, &mut on_line);
        }
        self.pending.clear();
    }
}

fn emit(line: &[u8], on_line: &mut impl FnMut(Result<&[u8], String>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(u8::is_ascii_whitespace) {
        on_line(Ok(line));
    }
}

#[derive(Debug, Clone, Copy)]
enum OutputFormat {
    Csv,
    Ndjson,
}

/// The answer being written: rows gathered into chunks and sent through a
/// bounded channel to the response body.
struct Output {
    format: OutputFormat,
    buffer: Vec<u8>,
    sender: mpsc::Sender<Bytes>,
}

/// One NDJSON answer line; every key is always present except `error`.
#[derive(Serialize)]
struct NdjsonAnswer<'a> {
    id: &'a Value,
    grid_code: Option<&'a str>,
    grid_name: Option<&'a str>,
    community_code: Option<&'a str>,
    street_code: Option<&'a str>,
    district_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl Output {
    fn new(format: OutputFormat, sender: mpsc::Sender<Bytes>) -> Self {
        let mut buffer = Vec::with_capacity(FLUSH_BYTES * 2);
        if matches!(format, OutputFormat::Csv) {
            buffer.extend_from_slice(CSV_HEADER.as_bytes());
        }
        Self {
            format,
            buffer,
            sender,
        }
    }

    fn answer_row(&mut self, id: &RowId, chain: Option<&GridChain>) {
        self.write_row(id, chain, None);
    }

    fn error_row(&mut self, id: &RowId, message: &str) {
        self.write_row(id, None, Some(message));
    }

    fn write_row(&mut self, id: &RowId, chain: Option<&GridChain>, error: Option<&str>) {
        let codes = [
            chain.map(|chain| &*chain.grid.code),
            chain.map(|chain| &*chain.grid.name),
            chain.map(|chain| &*chain.community.code),
            chain.map(|chain| &*chain.street.code),
            chain.map(|chain| &*chain.district.code),
        ];
        match self.format {
            OutputFormat::Csv => {
                let id = match id {
                    RowId::None => String::new(),
                    RowId::Text(text) => text.clone(),
                    RowId::Json(Value::String(text)) => text.clone(),
                    RowId::Json(value) => value.to_string(),
                };
                push_csv_field(&mut self.buffer, &id);
                for field in codes.into_iter().chain([error]) {
                    self.buffer.push(b',');
                    push_csv_field(&mut self.buffer, field.unwrap_or_default());
                }
                self.buffer.push(b'\n');
            }
            OutputFormat::Ndjson => {
                let id = match id {
                    RowId::None => Value::Null,
                    RowId::Text(text) => Value::String(text.clone()),
                    RowId::Json(value) => value.clone(),
                };
                let [grid_code, grid_name, community_code, street_code, district_code] = codes;
                let line = NdjsonAnswer {
                    id: &id,
                    grid_code,
                    grid_name,
                    community_code,
                    street_code,
                    district_code,
                    error,
                };
                // Writing plain strings and numbers into a Vec cannot fail.
                if let Err(err) = serde_json::to_writer(&mut self.buffer, &line) {
                    tracing::error!(%err, "encoding a batch answer row");
                }
                self.buffer.push(b'\n');
            }
        }
    }

    /// Sends the gathered rows once they fill a chunk; false when the client
    /// has gone and the work can stop.
    async fn flush_if_full(&mut self) -> bool {
        if self.buffer.len() < FLUSH_BYTES {
            return true;
        }
        self.flush().await
    }

    async fn flush(&mut self) -> bool {
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(FLUSH_BYTES * 2),
        ));
        self.sender.send(chunk).await.is_ok()
    }

    async fn finish(mut self) {
        if !self.buffer.is_empty() {
            self.flush().await;
        }
    }
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn push_csv_field(buffer: &mut Vec<u8>, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        buffer.push(b'"');
        buffer.extend_from_slice(field.replace('"', "\"\"").as_bytes());
        buffer.push(b'"');
    } else {
        buffer.extend_from_slice(field.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<Result<String, String>> {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |line| {
                out.push(line.map(|l| String::from_utf8_lossy(l).into_owned()));
            });
        }
        splitter.finish(|line| out.push(line.map(|l| String::from_utf8_lossy(l).into_owned())));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            lines(&[b"id,lon", b",lat\r\n1,2", b",3\n\n  \n4,5,6"]),
            vec![
                Ok("id,lon,lat".to_owned()),
                Ok("1,2,3".to_owned()),
                Ok("4,5,6".to_owned())
            ]
        );
    }

    #[test]
    fn reports_an_overlong_line_once_and_goes_on() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let got = lines(&[&long, &long, b"x\nnext\n"]);
        assert_eq!(got.len(), 2);
        assert!(got[0].as_ref().is_err_and(|e| e.contains("longer than")));
        assert_eq!(got[1], Ok("next".to_owned()));
    }

    #[test]
    fn splits_quoted_csv_fields() {
        assert_eq!(split_csv("a,\"b,c\",\"d\"\"e\","), ["a", "b,c", "d\"e", ""]);
        let mut buffer = Vec::new();
        push_csv_field(&mut buffer, "say \"hi\", then");
        assert_eq!(buffer, b"\"say \"\"hi\"\", then\"");
    }

    #[test]
    fn bad_rows_get_errors_and_the_cap_ends_the_batch() {
        let (sender, _receiver) = mpsc::channel(1);
        let mut output = Output::new(OutputFormat::Csv, sender);
        let mut reader = CsvRows::new(Rows {
            index: Arc::new(LookupIndex::empty()),
            crs: LonLatCrs::Cgcs2000,
            n_rows: 0,
            max_rows: 3,
            done: false,
        });
        let mut splitter = LineSplitter::default();
        splitter.feed(
            b"lat,id,lon\n37.6,a,120.5\n37.6,\"b,1\",abc\n95,c,120\n1,d\n37.6,e,120.5\n",
            |line| reader.line(line, &mut output),
        );
        assert!(reader.done());
        assert_eq!(
            String::from_utf8_lossy(&output.buffer),
            format!(
                "{CSV_HEADER}a,,,,,,\n\
                 \"b,1\",,,,,,\"lon must be a finite number, got \"\"abc\"\"\"\n\
                 c,,,,,,\"lat must be within [-90, 90], got 95\"\n\
                 ,,,,,,the request exceeds 3 rows; the rest was not read\n"
            )
        );
    }

    #[test]
    fn reads_rows_and_features() {
        let check = |value: Value, expected: (RowId, Result<(f64, f64), String>)| {
            assert_eq!(json_row(value.clone()), expected, "{value}");
        };
        check(
            serde_json::json!({"id": 7, "lon": 120.5, "lat": "37.6"}),
            (RowId::Json(7.into()), Ok((120.5, 37.6))),
        );
        check(
            serde_json::json!({"id": "a", "lon": "x", "lat": 37.6}),
            (
                RowId::Json("a".into()),
                Err("lon must be a finite number, got \"x\"".to_owned()),
            ),
        );
        check(
            serde_json::json!({"lat": 37.6}),
            (RowId::None, Err("missing lon".to_owned())),
        );
        check(
            serde_json::json!({"type": "Feature", "properties": {"id": "p"},
                               "geometry": {"type": "Point", "coordinates": [120.5, 37.6]}}),
            (RowId::Json("p".into()), Ok((120.5, 37.6))),
        );
        check(
            serde_json::json!({"type": "Feature", "id": 3, "geometry": null}),
            (
                RowId::Json(3.into()),
                Err("the feature's geometry must be a Point".to_owned()),
            ),
        );
    }
}
