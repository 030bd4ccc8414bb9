//! `--rejects FILE`: the offending features as a GeoJSON FeatureCollection, so
//! that a data steward can open them in QGIS next to the source and fix them.
//!
//! Each problem becomes one feature: the original attributes and geometry as
//! the source file holds them (untransformed, since the CRS itself may be the
//! fault), plus `_layer`, `_feature`, `_field` and `_reason`. A problem of a
//! whole layer has feature number 0 and no geometry.
//!
//! A rejects file travels further than its source (to whoever fixes the
//! data), so it carries no more personal data than that person needs to find
//! the row: a grid worker roster's rows keep only the grid code and the post
//! with the names, phones and staff numbers masked (`张*`, `138****1234`), and
//! a grid layer's worker name and phone are masked likewise. The same values
//! are masked where a reason quotes them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::fields::LayerSpec;
use crate::mapping::Mapping;
use crate::problem::{ImportError, Problem};
use crate::read::{original_features, OriginalFeature};
use crate::{Entity, Source};

/// How the import chose each column's source field beyond the alias table:
/// the mapping file and the `--field` flags, so a personal column read
/// through either is masked like one the alias table finds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChosenFields<'a> {
    pub field_map: &'a [(String, String)],
    pub mapping: Option<&'a Mapping>,
}

/// Writes `problems` (with the position of their source in `sources`) to
/// `path` and returns how many features were written.
pub(crate) fn write(
    path: &Path,
    sources: &[Source],
    problems: &[(usize, Problem)],
    encoding: Option<&str>,
    chosen: ChosenFields<'_>,
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
            let entity = sources.get(*order).map(|source| source.entity);
            let (mut properties, reason) = match (original, entity) {
                (Some(original), Some(entity)) => {
                    shareable(entity, &original.properties, &problem.reason, chosen)
                }
                _ => (Map::new(), problem.reason.clone()),
            };
            properties.insert("_layer".to_owned(), Value::from(problem.layer.clone()));
            properties.insert("_feature".to_owned(), Value::from(problem.feature));
            properties.insert(
                "_field".to_owned(),
                problem.field.clone().map_or(Value::Null, Value::from),
            );
            properties.insert("_reason".to_owned(), Value::from(reason));
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

/// How a column's value is written to a rejects file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// As in the source: not personal, and what the steward needs to find
    /// the row (a grid code) or to fix it (a post).
    Plain,
    /// A person's name: the first character, then `*` for each other one.
    Name,
    /// A phone: the first three and the last four digits of a number of 11
    /// digits or more, the last two of a shorter one.
    Phone,
    /// A staff number: the last two characters.
    StaffId,
}

/// The columns of `entity` that the rejects file shows in a form of their
/// own, and whether source fields outside them are written at all.
fn shown_columns(entity: Entity) -> (&'static [(&'static str, Shown)], bool) {
    match entity {
        // A roster row is a person: nothing beyond what locates and fixes
        // the row, since a source field the alias table does not know (an
        // address, a birth date) may be personal too.
        Entity::GridWorkers => (
            &[
                ("grid_code", Shown::Plain),
                ("name", Shown::Name),
                ("phone", Shown::Phone),
                ("role", Shown::Plain),
                ("staff_id", Shown::StaffId),
            ],
            false,
        ),
        Entity::Grids => (
            &[("worker_name", Shown::Name), ("worker_phone", Shown::Phone)],
            true,
        ),
        _ => (&[], true),
    }
}

/// The source field each column of `spec` is read from, in the reader's
/// order (`read::map_fields`): the mapping file, then `--field`, then the
/// alias table; the first name present, ignoring case.
fn source_fields<'a>(
    spec: &LayerSpec,
    properties: &'a Map<String, Value>,
    chosen: ChosenFields<'_>,
) -> HashMap<&'static str, &'a str> {
    let mapping = chosen
        .mapping
        .filter(|mapping| mapping.applies_to(spec.entity));
    let mut found = HashMap::new();
    for field in spec.fields {
        let mapped = mapping.and_then(|mapping| mapping.field(field.column));
        let given = chosen
            .field_map
            .iter()
            .filter(|(column, _)| column == field.column)
            .map(|(_, source)| source.as_str());
        let name = mapped
            .into_iter()
            .chain(given)
            .chain(field.aliases.iter().copied())
            .find_map(|alias| {
                properties
                    .keys()
                    .find(|name| name.trim().eq_ignore_ascii_case(alias))
            });
        if let Some(name) = name {
            found.insert(field.column, name.as_str());
        }
    }
    found
}

