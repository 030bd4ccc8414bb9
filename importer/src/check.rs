//! Checks that need no database, run on each feature as it streams from the
//! reader into its staging table: field values, code formats, code nesting.

use gridmap_model::{AdminCode, CodeError};

use crate::fields::{normalise_phone, split_list, FieldSpec, LayerSpec, ValueKind};
use crate::problem::{Problem, Problems};
use crate::read::RawFeature;
use crate::report::FieldUse;

/// A converted field value, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Text(String),
    Integer(i32),
    Real(f64),
    List(Vec<String>),
    /// Microseconds since 2000-01-01 00:00 UTC, PostgreSQL's `timestamptz`.
    Time(i64),
}

impl Value {
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// One feature after conversion. Values that failed a check are `Null`; the
/// import is rejected then anyway, but the remaining checks still run on the
/// rest so that every problem is reported at once.
#[derive(Debug)]
pub(crate) struct Row {
    pub feature: u64,
    pub values: Vec<Value>,
    pub wkb: Option<Vec<u8>>,
}

/// One source after its features were converted and copied into its staging
/// table (or straight into its table); only the counts and names stay in
/// memory, the rows are in the database.
#[derive(Debug)]
pub(crate) struct StagedLayer {
    /// The position of the layer in load order, which orders its problems.
    pub order: usize,
    pub file_name: String,
    pub spec: &'static LayerSpec,
    pub fields: Vec<FieldUse>,
    pub crs: String,
    pub transformed: bool,
    /// Features read and staged.
    pub features: u64,
    /// The temporary table holding the converted features (`feature`, the
    /// spec's columns, `geom`, `rejected`).
    pub stage: String,
    /// Source fields not imported because they identify a person.
    pub dropped_personal: Vec<String>,
    /// The `--mapping` file applying to this layer: its value translations
    /// are applied before the checks (its constants are in `fields`).
    pub mapping: Option<crate::Mapping>,
    /// The rows already in the layer's table when its features went there
    /// by COPY directly (`copy::copy_into_table`); `None` when they are in
    /// the staging table, which then exists.
    pub written: Option<u64>,
}

impl StagedLayer {
    /// The label of a column in problems: its source field name if the layer
    /// has one, else the column name.
    pub(crate) fn label(&self, column_index: usize) -> &str {
        self.fields[column_index]
            .source
            .as_deref()
            .unwrap_or(self.fields[column_index].column)
    }

