//! `--mapping FILE.toml`: the source fields, value translations and constant
//! values of a file whose field names the alias table in [`crate::fields`]
//! does not know.
//!
//! ```toml
//! entity = "grids"      # optional: the mapping applies to grid files only
//!
//! [fields]              # column = source field (matched ignoring case)
//! code = "BH_WG"
//! name = "MC"
//!
//! [values.status]       # source value = value the column accepts
//! "正常" = "green"
//! "预警" = "yellow"
//!
//! [constants]           # column = value of every feature
//! kind = "basic"
//! ```
//!
//! A mapped field takes precedence over `--field` and the alias table; a
//! constant column reads no source field at all. A mistake in the file (bad
//! TOML, a column the entity does not have, a value its column would refuse)
//! is found when the file is loaded; a mapped field the source layer lacks is
//! found before the import opens its transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{Document, Item, Value};

use crate::fields::{LayerSpec, ValueKind};
use crate::problem::{ImportError, Problem};
use crate::{Entity, ImportOptions, Source};

/// A mapping file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The file name, used in messages and the report (`grids.toml`).
    pub name: String,
    /// The entity the mapping is written for; `None` applies it to every file.
    pub entity: Option<Entity>,
    /// Column → source field.
    pub fields: BTreeMap<String, String>,
    /// Column → (source value → value passed to the column's checks).
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Column → the value every feature gets.
    pub constants: BTreeMap<String, String>,
}

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("reading the mapping file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML, or TOML that is not a mapping; the message names the line
    /// and column.
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// A column the entity does not have, or a value its column refuses.
    #[error("{file}: {message}")]
    NotForEntity { file: String, message: String },
}

