#!/usr/bin/env bash
# HTTP single-lookup benchmark: gridmap-server's /api/v1/lookup against the same
# server's trivial /livez (the HTTP ceiling of the machine) and against PostGIS
# answering the same point-in-grid question through pgbench (no HTTP at all).
# Loopback only, 64 connections, RUNS rounds in which each endpoint runs SECONDS;
# rates are medians over the rounds, shares of the ceiling medians of per-round ratios.
#
# wrk runs on the same cores as the server, so the client's work per request
# counts. The ceiling the lookups are compared with is therefore /livez driven
# by the same Lua script (same random query strings, which /livez ignores);
# plain /livez without a script is printed too, for comparison with older runs.
#
#   DATABASE_URL=<imported demo city> crates/gridmap-benches/http/lookup.sh
#
# With API_KEY=<a key from gridmap-admin key add> it also measures lookups by an
# authenticated integrating system, whose answers carry the grid worker.
#
# Throughput is measured closed-loop (wrk, every connection busy), where the
# latency is only queue length over throughput (Little's law: 64 connections at
# 25k req/s wait 2.6 ms on average however fast each answer is). Latency is
# therefore also measured open-loop at a fixed offered rate, by default 1.5x
# the PostGIS rate (RATE=<req/s> to choose), with gridmap-bench tile-load
# --rate (latency counted from when each request was due).
#
# Needs wrk and pgbench (Debian packages wrk, postgresql-client) and release
# builds (cargo build --release -p gridmap-server -p gridmap-benches).
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${DATABASE_URL:?set DATABASE_URL to a database holding the demo city}"
runs=${RUNS:-3}
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-64}
# SERVER: the gridmap-server binary to measure (default: the release build).
server_bin=${SERVER:-target/release/gridmap-server}
port=${PORT:-18765}

bbox=$(psql "$DATABASE_URL" -XAtc "SELECT concat_ws(',', ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e))
                                     FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x")
export GRIDMAP_BBOX=$bbox

# The public rate limit (per client address) would cap a loopback benchmark.
RUST_LOG=warn "$server_bin" --bind "127.0.0.1:$port" --public-rate-limit 0 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.1; done
# Wait for the service circles and gap findings the server computes in the
# background after start-up (a circle tile waits for them).
curl -sf -o /dev/null "http://127.0.0.1:$port/tiles/service_circles/14/13600/6340" || true
sleep 2

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ticks=$(getconf CLK_TCK)
server_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
# Besides the rate and p99, each run reports the CPU time the server and wrk
# spent per request (the server's from /proc, wrk's from the shell's `time`):
# on a machine whose speed drifts between minutes, CPU per request drifts
# less than the rate, and it tells whose work a slower endpoint adds.
wrk_once() { # url [script] [header] -> requests/s, p99 latency (ms), server and wrk CPU per request (us)
  local before after
  before=$(server_ticks)
  { TIMEFORMAT='cpu %U %S'; time wrk -t2 -c"$connections" -d"${seconds}s" --latency ${2:+-s "$2"} ${3:+-H "$3"} "$1"; } 2>&1 |
    { cat; after=$(server_ticks); echo "server $((after - before))"; } |
    awk -v hz="$ticks" '/requests in/ { n = $1 } /Requests\/sec/ { rate = $2 } /^cpu / { wrk = $2 + $3 } /^server / { server = $2 / hz }
      /^ +99%/ { p = $2; if (p ~ /us$/) { sub(/us/, "", p); p /= 1000 } else if (p ~ /ms$/) { sub(/ms/, "", p) } else if (p ~ /s$/) { sub(/s/, "", p); p *= 1000 } }
      END { printf "%s %s %.2f %.2f\n", rate, p, 1e6 * server / n, 1e6 * wrk / n }'
}

# The endpoints take turns within each round, so a minute when the machine is
# slower weighs on all of them alike; the ratios are taken per round and their
# medians reported (this machine's rates drift by tens of percent between
# minutes, which separate blocks of runs per endpoint would read as a ratio).
echo "load before: $(uptime)"
livez="" livez_lua="" lookup="" grid_only="" keyed="" rounds=""
for _ in $(seq 1 "$runs"); do
  n=$(wrk_once "http://127.0.0.1:$port/livez")
  c=$(GRIDMAP_LOOKUP_PATH=/livez wrk_once "http://127.0.0.1:$port" crates/gridmap-benches/http/lookup.lua)
  f=$(wrk_once "http://127.0.0.1:$port" crates/gridmap-benches/http/lookup.lua)
  # The question pgbench asks (which grid owns the point), with its chain.
  g=$(GRIDMAP_LOOKUP_EXTRA="&fields=grid" wrk_once "http://127.0.0.1:$port" crates/gridmap-benches/http/lookup.lua)
  livez+="$n"$'\n' livez_lua+="$c"$'\n' lookup+="$f"$'\n' grid_only+="$g"$'\n'
  rounds+="${c%% *} ${f%% *} ${g%% *}"$'\n'
  if [[ -n "${API_KEY:-}" ]]; then
    keyed+="$(wrk_once "http://127.0.0.1:$port" crates/gridmap-benches/http/lookup.lua "Authorization: Bearer $API_KEY")"$'\n'
  fi
done
full_share=$(echo -n "$rounds" | awk '{ print $2 / $1 }' | median)
grid_share=$(echo -n "$rounds" | awk '{ print $3 / $1 }' | median)

IFS=, read -r west south east north <<<"$bbox"
pgbench_script=$(mktemp)
cat >"$pgbench_script" <<SQL
\set ix random(0, 1000000)
\set iy random(0, 1000000)
SELECT code FROM grids
 WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint($west + :ix * ($east - $west) / 1000000.0,
                                                  $south + :iy * ($north - $south) / 1000000.0), 4490))
 ORDER BY code LIMIT 1;
