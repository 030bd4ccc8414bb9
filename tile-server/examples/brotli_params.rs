//! Time and size of brotli (by quality and window) and gzip on tiles saved in
//! a directory, the measurement behind `BROTLI_QUALITY` and `BROTLI_WINDOW`
//! in `src/tiles.rs`:
//!
//! ```sh
//! cargo run --release -p gridmap-server --example brotli_params -- DIR_OF_TILES
//! ```

#![allow(clippy::print_stdout, reason = "the report is the output")]

use std::io::Write as _;
use std::time::Instant;

const REPEATS: u32 = 5;

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: brotli_params DIR (a directory of raw MVT tiles)");
        std::process::exit(64);
    };
    let mut tiles = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        tiles.push(std::fs::read(entry?.path())?);
    }
    if tiles.is_empty() {
        eprintln!("no tiles in the directory");
        std::process::exit(65);
    }
    let raw: usize = tiles.iter().map(Vec::len).sum();
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let report = |label: &str, started: Instant, repeats: u32, out_len: usize| {
        println!(
            "{label}: {:.1} µs/tile, {:.3} of raw",
            started.elapsed().as_secs_f64() * 1e6 / f64::from(repeats) / tiles.len() as f64,
            out_len as f64 / raw as f64
        );
    };
    for (quality, lgwin) in [(5, 22), (5, 20), (5, 19), (5, 18), (5, 16), (4, 19)] {
        let started = Instant::now();
        let mut out_len = 0;
        for _ in 0..REPEATS {
            out_len = 0;
            for tile in &tiles {
                let params = brotli::enc::BrotliEncoderParams {
                    quality,
                    lgwin,
                    size_hint: tile.len(),
                    ..brotli::enc::BrotliEncoderParams::default()
                };
                let mut out = Vec::new();
                brotli::BrotliCompress(&mut tile.as_slice(), &mut out, &params)?;
                out_len += out.len();
            }
        }
        report(
            &format!("brotli q{quality} window {lgwin}"),
            started,
            REPEATS,
            out_len,
        );
    }
    let started = Instant::now();
    let mut out_len = 0;
    for tile in &tiles {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(tile)?;
        out_len += gzip.finish()?.len();
    }
    report("gzip fast", started, 1, out_len);
    Ok(())
}
