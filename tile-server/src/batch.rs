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
use crate::{ApiError, SharedState};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt as _;
use gridmap_crs::LonLatCrs;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
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
    State(state): State<SharedState>,
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
            let body = started(body).await;
            tokio::spawn(answer_lines(body, CsvRows::new(rows), output));
            "text/csv; charset=utf-8"
        }
        InputFormat::Ndjson => {
            let output = Output::new(OutputFormat::Ndjson, sender);
            let body = started(body).await;
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

/// The chunks of `body`, the first one read before the answer starts.
///
/// A client that sends `Expect: 100-continue` (curl does for bodies over a
/// megabyte) holds the body back until the server says `100 Continue`,
/// which hyper says when the body is first read, and only while no answer
/// has begun. The answer streams as the rows are read, so without this its
/// head went out first and such a client waited out its own timeout, a
/// second for curl, before sending a single row.
async fn started(body: Body) -> impl futures_util::Stream<Item = Result<Bytes, axum::Error>> {
    let mut chunks = body.into_data_stream();
    let first = chunks.next().await;
    futures_util::stream::iter(first).chain(chunks)
}

/// Reads lines of the body as they arrive and answers them in order, on
/// both cores: lines are copied into batches of [`BATCH_LINES`], each batch
/// is answered on the blocking pool while the next is read, and answers are
/// sent in input order. The row cap is applied as answers come back: the
/// batch that crosses it is answered again here, row by row, so the answer
/// ends exactly as a row-by-row reading would end it.
async fn answer_lines<R: LineRows>(
    mut stream: impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
    mut reader: R,
    mut output: Output,
) {
    let mut splitter = LineSplitter::default();
    let mut batch = LineBatch::default();
    let mut in_flight = FuturesOrdered::new();
    let mut failed_read = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                tracing::warn!(%err, "batch request body failed");
                failed_read = Some(format!("reading the request failed: {err}"));
                break;
            }
        };
        splitter.feed(&chunk, |line| {
            // Lines before the rows stand alone (a CSV header) are read here.
            if reader.ready() {
                batch.push(line);
            } else {
                reader.line(line, &mut output);
            }
        });
        if batch.lines.len() >= BATCH_LINES {
            in_flight.push_back(answer_batch(&reader, std::mem::take(&mut batch)));
        }
        while in_flight.len() >= BATCHES_IN_FLIGHT {
            let Some(answer) = in_flight.next().await else {
                break;
            };
            if !output.add_batch(answer, &mut reader).await {
                return;
            }
        }
        if reader.done() || !output.flush_if_full().await {
            break;
        }
    }
    if failed_read.is_none() && !reader.done() {
        splitter.finish(|line| {
            if reader.ready() {
                batch.push(line);
            } else {
                reader.line(line, &mut output);
            }
        });
    }
    if !batch.lines.is_empty() && !reader.done() {
        in_flight.push_back(answer_batch(&reader, batch));
    }
    while let Some(answer) = in_flight.next().await {
        if !output.add_batch(answer, &mut reader).await {
            return;
        }
    }
    if let Some(message) = failed_read {
        if !reader.done() {
            output.error_row(&RowId::None, &message);
            // A last line without its newline is still answered.
            splitter.finish(|line| reader.line(line, &mut output));
        }
    }
    output.finish().await;
}

/// Lines handed to a worker per batch (a few hundred kilobytes).
const BATCH_LINES: usize = 8192;
/// Batches answered at once; the reader fills the next meanwhile.
const BATCHES_IN_FLIGHT: usize = 3;

/// Whole lines copied out of the body, each as its range in `text`, or the
/// error the splitter reported in its place.
#[derive(Default)]
struct LineBatch {
    text: Vec<u8>,
    lines: Vec<Result<std::ops::Range<usize>, String>>,
}

impl LineBatch {
    fn push(&mut self, line: Result<&[u8], String>) {
        let line = line.map(|line| {
            let start = self.text.len();
            self.text.extend_from_slice(line);
            start..self.text.len()
        });
        self.lines.push(line);
    }