/// The properties of one rejected feature of `entity` and the problem's
/// `reason`, with personal values masked (see the module documentation).
fn shareable(
    entity: Entity,
    properties: &Map<String, Value>,
    reason: &str,
    chosen: ChosenFields<'_>,
) -> (Map<String, Value>, String) {
    let (columns, keep_others) = shown_columns(entity);
    if columns.is_empty() {
        return (properties.clone(), reason.to_owned());
    }
    let by_column = source_fields(LayerSpec::of(entity), properties, chosen);
    let shown: HashMap<&str, Shown> = columns
        .iter()
        .filter_map(|(column, shown)| Some((*by_column.get(column)?, *shown)))
        .collect();
    let mut kept = Map::new();
    // (value as the source has it, as written instead) for the reason.
    let mut masked: Vec<(String, String)> = Vec::new();
    for (name, value) in properties {
        let text = match value {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        };
        match shown.get(name.as_str()).copied() {
            Some(Shown::Plain) => {
                kept.insert(name.clone(), value.clone());
            }
            Some(how) => {
                let shown = text.map(|text| {
                    let mask = mask(how, &text);
                    masked.push((text, mask.clone()));
                    mask
                });
                kept.insert(name.clone(), shown.map_or(Value::Null, Value::from));
            }
            None if keep_others => {
                kept.insert(name.clone(), value.clone());
            }
            // A field a roster row does not show: left out, and masked where
            // the reason quotes it (a column found through --field or a
            // mapping file is such a field here).
            None => {
                if let Some(text) = text {
                    let mask = mask_name(&text);
                    masked.push((text, mask));
                }
            }
        }
    }
    (kept, mask_quoted(reason, &masked))
}

fn mask(how: Shown, text: &str) -> String {
    match how {
        Shown::Plain => text.to_owned(),
        Shown::Name => mask_name(text),
        Shown::Phone => mask_phone(text),
        Shown::StaffId => mask_tail(text, 2),
    }
}

/// `张三` → `张*`, `欧阳娜娜` → `欧***`; a name of one character is all masked.
fn mask_name(name: &str) -> String {
    let name = name.trim();
    let mut chars = name.chars();
    match (chars.next(), chars.count()) {
        (None, _) => String::new(),
        (Some(_), 0) => "*".to_owned(),
        (Some(first), rest) => format!("{first}{}", "*".repeat(rest)),
    }
}

