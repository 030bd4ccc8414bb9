// The web map in a real browser (Debian's Chromium, WebGL on SwiftShader)
// against a running gridmap-server:
//
//   GRIDMAP_URL=http://127.0.0.1:8088 node --test tests/web/
//
// playwright-core comes from web-map/node_modules (`npm ci` in web-map/), so
// the project keeps a single package.json and lockfile. It only drives the
// installed Chromium; it never downloads a browser.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// Headless Chromium has no GPU here: ANGLE on SwiftShader gives MapLibre a
// WebGL2 context. The rest keeps the browser from calling home, so the
// request log only holds what the page itself asks for.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

// The contract with web-map/dist/style.js and the tile schema.
const GRID_FILL = 'grids-fill';
const STATION_CIRCLE = 'stations-circle';
const STATUSES = ['green', 'blue', 'yellow', 'orange', 'red'];
// Close enough that a grid is tens of pixels wide and buildings show (z ≥ 14).
const CLICK_ZOOM = 15;

// Software rendering on a busy two-core machine is slow; be generous.
const READY_TIMEOUT = 120_000;
const TEST_TIMEOUT = 180_000;

function loadPlaywright() {
  const require = createRequire(join(REPO_ROOT, 'web-map', 'package.json'));
  try {
    return require('playwright-core');
  } catch (err) {
    throw new Error(`playwright-core not found: run "npm ci" in web-map/ (${err.message})`);
  }
}

describe('web map in Chromium', () => {
  const base = process.env.GRIDMAP_URL;
  let browser;
  let page;
  const requests = []; // every URL the page (and its workers) asked for
  const problems = []; // console errors, page errors, failed or 4xx/5xx requests

  const problemReport = () => (problems.length ? `\n  ${problems.join('\n  ')}` : ' none');

  before(async () => {
    assert.ok(base, 'GRIDMAP_URL is not set: start gridmap-server and run e.g. '
      + 'GRIDMAP_URL=http://127.0.0.1:8088 node --test tests/web/');
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
    const { chromium } = loadPlaywright();
    mkdirSync(ARTIFACTS, { recursive: true });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Context-level events also see requests made by MapLibre's web workers.
    context.on('request', (r) => requests.push(r.url()));
    context.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    context.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()} [${m.location().url}]`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
  });

  test('renders the grids coloured by status', { timeout: TEST_TIMEOUT }, async () => {
    await page.goto(new URL('/', base).href);
    try {
      await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: READY_TIMEOUT });
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS, 'web-map.png') }).catch(() => {});
      throw new Error(`map never became ready (${err.message}); problems:${problemReport()}`);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'web-map.png') });

    const statuses = await page.evaluate((layer) => window.gridmap.map
      .queryRenderedFeatures({ layers: [layer] })
      .map((f) => f.properties.status), GRID_FILL);
    assert.ok(statuses.length > 10, `only ${statuses.length} grid features rendered`);
    const unknown = statuses.filter((s) => !STATUSES.includes(s));
    assert.deepEqual([...new Set(unknown)], [], 'grid status outside the five colours');
    assert.equal(problems.length, 0, `problems while loading:${problemReport()}`);
  });

  test('clicking a grid shows its lookup chain', { timeout: TEST_TIMEOUT }, async () => {
    // At city scale a grid may be a few pixels wide: zoom in on one first.
    const layers = { gridLayer: GRID_FILL, stationLayer: STATION_CIRCLE };
    const seed = await page.evaluate(pickClickTarget, { ...layers, minWidth: 0 });
    assert.ok(seed, 'no rendered grid is visible on the map');
    await page.evaluate(({ lng, lat, zoom }) => new Promise((done) => {
      const { map } = window.gridmap;
      map.once('idle', done);
      map.jumpTo({ center: [lng, lat], zoom: Math.max(map.getZoom(), zoom) });
    }), { ...seed, zoom: CLICK_ZOOM });
    const target = await page.evaluate(pickClickTarget, { ...layers, minWidth: 16 });
    assert.ok(target, 'no rendered grid has a clear, clickable interior point');

    await page.mouse.click(target.x, target.y);
    try {
      await page.waitForFunction(
        (code) => document.getElementById('chain-grid-code')?.textContent === code,
        target.code,
        { timeout: 30_000 },
      );
    } catch (err) {
      const shown = await page.evaluate(() => ['chain-grid-code', 'chain-message']
        .map((id) => `#${id}="${document.getElementById(id)?.textContent}"`).join(' '));
      throw new Error(`#chain-grid-code never showed ${target.code}: ${shown} (${err.message}); `
        + `problems:${problemReport()}`);
    }

    const chain = await page.evaluate(() => Object.fromEntries(
      ['chain-grid-code', 'chain-grid-name', 'chain-community', 'chain-street', 'chain-district']
        .map((id) => [id, document.getElementById(id).textContent.trim()]),
    ));
    assert.match(chain['chain-grid-code'], /^\d{15}$/);
    assert.notEqual(chain['chain-community'], '', '#chain-community is empty');
    // The clicked grid is the highlighted one.
    const filter = await page.evaluate(() => JSON.stringify(window.gridmap.map.getFilter('grids-selected')));
    assert.ok(filter.includes(target.code), `selection filter ${filter} lacks ${target.code}`);

    // Let the highlight reach the canvas before the screenshot.
    await page.evaluate(() => new Promise((done) => {
      requestAnimationFrame(() => requestAnimationFrame(done));
    }));
    await page.screenshot({ path: join(ARTIFACTS, 'web-map-click.png') });
    assert.equal(problems.length, 0, `problems after the click:${problemReport()}`);
  });

  test('requests stay on the gridmap-server origin', async () => {
    const origin = new URL(base).origin;
    const outside = requests.filter((url) => {
      const { protocol } = new URL(url);
      // blob:/data: are in-page (worker bootstrapping); anything else is network.
      if (protocol === 'blob:' || protocol === 'data:') return false;
      return new URL(url).origin !== origin;
    });
    assert.deepEqual(outside, [], 'the page reached outside the server');
    assert.ok(requests.some((url) => url.includes('/tiles/grids/')), 'no grid tile requests were recorded');
    assert.ok(requests.some((url) => url.includes('/api/v1/lookup')), 'no lookup request was recorded');
  });
});

