//! The internal `gap_findings` layer: the seamless-cover findings of
//! gridmap-topology for the whole city, street by street (as
//! `GET /api/v1/gaps` reports them), with each finding's geometry: the area
//! of a gap, overlap or spill, or the point of a finding that has only a
//! point (a grid without a worker, a service centre below standard).
//!
//! A snapshot keeps the findings per street, so a change re-runs the checks
//! of the streets whose extent meets it only. A grid or building lies in the
//! street its code starts with, so its old or new place meets that street
//! unless it was drawn wholly outside it.

use crate::circle_layer::number;
use crate::computed::{ComputedFeature, ComputedLayer};
use crate::layers::{find_any_layer, GAP_FINDING_INPUTS};
use crate::SnapshotError;
use gridmap_store::topology_queries::{load_topology, AreaFilter, TopologyRecords};
use gridmap_topology::{
    analyse, Building, Community, Finding, Grid, Parameters, Point, ServiceCentre, Tessellation,
};
use std::collections::BTreeMap;

/// The layer name.
pub const GAP_FINDINGS: &str = "gap_findings";

/// The records of the streets to (re)check, and every street that exists.
#[derive(Debug, Clone, Default)]
pub struct GapInputs {
    pub streets: Vec<(String, TopologyRecords)>,
    pub all_streets: Vec<String>,
}

/// Reads the records of every street (`changes` = `None`) or of the streets
/// whose extent meets one of `changes` (degrees; a `None` among them means
/// every street).
///
/// # Errors
/// [`SnapshotError`] when a read fails.
pub async fn fetch_gap_inputs(
    pool: &sqlx::PgPool,
    changes: Option<&[Option<[f64; 4]>]>,
) -> Result<GapInputs, SnapshotError> {
    let query_error = |source| SnapshotError::Query {
        layer: GAP_FINDINGS,
        source,
    };
    let streets: Vec<(String, f64, f64, f64, f64)> = sqlx::query_as(
        "SELECT code, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
           FROM streets ORDER BY code",
    )
    .fetch_all(pool)
    .await
    .map_err(query_error)?;
    let mut inputs = GapInputs {
        all_streets: streets.iter().map(|street| street.0.clone()).collect(),
        streets: Vec::new(),
    };
    for (code, west, south, east, north) in streets {
        let wanted = changes.is_none_or(|changes| {
            changes.iter().any(|change| {
                change.is_none_or(|[w, s, e, n]| west <= e && w <= east && south <= n && s <= north)
            })
        });
        if !wanted {
            continue;
        }
        let filter = AreaFilter::Street(code.clone());
        let records = load_topology(pool, &filter)
            .await
            .map_err(|source| SnapshotError::Store {
                layer: GAP_FINDINGS,
                source,
            })?
            .unwrap_or_default();
        inputs.streets.push((code, records));
    }
    Ok(inputs)
}

/// The findings of every street and the layer drawn from them.
#[derive(Debug)]
pub struct GapSnapshot {
    by_street: BTreeMap<String, Vec<ComputedFeature>>,
    layer: ComputedLayer,
}

impl GapSnapshot {
    /// Runs the checks of every street in `inputs` (CPU work: run it off the
    /// async workers).
    #[must_use]
    pub fn build(inputs: GapInputs) -> Self {
        Self::empty().update(inputs)
    }

    /// The snapshot with the streets of `inputs` checked again and streets
    /// that no longer exist dropped.
    #[must_use]
    pub fn update(&self, inputs: GapInputs) -> Self {
        let mut by_street = self.by_street.clone();
        by_street.retain(|code, _| inputs.all_streets.contains(code));
        let parameters = Parameters::default();
        for (code, records) in inputs.streets {
            let findings = analyse(&tessellation(records), &parameters);
            by_street.insert(code, findings.iter().map(feature).collect());
        }
        let features: Vec<ComputedFeature> = by_street.values().flatten().cloned().collect();
        Self {
            layer: ComputedLayer::build(def(), features),
            by_street,
        }
    }

    fn empty() -> Self {
        Self {
            by_street: BTreeMap::new(),
            layer: ComputedLayer::build(def(), Vec::new()),
        }
    }

    /// The drawn layer.
    #[must_use]
    pub fn layer(&self) -> &ComputedLayer {
        &self.layer
    }
}

fn def() -> &'static crate::LayerDef {
    find_any_layer(GAP_FINDINGS).expect("the catalogue lists gap_findings")
}

/// Whether a change of `table` may move a finding.
#[must_use]
pub fn gap_input(table: &str) -> bool {
    GAP_FINDING_INPUTS.contains(&table)
}

/// A finding as a tile feature: kind, codes joined by commas, area.
fn feature(finding: &Finding) -> ComputedFeature {
    (
        vec![
            Some(finding.kind.as_str().to_owned()),
            Some(finding.codes.join(",")),
            finding.area_m2.map(number),
        ],
        finding.geometry.clone(),
    )
}

/// The store's records as the model the checks read.
#[must_use]
pub fn tessellation(records: TopologyRecords) -> Tessellation {
    Tessellation::new(
        records
            .communities
            .into_iter()
            .map(|community| Community {
                code: community.code,
                polygon: community.geom,
            })
            .collect(),
        records
            .grids
            .into_iter()
            .map(|grid| Grid {
                code: grid.code,
                community_code: grid.community_code,
                polygon: grid.geom,
                has_worker: grid.has_worker,
                households: grid.households,
            })
            .collect(),
        records
            .buildings
            .into_iter()
            .map(|building| Building {
                code: building.code,
                grid_code: building.grid_code,
                polygon: building.geom,
            })
            .collect(),
        records
            .service_centres
            .into_iter()
            .map(|centre| ServiceCentre {
                code: centre.code,
                community_code: centre.community_code,
                area_m2: centre.area_m2,
                community_households: centre.community_households,
                location: Point::new(centre.lon, centre.lat),
            })
            .collect(),
    )
}
