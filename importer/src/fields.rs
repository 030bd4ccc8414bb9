//! The source-file contract in one table: for every layer, each database column,
//! the source field names accepted for it (matched ignoring case), how its
//! value is checked, and which codes must nest inside which.
//!
//! Source data comes with pinyin abbreviations (`WGBM`), Chinese names
//! (`网格编码`) or the column name itself; keeping all of them here, rather
//! than spread over the readers, lets the report show exactly which source
//! field fed which column.

use gridmap_model::{GridKind, KindError, Level, StationKind, StatusColour};

use crate::Entity;

/// The geometry a layer must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryKind {
    /// Polygon or MultiPolygon, stored as MultiPolygon.
    Area,
    /// Point (a MultiPoint of one point is taken).
    Point,
    /// LineString (a MultiLineString of one part is taken).
    Line,
    /// No geometry: a table of records such as a roster of grid workers; a
    /// geometry in the source is ignored.
    None,
}

/// How a field's text is checked and converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A hierarchical code of this level (length, digits).
    Code(Level),
    /// A free-form identifier such as an address or station code.
    Id,
    /// Free text.
    Text,
    /// A closed vocabulary mapped to its wire name.
    Choice(Choice),
    /// A whole number no smaller than `min`.
    Integer { min: i32 },
    /// A number strictly greater than zero.
    PositiveReal,
    /// A list joined by `、`, `,` or `，`.
    List,
    /// A Chinese phone number: a mobile (`13800000000`, also written with
    /// `+86`, spaces or dashes) or a landline with its area code
    /// (`0535-8123456`, `(0535)8123456`, an extension after a second `-`),
    /// stored as `13800000000` or `0535-8123456`.
    Phone,
    /// A date and time, `2026-10-05 08:30:00`, `2026/10/05 08:30`,
    /// `2026年10月5日 8:30`, RFC 3339 (`2026-10-05T00:30:00Z`) or a date
    /// alone; without an offset it is China Standard Time (UTC+8), the time
    /// Chinese source systems record.
    Time,
}

/// The closed vocabularies, each accepting wire names and Chinese terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    GridKind,
    StatusColour,
    StationKind,
    CommunityKind,
    RoadClass,
    RiderReportKind,
    WorkerRole,
}

impl Choice {
    /// Maps a source value to the wire name stored in the database.
    ///
    /// # Errors
    /// A sentence naming the value and the accepted ones.
    pub fn parse(self, value: &str) -> Result<&'static str, String> {
        let text = |err: KindError| err.to_string().trim_end().to_owned();
        match self {
            Choice::GridKind => GridKind::parse(value).map(GridKind::as_str).map_err(text),
            Choice::StatusColour => StatusColour::parse(value)
                .map(StatusColour::as_str)
                .map_err(text),
            Choice::StationKind => StationKind::parse(value)
                .map(StationKind::as_str)
                .map_err(text),
            Choice::CommunityKind => lookup(value, "community kind", COMMUNITY_KINDS),
            Choice::RoadClass => lookup(value, "road class", ROAD_CLASSES),
            Choice::RiderReportKind => lookup(value, "rider report kind", RIDER_REPORT_KINDS),
            Choice::WorkerRole => lookup(value, "grid worker post", WORKER_ROLES),
        }
    }
}

/// Community kinds: a residents' committee (社区居委会) or a village (村委会).
const COMMUNITY_KINDS: &[(&str, &[&str])] = &[
    ("urban", &["社区", "居委会", "社区居委会", "城市社区"]),
    ("village", &["村", "村委会", "行政村", "农村社区"]),
];

/// Road classes of the walking network, after CJJ 37 street classes.
/// The OpenStreetMap `highway` values of walkable ways are aliases too.
const ROAD_CLASSES: &[(&str, &[&str])] = &[
    (
        "primary",
        &["主干路", "主干道", "trunk", "primary_link", "trunk_link"],
    ),
    (
        "secondary",
        &[
            "次干路",
            "次干道",
            "secondary_link",
            "tertiary",
            "tertiary_link",
        ],
    ),
    (
        "residential",
        &[
            "支路",
            "小区道路",
            "living_street",
            "service",
            "unclassified",
        ],
    ),
    (
        "footway",
        &["步行道", "人行道", "步道", "path", "pedestrian", "steps"],
    ),
];

