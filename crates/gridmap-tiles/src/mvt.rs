//! A Mapbox Vector Tile 2.1 writer for point, line and polygon layers with
//! string and integer attributes: the protobuf wire format written by hand
//! (varints, zigzag deltas, packed fields), which is all the in-process layers
//! need.

use std::collections::HashMap;

/// Protobuf wire types.
const VARINT: u8 = 0;
const LENGTH_DELIMITED: u8 = 2;

/// Geometry command ids (spec 4.3.1).
const MOVE_TO: u32 = 1;
const LINE_TO: u32 = 2;
const CLOSE_PATH: u32 = 7;
/// `GeomType.POINT`.
const POINT: u64 = 1;
/// `GeomType.LINESTRING`.
const LINESTRING: u64 = 2;
/// `GeomType.POLYGON`.
const POLYGON: u64 = 3;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation keeps the low seven bits, which is the point.
        #[expect(clippy::cast_possible_truncation, reason = "low 7 bits")]
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    #[expect(clippy::cast_possible_truncation, reason = "below 0x80")]
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LENGTH_DELIMITED);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_packed(out: &mut Vec<u8>, field: u32, values: &[u32]) {
    let mut packed = Vec::with_capacity(values.len() * 2);
    for value in values {
        put_varint(&mut packed, u64::from(*value));
    }
    put_bytes(out, field, &packed);
}

fn command(id: u32, count: usize) -> u32 {
    // Rings are clipped to a tile and its buffer, far below 2^29 vertices.
    #[expect(clippy::cast_possible_truncation, reason = "vertex counts of one tile")]
    let count = count as u32;
    (id & 0x7) | (count << 3)
}

fn zigzag(value: i32) -> u32 {
    #[expect(clippy::cast_sign_loss, reason = "zigzag encoding")]
    let encoded = ((value << 1) ^ (value >> 31)) as u32;
    encoded
}

/// An attribute value. Integers are written as `ST_AsMVT` writes them:
/// `uint_value` when not negative, `sint_value` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value<'a> {
    Text(&'a str),
    Integer(i64),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Value::Text(text)
    }
}

/// An owned [`Value`], interned per layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OwnedValue {
    Text(String),
    Integer(i64),
}

impl OwnedValue {
    fn of(value: Value<'_>) -> Self {
        match value {
            Value::Text(text) => OwnedValue::Text(text.to_owned()),
            Value::Integer(number) => OwnedValue::Integer(number),
        }
    }

    /// The `Value` message (spec 4.1): string_value = 1, uint_value = 5,
    /// sint_value = 6.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::Text(text) => put_bytes(out, 1, text.as_bytes()),
            OwnedValue::Integer(number) => {
                if let Ok(unsigned) = u64::try_from(*number) {
                    put_key(out, 5, VARINT);
                    put_varint(out, unsigned);
                } else {
                    put_key(out, 6, VARINT);
                    #[expect(clippy::cast_sign_loss, reason = "zigzag encoding")]
                    put_varint(out, ((number << 1) ^ (number >> 63)) as u64);
                }
            }
        }
    }
}

/// The geometry commands of one line feature (one or more line strings).
#[derive(Debug, Default)]
pub struct LineGeometry {
    commands: Vec<u32>,
    cursor: [i32; 2],
}