    pub(crate) fn problem(
        &self,
        feature: u64,
        column_index: Option<usize>,
        reason: String,
    ) -> Problem {
        Problem::feature(
            &self.file_name,
            feature,
            column_index.map(|index| self.label(index)),
            reason,
        )
    }
}

/// Converts and checks one feature of `layer`, recording problems.
pub(crate) fn check_feature(
    layer: &StagedLayer,
    feature: RawFeature,
    problems: &mut Problems,
) -> Row {
    let mut values = Vec::with_capacity(feature.values.len());
    for (index, (spec, text)) in layer.spec.fields.iter().zip(feature.values).enumerate() {
        let used = &layer.fields[index];
        let text = match (&used.constant, &layer.mapping) {
            (Some(constant), _) => Some(constant.as_str()),
            (None, Some(mapping)) => text.as_deref().map(|text| {
                mapping
                    .values
                    .get(spec.column)
                    .and_then(|table| table.get(text))
                    .map_or(text, String::as_str)
            }),
            (None, None) => text.as_deref(),
        };
        let present = used.source.is_some() || used.constant.is_some();
        let value = match convert(spec, text, present) {
            Ok(value) => value,
            Err(reason) => {
                problems.push(
                    layer.order,
                    layer.problem(feature.number, Some(index), reason),
                );
                Value::Null
            }
        };
        values.push(value);
    }
    for problem in nesting_problems(layer, feature.number, &values) {
        problems.push(layer.order, problem);
    }
    Row {
        feature: feature.number,
        values,
        wkb: feature.wkb,
    }
}

/// Checks `text` as a value of the column `spec`, as a feature's value would
/// be: for the constants and value translations of a mapping file.
pub(crate) fn check_value(spec: &FieldSpec, text: &str) -> Result<(), String> {
    convert(spec, Some(text), true).map(|_| ())
}

/// Converts one field's text. `present` tells whether the layer has the field
/// at all; a missing required field was already reported for the whole layer.
fn convert(spec: &FieldSpec, text: Option<&str>, present: bool) -> Result<Value, String> {
    let Some(text) = text else {
        if spec.required && present {
            return Err(format!("a value is required for {}", spec.column));
        }
        return Ok(spec
            .default
            .map_or(Value::Null, |wire| Value::Text(wire.to_owned())));
    };
    match spec.value {
        ValueKind::Code(level) => AdminCode::parse(level, text)
            .map(|code| Value::Text(code.as_str().to_owned()))
            .map_err(|err| err.to_string()),
        ValueKind::Id | ValueKind::Text => Ok(Value::Text(text.to_owned())),
        ValueKind::Choice(choice) => choice.parse(text).map(|wire| Value::Text(wire.to_owned())),
        ValueKind::Integer { min } => parse_integer(text)
            .filter(|number| *number >= i64::from(min))
            .and_then(|number| i32::try_from(number).ok())
            .map(Value::Integer)
            .ok_or_else(|| {
                format!(
                    "{} must be a whole number of at least {min}, found {text:?}",
                    spec.column
                )
            }),
        ValueKind::PositiveReal => text
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite() && *number > 0.0)
            .map(Value::Real)
            .ok_or_else(|| {
                format!(
                    "{} must be a number greater than 0, found {text:?}",
                    spec.column
                )
            }),
        ValueKind::List => Ok(Value::List(split_list(text))),
        ValueKind::Phone => normalise_phone(text).map(Value::Text),
        ValueKind::Time => parse_time(text).map(Value::Time).map_err(|why| {
            format!(
                "{} {text:?} is not a date and time ({why}); write 2026-10-05 08:30:00 \
                 (China Standard Time), 2026/10/05 08:30 or 2026-10-05T00:30:00Z",
                spec.column
            )
        }),
    }
}

/// Seconds east of UTC of China Standard Time, assumed for a time without an
/// offset.
const CHINA_OFFSET_S: i64 = 8 * 3600;

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const POSTGRES_EPOCH_DAYS: i64 = 10_957;

/// Reads a date and time as Chinese source data writes it: the date as
/// `2026-10-05`, `2026/10/5`, `2026.10.05` or `2026年10月5日`, then
/// optionally (after a space or `T`) `HH:MM[:SS[.fraction]]` and an offset
/// (`Z`, `+08`, `+0800`, `+08:00`; GDAL writes a parsed time as
/// `2026/10/05 08:30:00+08`). A time without an offset is China Standard
/// Time, a date alone its midnight. Returns microseconds since 2000-01-01
/// 00:00 UTC.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let normal = text.trim().replace(['年', '月'], "-").replace('日', " ");
    let normal = normal.trim();
    let (date, rest) = match normal.find([' ', 'T', 't']) {
        Some(at) => (&normal[..at], normal[at + 1..].trim()),
        None => (normal, ""),
    };
    let (year, month, day) = parse_date(date)?;
    let (clock, offset_s) = split_offset(rest)?;
    let (hour, minute, second, micros) = if clock.is_empty() {
        (0, 0, 0, 0)
    } else {
        parse_clock(clock)?
    };
    let days = days_from_civil(year, month, day) - POSTGRES_EPOCH_DAYS;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_s;
    Ok(seconds * 1_000_000 + micros)
}

fn parse_date(date: &str) -> Result<(i64, i64, i64), String> {
    let parts: Vec<&str> = date.split(['-', '/', '.']).collect();
    let [year, month, day] = parts.as_slice() else {
        return Err("the date needs year, month and day".to_owned());
    };
    if year.len() != 4 || !(1..=2).contains(&month.len()) || !(1..=2).contains(&day.len()) {
        return Err("the date needs a 4-digit year, then month and day".to_owned());
    }
    let (year, month, day) = (digits(year)?, digits(month)?, digits(day)?);
    if !(1900..=2999).contains(&year) {
        return Err(format!("year {year} is out of range"));
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("there is no month {month}")),
    };
    if day == 0 || day > days_in_month {
        return Err(format!("month {month} of {year} has no day {day}"));
    }
    Ok((year, month, day))
}