/// What a rider activity report is about: resting (or asking where to rest),
/// an order picked up or handed over, a lead sent to the grid (riders double
/// as part-time grid workers and report what they see, 随手拍), or other.
const RIDER_REPORT_KINDS: &[(&str, &[&str])] = &[
    ("rest", &["休息", "歇脚", "驿站休息", "求助休息"]),
    (
        "delivery",
        &["配送", "送餐", "取餐", "派件", "取件", "送达"],
    ),
    ("lead", &["线索", "随手拍", "隐患", "事件上报", "上报线索"]),
    ("other", &["其他", "其它"]),
];

/// A grid worker's post: full-time grid worker (the 一网一员 of a grid), grid
/// leader (often a community cadre over several grids), part-time worker.
const WORKER_ROLES: &[(&str, &[&str])] = &[
    (
        "full_time",
        &["专职网格员", "专职", "网格员", "专职网格管理员"],
    ),
    ("grid_leader", &["网格长", "网格组长", "网格负责人"]),
    ("part_time", &["兼职网格员", "兼职", "网格信息员", "志愿者"]),
];

/// Normalises a Chinese phone number: a mobile becomes its 11 digits, a
/// landline `AREA-NUMBER[-EXTENSION]`.
///
/// # Errors
/// A sentence naming the value and the accepted forms.
pub fn normalise_phone(value: &str) -> Result<String, String> {
    let refuse = || {
        format!(
            "phone {value:?} is neither a mobile number (11 digits such as 13800000000) \
             nor a landline with its area code (such as 0535-8123456)"
        )
    };
    // Spreadsheets turn 13800000000 into 13800000000.0; full-width
    // brackets and dashes come from Chinese input methods.
    let text: String = value
        .trim()
        .trim_end_matches(".0")
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '－' | '—' | '–' => '-',
            other => other,
        })
        .collect();
    let text = text
        .strip_prefix("+86")
        .or_else(|| text.strip_prefix("0086"))
        .map_or(text.as_str(), |rest| rest.trim_start_matches('-'));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '(' | ')'))
    {
        return Err(refuse());
    }
    let digits = if digits.len() == 13 && digits.starts_with("86") && !text.starts_with('0') {
        digits[2..].to_owned()
    } else {
        digits
    };
    let mobile = digits.len() == 11
        && digits.starts_with('1')
        && matches!(digits.as_bytes()[1], b'3'..=b'9');
    if mobile {
        return Ok(digits);
    }
    // A landline: "(0535)8123456", "0535-8123456", "0535-8123456-201", or
    // its digits alone ("05358123456"), where the area code cannot be told.
    let bracketed = text.replace('(', "").replace(')', "-");
    let parts: Vec<&str> = bracketed
        .split('-')
        .filter(|part| !part.is_empty())
        .collect();
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let area = |part: &str| part.starts_with('0') && (3..=4).contains(&part.len());
    let number = |part: &str| !part.starts_with('0') && (7..=8).contains(&part.len());
    if !parts.iter().all(|part| all_digits(part)) {
        return Err(refuse());
    }
    match parts.as_slice() {
        [whole] if whole.starts_with('0') && (10..=12).contains(&whole.len()) => {
            Ok((*whole).to_owned())
        }
        [code, local] if area(code) && number(local) => Ok(format!("{code}-{local}")),
        [code, local, extension]
            if area(code) && number(local) && (1..=6).contains(&extension.len()) =>
        {
            Ok(format!("{code}-{local}-{extension}"))
        }
        _ => Err(refuse()),
    }
}

fn lookup(
    value: &str,
    what: &str,
    table: &[(&'static str, &[&str])],
) -> Result<&'static str, String> {
    let trimmed = value.trim();
    table
        .iter()
        .find(|(wire, aliases)| trimmed.eq_ignore_ascii_case(wire) || aliases.contains(&trimmed))
        .map(|(wire, _)| *wire)
        .ok_or_else(|| {
            let expected: Vec<String> = table
                .iter()
                .map(|(wire, aliases)| format!("{wire} ({})", aliases.join("/")))
                .collect();
            format!(
                "{value:?} is not a known {what}; expected one of: {}",
                expected.join(", ")
            )
        })
}

/// One database column and the source fields that may feed it.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// The database column.
    pub column: &'static str,
    /// Source field names accepted for it, in order of preference, matched
    /// ignoring case.
    pub aliases: &'static [&'static str],
    pub value: ValueKind,
    /// Whether every feature must carry a non-empty value.
    pub required: bool,
    /// The wire value used when an optional field is absent or empty.
    pub default: Option<&'static str>,
    /// The layer whose code this column refers to; the code must exist in the
    /// database or in the same import.
    pub references: Option<Entity>,
}