    /// Answers the lines in order with `reader` until it is done.
    fn answer(&self, reader: &mut impl LineRows, output: &mut Output) {
        for line in &self.lines {
            if reader.done() {
                break;
            }
            let line = match line {
                Ok(range) => Ok(&self.text[range.clone()]),
                Err(message) => Err(message.clone()),
            };
            reader.line(line, output);
        }
    }
}

/// A worker's answer to one batch: the answer lines and how many rows they
/// answer (the cap is not applied); the batch is kept in case it crosses it.
struct BatchAnswer {
    batch: LineBatch,
    answers: Vec<u8>,
    n_rows: u64,
}

/// Answers a batch on the blocking pool with a copy of `reader`.
fn answer_batch<R: LineRows>(reader: &R, batch: LineBatch) -> tokio::task::JoinHandle<BatchAnswer> {
    let mut worker = reader.fork();
    let format = reader.format();
    tokio::task::spawn_blocking(move || {
        let mut output = Output::detached(format);
        batch.answer(&mut worker, &mut output);
        BatchAnswer {
            batch,
            answers: output.buffer,
            n_rows: worker.rows().n_rows,
        }
    })
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
enum RowId<'a> {
    None,
    /// A CSV field, borrowed from the line where it needed no unquoting.
    Text(Cow<'a, str>),
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
    /// The same snapshot and CRS with a fresh count and no cap.
    fn fork(&self) -> Self {
        Self {
            index: Arc::clone(&self.index),
            crs: self.crs,
            n_rows: 0,
            max_rows: u64::MAX,
            done: false,
        }
    }

    fn answer(&mut self, id: &RowId<'_>, point: Result<(f64, f64), String>, output: &mut Output) {
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
trait LineRows: Send + 'static {
    fn line(&mut self, line: Result<&[u8], String>, output: &mut Output);
    fn done(&self) -> bool;
    /// Whether each further line is a row on its own, so a [`Self::fork`]
    /// can answer it anywhere (after a CSV header).
    fn ready(&self) -> bool;
    /// A reader of the same rows for a worker: same columns, CRS and
    /// snapshot, counting its own rows, without the cap.
    fn fork(&self) -> Self;
    fn rows(&self) -> &Rows;
    fn rows_mut(&mut self) -> &mut Rows;
    fn format(&self) -> OutputFormat;
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
        if !line.contains('"') {
            // No quotes, the common case: fields are borrowed from the line.
            let mut id = RowId::None;
            let (mut lon, mut lat) = (None, None);
            for (column, field) in line.split(',').enumerate() {
                if Some(column) == id_column {
                    id = RowId::Text(Cow::Borrowed(field));
                }
                if column == lon_column {
                    lon = Some(field);
                }
                if column == lat_column {
                    lat = Some(field);
                }
            }
            let point = csv_point(lon, lat);
            self.rows.answer(&id, point, output);
            return;
        }
        let fields = split_csv(&line);
        let id = id_column
            .and_then(|column| fields.get(column))
            .map_or(RowId::None, |id| RowId::Text(Cow::Borrowed(id)));
        let point = csv_point(
            fields.get(lon_column).map(String::as_str),
            fields.get(lat_column).map(String::as_str),
        );
        self.rows.answer(&id, point, output);
    }

    fn done(&self) -> bool {
        self.rows.done
    }

    fn ready(&self) -> bool {
        self.columns.is_some() && !self.rows.done
    }

    fn fork(&self) -> Self {
        Self {
            rows: self.rows.fork(),
            columns: self.columns,
        }
    }

    fn rows(&self) -> &Rows {
        &self.rows
    }

    fn rows_mut(&mut self) -> &mut Rows {
        &mut self.rows
    }

    fn format(&self) -> OutputFormat {
        OutputFormat::Csv
    }
}

/// The point of a CSV row from its lon and lat fields, if present.
fn csv_point(lon: Option<&str>, lat: Option<&str>) -> Result<(f64, f64), String> {
    let coordinate = |name: &str, field: Option<&str>| match field {
        None => Err(format!("missing column {name}")),
        Some(text) => text_coordinate(name, text),
    };
    coordinate("lon", lon)
        .and_then(|lon| Ok((lon, coordinate("lat", lat)?)))
        .and_then(|(lon, lat)| check_point(lon, lat))
}

/// NDJSON rows: one JSON object per line.
struct NdjsonRows(Rows);

impl LineRows for NdjsonRows {
    fn line(&mut self, line: Result<&[u8], String>, output: &mut Output) {
        let (id, point) = match line {
            Ok(line) => match plain_row(line) {
                // A plain row object, the common case, read without a map.
                Some(row) => row.into_row(),
                _ => match serde_json::from_slice::<Value>(line) {
                    Ok(value) => json_row(value),
                    Err(err) => (RowId::None, Err(format!("the line is not JSON: {err}"))),
                },
            },
            Err(message) => (RowId::None, Err(message)),
        };
        self.0.answer(&id, point, output);
    }

    fn done(&self) -> bool {
        self.0.done
    }

    fn ready(&self) -> bool {
        !self.0.done
    }

    fn fork(&self) -> Self {
        Self(self.0.fork())
    }

    fn rows(&self) -> &Rows {
        &self.0
    }

    fn rows_mut(&mut self) -> &mut Rows {
        &mut self.0
    }

    fn format(&self) -> OutputFormat {
        OutputFormat::Ndjson
    }
}

/// A row object read field by field. Anything else (a feature, a duplicate
/// key, not an object) fails or has a `type` and goes through [`json_row`],
/// which answers exactly as it would have for this row.
#[derive(Deserialize)]
struct PlainRow {
    id: Option<Value>,
    lon: Option<Value>,
    lat: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<serde::de::IgnoredAny>,
}

/// The line as a [`PlainRow`], if it is one: an object (serde would also
/// read an array into the struct) without a `type`.
fn plain_row(line: &[u8]) -> Option<PlainRow> {
    let first = line.iter().find(|byte| !byte.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice::<PlainRow>(line)
        .ok()
        .filter(|row| row.kind.is_none())
}

impl PlainRow {
    fn into_row(self) -> (RowId<'static>, Result<(f64, f64), String>) {
        // `"id": null` reads as no id; both answer `"id":null`.
        let id = self.id.map_or(RowId::None, RowId::Json);
        let point = json_coordinate("lon", self.lon.as_ref())
            .and_then(|lon| Ok((lon, json_coordinate("lat", self.lat.as_ref())?)))
            .and_then(|(lon, lat)| check_point(lon, lat));
        (id, point)
    }
}

/// The id and point of a row object or a GeoJSON point feature.
fn json_row(value: Value) -> (RowId<'static>, Result<(f64, f64), String>) {
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
    /// None for a worker's output, which goes back to the reading task.
    sender: Option<mpsc::Sender<Bytes>>,
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
            sender: Some(sender),
        }
    }

    /// An output that only gathers answer lines, for a worker.
    fn detached(format: OutputFormat) -> Self {
        Self {
            format,
            buffer: Vec::with_capacity(BATCH_LINES * 96),
            sender: None,
        }
    }

    /// Adds a worker's answer after the rows before it, unless it crosses
    /// the cap: then its rows are answered again, up to the cap and its
    /// error row. False when the client has gone or a worker failed.
    async fn add_batch(
        &mut self,
        answer: Result<BatchAnswer, tokio::task::JoinError>,
        reader: &mut impl LineRows,
    ) -> bool {
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                tracing::error!(%err, "answering a batch of rows failed");
                return false;
            }
        };
        if reader.done() {
            return true;
        }
        let rows = reader.rows_mut();
        if rows.n_rows + answer.n_rows > rows.max_rows {
            answer.batch.answer(reader, self);
            return self.flush_if_full().await;
        }
        rows.n_rows += answer.n_rows;
        if !self.buffer.is_empty() && !self.flush().await {
            return false;
        }
        self.send(answer.answers).await
    }

    fn answer_row(&mut self, id: &RowId<'_>, chain: Option<&GridChain>) {
        self.write_row(id, chain, None);
    }

    fn error_row(&mut self, id: &RowId<'_>, message: &str) {
        self.write_row(id, None, Some(message));
    }

    /// One answer line: `id,grid_code,grid_name,community_code,street_code,
    /// district_code,error` in CSV, or the same keys in NDJSON (every key
    /// always present except `error`). The grid's fields come pre-encoded
    /// from the snapshot.
    fn write_row(&mut self, id: &RowId<'_>, chain: Option<&GridChain>, error: Option<&str>) {
        let buffer = &mut self.buffer;
        match self.format {
            OutputFormat::Csv => {
                match id {
                    RowId::None => {}
                    RowId::Text(text) => push_csv_field(buffer, text),
                    RowId::Json(Value::String(text)) => push_csv_field(buffer, text),
                    RowId::Json(value) => push_csv_field(buffer, &value.to_string()),
                }
                match chain {
                    Some(chain) => {
                        buffer.push(b',');
                        buffer.extend_from_slice(chain.encoded.batch_csv.as_bytes());
                        buffer.push(b',');
                    }
                    None => buffer.extend_from_slice(b",,,,,,"),
                }
                push_csv_field(buffer, error.unwrap_or_default());
                buffer.push(b'\n');
            }
            OutputFormat::Ndjson => {
                buffer.extend_from_slice(b"{\"id\":");
                match id {
                    RowId::None => buffer.extend_from_slice(b"null"),
                    RowId::Text(text) => push_json(buffer, &**text),
                    RowId::Json(value) => push_json(buffer, value),
                }
                buffer.push(b',');
                match chain {
                    Some(chain) => buffer.extend_from_slice(chain.encoded.batch_ndjson.as_bytes()),
                    None => buffer.extend_from_slice(NO_GRID_NDJSON.as_bytes()),
                }
                if let Some(error) = error {
                    buffer.extend_from_slice(b",\"error\":");
                    push_json(buffer, error);
                }
                buffer.extend_from_slice(b"}\n");
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
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(FLUSH_BYTES * 2));
        self.send(chunk).await
    }

    async fn send(&self, chunk: Vec<u8>) -> bool {
        match &self.sender {
            Some(sender) => sender.send(Bytes::from(chunk)).await.is_ok(),
            None => true,
        }
    }

    async fn finish(mut self) {
        if !self.buffer.is_empty() {
            self.flush().await;
        }
    }
}

