// Served tiles decoded with a JavaScript decoder of its own (Mapbox's
// @mapbox/vector-tile over pbf, the decoder MapLibre uses; independent of the
// server's encoder and of GDAL) and checked against MVT spec 2.1:
// layer version 2 and extent 4096, every feature of a known geometry type and
// not empty, commands that decode, lines of two or more points, polygon rings
// closed with area, each polygon starting with an exterior ring (positive area
// by the surveyor's formula in tile coordinates, y down) and every attribute a
// string or a number.
//
//   GRIDMAP_URL=http://127.0.0.1:8088 node --test tests/web/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// The decoder comes with MapLibre in web-map/node_modules, pinned by its lockfile.
const webMapRequire = createRequire(join(REPO_ROOT, 'web-map', 'package.json'));
const load = async (name) => import(pathToFileURL(webMapRequire.resolve(name)).href);

const LAYERS = 'districts,streets,communities,grids,grid_units,buildings,stations,roads,addresses';

function tileOf(lon, lat, z) {
  const n = 2 ** z;
  const x = Math.floor(((lon + 180) / 360) * n);
  const rad = (lat * Math.PI) / 180;
  const y = Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n);
  return { x, y };
}

/** Twice the signed area of a closed ring (last point repeats the first). */
function twiceArea(ring) {
  let sum = 0;
  for (let i = 0; i + 1 < ring.length; i++) {
    sum += ring[i].x * ring[i + 1].y - ring[i + 1].x * ring[i].y;
  }
  return sum;
}

test('tiles decode with @mapbox/vector-tile and follow spec 2.1', async () => {
  const base = process.env.GRIDMAP_URL;
  assert.ok(base, 'GRIDMAP_URL is unset: run with scripts/test');
  const { VectorTile } = await load('@mapbox/vector-tile');
  const pbf = await load('pbf');
  // pbf 5 names its reader PbfReader; earlier versions export it as default.
  const Pbf = pbf.PbfReader ?? pbf.default;
  const tilejson = await (await fetch(`${base}/tiles/grids.json`)).json();
  const [west, south, east, north] = tilejson.bounds;
  const [lon, lat] = [(west + east) / 2, (south + north) / 2];
  const counts = { 1: 0, 2: 0, 3: 0 };
  let tiles = 0;
  for (let z = 10; z <= 16; z++) {
    const centre = tileOf(lon, lat, z);
    for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
      const [x, y] = [centre.x + dx, centre.y + dy];
      const url = `${base}/tiles/${LAYERS}/${z}/${x}/${y}`;
      const response = await fetch(url);
      assert.equal(response.status, 200, url);
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length === 0) continue;
      tiles += 1;
      const tile = new VectorTile(new Pbf(bytes));
      for (const [name, layer] of Object.entries(tile.layers)) {
        const where = `${url} layer ${name}`;
        assert.equal(layer.version, 2, `${where}: version`);
        assert.equal(layer.extent, 4096, `${where}: extent`);
        assert.ok(layer.length > 0, `${where}: a layer without features`);
        for (let i = 0; i < layer.length; i++) {
          const feature = layer.feature(i);
          const at = `${where} feature ${i}`;
          assert.ok([1, 2, 3].includes(feature.type), `${at}: geometry type ${feature.type}`);
          for (const [key, value] of Object.entries(feature.properties)) {
            assert.ok(['string', 'number'].includes(typeof value), `${at}: ${key} is ${typeof value}`);
          }
          const geometry = feature.loadGeometry();
          assert.ok(geometry.length > 0, `${at}: empty geometry`);
          counts[feature.type] += 1;
          if (feature.type === 2) {
            for (const line of geometry) assert.ok(line.length >= 2, `${at}: a line of ${line.length} point(s)`);
          }
          if (feature.type === 3) {
            assert.ok(twiceArea(geometry[0]) > 0, `${at}: the first ring is not exterior`);
            for (const ring of geometry) {
              assert.ok(ring.length >= 4, `${at}: a ring of ${ring.length} points`);
              const [first, last] = [ring[0], ring[ring.length - 1]];
              assert.ok(first.x === last.x && first.y === last.y, `${at}: an open ring`);
              assert.notEqual(twiceArea(ring), 0, `${at}: a ring without area`);
            }
          }
        }
      }
    }
  }
  assert.ok(tiles >= 20, `only ${tiles} tiles had features`);
  assert.ok(counts[1] > 50 && counts[2] > 50 && counts[3] > 500, `too few features decoded: ${JSON.stringify(counts)}`);
});