impl FieldSpec {
    const fn new(column: &'static str, aliases: &'static [&'static str], value: ValueKind) -> Self {
        Self {
            column,
            aliases,
            value,
            required: false,
            default: None,
            references: None,
        }
    }

    const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    const fn default(self, wire: &'static str) -> Self {
        Self {
            default: Some(wire),
            ..self
        }
    }

    const fn references(self, entity: Entity) -> Self {
        Self {
            references: Some(entity),
            ..self
        }
    }
}

/// Everything the importer knows about one layer kind.
#[derive(Debug, Clone, Copy)]
pub struct LayerSpec {
    pub entity: Entity,
    pub geometry: GeometryKind,
    pub fields: &'static [FieldSpec],
    /// The column that identifies a row and must be unique; roads have none.
    pub key: Option<&'static str>,
    /// The column within whose values `key` is unique, when it is unique only
    /// there: a grid worker's name within the grid (`grid_code`).
    pub key_scope: Option<&'static str>,
    /// Pairs (child column, parent column): the child's code must start with
    /// the parent's, as GB/T 30428.1-style codes nest.
    pub nesting: &'static [(&'static str, &'static str)],
    /// Source fields that identify a person and are never imported into this
    /// layer (see [`LayerSpec::is_personal`]); the report lists those found.
    pub personal: Personal,
}

/// Source field names that identify a person: exact names (ignoring case)
/// and fragments any field name containing them is taken to be personal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personal {
    pub names: &'static [&'static str],
    pub fragments: &'static [&'static str],
}

impl Personal {
    /// Nothing is personal: the layer's columns hold no personal data, or
    /// hold it by design (a grid's worker) behind access control.
    pub const NONE: Personal = Personal {
        names: &[],
        fragments: &[],
    };
}

/// Rider reports keep no rider identity: names, phones, rider or platform
/// account numbers, ID cards, WeChat or device ids are dropped.
const RIDER_PERSONAL: Personal = Personal {
    names: &[
        "name",
        "tel",
        "名字",
        "user_id",
        "userid",
        "uid",
        "account",
        "账号",
        "工号",
        "device_id",
        "openid",
    ],
    fragments: &[
        "姓名",
        "手机",
        "电话",
        "身份证",
        "骑手",
        "rider",
        "courier",
        "phone",
        "mobile",
        "idcard",
        "id_card",
        "wechat",
        "微信",
    ],
};

impl LayerSpec {
    /// The specification of `entity`.
    #[must_use]
    pub fn of(entity: Entity) -> &'static LayerSpec {
        // LAYERS lists every entity in declaration order, so indexing by the
        // discriminant always finds the right one; the unit test below guards it.
        &LAYERS[entity as usize]
    }

    /// Whether the source field `name` identifies a person and must not be
    /// imported into this layer.
    #[must_use]
    pub fn is_personal(&self, name: &str) -> bool {
        let lower = name.trim().to_lowercase();
        self.personal
            .names
            .iter()
            .any(|personal| lower == *personal)
            || self
                .personal
                .fragments
                .iter()
                .any(|fragment| lower.contains(fragment))
    }

    /// The columns that together identify a row: the scope, then the key.
    #[must_use]
    pub fn key_columns(&self) -> Vec<&'static str> {
        self.key_scope.into_iter().chain(self.key).collect()
    }

    /// The key as one text expression over columns prefixed with `prefix`
    /// (`t.`): the key column, or scope and key joined by a space
    /// (`370681001001001 张三`; a grid code holds no space, so the join is
    /// unambiguous). `None` for a layer without key.
    #[must_use]
    pub fn key_sql(&self, prefix: &str) -> Option<String> {
        let key = self.key?;
        Some(match self.key_scope {
            Some(scope) => format!("({prefix}{scope} || ' ' || {prefix}{key})"),
            None => format!("{prefix}{key}"),
        })
    }

    /// The position of `column` in [`LayerSpec::fields`].
    #[must_use]
    pub fn field_index(&self, column: &str) -> Option<usize> {
        self.fields.iter().position(|field| field.column == column)
    }
}

/// A grid worker roster carries names and phones by design; only ID-card
/// numbers (身份证号, SFZH) are never imported.
const ID_CARD: Personal = Personal {
    names: &["sfzh", "sfzhm", "zjhm", "sfz"],
    fragments: &["身份证", "证件号", "idcard", "id_card", "id_no", "identity"],
};