SQL
pg=$(for _ in $(seq 1 "$runs"); do
  pgbench -n -M prepared -c "$connections" -j 2 -T "$seconds" -f "$pgbench_script" "$DATABASE_URL" 2>/dev/null |
    awk '/^tps/ { print $3 }'
done)
rm -f "$pgbench_script"

pg_rate=$(echo "$pg" | median)
offered=${RATE:-$(awk -v p="$pg_rate" 'BEGIN { printf "%.0f", 1.5 * p }')}
paths=$(mktemp)
awk -v n="$((offered * seconds))" -v bbox="$bbox" 'BEGIN {
  split(bbox, b, ","); srand(1)
  for (i = 0; i < n; i++)
    printf "/api/v1/lookup?lon=%.7f&lat=%.7f\n", b[1] + rand() * (b[3] - b[1]), b[2] + rand() * (b[4] - b[2])
}' >"$paths"
open_loop() { # extra query -> one line per run: rate p50_ms p99_ms requests mean_bytes non_200
  for _ in $(seq 1 "$runs"); do
    target/release/gridmap-bench tile-load --address "127.0.0.1:$port" --prefix "" \
      --list <(sed "s/\$/$1/" "$paths") --connections "$connections" --accept-encoding identity \
      --rate "$offered"
  done
}
fixed=$(open_loop "")
fixed_grid=$(open_loop "\&fields=grid")
rm -f "$paths"

echo "load after: $(uptime)"
livez_rate=$(echo -n "$livez" | awk '{ print $1 }' | median)
ceiling_rate=$(echo -n "$livez_lua" | awk '{ print $1 }' | median)
ceiling_p99=$(echo -n "$livez_lua" | awk '{ print $2 }' | median)
lookup_rate=$(echo -n "$lookup" | awk '{ print $1 }' | median)
lookup_p99=$(echo -n "$lookup" | awk '{ print $2 }' | median)
grid_rate=$(echo -n "$grid_only" | awk '{ print $1 }' | median)
grid_p99=$(echo -n "$grid_only" | awk '{ print $2 }' | median)
echo "HTTP lookups, $connections connections, median of $runs rounds of ${seconds}s per endpoint:"
printf '  /livez, no script          %10.0f req/s\n' "$livez_rate"
printf '  /livez, lookup.lua (ceiling) %8.0f req/s   p99 %.2f ms\n' "$ceiling_rate" "$ceiling_p99"
printf '  /api/v1/lookup (full)      %10.0f req/s   p99 %.2f ms\n' "$lookup_rate" "$lookup_p99"
printf '  /api/v1/lookup&fields=grid %10.0f req/s   p99 %.2f ms\n' "$grid_rate" "$grid_p99"
if [[ -n "$keyed" ]]; then
  printf '  /api/v1/lookup, API key    %10.0f req/s   p99 %.2f ms\n' \
    "$(echo -n "$keyed" | awk '{ print $1 }' | median)" "$(echo -n "$keyed" | awk '{ print $2 }' | median)"
fi
printf '  PostGIS via pgbench        %10.0f q/s\n' "$pg_rate"
cpu_line() { # label, wrk_once lines -> median CPU per request, and the ceiling's total over this one's
  local server_us wrk_us
  server_us=$(echo -n "$2" | awk '{ print $3 }' | median)
  wrk_us=$(echo -n "$2" | awk '{ print $4 }' | median)
  awk -v l="$1" -v s="$server_us" -v w="$wrk_us" -v cs="$3" -v cw="$4" \
    'BEGIN { printf "  %-26s server %5.1f us  wrk %5.1f us  total %5.1f us   ceiling/total %3.0f%%\n", l, s, w, s + w, 100 * (cs + cw) / (s + w) }'
}
echo "CPU per request (medians; two cores give 2e6 us of CPU a second):"
ceiling_server=$(echo -n "$livez_lua" | awk '{ print $3 }' | median)
ceiling_wrk=$(echo -n "$livez_lua" | awk '{ print $4 }' | median)
cpu_line "ceiling" "$livez_lua" "$ceiling_server" "$ceiling_wrk"
cpu_line "full" "$lookup" "$ceiling_server" "$ceiling_wrk"
cpu_line "fields=grid" "$grid_only" "$ceiling_server" "$ceiling_wrk"
echo "Open loop at $offered req/s (1.5x PostGIS unless RATE is set), latency from when each request was due:"
open_line() { # label, tile-load lines
  printf '  %-26s achieved %6.0f req/s   p50 %.2f ms   p99 %.2f ms   %s non-200\n' "$1" \
    "$(echo "$2" | awk '{ print $1 }' | median)" "$(echo "$2" | awk '{ print $2 }' | median)" \
    "$(echo "$2" | awk '{ print $3 }' | median)" "$(echo "$2" | awk '{ s += $6 } END { print s + 0 }')"
}
open_line "full" "$fixed"
open_line "fields=grid" "$fixed_grid"
awk -v l="$lookup_rate" -v g="$grid_rate" -v c="$ceiling_rate" -v n="$livez_rate" -v p="$pg_rate" \
  -v fs="$full_share" -v gs="$grid_share" \
  'BEGIN { printf "  full: %.0f%% of ceiling (median of per-round ratios; %.0f%% of /livez without script), %.1fx PostGIS\n", 100 * fs, 100 * l / n, l / p
           printf "  fields=grid: %.0f%% of ceiling (median of per-round ratios; %.0f%% of /livez without script), %.1fx PostGIS\n", 100 * gs, 100 * g / n, g / p }'
