//! A Mapbox Vector Tile 2.1 writer for polygon and point layers with string attributes:
//! the protobuf wire format written by hand (varints, zigzag deltas, packed
//! fields), which is all the in-process layers need.

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

    fn push_point(&mut self, [x, y]: [i32; 2]) {
        self.commands.push(zigzag(x - self.cursor[0]));
        self.commands.push(zigzag(y - self.cursor[1]));
        self.cursor = [x, y];
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
    values: Vec<String>,
    value_ids: HashMap<String, u32>,
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

    fn intern(list: &mut Vec<String>, ids: &mut HashMap<String, u32>, text: &str) -> u32 {
        if let Some(id) = ids.get(text) {
            return *id;
        }
        #[expect(clippy::cast_possible_truncation, reason = "attributes of one tile")]
        let id = list.len() as u32;
        list.push(text.to_owned());
        ids.insert(text.to_owned(), id);
        id
    }

    /// Adds a polygon feature with string attributes `(key, value)`.
    pub fn add_polygon<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
        geometry: &PolygonGeometry,
    ) {
        if geometry.is_empty() {
            return;
        }
        self.add_feature(attributes, POLYGON, &geometry.commands);
    }

    /// Adds a point feature (tile units) with string attributes `(key, value)`.
    pub fn add_point<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
        [x, y]: [i32; 2],
    ) {
        let commands = [command(MOVE_TO, 1), zigzag(x), zigzag(y)];
        self.add_feature(attributes, POINT, &commands);
    }

    fn add_feature<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
        geometry_type: u64,
        commands: &[u32],
    ) {
        let mut tags = Vec::new();
        for (key, value) in attributes {
            tags.push(Self::intern(&mut self.keys, &mut self.key_ids, key));
            tags.push(Self::intern(&mut self.values, &mut self.value_ids, value));
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
        for value in &self.values {
            let mut message = Vec::with_capacity(value.len() + 2);
            put_bytes(&mut message, 1, value.as_bytes());
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
    fn an_empty_layer_writes_nothing() {
        assert!(LayerWriter::new("grids", 4096).finish().is_empty());
    }
}
