//! The public tile layers. Columns are SQL expressions over the layer's table,
//! chosen here once: a column that is not listed can never reach a tile, which
//! is how personal data (grid workers, phone numbers) is kept out.

/// One tile layer backed by one table.
#[derive(Debug, Clone, Copy)]
pub struct LayerDef {
    /// Layer name in URLs, TileJSON and the MVT `layer.name`.
    pub name: &'static str,
    pub description: &'static str,
    pub table: &'static str,
    /// `(sql expression, attribute name, description)`.
    pub columns: &'static [(&'static str, &'static str, &'static str)],
    pub minzoom: u8,
    pub maxzoom: u8,
}

/// Every public layer, from the largest units down.
pub const LAYERS: &[LayerDef] = &[
    LayerDef {
        name: "districts",
        description: "County-level districts (区县)",
        table: "districts",
        columns: &[
            ("code", "code", "6-digit administrative code"),
            ("name", "name", "name"),
        ],
        minzoom: 0,
        maxzoom: 16,
    },
    LayerDef {
        name: "streets",
        description: "Street offices and towns (街道/镇)",
        table: "streets",
        columns: &[
            ("code", "code", "9-digit code"),
            ("name", "name", "name"),
            ("district_code", "district_code", "code of the district"),
        ],
        minzoom: 6,
        maxzoom: 16,
    },
    LayerDef {
        name: "communities",
        description: "Communities and villages (社区/村)",
        table: "communities",
        columns: &[
            ("code", "code", "12-digit code"),
            ("name", "name", "name"),
            ("street_code", "street_code", "code of the street"),
            ("kind", "kind", "urban or village"),
        ],
        minzoom: 8,
        maxzoom: 16,
    },
    LayerDef {
        name: "grids",
        description: "Basic and exclusive grids (网格) with their five-colour status",
        table: "grids",
        columns: &[
            ("code", "code", "15-digit grid code"),
            ("name", "name", "name"),
            ("kind", "kind", "basic or exclusive"),
            ("status", "status", "green, blue, yellow, orange or red"),
            ("community_code", "community_code", "code of the community"),
        ],
        minzoom: 9,
        maxzoom: 16,
    },
    LayerDef {
        name: "grid_units",
        description: "Grid units (网格单元): a building or about 100 households",
        table: "grid_units",
        columns: &[
            ("code", "code", "18-digit code"),
            ("name", "name", "name"),
            ("grid_code", "grid_code", "code of the grid"),
        ],
        minzoom: 13,
        maxzoom: 16,
    },
    LayerDef {
        name: "buildings",
        description: "Buildings (楼栋)",
        table: "buildings",
        columns: &[
            ("code", "code", "22-digit building code"),
            ("name", "name", "name"),
            ("floors", "floors", "number of floors"),
            ("grid_code", "grid_code", "code of the grid"),
        ],
        minzoom: 14,
        maxzoom: 16,
    },
    LayerDef {
        name: "stations",
        description: "Service centres, red stations, grid stations and rider rest stops",
        table: "stations",
        columns: &[
            ("code", "code", "station code"),
            ("name", "name", "name"),
            (
                "kind",
                "kind",
                "service_centre, red_station, grid_station or rider_rest_stop",
            ),
            (
                "array_to_string(amenities, '、')",
                "amenities",
                "amenities joined by 、",
            ),
            ("community_code", "community_code", "code of the community"),
        ],
        minzoom: 11,
        maxzoom: 16,
    },
    LayerDef {
        name: "roads",
        description: "The walkable network",
        table: "roads",
        columns: &[
            (
                "class",
                "class",
                "primary, secondary, residential or footway",
            ),
            ("name", "name", "name"),
        ],
        minzoom: 11,
        maxzoom: 16,
    },
];

/// The layer called `name`, if it exists.
#[must_use]
pub fn find_layer(name: &str) -> Option<&'static LayerDef> {
    LAYERS.iter().find(|layer| layer.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_personal_column_is_public() {
        for layer in LAYERS {
            for (expr, attr, _) in layer.columns {
                for private in ["worker", "phone", "households"] {
                    assert!(
                        !expr.contains(private) && !attr.contains(private),
                        "{}.{attr} would publish {private}",
                        layer.name
                    );
                }
            }
        }
    }

    #[test]
    fn names_are_unique_and_zooms_ordered() {
        for (i, layer) in LAYERS.iter().enumerate() {
            assert!(layer.minzoom <= layer.maxzoom, "{}", layer.name);
            assert!(LAYERS[i + 1..].iter().all(|other| other.name != layer.name));
            assert!(find_layer(layer.name).is_some());
        }
        assert!(find_layer("workers").is_none());
    }
}