/**
 * Runs in the page: a point that lies inside a rendered grid (the widest
 * stretch of all, at least `minWidth` px), is not covered by the side panel or
 * a station dot, and where that grid is the one on top.
 * Returns { code, x, y } in page pixels plus its { lng, lat }, or null.
 */
function pickClickTarget({ gridLayer, stationLayer, minWidth }) {
  const { map } = window.gridmap;
  const canvas = map.getCanvas();
  const box = canvas.getBoundingClientRect();
  const candidates = [];

  for (const feature of map.queryRenderedFeatures({ layers: [gridLayer] })) {
    const { type, coordinates } = feature.geometry;
    const polygons = type === 'Polygon' ? [coordinates] : coordinates;
    for (const rings of polygons) {
      const px = rings.map((ring) => ring.map((c) => map.project(c)));
      // Cross the polygon with a horizontal line through the middle of its
      // outer ring; between pairs of crossings lies the inside (even-odd rule,
      // which also steps around holes).
      const ys = px[0].map((p) => p.y);
      const y = (Math.min(...ys) + Math.max(...ys)) / 2;
      const xs = [];
      for (const ring of px) {
        for (let i = 0; i + 1 < ring.length; i += 1) {
          const [a, b] = [ring[i], ring[i + 1]];
          if ((a.y > y) !== (b.y > y)) xs.push(a.x + ((y - a.y) * (b.x - a.x)) / (b.y - a.y));
        }
      }
      xs.sort((p, q) => p - q);
      for (let i = 0; i + 1 < xs.length; i += 2) {
        candidates.push({ code: feature.properties.code, x: (xs[i] + xs[i + 1]) / 2, y, width: xs[i + 1] - xs[i] });
      }
    }
  }

  // Widest first: the farther from the edge, the less tile simplification matters.
  candidates.sort((p, q) => q.width - p.width);
  for (const c of candidates) {
    if (c.width < minWidth || c.x < 20 || c.y < 20 || c.x > box.width - 20 || c.y > box.height - 20) continue;
    const pageX = box.left + c.x;
    const pageY = box.top + c.y;
    if (document.elementFromPoint(pageX, pageY) !== canvas) continue; // under the panel or a control
    const near = [[c.x - 10, c.y - 10], [c.x + 10, c.y + 10]];
    if (map.queryRenderedFeatures(near, { layers: [stationLayer] }).length > 0) continue;
    const [top] = map.queryRenderedFeatures([c.x, c.y], { layers: [gridLayer] });
    if (top?.properties.code !== c.code) continue;
    const { lng, lat } = map.unproject([c.x, c.y]);
    return { code: c.code, x: pageX, y: pageY, lng, lat };
  }
  return null;
}
