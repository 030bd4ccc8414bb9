//! [`Parameters`]: the tolerances and standards the checks apply.

/// What the checks count as a defect.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    /// Pieces of gap, overlap or spill smaller than this (m²) are ignored:
    /// digitising noise leaves slivers nobody should be sent to fix.
    pub min_area_m2: f64,
    /// A grid with more households than this is over the limit.
    pub household_limit: i64,
    /// Service-centre floor area required per 100 households (m²); Zibo sets 30.
    pub service_centre_m2_per_100_households: f64,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            min_area_m2: 1.0,
            household_limit: 500,
            service_centre_m2_per_100_households: 30.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopologyError {
    #[error("min_area_m2 must be a finite number ≥ 0, got {0}")]
    MinArea(f64),
    #[error("household_limit must be ≥ 0, got {0}")]
    HouseholdLimit(i64),
    #[error("service-centre standard must be a finite number ≥ 0 m² per 100 households, got {0}")]
    ServiceCentreStandard(f64),
}

impl Parameters {
    /// Checks that every value is one a planner could mean.
    ///
    /// # Errors
    /// The first parameter that is negative or not finite.
    pub fn validated(self) -> Result<Self, TopologyError> {
        if !(self.min_area_m2.is_finite() && self.min_area_m2 >= 0.0) {
            return Err(TopologyError::MinArea(self.min_area_m2));
        }
        if self.household_limit < 0 {
            return Err(TopologyError::HouseholdLimit(self.household_limit));
        }
        let standard = self.service_centre_m2_per_100_households;
        if !(standard.is_finite() && standard >= 0.0) {
            return Err(TopologyError::ServiceCentreStandard(standard));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_meaningless_values() {
        assert!(Parameters::default().validated().is_ok());
        let bad_area = Parameters {
            min_area_m2: f64::NAN,
            ..Parameters::default()
        };
        assert!(matches!(
            bad_area.validated(),
            Err(TopologyError::MinArea(_))
        ));
        let bad_limit = Parameters {
            household_limit: -1,
            ..Parameters::default()
        };
        assert_eq!(
            bad_limit.validated(),
            Err(TopologyError::HouseholdLimit(-1))
        );
    }
}
