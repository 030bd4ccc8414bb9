#!/usr/bin/env bash
# HTTP vector-tile benchmark: gridmap-server against martin on the same PostGIS
# tables and columns. The tile list is every z10–z16 tile meeting the city
# (gridmap-bench tile-list); each tile is one composite request of the layers
# both serve. Per run both servers are restarted (empty tile caches), then:
#   cold: every tile of the list once;  warm: the same list again.
# One client process (gridmap-bench tile-load: each path exactly once over
# CONNECTIONS keep-alive connections; wrk and oha run for a duration or pick
# URLs at random), loopback, Accept-Encoding "br, gzip". Medians of RUNS runs;
# ratios gridmap / martin.
# Then mean bytes per tile at z10, z11 and z12 as served (br) and raw.
#
#   DATABASE_URL=<imported city> crates/gridmap-benches/http/tiles.sh
#
# Needs curl and martin; martin is installed
# into target/martin (release, postgres only) when missing. Builds release
# gridmap-server and gridmap-bench.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
: "${DATABASE_URL:?set DATABASE_URL to a database holding an imported city}"
runs=${RUNS:-3}
connections=${CONNECTIONS:-64}
gridmap_port=${GRIDMAP_PORT:-18780}
martin_port=${MARTIN_PORT:-18781}
work=$(mktemp -d)
martin=${MARTIN:-}
if [[ -z "$martin" ]]; then
  martin=$root/target/martin/bin/martin
  if [[ ! -x "$martin" ]] && command -v martin >/dev/null; then martin=$(command -v martin); fi
fi
if [[ ! -x "$martin" ]]; then
  # Only the PostgreSQL source: the other features download assets at build time.
  echo "installing martin into target/martin (slow: a release build)" >&2
  CARGO_TARGET_DIR=$root/target/martin-build nice -n 19 cargo install martin --version 1.14.0 \
    --locked --no-default-features --features postgres --root "$root/target/martin" >&2
  martin=$root/target/martin/bin/martin
fi
# NO_BUILD=1 uses the release binaries already built.
[[ -n "${NO_BUILD:-}" ]] || cargo build --release -p gridmap-server -p gridmap-benches >&2

# The layers both servers publish, with the same columns, zoom ranges, extent
# (4096) and buffer (64), from the stored Web Mercator column.
layers=districts,streets,communities,grids,grid_units,buildings,stations,roads
target/release/gridmap-bench tile-list --min-zoom 10 --max-zoom 16 >"$work/tiles.txt"
n_tiles=$(wc -l <"$work/tiles.txt")

cat >"$work/martin.yaml" <<YAML
listen_addresses: "127.0.0.1:$martin_port"
worker_processes: 2
web_ui: disable
postgres:
  connection_string: "$DATABASE_URL"
  auto_publish: false
  pool_size: 16
  tables:
YAML
table_yaml() { # name minzoom maxzoom geometry_type properties...
  local name=$1 minzoom=$2 maxzoom=$3 type=$4
  shift 4
  cat >>"$work/martin.yaml" <<YAML
    $name:
      schema: public
      table: $name
      srid: 3857
      geometry_column: geom_3857
      geometry_type: $type
      minzoom: $minzoom
      maxzoom: $maxzoom
      extent: 4096
      buffer: 64
      clip_geom: true
      properties:
YAML
  for property in "$@"; do
    echo "        $property: text" >>"$work/martin.yaml"
  done
}
table_yaml districts 0 16 MULTIPOLYGON code name
table_yaml streets 6 16 MULTIPOLYGON code name district_code
table_yaml communities 8 16 MULTIPOLYGON code name street_code kind
table_yaml grids 9 16 MULTIPOLYGON code name kind status community_code
table_yaml grid_units 13 16 MULTIPOLYGON code name grid_code
table_yaml buildings 14 16 MULTIPOLYGON code name floors grid_code
table_yaml stations 11 16 POINT code name kind community_code
table_yaml roads 11 16 LINESTRING class name
sed -i 's/^        floors: text/        floors: int4/' "$work/martin.yaml"

