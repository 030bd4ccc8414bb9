//! `--rejects FILE`: the offending features as a GeoJSON FeatureCollection, so
//! that a data steward can open them in QGIS next to the source and fix them.
//!
//! Each problem becomes one feature: the original attributes and geometry as
//! the source file holds them (untransformed, since the CRS itself may be the
//! fault), plus `_layer`, `_feature`, `_field` and `_reason`. A problem of a
//! whole layer has feature number 0 and no geometry.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::problem::{ImportError, Problem};
use crate::read::{original_features, OriginalFeature};
use crate::Source;

/// Writes `problems` (with the position of their source in `sources`) to
/// `path` and returns how many features were written.
pub(crate) fn write(
    path: &Path,
    sources: &[Source],
    problems: &[(usize, Problem)],
    encoding: Option<&str>,
) -> Result<usize, ImportError> {
    let mut wanted: HashMap<usize, HashSet<u64>> = HashMap::new();
    for (order, problem) in problems {
        if problem.feature > 0 {
            wanted.entry(*order).or_default().insert(problem.feature);
        }
    }
    let originals: HashMap<usize, HashMap<u64, OriginalFeature>> = wanted
        .iter()
        .filter_map(|(order, numbers)| {
            let source = sources.get(*order)?;
            Some((*order, original_features(source, encoding, numbers)))
        })
        .collect();
    let features: Vec<Value> = problems
        .iter()
        .map(|(order, problem)| {
            let original = originals
                .get(order)
                .and_then(|features| features.get(&problem.feature));
            let mut properties: Map<String, Value> = original
                .map(|original| original.properties.clone())
                .unwrap_or_default();
            properties.insert("_layer".to_owned(), Value::from(problem.layer.clone()));
            properties.insert("_feature".to_owned(), Value::from(problem.feature));
            properties.insert(
                "_field".to_owned(),
                problem.field.clone().map_or(Value::Null, Value::from),
            );
            properties.insert("_reason".to_owned(), Value::from(problem.reason.clone()));
            json!({
                "type": "Feature",
                "properties": properties,
                "geometry": original.map_or(Value::Null, |original| original.geometry.clone()),
            })
        })
        .collect();
    let count = features.len();
    let collection = json!({ "type": "FeatureCollection", "features": features });
    let text = serde_json::to_string(&collection).unwrap_or_else(|_| {
        // Maps of strings to JSON values always encode; an empty collection
        // keeps the file valid should that ever change.
        r#"{"type":"FeatureCollection","features":[]}"#.to_owned()
    });
    std::fs::write(path, text).map_err(|source| ImportError::Rejects {
        path: path.to_owned(),
        source,
    })?;
    Ok(count)
}
