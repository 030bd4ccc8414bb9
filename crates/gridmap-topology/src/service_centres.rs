//! [`ServiceCentreStandard`]: party-mass service centres big enough for their
//! community.

use crate::{Finding, FindingKind, Parameters, Tessellation};
use geo::Geometry;

/// Finds service centres with less floor area than the standard asks for
/// their community's households (Zibo: 30 m² per 100 households). Codes are
/// `[centre, community]`, `area_m2` is the centre's floor area, the geometry
/// its location. A centre whose area is unknown is reported too, with no area,
/// for a community that has households: the standard cannot be shown to hold.
pub trait ServiceCentreStandard {
    fn service_centre_standard(&self, parameters: &Parameters) -> Vec<Finding>;
}

impl ServiceCentreStandard for Tessellation {
    fn service_centre_standard(&self, parameters: &Parameters) -> Vec<Finding> {
        self.service_centres
            .iter()
            .filter(|centre| {
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "household counts stay far below 2^52"
                )]
                let required = centre.community_households as f64 / 100.0
                    * parameters.service_centre_m2_per_100_households;
                match centre.area_m2 {
                    Some(area) => area < required,
                    None => required > 0.0,
                }
            })
            .map(|centre| Finding {
                kind: FindingKind::ServiceCentreBelowStandard,
                codes: vec![centre.code.clone(), centre.community_code.clone()],
                area_m2: centre.area_m2,
                geometry: Geometry::Point(centre.location),
                point: centre.location,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceCentre;
    use geo::Point;

    fn centre(code: &str, area_m2: Option<f64>, community_households: i64) -> ServiceCentre {
        ServiceCentre {
            code: code.to_owned(),
            community_code: "370681001001".to_owned(),
            area_m2,
            community_households,
            location: Point::new(120.4, 37.6),
        }
    }

    #[test]
    fn thirty_square_metres_per_hundred_households() {
        let tessellation = Tessellation::new(
            vec![],
            vec![],
            vec![],
            vec![
                centre("exact", Some(300.0), 1_000),
                centre("small", Some(299.0), 1_000),
                centre("unknown", None, 1_000),
                centre("empty", None, 0),
            ],
        );
        let codes: Vec<String> = tessellation
            .service_centre_standard(&Parameters::default())
            .into_iter()
            .map(|finding| finding.codes[0].clone())
            .collect();
        assert_eq!(codes, ["small", "unknown"]);
    }
}
