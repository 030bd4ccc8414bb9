//! The walking parameters and their defaults.

use crate::CircleError;
use serde::{Deserialize, Serialize};

/// How far, how fast and how wide a circle is.
///
/// The defaults follow common planning practice: an adult walks about
/// 1.2 m/s (72 m/min), so the 15-minute circle reaches 1,080 m of network
/// distance and the 10-minute one 720 m. GB 50180-2018 sizes the 10-minute
/// life circle at about 500 m and the 15-minute one at 800–1,000 m of walking
/// distance; a planner who wants those figures lowers `speed_m_s` (500 m in
/// 10 minutes is 0.83 m/s), which is why the speed is a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// Minutes of walking.
    pub minutes: f64,
    /// Walking speed in metres per second.
    pub speed_m_s: f64,
    /// Half-width of the strip along each reached road that counts as served
    /// (the buildings that front the road).
    pub frontage_m: f64,
    /// A station farther than this from every road node gets a straight-line
    /// circle instead of a network one.
    pub max_snap_m: f64,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            minutes: 15.0,
            speed_m_s: 1.2,
            frontage_m: 50.0,
            max_snap_m: 200.0,
        }
    }
}

impl Parameters {
    /// The walking distance in metres: speed × minutes.
    #[must_use]
    pub fn limit_m(&self) -> f64 {
        self.speed_m_s * self.minutes * 60.0
    }

    /// The parameters if each lies in its meaningful range.
    ///
    /// # Errors
    /// [`CircleError::Parameter`] naming the first parameter out of range.
    pub fn validated(self) -> Result<Self, CircleError> {
        check("minutes", "in (0, 120]", self.minutes, 0.0, 120.0)?;
        check("speed_m_s", "in (0, 5]", self.speed_m_s, 0.0, 5.0)?;
        check("frontage_m", "in (0, 500]", self.frontage_m, 0.0, 500.0)?;
        check("max_snap_m", "in (0, 5000]", self.max_snap_m, 0.0, 5000.0)?;
        Ok(self)
    }
}

/// Accepts `value` in the half-open range (`low`, `high`]; NaN fails too.
fn check(
    name: &'static str,
    range: &'static str,
    value: f64,
    low: f64,
    high: f64,
) -> Result<(), CircleError> {
    if value > low && value <= high {
        return Ok(());
    }
    Err(CircleError::Parameter { name, range, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_reach_1080_m() {
        let parameters = Parameters::default().validated().unwrap();
        assert!((parameters.limit_m() - 1080.0).abs() < 1e-9);
    }

    #[test]
    fn rejects_out_of_range_values() {
        for parameters in [
            Parameters {
                minutes: 0.0,
                ..Parameters::default()
            },
            Parameters {
                speed_m_s: f64::NAN,
                ..Parameters::default()
            },
            Parameters {
                frontage_m: -1.0,
                ..Parameters::default()
            },
        ] {
            assert!(parameters.validated().is_err());
        }
    }
}
