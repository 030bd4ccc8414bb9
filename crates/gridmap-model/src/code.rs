//! Hierarchical administrative codes, in the spirit of GB/T 30428.1: a child's
//! code is its parent's code followed by a fixed number of digits.

use std::fmt;

/// One level of the administrative chain, with the length of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    District,
    Street,
    Community,
    Grid,
    GridUnit,
    Building,
}

impl Level {
    /// Number of digits of a code at this level.
    #[must_use]
    pub const fn code_len(self) -> usize {
        match self {
            Level::District => 6,
            Level::Street => 9,
            Level::Community => 12,
            Level::Grid => 15,
            Level::GridUnit => 18,
            Level::Building => 22,
        }
    }

    /// The level directly above, whose code prefixes this level's codes.
    #[must_use]
    pub const fn parent(self) -> Option<Level> {
        match self {
            Level::District => None,
            Level::Street => Some(Level::District),
            Level::Community => Some(Level::Street),
            Level::Grid => Some(Level::Community),
            Level::GridUnit => Some(Level::Grid),
            // A building is numbered inside its grid unit.
            Level::Building => Some(Level::GridUnit),
        }
    }

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::District => "district",
            Level::Street => "street",
            Level::Community => "community",
            Level::Grid => "grid",
            Level::GridUnit => "grid_unit",
            Level::Building => "building",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{level} code {code:?} must be {expected} digits, found {found} characters")]
    Length {
        level: Level,
        code: String,
        expected: usize,
        found: usize,
    },
    #[error("{level} code {code:?} must contain only ASCII digits")]
    NotDigits { level: Level, code: String },
    #[error("{level} code {code:?} does not start with its parent's code {parent:?}")]
    NotUnderParent {
        level: Level,
        code: String,
        parent: String,
    },
}

/// A validated code at a known level of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdminCode {
    level: Level,
    code: String,
}

impl AdminCode {
    /// Checks length and digits for `level`.
    ///
    /// # Errors
    /// [`CodeError::Length`] or [`CodeError::NotDigits`] naming the code.
    pub fn parse(level: Level, code: &str) -> Result<Self, CodeError> {
        let code = code.trim();
        if code.len() != level.code_len() {
            return Err(CodeError::Length {
                level,
                code: code.to_owned(),
                expected: level.code_len(),
                found: code.chars().count(),
            });
        }
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::NotDigits {
                level,
                code: code.to_owned(),
            });
        }
        Ok(Self {
            level,
            code: code.to_owned(),
        })
    }

    /// Checks the code and that it lies under `parent`.
    ///
    /// # Errors
    /// As [`AdminCode::parse`], or [`CodeError::NotUnderParent`].
    pub fn parse_under(level: Level, code: &str, parent: &str) -> Result<Self, CodeError> {
        let parsed = Self::parse(level, code)?;
        if !parsed.code.starts_with(parent.trim()) {
            return Err(CodeError::NotUnderParent {
                level,
                code: parsed.code,
                parent: parent.trim().to_owned(),
            });
        }
        Ok(parsed)
    }

    #[must_use]
    pub fn level(&self) -> Level {
        self.level
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.code
    }

    /// The code of the enclosing unit one level up, if any.
    #[must_use]
    pub fn parent_code(&self) -> Option<&str> {
        self.level.parent().map(|p| &self.code[..p.code_len()])
    }
}

impl fmt::Display for AdminCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(level: Level, code: &str, parent: &str, ok: bool) {
        assert_eq!(
            AdminCode::parse_under(level, code, parent).is_ok(),
            ok,
            "{level} {code} under {parent}"
        );
    }

    #[test]
    fn codes_nest_under_their_parent() {
        check(Level::Street, "370681001", "370681", true);
        check(Level::Community, "370681001001", "370681001", true);
        check(Level::Grid, "370681001001001", "370681001001", true);
        check(Level::Grid, "370681001002001", "370681001001", false);
        check(Level::Grid, "37068100100100", "370681001001", false);
        check(Level::Grid, "37068100100100a", "370681001001", false);
        check(
            Level::GridUnit,
            "370681001001001001",
            "370681001001001",
            true,
        );
    }

    #[test]
    fn parent_code_is_the_prefix() {
        let grid = AdminCode::parse(Level::Grid, "370681001001007").unwrap();
        assert_eq!(grid.parent_code(), Some("370681001001"));
        let district = AdminCode::parse(Level::District, "370681").unwrap();
        assert_eq!(district.parent_code(), None);
    }

    #[test]
    fn length_error_names_the_code() {
        let err = AdminCode::parse(Level::Community, "3706810010").unwrap_err();
        assert_eq!(
            err.to_string(),
            "community code \"3706810010\" must be 12 digits, found 10 characters"
        );
    }
}