use Choice as C;
use Level as L;
use ValueKind as V;

// Fields that refer to a parent layer carry the parent's own code field name.
const DISTRICT_CODE: &[&str] = &[
    "XZQDM",
    "行政区代码",
    "行政区划代码",
    "区县代码",
    "district_code",
];
const STREET_CODE: &[&str] = &["JDDM", "JDBM", "街道代码", "街道编码", "street_code"];
const COMMUNITY_CODE: &[&str] = &["SQDM", "SQBM", "社区代码", "社区编码", "community_code"];
const GRID_CODE: &[&str] = &["WGBM", "WGDM", "网格编码", "网格代码", "grid_code"];
const UNIT_CODE: &[&str] = &["DYBM", "单元编码", "网格单元编码", "unit_code"];
const BUILDING_CODE: &[&str] = &["LDBM", "楼栋编码", "建筑编码", "building_code"];

/// The alias table, one entry per entity in dependency order.
// One field per line reads as a table; rustfmt would break each over six lines.
#[rustfmt::skip]
pub const LAYERS: &[LayerSpec] = &[
    LayerSpec {
        entity: Entity::Districts,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["XZQDM", "行政区代码", "行政区划代码", "区县代码", "code"], V::Code(L::District)).required(),
            FieldSpec::new("name", &["XZQMC", "行政区名称", "区县名称", "name"], V::Text).required(),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Streets,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["JDDM", "JDBM", "街道代码", "街道编码", "code"], V::Code(L::Street)).required(),
            FieldSpec::new("name", &["JDMC", "街道名称", "name"], V::Text).required(),
            FieldSpec::new("district_code", DISTRICT_CODE, V::Code(L::District)).required().references(Entity::Districts),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[("code", "district_code")],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Communities,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["SQDM", "SQBM", "社区代码", "社区编码", "code"], V::Code(L::Community)).required(),
            FieldSpec::new("name", &["SQMC", "社区名称", "name"], V::Text).required(),
            FieldSpec::new("street_code", STREET_CODE, V::Code(L::Street)).required().references(Entity::Streets),
            FieldSpec::new("kind", &["SQLX", "社区类型", "kind"], V::Choice(C::CommunityKind)).default("urban"),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[("code", "street_code")],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Grids,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["WGBM", "WGDM", "网格编码", "网格代码", "code"], V::Code(L::Grid)).required(),
            FieldSpec::new("name", &["WGMC", "网格名称", "name"], V::Text).required(),
            FieldSpec::new("community_code", COMMUNITY_CODE, V::Code(L::Community)).required().references(Entity::Communities),
            FieldSpec::new("kind", &["WGLX", "网格类型", "kind"], V::Choice(C::GridKind)).required(),
            FieldSpec::new("status", &["ZTYS", "状态颜色", "status"], V::Choice(C::StatusColour)).default("green"),
            FieldSpec::new("worker_name", &["WGY", "网格员", "worker_name"], V::Text),
            FieldSpec::new("worker_phone", &["LXDH", "联系电话", "worker_phone"], V::Text),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[("code", "community_code")],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::GridUnits,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["DYBM", "单元编码", "网格单元编码", "code"], V::Code(L::GridUnit)).required(),
            FieldSpec::new("name", &["DYMC", "单元名称", "网格单元名称", "name"], V::Text).required(),
            FieldSpec::new("grid_code", GRID_CODE, V::Code(L::Grid)).required().references(Entity::Grids),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[("code", "grid_code")],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Buildings,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["LDBM", "楼栋编码", "建筑编码", "code"], V::Code(L::Building)).required(),
            FieldSpec::new("name", &["LDMC", "楼栋名称", "建筑名称", "name"], V::Text).required(),
            FieldSpec::new("grid_code", GRID_CODE, V::Code(L::Grid)).required().references(Entity::Grids),
            FieldSpec::new("unit_code", UNIT_CODE, V::Code(L::GridUnit)).references(Entity::GridUnits),
            FieldSpec::new("households", &["HS", "户数", "households"], V::Integer { min: 0 }).required(),
            FieldSpec::new("floors", &["CS", "层数", "floors"], V::Integer { min: 1 }),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[("code", "unit_code"), ("code", "grid_code"), ("unit_code", "grid_code")],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Addresses,
        geometry: GeometryKind::Point,
        fields: &[
            FieldSpec::new("code", &["DZBM", "地址编码", "code"], V::Id).required(),
            FieldSpec::new("address", &["BZDZ", "标准地址", "地址", "address"], V::Text).required(),
            FieldSpec::new("building_code", BUILDING_CODE, V::Code(L::Building)).required().references(Entity::Buildings),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Stations,
        geometry: GeometryKind::Point,
        fields: &[
            FieldSpec::new("code", &["ZDBM", "站点编码", "code"], V::Id).required(),
            FieldSpec::new("kind", &["ZDLX", "站点类型", "kind"], V::Choice(C::StationKind)).required(),
            FieldSpec::new("name", &["ZDMC", "站点名称", "name"], V::Text).required(),
            FieldSpec::new("community_code", COMMUNITY_CODE, V::Code(L::Community)).required().references(Entity::Communities),
            FieldSpec::new("grid_code", GRID_CODE, V::Code(L::Grid)).references(Entity::Grids),
            FieldSpec::new("area_m2", &["MJ", "面积", "area_m2"], V::PositiveReal),
            FieldSpec::new("amenities", &["SS", "设施", "服务设施", "amenities"], V::List),
            FieldSpec::new("opening_hours", &["KFSJ", "开放时间", "opening_hours"], V::Text),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[("grid_code", "community_code")],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::Roads,
        geometry: GeometryKind::Line,
        fields: &[
            FieldSpec::new("name", &["DLMC", "道路名称", "name"], V::Text),
            FieldSpec::new("class", &["DLDJ", "道路等级", "class", "highway"], V::Choice(C::RoadClass)).required(),
        ],
        key: None,
        key_scope: None,
        nesting: &[],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::DepartmentGrids,
        geometry: GeometryKind::Area,
        fields: &[
            FieldSpec::new("code", &["BMWGBM", "部门网格编码", "code"], V::Id).required(),
            FieldSpec::new("department", &["SSBM", "所属部门", "部门", "department"], V::Text).required(),
            FieldSpec::new("name", &["WGMC", "网格名称", "name"], V::Text).required(),
        ],
        key: Some("code"),
        key_scope: None,
        nesting: &[],
        personal: Personal::NONE,
    },
    LayerSpec {
        entity: Entity::RiderReports,
        geometry: GeometryKind::Point,
        fields: &[
            FieldSpec::new("reported_at", &["SBSJ", "上报时间", "时间", "report_time", "reported_at", "time"], V::Time).required(),
            FieldSpec::new("kind", &["SBLX", "上报类型", "类型", "kind"], V::Choice(C::RiderReportKind)),
            FieldSpec::new("source", &["SJLY", "数据来源", "来源", "source"], V::Text),
        ],
        key: None,
        key_scope: None,
        nesting: &[],
        personal: RIDER_PERSONAL,
    },
    LayerSpec {
        entity: Entity::GridWorkers,
        geometry: GeometryKind::None,
        fields: &[
            FieldSpec::new("grid_code", GRID_CODE, V::Code(L::Grid)).required().references(Entity::Grids),
            FieldSpec::new("name", &["XM", "姓名", "网格员姓名", "网格员", "name"], V::Text).required(),
            FieldSpec::new("phone", &["LXDH", "联系电话", "手机号", "手机号码", "手机", "电话", "phone"], V::Phone),
            FieldSpec::new("role", &["ZW", "职务", "岗位", "类别", "role"], V::Choice(C::WorkerRole)).default("full_time"),
            FieldSpec::new("staff_id", &["RYBH", "人员编号", "工号", "编号", "staff_id"], V::Id),
        ],
        key: Some("name"),
        key_scope: Some("grid_code"),
        nesting: &[],
        personal: ID_CARD,
    },
];

