//! Enumerations shown on the map. Each has a stable English wire name (used in
//! the database, the API and tiles) and the Chinese terms found in source data.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {what}; expected one of: {expected}")]
pub struct KindError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($variant:ident => $wire:literal [$($alias:literal),*]),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name stored in the database and sent in APIs and tiles.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// Accepts the wire name or any Chinese term used in source data.
            ///
            /// # Errors
            /// [`KindError`] listing the accepted wire names.
            pub fn parse(value: &str) -> Result<Self, KindError> {
                let trimmed = value.trim();
                $(
                    if trimmed.eq_ignore_ascii_case($wire) $(|| trimmed == $alias)* {
                        return Ok($name::$variant);
                    }
                )+
                Err(KindError {
                    what: $what,
                    value: value.to_owned(),
                    expected: concat!($($wire, " "),+),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Basic grids (基础网格) tile a community; exclusive grids (专属网格) cover a
    /// campus, mall, industrial park or office tower and tile together with them.
    GridKind, "grid kind" {
        Basic => "basic" ["基础网格", "基础"],
        Exclusive => "exclusive" ["专属网格", "专属"],
    }
}

wire_enum! {
    /// Weihai's five-colour grid management (网格五色管理法): the status a grid
    /// shows on the map, from calm (green) to needing attention (red).
    StatusColour, "status colour" {
        Green => "green" ["绿", "绿色"],
        Blue => "blue" ["蓝", "蓝色"],
        Yellow => "yellow" ["黄", "黄色"],
        Orange => "orange" ["橙", "橙色"],
        Red => "red" ["红", "红色"],
    }
}

wire_enum! {
    /// Service points on the map.
    StationKind, "station kind" {
        ServiceCentre => "service_centre" ["党群服务中心"],
        RedStation => "red_station" ["红色驿站"],
        GridStation => "grid_station" ["网格驿站", "网格党群服务站"],
        RiderRestStop => "rider_rest_stop" ["新就业群体驿站", "户外劳动者驿站", "先锋驿站"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wire_names_and_chinese_terms() {
        assert_eq!(GridKind::parse("专属网格"), Ok(GridKind::Exclusive));
        assert_eq!(GridKind::parse("basic"), Ok(GridKind::Basic));
        assert_eq!(StatusColour::parse("橙"), Ok(StatusColour::Orange));
        assert_eq!(
            StationKind::parse("新就业群体驿站"),
            Ok(StationKind::RiderRestStop)
        );
        for kind in StationKind::ALL {
            assert_eq!(StationKind::parse(kind.as_str()), Ok(*kind));
        }
    }

    #[test]
    fn unknown_value_lists_the_accepted_ones() {
        let err = StatusColour::parse("purple").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"purple\" is not a known status colour; expected one of: green blue yellow orange red "
        );
    }
}
