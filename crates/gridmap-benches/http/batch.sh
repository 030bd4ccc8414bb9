#!/usr/bin/env bash
# Batch lookup benchmark: POINTS random points over the grids' extent answered
# by POST /api/v1/lookup/batch (CSV and NDJSON streamed over loopback), against
# PostGIS joining the same points to the grids with the documented boundary
# rule (smallest code among the grids that intersect the point). Medians of
# RUNS runs each.
#
#   DATABASE_URL=<imported demo city> crates/gridmap-benches/http/batch.sh
#
# Needs curl, python3, psql and a release build (cargo build --release -p gridmap-server).
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${DATABASE_URL:?set DATABASE_URL to a database holding the demo city}"
runs=${RUNS:-3}
points=${POINTS:-1000000}
# SERVER: the gridmap-server binary to measure (default: the release build).
server_bin=${SERVER:-target/release/gridmap-server}
port=${PORT:-18766}
work=$(mktemp -d)

bbox=$(psql "$DATABASE_URL" -XAtc "SELECT concat_ws(',', ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e))
                                     FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x")
python3 - "$bbox" "$points" "$work" <<'PY'
import json, random, sys
west, south, east, north = map(float, sys.argv[1].split(","))
n, work = int(sys.argv[2]), sys.argv[3]
random.seed(370681)
with open(f"{work}/points.csv", "w") as csv, open(f"{work}/points.ndjson", "w") as nd:
    csv.write("id,lon,lat\n")
    for i in range(n):
        lon = round(west + random.random() * (east - west), 7)
        lat = round(south + random.random() * (north - south), 7)
        csv.write(f"{i},{lon},{lat}\n")
        nd.write(json.dumps({"id": str(i), "lon": lon, "lat": lat}) + "\n")
PY

RUST_LOG=warn "$server_bin" --bind "127.0.0.1:$port" --public-rate-limit 0 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.1; done

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
post() { # content type, file -> seconds per run
  for _ in $(seq 1 "$runs"); do
    curl -s -o "$work/answer" -w '%{time_total}\n' -H "Content-Type: $1" --data-binary "@$2" \
      "http://127.0.0.1:$port/api/v1/lookup/batch"
  done
}
csv=$(post text/csv "$work/points.csv" | median)
answered=$(wc -l <"$work/answer")
ndjson=$(post application/x-ndjson "$work/points.ndjson" | median)

PGOPTIONS='-c client_min_messages=warning' psql "$DATABASE_URL" -Xq <<SQL
DROP TABLE IF EXISTS bench_batch_points;
CREATE UNLOGGED TABLE bench_batch_points (id bigint, lon float8, lat float8);
\copy bench_batch_points FROM '$work/points.csv' WITH (FORMAT csv, HEADER true)
ALTER TABLE bench_batch_points ADD COLUMN geom geometry(Point, 4490);
UPDATE bench_batch_points SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4490);
ANALYZE bench_batch_points;
SQL
join_sql="SELECT count(code) FROM (
            SELECT DISTINCT ON (p.id) p.id, g.code
              FROM bench_batch_points p LEFT JOIN grids g ON ST_Intersects(g.geom, p.geom)
             ORDER BY p.id, g.code) answers"
postgis=$(for _ in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  psql "$DATABASE_URL" -XAtc "$join_sql" >/dev/null
  echo $(($(date +%s%N) - start)) | awk '{ print $1 / 1e9 }'
done | median)
psql "$DATABASE_URL" -Xqc "DROP TABLE bench_batch_points"

echo "Batch lookups of $points points (answers: $answered lines), median of $runs runs:"
printf '  POST /api/v1/lookup/batch, CSV     %8.2f s\n' "$csv"
printf '  POST /api/v1/lookup/batch, NDJSON  %8.2f s\n' "$ndjson"
printf '  PostGIS join (no HTTP)             %8.2f s\n' "$postgis"
awk -v c="$csv" -v n="$ndjson" -v p="$postgis" \
  'BEGIN { printf "  PostGIS / CSV %.1fx, PostGIS / NDJSON %.1fx\n", p / c, p / n }'