impl LineGeometry {
    /// Appends one line string of at least two distinct consecutive vertices
    /// in tile units.
    pub fn push_line(&mut self, line: &[[i32; 2]]) {
        let Some((first, rest)) = line.split_first() else {
            return;
        };
        if rest.is_empty() {
            return;
        }
        self.commands.push(command(MOVE_TO, 1));
        push_delta(&mut self.commands, &mut self.cursor, *first);
        self.commands.push(command(LINE_TO, rest.len()));
        for point in rest {
            push_delta(&mut self.commands, &mut self.cursor, *point);
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

fn push_delta(commands: &mut Vec<u32>, cursor: &mut [i32; 2], [x, y]: [i32; 2]) {
    commands.push(zigzag(x - cursor[0]));
    commands.push(zigzag(y - cursor[1]));
    *cursor = [x, y];
}

/// The geometry commands of one polygon feature, built ring by ring.
#[derive(Debug, Default)]
pub struct PolygonGeometry {
    commands: Vec<u32>,
    cursor: [i32; 2],
}

impl PolygonGeometry {
    /// Appends one ring of at least three distinct vertices in tile units,
    /// not repeating the first vertex at the end. The caller orients it:
    /// exterior rings positive by the surveyor's formula in tile coordinates
    /// (y down), interior rings negative.
    pub fn push_ring(&mut self, ring: &[[i32; 2]]) {
        let Some((first, rest)) = ring.split_first() else {
            return;
        };
        self.commands.push(command(MOVE_TO, 1));
        self.push_point(*first);
        self.commands.push(command(LINE_TO, rest.len()));
        for point in rest {
            self.push_point(*point);
        }
        self.commands.push(command(CLOSE_PATH, 1));
    }

    fn push_point(&mut self, point: [i32; 2]) {
        push_delta(&mut self.commands, &mut self.cursor, point);
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// One layer of a tile being written.
#[derive(Debug)]
pub struct LayerWriter {
    name: String,
    extent: u32,
    features: Vec<u8>,
    keys: Vec<String>,
    key_ids: HashMap<String, u32>,
    values: Vec<OwnedValue>,
    value_ids: HashMap<OwnedValue, u32>,
}

impl LayerWriter {
    #[must_use]
    pub fn new(name: &str, extent: u32) -> Self {
        Self {
            name: name.to_owned(),
            extent,
            features: Vec::new(),
            keys: Vec::new(),
            key_ids: HashMap::new(),
            values: Vec::new(),
            value_ids: HashMap::new(),
        }
    }

    fn intern_key(&mut self, key: &str) -> u32 {
        if let Some(id) = self.key_ids.get(key) {
            return *id;
        }
        #[expect(clippy::cast_possible_truncation, reason = "attributes of one tile")]
        let id = self.keys.len() as u32;
        self.keys.push(key.to_owned());
        self.key_ids.insert(key.to_owned(), id);
        id
    }

    fn intern_value(&mut self, value: Value<'_>) -> u32 {
        let owned = OwnedValue::of(value);
        if let Some(id) = self.value_ids.get(&owned) {
            return *id;
        }
        #[expect(clippy::cast_possible_truncation, reason = "attributes of one tile")]
        let id = self.values.len() as u32;
        self.values.push(owned.clone());
        self.value_ids.insert(owned, id);
        id
    }

    /// Adds a polygon feature with attributes `(key, value)`.
    pub fn add_polygon<'a, V: Into<Value<'a>>>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, V)>,
        geometry: &PolygonGeometry,
    ) {
        if geometry.is_empty() {
            return;
        }
        self.add_feature(attributes, POLYGON, &geometry.commands);
    }

    /// Adds a line feature with attributes `(key, value)`.
    pub fn add_line<'a, V: Into<Value<'a>>>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, V)>,
        geometry: &LineGeometry,
    ) {
        if geometry.is_empty() {
            return;
        }
        self.add_feature(attributes, LINESTRING, &geometry.commands);
    }

    /// Adds a point feature (tile units) with attributes `(key, value)`.
    pub fn add_point<'a, V: Into<Value<'a>>>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, V)>,
        [x, y]: [i32; 2],
    ) {
        let commands = [command(MOVE_TO, 1), zigzag(x), zigzag(y)];
        self.add_feature(attributes, POINT, &commands);
    }

    fn add_feature<'a, V: Into<Value<'a>>>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, V)>,
        geometry_type: u64,
        commands: &[u32],
    ) {
        let mut tags = Vec::new();
        for (key, value) in attributes {
            tags.push(self.intern_key(key));
            tags.push(self.intern_value(value.into()));
        }
        let mut feature = Vec::with_capacity(commands.len() * 2 + tags.len() + 8);
        if !tags.is_empty() {
            put_packed(&mut feature, 2, &tags);
        }
        put_key(&mut feature, 3, VARINT);
        put_varint(&mut feature, geometry_type);
        put_packed(&mut feature, 4, commands);
        put_bytes(&mut self.features, 2, &feature);
    }

    /// The layer as a complete tile message (field 3 of `Tile`); empty when
    /// the layer has no feature, as `ST_AsMVT` of no rows.
    #[must_use]
    pub fn finish(self) -> Vec<u8> {
        if self.features.is_empty() {
            return Vec::new();
        }
        let mut layer = Vec::with_capacity(self.features.len() + 256);
        put_key(&mut layer, 15, VARINT);
        put_varint(&mut layer, 2);
        put_bytes(&mut layer, 1, self.name.as_bytes());
        layer.extend_from_slice(&self.features);
        for key in &self.keys {
            put_bytes(&mut layer, 3, key.as_bytes());
        }
        let mut message = Vec::new();
        for value in &self.values {
            message.clear();
            value.write(&mut message);
            put_bytes(&mut layer, 4, &message);
        }
        put_key(&mut layer, 5, VARINT);
        put_varint(&mut layer, u64::from(self.extent));
        let mut tile = Vec::with_capacity(layer.len() + 4);
        put_bytes(&mut tile, 3, &layer);
        tile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_follow_the_protobuf_encoding() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!([zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)], [0, 1, 2, 3]);
    }

    #[test]
    fn the_spec_example_polygon_encodes_as_the_spec_says() {
        // MVT spec 4.3.5.3: a polygon with one exterior ring.
        let mut geometry = PolygonGeometry::default();
        geometry.push_ring(&[[3, 6], [8, 12], [20, 34]]);
        assert_eq!(geometry.commands, [9, 6, 12, 18, 10, 12, 24, 44, 15]);
    }

    #[test]
    fn the_spec_example_point_encodes_as_the_spec_says() {
        // MVT spec 4.3.5.1: a point at (25, 17) is [9, 50, 34].
        let mut writer = LayerWriter::new("points", 4096);
        writer.add_point([("kind", "gap")], [25, 17]);
        let tile = writer.finish();
        assert!(tile.windows(4).any(|window| window == [0x22, 3, 9, 50]));
    }

    #[test]
    fn the_spec_example_line_encodes_as_the_spec_says() {
        // MVT spec 4.3.5.2: (2,2) (2,10) (10,10).
        let mut geometry = LineGeometry::default();
        geometry.push_line(&[[2, 2], [2, 10], [10, 10]]);
        assert_eq!(geometry.commands, [9, 4, 4, 18, 0, 16, 16, 0]);
    }

    #[test]
    fn integers_are_unsigned_or_zigzag_signed_values() {
        let mut out = Vec::new();
        OwnedValue::Integer(6).write(&mut out);
        assert_eq!(out, [5 << 3, 6]);
        out.clear();
        OwnedValue::Integer(-1).write(&mut out);
        assert_eq!(out, [6 << 3, 1]);
    }

    #[test]
    fn an_empty_layer_writes_nothing() {
        assert!(LayerWriter::new("grids", 4096).finish().is_empty());
    }
}
