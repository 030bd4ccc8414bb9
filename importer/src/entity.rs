//! The kinds of layer the importer loads, one per database table.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use gridmap_model::Level;

/// A layer kind, named after the table it fills.
///
/// The declaration order is the dependency order: a layer's parents always come
/// before it, so sorting sources by entity loads parents first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Districts,
    Streets,
    Communities,
    Grids,
    GridUnits,
    Buildings,
    Addresses,
    Stations,
    Roads,
    /// Departmental grids of 多网合一, kept as overlays.
    DepartmentGrids,
    /// Rider activity reports: points with a time, no rider identity.
    RiderReports,
    /// The people who staff each grid (网格员, 网格长): a roster without
    /// geometry, personal data.
    GridWorkers,
}

/// A name that is none of the entities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a layer kind; expected one of: {expected}", expected = Entity::NAMES)]
pub struct UnknownEntity {
    pub name: String,
}

impl Entity {
    /// Every layer of the map, in dependency order. Rider reports
    /// ([`Entity::RiderReports`]) are activity records rather than a layer of
    /// the map: they refer to nothing, nothing refers to them, and they are
    /// not listed here; nor are grid workers ([`Entity::GridWorkers`]), a
    /// roster of people without geometry.
    pub const ALL: [Entity; 10] = [
        Entity::Districts,
        Entity::Streets,
        Entity::Communities,
        Entity::Grids,
        Entity::GridUnits,
        Entity::Buildings,
        Entity::Addresses,
        Entity::Stations,
        Entity::Roads,
        Entity::DepartmentGrids,
    ];

    const NAMES: &'static str =
        "districts, streets, communities, grids, grid_units, buildings, addresses, stations, roads, department_grids, rider_reports, grid_workers";

    /// The entity's name, which is also its table's name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Districts => "districts",
            Entity::Streets => "streets",
            Entity::Communities => "communities",
            Entity::Grids => "grids",
            Entity::GridUnits => "grid_units",
            Entity::Buildings => "buildings",
            Entity::Addresses => "addresses",
            Entity::Stations => "stations",
            Entity::Roads => "roads",
            Entity::DepartmentGrids => "department_grids",
            Entity::RiderReports => "rider_reports",
            Entity::GridWorkers => "grid_workers",
        }
    }

    /// The table this entity is loaded into.
    #[must_use]
    pub const fn table(self) -> &'static str {
        self.as_str()
    }

    /// The level of the administrative chain whose codes this entity carries,
    /// if its codes are hierarchical.
    #[must_use]
    pub const fn level(self) -> Option<Level> {
        match self {
            Entity::Districts => Some(Level::District),
            Entity::Streets => Some(Level::Street),
            Entity::Communities => Some(Level::Community),
            Entity::Grids => Some(Level::Grid),
            Entity::GridUnits => Some(Level::GridUnit),
            Entity::Buildings => Some(Level::Building),
            Entity::Addresses
            | Entity::Stations
            | Entity::Roads
            | Entity::DepartmentGrids
            | Entity::RiderReports
            | Entity::GridWorkers => None,
        }
    }

    /// Recognises an entity from a file stem such as `grids` (of
    /// `grids.geojson`), ignoring case, accepting the singular, `-` for `_`,
    /// and the usual Chinese layer names (`网格`, `楼栋`, …).
    ///
    /// ```
    /// use gridmap_import::Entity;
    /// assert_eq!(Entity::from_file_stem("Grid-Units"), Some(Entity::GridUnits));
    /// assert_eq!(Entity::from_file_stem("楼栋"), Some(Entity::Buildings));
    /// assert_eq!(Entity::from_file_stem("grids_2024"), None);
    /// ```
    #[must_use]
    pub fn from_file_stem(stem: &str) -> Option<Entity> {
        let name = stem.trim().to_lowercase().replace('-', "_");
        let entity = match name.as_str() {
            "districts" | "district" | "区县" | "行政区" => Entity::Districts,
            "streets" | "street" | "街道" | "乡镇街道" => Entity::Streets,
            "communities" | "community" | "社区" | "村社区" => Entity::Communities,
            "grids" | "grid" | "网格" => Entity::Grids,
            "grid_units" | "grid_unit" | "gridunits" | "units" | "网格单元" => {
                Entity::GridUnits
            }
            "buildings" | "building" | "楼栋" => Entity::Buildings,
            "addresses" | "address" | "标准地址" | "地址" => Entity::Addresses,
            "stations" | "station" | "驿站" | "站点" => Entity::Stations,
            "roads" | "road" | "道路" => Entity::Roads,
            "department_grids" | "department_grid" | "部门网格" | "专业网格" => {
                Entity::DepartmentGrids
            }
            "rider_reports" | "rider_report" | "骑手上报" | "骑手活动" => {
                Entity::RiderReports
            }
            "grid_workers" | "grid_worker" | "workers" | "网格员" | "网格员名单"
            | "网格员花名册" => Entity::GridWorkers,
            _ => return None,
        };
        Some(entity)
    }

    /// Recognises an entity from a path's file stem (`data/grids.shp` → grids).
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Entity> {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(Entity::from_file_stem)
    }
}

impl FromStr for Entity {
    type Err = UnknownEntity;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Entity::from_file_stem(name).ok_or_else(|| UnknownEntity {
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_parses_from_its_own_name() {
        for entity in Entity::ALL
            .into_iter()
            .chain([Entity::RiderReports, Entity::GridWorkers])
        {
            assert_eq!(entity.as_str().parse::<Entity>(), Ok(entity));
        }
        assert_eq!("网格员".parse::<Entity>(), Ok(Entity::GridWorkers));
    }

    #[test]
    fn all_is_in_declaration_order() {
        let mut sorted = Entity::ALL;
        sorted.sort();
        assert_eq!(sorted, Entity::ALL);
        // Rider reports load after every layer of the map.
        assert!(Entity::ALL
            .iter()
            .all(|entity| *entity < Entity::RiderReports));
    }

    #[test]
    fn stems_are_recognised_from_paths() {
        assert_eq!(
            Entity::from_path(Path::new("out/longkou/grid_units.geojson")),
            Some(Entity::GridUnits)
        );
        assert_eq!(
            Entity::from_path(Path::new("GRIDS.SHP")),
            Some(Entity::Grids)
        );
        assert_eq!(Entity::from_path(Path::new("survey.gpkg")), None);
        assert_eq!(
            Entity::from_path(Path::new("out/longkou/rider_reports.geojson")),
            Some(Entity::RiderReports)
        );
        let err = "parcels".parse::<Entity>().unwrap_err();
        assert!(err.to_string().contains("grid_units"), "{err}");
    }
}
