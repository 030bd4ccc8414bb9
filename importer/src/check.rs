//! Checks that need no database, run on each feature as it streams from the
//! reader into its staging table: field values, code formats, code nesting.

use gridmap_model::{AdminCode, CodeError};

use crate::fields::{split_list, FieldSpec, LayerSpec, ValueKind};
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
/// table; only the counts and names stay in memory, the rows are in the
/// database.
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
        let value = match convert(spec, text.as_deref(), layer.fields[index].source.is_some()) {
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
    }
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
    fn absent_required_field_is_not_reported_per_feature() {
        assert_eq!(
            convert(spec(Entity::Grids, "kind"), None, false),
            Ok(Value::Null)
        );
    }
}
