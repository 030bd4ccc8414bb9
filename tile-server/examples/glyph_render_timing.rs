//! How long a glyph range takes to render the first time (cold cache) and to
//! answer once cached, through the same code path as `GET /fonts/…`:
//!
//!   cargo run --release -p gridmap-server --example glyph_render_timing -- [RUNS]
//!
//! Each run opens the fonts afresh, so every range is rendered from the font
//! file; prints the median and range over RUNS (default 7) per glyph range.

#![allow(clippy::print_stdout, reason = "the report is the output")]

use anyhow::Context as _;
use gridmap_server::{Fonts, DEBIAN_FONT_FILES};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const STACK: &str = "Noto Sans CJK SC Regular";
/// Latin, the first CJK block (一 … 丿, 中), one further in (国), punctuation.
const RANGES: [(u32, &str); 4] = [
    (0, "0-255 Latin"),
    (0x4E00, "19968-20223 CJK (中)"),
    (0x5600, "22016-22271 CJK (国)"),
    (0x3000, "12288-12543 CJK punctuation, kana"),
];

fn median(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    (
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse())
        .transpose()
        .context("RUNS must be a number")?
        .unwrap_or(7);
    let files = DEBIAN_FONT_FILES.map(PathBuf::from);
    println!(
        "font: {STACK} from {}; {runs} runs per range",
        files[0].display()
    );
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>12} {:>9}",
        "range", "min ms", "median ms", "max ms", "cached µs", "bytes"
    );
    for (start, label) in RANGES {
        let mut cold = Vec::with_capacity(runs);
        let mut warm = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let fonts = Fonts::open(&files);
            let began = Instant::now();
            let body = fonts.glyph_range(STACK, start).await?;
            cold.push(began.elapsed());
            let began = Instant::now();
            let again = fonts.glyph_range(STACK, start).await?;
            warm.push(began.elapsed());
            assert_eq!(body, again);
            bytes = body.len();
        }
        let (low, mid, high) = median(cold);
        let (_, cached, _) = median(warm);
        println!(
            "{label:<36} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {bytes:>9}",
            ms(low),
            ms(mid),
            ms(high),
            cached.as_secs_f64() * 1e6
        );
    }
    Ok(())
}
