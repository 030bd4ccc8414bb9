//! Agreement with an independent published implementation: reference values
//! produced by the npm package gcoord 1.0.7 (MIT) for 20 points across China,
//! stored in `tests/data/gcoord-1.0.7-vectors.json`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use gridmap_crs::{bd09_to_gcj02, gcj02_to_bd09, gcj02_to_wgs84, wgs84_to_gcj02};

fn vectors() -> Vec<[(f64, f64); 3]> {
    let text = include_str!("data/gcoord-1.0.7-vectors.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let pair = |v: &serde_json::Value| (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
    json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| [pair(&v["wgs84"]), pair(&v["gcj02"]), pair(&v["bd09"])])
        .collect()
}

fn close(got: (f64, f64), expected: (f64, f64), tolerance: f64) -> bool {
    (got.0 - expected.0).abs() <= tolerance && (got.1 - expected.1).abs() <= tolerance
}

#[test]
fn forward_transforms_match_gcoord() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 20);
    for [wgs, gcj, bd] in vectors {
        let got_gcj = wgs84_to_gcj02(wgs.0, wgs.1);
        assert!(
            close(got_gcj, gcj, 1e-12),
            "{wgs:?}: {got_gcj:?} vs {gcj:?}"
        );
        let got_bd = gcj02_to_bd09(got_gcj.0, got_gcj.1);
        assert!(close(got_bd, bd, 1e-12), "{wgs:?}: {got_bd:?} vs {bd:?}");
    }
}

#[test]
fn inverses_recover_the_wgs84_points_to_1e9_degrees() {
    for [wgs, gcj, bd] in vectors() {
        let from_gcj = gcj02_to_wgs84(gcj.0, gcj.1);
        assert!(
            close(from_gcj, wgs, 1e-9),
            "{gcj:?}: {from_gcj:?} vs {wgs:?}"
        );
        let via_bd = bd09_to_gcj02(bd.0, bd.1);
        let from_bd = gcj02_to_wgs84(via_bd.0, via_bd.1);
        assert!(close(from_bd, wgs, 1e-9), "{bd:?}: {from_bd:?} vs {wgs:?}");
    }
}