/// Splits an amenity list on the separators found in Chinese source data.
#[must_use]
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(['、', ',', '，', ';', '；'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_indexed_by_entity() {
        assert_eq!(LAYERS.len(), Entity::ALL.len() + 2);
        for entity in Entity::ALL
            .into_iter()
            .chain([Entity::RiderReports, Entity::GridWorkers])
        {
            assert_eq!(LayerSpec::of(entity).entity, entity);
        }
    }

    #[test]
    fn nesting_and_key_name_real_columns() {
        for layer in LAYERS {
            for (child, parent) in layer.nesting {
                assert!(layer.field_index(child).is_some(), "{child}");
                assert!(layer.field_index(parent).is_some(), "{parent}");
            }
            if let Some(key) = layer.key {
                assert!(layer.field_index(key).is_some(), "{key}");
            }
        }
    }

    #[test]
    fn choices_accept_chinese_terms() {
        assert_eq!(Choice::CommunityKind.parse("村"), Ok("village"));
        assert_eq!(Choice::CommunityKind.parse("社区"), Ok("urban"));
        assert_eq!(Choice::RoadClass.parse("主干路"), Ok("primary"));
        assert_eq!(Choice::RoadClass.parse("步行道"), Ok("footway"));
        assert_eq!(Choice::RoadClass.parse("residential"), Ok("residential"));
        assert_eq!(Choice::GridKind.parse("专属网格"), Ok("exclusive"));
        assert_eq!(Choice::StatusColour.parse("黄"), Ok("yellow"));
        let err = Choice::RoadClass.parse("高速").unwrap_err();
        assert!(err.contains("\"高速\" is not a known road class"), "{err}");
        assert!(!Choice::GridKind.parse("普通").unwrap_err().ends_with(' '));
        assert_eq!(Choice::RiderReportKind.parse("送餐"), Ok("delivery"));
        assert_eq!(Choice::RiderReportKind.parse("rest"), Ok("rest"));
        assert_eq!(Choice::RiderReportKind.parse("随手拍"), Ok("lead"));
    }

    #[test]
    fn personal_fields_of_rider_reports_are_recognised() {
        let riders = LayerSpec::of(Entity::RiderReports);
        for name in [
            "姓名",
            "骑手姓名",
            "手机号",
            "Phone",
            "rider_id",
            "联系电话",
            "name",
            "微信号",
        ] {
            assert!(riders.is_personal(name), "{name}");
        }
        for name in ["SBSJ", "时间", "kind", "来源", "lon", "经度"] {
            assert!(!riders.is_personal(name), "{name}");
        }
        // Other layers import their columns by design.
        assert!(!LayerSpec::of(Entity::Grids).is_personal("LXDH"));
        assert!(!LayerSpec::of(Entity::Grids).is_personal("name"));
    }

    #[test]
    fn grid_workers_keep_names_and_phones_but_no_id_card() {
        let workers = LayerSpec::of(Entity::GridWorkers);
        for name in ["身份证号", "身份证号码", "SFZH", "证件号码", "id_card"] {
            assert!(workers.is_personal(name), "{name}");
        }
        for name in ["姓名", "联系电话", "手机号", "职务", "WGBM", "人员编号"] {
            assert!(!workers.is_personal(name), "{name}");
        }
        assert_eq!(workers.key_columns(), ["grid_code", "name"]);
        assert_eq!(
            workers.key_sql("t.").as_deref(),
            Some("(t.grid_code || ' ' || t.name)")
        );
        assert_eq!(
            LayerSpec::of(Entity::Grids).key_sql("").as_deref(),
            Some("code")
        );
        assert_eq!(Choice::WorkerRole.parse("网格长"), Ok("grid_leader"));
        assert_eq!(Choice::WorkerRole.parse("兼职网格员"), Ok("part_time"));
        assert_eq!(Choice::WorkerRole.parse("专职网格员"), Ok("full_time"));
        assert!(Choice::WorkerRole.parse("书记").is_err());
    }

    #[test]
    fn phones_normalise_or_are_refused() {
        for (given, stored) in [
            ("13800000000", "13800000000"),
            (" 138 0000 0000 ", "13800000000"),
            ("138-0000-0000", "13800000000"),
            ("+86 13800000000", "13800000000"),
            ("8613800000000", "13800000000"),
            ("13800000000.0", "13800000000"),
            ("0535-8123456", "0535-8123456"),
            ("(0535)8123456", "0535-8123456"),
            ("（0535）8123456", "0535-8123456"),
            ("010-12345678-201", "010-12345678-201"),
            ("05358123456", "05358123456"),
        ] {
            assert_eq!(normalise_phone(given).as_deref(), Ok(stored), "{given}");
        }
        for bad in [
            "1380000",
            "12800000000",
            "138000000001",
            "8123456",
            "0535-812",
            "电话13800000000",
            "abc",
        ] {
            let err = normalise_phone(bad).unwrap_err();
            assert!(err.contains("neither a mobile number"), "{bad}: {err}");
        }
    }

    #[test]
    fn lists_split_on_chinese_and_ascii_separators() {
        assert_eq!(
            split_list("饮水、充电，热饭, 休息、"),
            vec!["饮水", "充电", "热饭", "休息"]
        );
        assert!(split_list("  ").is_empty());
    }
}