/// `13812341234` → `138****1234`, `(0535)8123456` → `(053*)***3456`: the
/// separators a steward needs to see what is wrong with the number stay, any
/// other character (a name typed into the phone column) is masked.
fn mask_phone(phone: &str) -> String {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let (head, tail) = match digits {
        11.. => (3, 4),
        6..=10 => (0, 2),
        _ => (0, 0),
    };
    let mut seen = 0;
    phone
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= head || seen > digits - tail {
                    c
                } else {
                    '*'
                }
            } else if matches!(c, '+' | '-' | '(' | ')' | ' ' | '.') {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// All but the last `keep` characters masked; all of a value no longer than
/// twice `keep`.
fn mask_tail(text: &str, keep: usize) -> String {
    let count = text.chars().count();
    let keep = if count > 2 * keep { keep } else { 0 };
    text.chars()
        .enumerate()
        .map(|(index, c)| if index + keep < count { '*' } else { c })
        .collect()
}

/// `reason` with the values of `masked` replaced where it quotes them
/// (reasons quote values as Rust's `{:?}` does: `phone "1380000" is …`,
/// `duplicate code "370681001001001 张三"`). Only quoted text is touched, so
/// the words of the reason stay intact.
fn mask_quoted(reason: &str, masked: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = Vec::new();
    for (value, mask) in masked {
        for form in [
            value.clone(),
            value.trim().to_owned(),
            escaped(value.trim()),
        ] {
            if !form.is_empty() && !pairs.iter().any(|(known, _)| *known == form) {
                pairs.push((form, mask));
            }
        }
    }
    // The longest first, so that a value containing another is masked whole.
    pairs.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = closing_quote(after) else {
            rest = after;
            break;
        };
        out.push_str(&mask_value(&after[..close], &pairs));
        out.push('"');
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The quoted text `quoted` with a value of `pairs` masked where it is the
/// whole text, its last space-separated part (the name in a roster key
/// `370681001001001 张三`) or one of its words; never inside a word, so that
/// a short value (`3`) does not mask part of a code.
fn mask_value(quoted: &str, pairs: &[(String, &str)]) -> String {
    for (value, mask) in pairs {
        if quoted == value {
            return (*mask).to_owned();
        }
        if let Some(head) = quoted.strip_suffix(value.as_str()) {
            if head.ends_with(' ') {
                return format!("{head}{mask}");
            }
        }
    }
    quoted
        .split(' ')
        .map(|word| {
            pairs
                .iter()
                .find(|(value, _)| value == word)
                .map_or(word, |(_, mask)| mask)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The position of the quote closing a `{:?}` string, skipping escapes.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(index),
            _ => escaped = false,
        }
    }
    None
}

/// A value as `{:?}` writes it inside the quotes.
fn escaped(value: &str) -> String {
    let debug = format!("{value:?}");
    debug[1..debug.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_phones_and_staff_numbers_are_masked() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name(" 欧阳娜娜 "), "欧***");
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_phone("13812341234"), "138****1234");
        assert_eq!(mask_phone("138 1234 1234"), "138 **** 1234");
        assert_eq!(mask_phone("(0535)8123456"), "(053*)***3456");
        assert_eq!(mask_phone("1380000"), "*****00");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_phone("张三138"), "*****");
        assert_eq!(mask_tail("LK2024017", 2), "*******17");
        assert_eq!(mask_tail("0017", 2), "****");
    }

    #[test]
    fn quoted_values_are_masked_and_the_words_kept() {
        let masked = vec![
            ("张三".to_owned(), "张*".to_owned()),
            ("1380000".to_owned(), "*****00".to_owned()),
        ];
        assert_eq!(
            mask_quoted(
                "duplicate code \"370681001001001 张三\": already used by feature 1",
                &masked
            ),
            "duplicate code \"370681001001001 张*\": already used by feature 1"
        );
        assert_eq!(
            mask_quoted(
                "phone \"1380000\" is neither a mobile number (11 digits such as 13800000000)",
                &masked
            ),
            "phone \"*****00\" is neither a mobile number (11 digits such as 13800000000)"
        );
        // An unquoted 张三 is a word of the reason, not a value.
        assert_eq!(mask_quoted("a \"b\" 张三 \"c", &masked), "a \"b\" 张三 \"c");
    }

    #[test]
    fn a_roster_row_keeps_its_grid_code_and_post_only() {
        let properties: Map<String, Value> = serde_json::from_value(json!({
            "序号": "3", "网格编码": "370681001001001", "姓名": "张三",
            "联系电话": "13812341234", "职务": "书记", "住址": "南苑路1号",
        }))
        .unwrap();
        let (kept, reason) = shareable(
            Entity::GridWorkers,
            &properties,
            "grid worker post \"书记\" is not known; \"南苑路1号\"",
            ChosenFields::default(),
        );
        assert_eq!(
            Value::Object(kept),
            json!({ "网格编码": "370681001001001", "姓名": "张*",
                    "联系电话": "138****1234", "职务": "书记" })
        );
        assert_eq!(reason, "grid worker post \"书记\" is not known; \"南****\"");
    }

    #[test]
    fn a_grid_keeps_its_fields_with_the_worker_masked() {
        let properties: Map<String, Value> = serde_json::from_value(json!({
            "WGBM": "370681001001001", "WGMC": "第一网格", "WGY": "李四", "LXDH": 13812341234_u64,
        }))
        .unwrap();
        let (kept, _) = shareable(Entity::Grids, &properties, "", ChosenFields::default());
        assert_eq!(
            Value::Object(kept),
            json!({ "WGBM": "370681001001001", "WGMC": "第一网格", "WGY": "李*", "LXDH": "138****1234" })
        );
    }

    #[test]
    fn a_worker_field_chosen_by_flag_or_mapping_is_masked_too() {
        // Field names no alias knows: only --field or a mapping file says
        // they hold the worker.
        let properties: Map<String, Value> = serde_json::from_value(json!({
            "WGBM": "370681001001001", "WGMC": "第一网格", "ZZRY": "李四", "DH2": "13812341234",
        }))
        .unwrap();
        let unmasked = shareable(Entity::Grids, &properties, "", ChosenFields::default()).0;
        assert_eq!(unmasked.get("ZZRY"), Some(&json!("李四")));

        let field_map = [
            ("worker_name".to_owned(), "zzry".to_owned()),
            ("worker_phone".to_owned(), "DH2".to_owned()),
        ];
        let by_flag = ChosenFields {
            field_map: &field_map,
            mapping: None,
        };
        let (kept, _) = shareable(Entity::Grids, &properties, "", by_flag);
        assert_eq!(kept.get("ZZRY"), Some(&json!("李*")));
        assert_eq!(kept.get("DH2"), Some(&json!("138****1234")));

        let mapping = Mapping::parse(
            "grids.toml",
            "[fields]\nworker_name = \"ZZRY\"\nworker_phone = \"DH2\"\n",
        )
        .unwrap();
        let by_mapping = ChosenFields {
            field_map: &[],
            mapping: Some(&mapping),
        };
        let (kept, _) = shareable(Entity::Grids, &properties, "", by_mapping);
        assert_eq!(kept.get("ZZRY"), Some(&json!("李*")));
        assert_eq!(kept.get("DH2"), Some(&json!("138****1234")));
    }
}
