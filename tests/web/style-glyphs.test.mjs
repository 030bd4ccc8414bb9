// The default map style (`/style.json`) in a real browser: its text layers
// draw Chinese and Latin/digit labels from the server's glyph PBFs, and its
// station icons come from the server's sprite sheet. Run like web-map.test.mjs:
//
//   GRIDMAP_URL=http://127.0.0.1:8088 node --test tests/web/
//
// The page under test is a bare MapLibre map on the server's origin (its
// HTML is supplied by the test, MapLibre itself by the server's web root). It
// sets `localIdeographFontFamily: false`, so MapLibre takes CJK glyphs from
// the server too instead of drawing them with a local browser font.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
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
const READY_TIMEOUT = 120_000;
const TEST_TIMEOUT = 300_000;

// Style layer ids of style.json (tile-server/src/style.rs).
const AREA_LABELS = ['district_labels-label', 'street_labels-label', 'community_labels-label'];
const COMMUNITY_LABELS = 'community_labels-label';
const BUILDING_LABELS = 'buildings-label';
const PAGE_PATH = '/__style-glyphs-test.html';

const CJK = /[\u3400-\u9fff]/;
const LATIN_OR_DIGIT = /[0-9A-Za-z]/;

const PAGE = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<link rel="stylesheet" href="/vendor/maplibre-gl.css">
<style>html, body, #map { margin: 0; width: 100%; height: 100%; }</style>
</head><body><div id="map"></div>
<script type="module">
import * as maplibregl from '/vendor/maplibre-gl.mjs';
window.mapErrors = [];
const { bounds } = await (await fetch('/tiles/grids.json')).json();
const map = new maplibregl.Map({
  container: 'map',
  style: '/style.json',
  bounds,
  localIdeographFontFamily: false,
});
map.on('error', (event) => window.mapErrors.push(String(event.error?.message ?? event.error)));
window.map = map;
map.once('idle', () => { document.body.dataset.ready = '1'; });
</script></body></html>`;

function loadPlaywright() {
  const require = createRequire(join(REPO_ROOT, 'web-map', 'package.json'));
  try {
    return require('playwright-core');
  } catch (err) {
    throw new Error(`playwright-core not found: run "npm ci" in web-map/ (${err.message})`);
  }
}

/** Runs in the page: moves the map and resolves when it is idle again. */
function jumpAndSettle({ center, zoom }) {
  return new Promise((done) => {
    window.map.once('idle', done);
    window.map.jumpTo({ center, zoom });
  });
}

/** Runs in the page: names and positions of the rendered features of `layers`. */
function renderedNames(layers) {
  const { map } = window;
  const present = layers.filter((id) => map.getLayer(id));
  return map.queryRenderedFeatures({ layers: present }).map((feature) => ({
    layer: feature.layer.id,
    name: feature.properties.name ?? '',
    center: feature.geometry.type === 'Point' ? feature.geometry.coordinates : null,
  }));
}

describe('default style in Chromium: glyphs and sprites', () => {
  const base = process.env.GRIDMAP_URL;
  let browser;
  let page;
  const assetResponses = []; // { url, status, bytes } of /fonts/ and /sprites/
  const problems = [];
  const problemReport = () => (problems.length ? `\n  ${problems.join('\n  ')}` : ' none');

  before(async () => {
    assert.ok(base, 'GRIDMAP_URL is not set: start gridmap-server and run e.g. '
      + 'GRIDMAP_URL=http://127.0.0.1:8088 node --test tests/web/');
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
    const { chromium } = loadPlaywright();
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const origin = new URL(base).origin;
    await context.route(`${origin}${PAGE_PATH}`, (route) => route.fulfill({
      status: 200, contentType: 'text/html; charset=utf-8', body: PAGE,
    }));
    context.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
    context.on('response', async (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
      const { pathname } = new URL(r.url());
      if (pathname.startsWith('/fonts/') || pathname.startsWith('/sprites/')) {
        const entry = { url: decodeURIComponent(pathname), status: r.status(), bytes: -1 };
        assetResponses.push(entry);
        entry.bytes = (await r.body().catch(() => Buffer.alloc(0))).length;
      }
    });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
  });

  test('Chinese and Latin/digit labels draw from served glyphs, icons from the sprite', { timeout: TEST_TIMEOUT }, async () => {
    await page.goto(new URL(PAGE_PATH, base).href);
    try {
      await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: READY_TIMEOUT });
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS, 'style-glyphs.png') }).catch(() => {});
      throw new Error(`map never became idle (${err.message}); problems:${problemReport()}`);
    }

    // The whole city: district, street and community names, all Chinese.
    const areaLabels = await page.evaluate(renderedNames, AREA_LABELS);
    assert.ok(areaLabels.some((l) => CJK.test(l.name)), `no Chinese area label rendered: ${JSON.stringify(areaLabels)}`);

    // Close in on streets, then communities, until building names (门牌 and
    // 楼号, with digits) show.
    const streets = areaLabels.filter((l) => l.layer === 'street_labels-label' && l.center);
    assert.ok(streets.length > 0, `no street label rendered: ${JSON.stringify(areaLabels)}`);
    let communities = [];
    for (const street of streets.slice(0, 4)) {
      await page.evaluate(jumpAndSettle, { center: street.center, zoom: 12.5 });
      communities = (await page.evaluate(renderedNames, [COMMUNITY_LABELS])).filter((l) => l.center);
      if (communities.length > 0) break;
    }
    assert.ok(communities.length > 0, 'no community label rendered at z12.5');
    let buildingLabels = [];
    for (const community of communities.slice(0, 6)) {
      await page.evaluate(jumpAndSettle, { center: community.center, zoom: 16.5 });
      const labels = await page.evaluate(renderedNames, [BUILDING_LABELS]);
      buildingLabels = buildingLabels.concat(labels);
      if (buildingLabels.some((l) => LATIN_OR_DIGIT.test(l.name))) break;
    }
    await page.screenshot({ path: join(ARTIFACTS, 'style-glyphs.png') });
    assert.ok(
      buildingLabels.some((l) => LATIN_OR_DIGIT.test(l.name)),
      `no building label with Latin letters or digits rendered: ${JSON.stringify(buildingLabels.slice(0, 20))}`,
    );
    assert.ok(buildingLabels.some((l) => CJK.test(l.name)), 'no Chinese building label rendered');

    // The sprite sheet loaded and its station icons are known to the map.
    const images = await page.evaluate(() => window.map.listImages());
    for (const icon of ['station-service_centre', 'station-red_station', 'station-grid_station', 'station-rider_rest_stop']) {
      assert.ok(images.includes(icon), `${icon} missing from the map's images: ${images.join(', ')}`);
    }

    // Every glyph and sprite request succeeded with a body, and the CJK
    // glyphs came from the server: a range at or above U+3400 was fetched.
    await page.waitForTimeout(200); // let the last response bodies be read
    const fonts = assetResponses.filter((r) => r.url.startsWith('/fonts/'));
    const sprites = assetResponses.filter((r) => r.url.startsWith('/sprites/'));
    const bad = assetResponses.filter((r) => r.status !== 200 || r.bytes <= 0);
    assert.deepEqual(bad, [], 'glyph or sprite responses not 200 with a body');
    assert.ok(fonts.some((r) => r.url.endsWith('/0-255.pbf')), `no Latin range fetched: ${fonts.map((r) => r.url)}`);
    const cjkRanges = fonts.filter((r) => Number(/\/(\d+)-\d+\.pbf$/.exec(r.url)?.[1]) >= 0x3400);
    assert.ok(cjkRanges.length > 0, `no CJK range fetched: ${fonts.map((r) => r.url)}`);
    assert.ok(sprites.some((r) => r.url.endsWith('.png')), `no sprite image fetched: ${sprites.map((r) => r.url)}`);
    assert.ok(sprites.some((r) => r.url.endsWith('.json')), `no sprite index fetched: ${sprites.map((r) => r.url)}`);

    const mapErrors = await page.evaluate(() => window.mapErrors);
    assert.deepEqual(mapErrors, [], 'MapLibre reported errors');
    assert.equal(problems.length, 0, `problems while loading:${problemReport()}`);
  });
});