/// The grid keys of an NDJSON answer line for a point in no grid.
const NO_GRID_NDJSON: &str = "\"grid_code\":null,\"grid_name\":null,\"community_code\":null,\
                              \"street_code\":null,\"district_code\":null";

/// Appends `value` as serde_json writes it.
fn push_json<T: Serialize + ?Sized>(buffer: &mut Vec<u8>, value: &T) {
    // Writing strings and JSON values into a Vec cannot fail.
    if let Err(err) = serde_json::to_writer(&mut *buffer, value) {
        tracing::error!(%err, "encoding a batch answer row");
    }
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
pub(crate) fn push_csv_field(buffer: &mut Vec<u8>, field: &str) {
    if field
        .bytes()
        .any(|byte| matches!(byte, b',' | b'"' | b'\n' | b'\r'))
    {
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

    fn empty_rows(max_rows: u64) -> Rows {
        Rows {
            index: Arc::new(LookupIndex::empty()),
            crs: LonLatCrs::Cgcs2000,
            n_rows: 0,
            max_rows,
            done: false,
        }
    }

    /// The answer of reading `body` one row at a time, as an oracle.
    fn row_by_row(body: &[u8], mut reader: impl LineRows, format: OutputFormat) -> Vec<u8> {
        let (sender, _receiver) = mpsc::channel(1);
        let mut output = Output::new(format, sender);
        let mut splitter = LineSplitter::default();
        splitter.feed(body, |line| reader.line(line, &mut output));
        if !reader.done() {
            splitter.finish(|line| reader.line(line, &mut output));
        }
        output.buffer
    }

    /// The answer of the pipeline to `body` sent in chunks of odd sizes.
    async fn pipelined(body: &[u8], reader: impl LineRows, format: OutputFormat) -> Vec<u8> {
        let chunks: Vec<Result<Bytes, Infallible>> = body
            .chunks(1_009)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let (sender, mut receiver) = mpsc::channel(CHANNEL_CHUNKS);
        let output = Output::new(format, sender);
        let task = tokio::spawn(answer_lines(
            Body::from_stream(futures_util::stream::iter(chunks)).into_data_stream(),
            reader,
            output,
        ));
        let mut answer = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            answer.extend_from_slice(&chunk);
        }
        assert!(task.await.is_ok());
        answer
    }

    #[tokio::test]
    async fn the_pipeline_answers_like_reading_row_by_row() {
        let n_rows = BATCH_LINES * 3 + 100;
        let mut csv = String::from("id,lon,lat\n");
        let mut ndjson = String::new();
        for row in 0..n_rows {
            let lon = if row % 997 == 0 { "\"abc\"" } else { "120.5" };
            csv.push_str(&format!("r{row},{},37.6\n", lon.trim_matches('"')));
            ndjson.push_str(&format!(
                "{{\"id\":\"r{row}\",\"lon\":{lon},\"lat\":37.6}}\n"
            ));
        }
        // The last line lacks its newline.
        csv.pop();
        // Without a cap, and with the cap inside the third batch.
        for max_rows in [u64::MAX, (BATCH_LINES * 2 + 17) as u64] {
            let expected = row_by_row(
                csv.as_bytes(),
                CsvRows::new(empty_rows(max_rows)),
                OutputFormat::Csv,
            );
            let got = pipelined(
                csv.as_bytes(),
                CsvRows::new(empty_rows(max_rows)),
                OutputFormat::Csv,
            )
            .await;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
            let expected_lines = if max_rows == u64::MAX {
                n_rows + 1
            } else {
                BATCH_LINES * 2 + 19
            };
            assert_eq!(
                got.iter().filter(|&&byte| byte == b'\n').count(),
                expected_lines
            );
            let expected = row_by_row(
                ndjson.as_bytes(),
                NdjsonRows(empty_rows(max_rows)),
                OutputFormat::Ndjson,
            );
            let got = pipelined(
                ndjson.as_bytes(),
                NdjsonRows(empty_rows(max_rows)),
                OutputFormat::Ndjson,
            )
            .await;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn plain_rows_answer_like_json_values() {
        for line in [
            r#"{"id": 7, "lon": 120.5, "lat": "37.6", "extra": [1]}"#,
            r#"{"id": null, "lon": null, "lat": 37.6}"#,
            r#"{"lat": 37.6, "lon": 120.5, "lon": 121}"#,
            r#"[1, 120.5, 37.6, null]"#,
            r#"{"type": "Feature", "id": 1, "geometry": {"type": "Point", "coordinates": [120.5, 37.6]}}"#,
            r#"{"id": {"a": "b"}, "lon": true, "lat": 37.6}"#,
        ] {
            let by_value = json_row(serde_json::from_str(line).unwrap_or_default());
            let (id, point) = match plain_row(line.as_bytes()) {
                Some(row) => row.into_row(),
                None => by_value.clone(),
            };
            // An id of null and no id answer alike (`"id":null`).
            let id = if id == RowId::None {
                RowId::Json(Value::Null)
            } else {
                id
            };
            let expected_id = if by_value.0 == RowId::None {
                RowId::Json(Value::Null)
            } else {
                by_value.0.clone()
            };
            assert_eq!((id, point), (expected_id, by_value.1), "{line}");
        }
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