/// Splits `08:30:00+08:00` into the clock and the offset in seconds east of
/// UTC (China Standard Time when none is written).
fn split_offset(rest: &str) -> Result<(&str, i64), String> {
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Ok((clock.trim(), 0));
    }
    let Some(at) = rest.rfind(['+', '-']) else {
        return Ok((rest, CHINA_OFFSET_S));
    };
    let (clock, offset) = (rest[..at].trim(), &rest[at..]);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let body = offset[1..].replace(':', "");
    let (hours, minutes) = match body.len() {
        2 => (digits(&body)?, 0),
        4 => (digits(&body[..2])?, digits(&body[2..])?),
        _ => return Err(format!("offset {offset:?} is not ±HH or ±HH:MM")),
    };
    if hours > 14 || minutes > 59 {
        return Err(format!("offset {offset:?} is out of range"));
    }
    Ok((clock, sign * (hours * 3_600 + minutes * 60)))
}

/// `HH:MM[:SS[.fraction]]` as hours, minutes, seconds and microseconds.
fn parse_clock(clock: &str) -> Result<(i64, i64, i64, i64), String> {
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let parts: Vec<&str> = whole.split(':').collect();
    let (hour, minute, second) = match parts.as_slice() {
        [hour, minute] => (digits(hour)?, digits(minute)?, 0),
        [hour, minute, second] => (digits(hour)?, digits(minute)?, digits(second)?),
        _ => return Err(format!("the time {clock:?} is not HH:MM or HH:MM:SS")),
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("the time {clock:?} is out of range"));
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        // Digits beyond the sixth are below PostgreSQL's resolution.
        let kept: String = fraction.chars().take(6).collect();
        digits(fraction)?;
        digits(&kept)? * 10_i64.pow(6 - kept.len() as u32)
    };
    Ok((hour, minute, second, micros))
}