impl Mapping {
    /// Reads and parses a mapping file.
    ///
    /// # Errors
    /// [`MappingError::Io`] when the file cannot be read, [`MappingError::Invalid`]
    /// naming the line and column of a syntax or structure mistake.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            path: path.to_owned(),
            source,
        })?;
        let name = crate::read::display_name(path);
        Self::parse(&name, &text)
    }

    /// Parses the text of a mapping file named `name`.
    ///
    /// # Errors
    /// [`MappingError::Invalid`] naming the line and column of the mistake.
    pub fn parse(name: &str, text: &str) -> Result<Self, MappingError> {
        let invalid = |message: String| MappingError::Invalid {
            file: name.to_owned(),
            message,
        };
        let document = Document::parse(text.to_owned())
            .map_err(|err| invalid(err.to_string().trim_end().to_owned()))?;
        let at = |span: Option<std::ops::Range<usize>>| {
            span.map_or_else(String::new, |span| {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: ")
            })
        };
        let mut mapping = Mapping {
            name: name.to_owned(),
            ..Mapping::default()
        };
        for (key, item) in document.as_table() {
            let key_span = document.as_table().key(key).and_then(toml_edit::Key::span);
            match key {
                "entity" => {
                    let text = string_value(item).ok_or_else(|| {
                        invalid(format!(
                            "{}entity must be a string such as \"grids\"",
                            at(item.span())
                        ))
                    })?;
                    let entity = text
                        .parse::<Entity>()
                        .map_err(|err| invalid(format!("{}{err}", at(item.span()))))?;
                    mapping.entity = Some(entity);
                }
                "fields" | "constants" => {
                    let table = as_table(item).ok_or_else(|| {
                        invalid(format!("{}[{key}] must be a table", at(key_span.clone())))
                    })?;
                    let pairs = string_pairs(table, key, text).map_err(invalid)?;
                    if key == "fields" {
                        mapping.fields = pairs;
                    } else {
                        mapping.constants = pairs;
                    }
                }
                "values" => {
                    let table = as_table(item).ok_or_else(|| {
                        invalid(format!(
                            "{}[values] must hold one table per column, such as [values.status]",
                            at(key_span.clone())
                        ))
                    })?;
                    for (column, inner) in table.iter() {
                        let inner_table = as_table(inner).ok_or_else(|| {
                            invalid(format!(
                                "{}values.{column} must be a table of source value = value",
                                at(inner.span())
                            ))
                        })?;
                        let pairs = string_pairs(inner_table, &format!("values.{column}"), text)
                            .map_err(invalid)?;
                        mapping.values.insert(column.to_owned(), pairs);
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "{}unknown key {other:?}; a mapping has entity, [fields], [values.COLUMN] \
                         and [constants]",
                        at(key_span)
                    )))
                }
            }
        }
        if let Some(column) = mapping
            .constants
            .keys()
            .find(|column| mapping.fields.contains_key(*column))
        {
            return Err(invalid(format!(
                "{column} is both in [fields] and in [constants]; give it one source"
            )));
        }
        for (column, value) in &mapping.constants {
            if value.trim().is_empty() {
                return Err(invalid(format!("the constant of {column} is empty")));
            }
        }
        Ok(mapping)
    }

    /// Whether the mapping applies to files of `entity`.
    #[must_use]
    pub fn applies_to(&self, entity: Entity) -> bool {
        self.entity.is_none_or(|own| own == entity)
    }

    /// Checks that every column named exists in `entity`'s table and that
    /// every constant and translated value passes that column's checks.
    ///
    /// # Errors
    /// [`MappingError::NotForEntity`] naming the column or value and what the
    /// entity accepts.
    pub fn check_for(&self, entity: Entity) -> Result<(), MappingError> {
        let spec = LayerSpec::of(entity);
        let not_for = |message: String| MappingError::NotForEntity {
            file: self.name.clone(),
            message,
        };
        let columns: Vec<&str> = spec.fields.iter().map(|field| field.column).collect();
        let sections = [
            ("[fields]", self.fields.keys().collect::<Vec<_>>()),
            ("[values]", self.values.keys().collect()),
            ("[constants]", self.constants.keys().collect()),
        ];
        for (section, named) in sections {
            for column in named {
                if spec.field_index(column).is_none() {
                    return Err(not_for(format!(
                        "{section} names {column:?}, which is not a column of {entity}; \
                         its columns are {}",
                        columns.join(", ")
                    )));
                }
            }
        }
        for (column, value) in &self.constants {
            let field = &spec.fields[spec.field_index(column).unwrap_or_default()];
            crate::check::check_value(field, value)
                .map_err(|why| not_for(format!("[constants] {column} = {value:?}: {why}")))?;
        }
        for (column, table) in &self.values {
            let field = &spec.fields[spec.field_index(column).unwrap_or_default()];
            // Free text and identifiers take any value; only the checked
            // kinds can refuse a translation's target.
            if matches!(field.value, ValueKind::Text | ValueKind::Id) {
                continue;
            }
            for (from, to) in table {
                crate::check::check_value(field, to).map_err(|why| {
                    not_for(format!("[values.{column}] {from:?} = {to:?}: {why}"))
                })?;
            }
        }
        Ok(())
    }

    /// The source field mapped to `column`.
    pub(crate) fn field(&self, column: &str) -> Option<&str> {
        self.fields.get(column).map(String::as_str)
    }

    /// The constant value of `column`.
    pub(crate) fn constant(&self, column: &str) -> Option<&str> {
        self.constants.get(column).map(String::as_str)
    }
}