server=""
stop_server() {
  if [[ -n "$server" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  server=""
}
trap 'stop_server; rm -rf "$work"' EXIT
wait_for() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
start_gridmap() {
  RUST_LOG=warn target/release/gridmap-server --bind "127.0.0.1:$gridmap_port" --public-rate-limit 0 >"$work/gridmap.log" 2>&1 &
  server=$!
  wait_for "http://127.0.0.1:$gridmap_port/livez"
  # The server computes its service circles and gap findings in the
  # background after start-up; a circle tile waits for them, so no pass
  # shares the machine with that work.
  curl -sf -o /dev/null "http://127.0.0.1:$gridmap_port/tiles/service_circles/$(grep -m1 '^14/' "$work/tiles.txt")"
  sleep 2
}
start_martin() {
  RUST_LOG=warn "$martin" --config "$work/martin.yaml" >"$work/martin.log" 2>&1 &
  server=$!
  wait_for "http://127.0.0.1:$martin_port/health"
}
# One pass over the list: "tiles/s p50_ms p99_ms requests mean_bytes non_200".
pass() { # port prefix
  target/release/gridmap-bench tile-load --address "127.0.0.1:$1" --prefix "$2" \
    --list "$work/tiles.txt" --connections "$connections" --accept-encoding "br, gzip"
}

declare -A results
for run in $(seq 1 "$runs"); do
  start_gridmap
  results[gridmap_cold]+="$(pass "$gridmap_port" "/tiles/$layers/")"$'\n'
  results[gridmap_warm]+="$(pass "$gridmap_port" "/tiles/$layers/")"$'\n'
  stop_server
  start_martin
  results[martin_cold]+="$(pass "$martin_port" "/$layers/")"$'\n'
  results[martin_warm]+="$(pass "$martin_port" "/$layers/")"$'\n'
  stop_server
  echo "run $run of $runs done" >&2
done

median() { sort -g | awk 'NF { v[++n] = $1 } END { print v[int((n + 1) / 2)] }'; }
column_median() { echo "${results[$1]}" | awk -v c="$2" 'NF { print $c }' | median; }
echo "Vector tiles, $n_tiles unique tiles z10-z16 (layers $layers), $connections connections, Accept-Encoding br+gzip, median of $runs runs:"
for phase in cold warm; do
  for side in gridmap martin; do
    printf '  %-7s %-4s %9.0f tiles/s  p50 %8.2f ms  p99 %8.2f ms  %7.0f bytes/tile  non-200: %s\n' \
      "$side" "$phase" "$(column_median "${side}_$phase" 1)" "$(column_median "${side}_$phase" 2)" \
      "$(column_median "${side}_$phase" 3)" "$(column_median "${side}_$phase" 5)" "$(column_median "${side}_$phase" 6)"
  done
  awk -v g="$(column_median "gridmap_$phase" 1)" -v m="$(column_median "martin_$phase" 1)" -v p="$phase" \
    'BEGIN { printf "  %s throughput gridmap / martin: %.2fx\n", p, g / m }'
done

# Bytes per tile at low zoom, both servers warm.
start_gridmap
echo "Mean bytes per tile (br as served; raw):"
for z in 10 11 12; do
  for side in gridmap martin; do
    if [[ $side == martin ]]; then stop_server; start_martin; base="http://127.0.0.1:$martin_port/$layers"; else base="http://127.0.0.1:$gridmap_port/tiles/$layers"; fi
    sizes=$(grep "^$z/" "$work/tiles.txt" | while read -r tile; do
      br=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: br' "$base/$tile")
      raw=$(curl -s -o /dev/null -w '%{size_download}' "$base/$tile")
      echo "$br $raw"
    done)
    echo "$sizes" | awk -v z="$z" -v s="$side" '{ b += $1; r += $2; n++ } END { printf "  z%s %-7s %9.0f br  %9.0f raw  (%d tiles)\n", z, s, b / n, r / n, n }'
    if [[ $side == martin ]]; then stop_server; start_gridmap; fi
  done
done