fn digits(text: &str) -> Result<i64, String> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) || text.len() > 9 {
        return Err(format!("{text:?} is not a number"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Accepts `12` and also `12.0`, since shapefiles often store counts as reals.
fn parse_integer(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        let real = text.parse::<f64>().ok()?;
        // The range check keeps the cast exact; anything larger is no count.
        (real.fract() == 0.0 && real.abs() < 1e15).then_some(real as i64)
    })
}

/// Codes that do not start with their parent's code.
fn nesting_problems(layer: &StagedLayer, feature: u64, values: &[Value]) -> Vec<Problem> {
    let mut found = Vec::new();
    for (child, parent) in layer.spec.nesting {
        let (Some(child_index), Some(parent_index)) = (
            layer.spec.field_index(child),
            layer.spec.field_index(parent),
        ) else {
            continue;
        };
        let (Some(child_code), Some(parent_code)) = (
            values[child_index].as_text(),
            values[parent_index].as_text(),
        ) else {
            continue;
        };
        let ValueKind::Code(level) = layer.spec.fields[child_index].value else {
            continue;
        };
        if let Err(err @ CodeError::NotUnderParent { .. }) =
            AdminCode::parse_under(level, child_code, parent_code)
        {
            found.push(layer.problem(
                feature,
                Some(child_index),
                format!("{err} ({} {parent_code:?})", layer.label(parent_index)),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::LayerSpec;
    use crate::Entity;

    fn spec(entity: Entity, column: &str) -> &'static FieldSpec {
        let layer = LayerSpec::of(entity);
        &layer.fields[layer.field_index(column).unwrap()]
    }

    #[test]
    fn values_convert_to_wire_form() {
        let check = |entity, column, text: Option<&str>, expected: Result<Value, &str>| {
            let got = convert(spec(entity, column), text, true);
            match expected {
                Ok(value) => assert_eq!(got, Ok(value), "{column} {text:?}"),
                Err(fragment) => {
                    let err = got.unwrap_err();
                    assert!(err.contains(fragment), "{column} {text:?}: {err}");
                }
            }
        };
        let text = |s: &str| Value::Text(s.to_owned());
        check(
            Entity::Grids,
            "code",
            Some("370681001001001"),
            Ok(text("370681001001001")),
        );
        check(
            Entity::Grids,
            "code",
            Some("37068100100"),
            Err("must be 15 digits, found 11"),
        );
        check(Entity::Grids, "kind", Some("基础网格"), Ok(text("basic")));
        check(
            Entity::Grids,
            "kind",
            None,
            Err("a value is required for kind"),
        );
        check(Entity::Grids, "status", None, Ok(text("green")));
        check(
            Entity::Grids,
            "status",
            Some("紫"),
            Err("not a known status colour"),
        );
        check(Entity::Grids, "worker_phone", None, Ok(Value::Null));
        check(Entity::Communities, "kind", Some("村"), Ok(text("village")));
        check(
            Entity::Buildings,
            "households",
            Some("120"),
            Ok(Value::Integer(120)),
        );
        check(
            Entity::Buildings,
            "households",
            Some("12.0"),
            Ok(Value::Integer(12)),
        );
        check(
            Entity::Buildings,
            "households",
            Some("-1"),
            Err("at least 0"),
        );
        check(Entity::Buildings, "floors", Some("0"), Err("at least 1"));
        check(
            Entity::Stations,
            "area_m2",
            Some("35.5"),
            Ok(Value::Real(35.5)),
        );
        check(
            Entity::Stations,
            "area_m2",
            Some("0"),
            Err("greater than 0"),
        );
        check(
            Entity::Stations,
            "amenities",
            Some("饮水、充电"),
            Ok(Value::List(vec!["饮水".into(), "充电".into()])),
        );
        check(
            Entity::Roads,
            "class",
            Some("支路"),
            Ok(text("residential")),
        );
    }

    #[test]
    fn times_read_as_chinese_sources_write_them() {
        // 2000-01-01 08:00 in China is PostgreSQL's epoch.
        assert_eq!(parse_time("2000-01-01 08:00:00"), Ok(0));
        assert_eq!(parse_time("2000-01-01T00:00:00Z"), Ok(0));
        // 2026-10-05 08:30 +08 = 2026-10-05 00:30 UTC; 9,774 days after the
        // epoch (checked with PostgreSQL: extract(epoch from
        // '2026-10-05 00:30:00+00'::timestamptz) - 946684800).
        let expected = (9_774 * 86_400 + 30 * 60) * 1_000_000;
        for text in [
            "2026-10-05 08:30:00",
            "2026-10-05 08:30",
            "2026/10/5 8:30",
            "2026.10.05 08:30:00",
            "2026年10月5日 08:30",
            "2026年10月5日08:30",
            "2026-10-05T08:30:00+08:00",
            "2026-10-05T00:30:00Z",
            "2026/10/05 08:30:00+08",
            "2026-10-05 03:30:00+0300",
            "2026-10-04T19:30:00-05:00",
        ] {
            assert_eq!(parse_time(text), Ok(expected), "{text}");
        }
        assert_eq!(parse_time("2026-10-05 08:30:00.25"), Ok(expected + 250_000));
        assert_eq!(
            parse_time("2026-10-05"),
            Ok(expected - (8 * 3_600 + 30 * 60) * 1_000_000)
        );
        for bad in [
            "yesterday",
            "2026-02-29 10:00",
            "2026-13-01",
            "2026-10-05 25:00",
            "2026-10-05 08:61",
            "10/05/2026 08:30",
            "2026-10-05 08:30 +8",
            "1714537800",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let err = convert(
            spec(Entity::RiderReports, "reported_at"),
            Some("2026-10-32"),
            true,
        )
        .unwrap_err();
        assert!(err.starts_with("reported_at \"2026-10-32\" is not a date and time (month 10 of 2026 has no day 32)"), "{err}");
    }

    #[test]
    fn absent_required_field_is_not_reported_per_feature() {
        assert_eq!(
            convert(spec(Entity::Grids, "kind"), None, false),
            Ok(Value::Null)
        );
    }
}