/// Before the import opens its transaction: every mapped field must exist in
/// the layer it applies to (the problem names the fields the layer has), and
/// every column named must belong to the entity. Personal source fields are
/// refused, as everywhere.
///
/// [`crate::import`] runs this itself; the command line runs it before it
/// even connects to the database.
///
/// # Errors
/// [`ImportError::Rejected`] with one problem per mistake.
pub async fn check_sources(sources: &[Source], options: &ImportOptions) -> Result<(), ImportError> {
    let Some(mapping) = &options.mapping else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for source in sources
        .iter()
        .filter(|source| mapping.applies_to(source.entity))
    {
        let file_name = source.file_name();
        if let Err(err) = mapping.check_for(source.entity) {
            problems.push(Problem::layer(&file_name, None, err.to_string()));
            continue;
        }
        if mapping.fields.is_empty() {
            continue;
        }
        let names = {
            let reading = source.clone();
            let encoding = options.encoding.clone();
            tokio::task::spawn_blocking(move || {
                crate::read::field_names(&reading, encoding.as_deref())
            })
            .await
            .map_err(|join_error| ImportError::Reader {
                path: source.path.clone(),
                source: join_error,
            })?
        };
        // A file GDAL cannot open is reported by the read itself.
        let Ok(names) = names else {
            continue;
        };
        let spec = LayerSpec::of(source.entity);
        for (column, field) in &mapping.fields {
            let found = names
                .iter()
                .find(|name| name.to_lowercase() == field.to_lowercase());
            let reason = match found {
                Some(name) if spec.is_personal(name) => format!(
                    "{}: {column} = {field:?}: the field identifies a person and is never imported into {}",
                    mapping.name, source.entity
                ),
                Some(_) => continue,
                None => format!(
                    "{}: {column} = {field:?}: the layer has no such field; it has {}",
                    mapping.name,
                    if names.is_empty() {
                        "no fields".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            };
            problems.push(Problem::layer(&file_name, Some(field), reason));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Rejected {
            problems,
            omitted: 0,
        })
    }
}

fn as_table(item: &Item) -> Option<&dyn toml_edit::TableLike> {
    item.as_table_like()
}

fn string_value(item: &Item) -> Option<String> {
    match item.as_value()? {
        Value::String(text) => Some(text.value().clone()),
        Value::Integer(number) => Some(number.value().to_string()),
        Value::Float(number) => Some(number.value().to_string()),
        _ => None,
    }
}

/// The `key = "value"` pairs of a table; numbers are taken as their text.
fn string_pairs(
    table: &dyn toml_edit::TableLike,
    section: &str,
    text: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut pairs = BTreeMap::new();
    for (key, item) in table.iter() {
        let value = string_value(item).ok_or_else(|| {
            let place = item.span().map_or_else(String::new, |span| {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: ")
            });
            format!("{place}{section}.{key} must be a string")
        })?;
        pairs.insert(key.to_owned(), value);
    }
    Ok(pairs)
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRIDS: &str = "entity = \"grids\"\n\
        [fields]\ncode = \"BH_WG\"\nname = \"MC\"\n\
        [values.status]\n\"正常\" = \"green\"\n\"预警\" = \"黄\"\n\
        [constants]\nkind = \"basic\"\n";

    #[test]
    fn a_mapping_reads_fields_values_and_constants() {
        let mapping = Mapping::parse("grids.toml", GRIDS).unwrap();
        assert_eq!(mapping.entity, Some(Entity::Grids));
        assert_eq!(mapping.field("code"), Some("BH_WG"));
        assert_eq!(mapping.constant("kind"), Some("basic"));
        assert_eq!(mapping.values["status"]["预警"], "黄");
        mapping.check_for(Entity::Grids).unwrap();
        assert!(mapping.applies_to(Entity::Grids) && !mapping.applies_to(Entity::Streets));
    }

    #[test]
    fn mistakes_name_their_line_and_column() {
        let err = Mapping::parse("m.toml", "[fields]\ncode = BH_WG\n").unwrap_err();
        assert!(err.to_string().contains("line 2, column 8"), "{err}");
        let err = Mapping::parse("m.toml", "[fields]\ncode = 1.5e\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err =
            Mapping::parse("m.toml", "entity = \"grids\"\n[feilds]\ncode = \"A\"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 2, column 2: unknown key \"feilds\""),
            "{err}"
        );
        let err = Mapping::parse("m.toml", "[fields]\ncode = [\"A\"]\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 2, column 8: fields.code must be a string"),
            "{err}"
        );
        let err = Mapping::parse("m.toml", "entity = \"parcels\"\n").unwrap_err();
        assert!(err.to_string().contains("is not a layer kind"), "{err}");
    }

    #[test]
    fn columns_and_values_are_checked_against_the_entity() {
        let mapping = Mapping::parse("m.toml", "[fields]\nheight = \"GD\"\n").unwrap();
        let err = mapping.check_for(Entity::Grids).unwrap_err();
        assert!(
            err.to_string().contains(
                "[fields] names \"height\", which is not a column of grids; its columns are code, name"
            ),
            "{err}"
        );
        let mapping = Mapping::parse("m.toml", "[constants]\nkind = \"普通\"\n").unwrap();
        let err = mapping.check_for(Entity::Grids).unwrap_err();
        assert!(
            err.to_string().contains("[constants] kind = \"普通\""),
            "{err}"
        );
        let mapping = Mapping::parse("m.toml", "[values.status]\n\"正常\" = \"紫\"\n").unwrap();
        assert!(mapping.check_for(Entity::Grids).is_err());
        let err = Mapping::parse(
            "m.toml",
            "[fields]\nkind = \"LX\"\n[constants]\nkind = \"basic\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("both in [fields] and in [constants]"),
            "{err}"
        );
    }
}
