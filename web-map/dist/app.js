// gridmap web map: grids coloured by status, the lookup chain on click.
// Plain ES modules; MapLibre comes from vendor/ (copied by build.mjs).

import * as maplibregl from './vendor/maplibre-gl.mjs';
import {
  buildStyle, LAYERS, GRID_FILL, GRID_SELECTED, STATION_CIRCLE, NO_SELECTION,
  HATCH_IMAGE, EXCLUSIVE_COLOUR,
} from './style.js';
import { hatchImage } from './hatch.js';
import * as panel from './panel.js';

// Resolved against the page, so the map also works behind a path prefix.
const tileJsonUrl = (layer) => new URL(`tiles/${layer}.json`, document.baseURI).href;
const LOOKUP_URL = new URL('api/v1/lookup', document.baseURI).href;

// 龙口市: only used when grids.json cannot tell us where the grids are.
const FALLBACK_VIEW = { center: [120.48, 37.62], zoom: 10 };

// Clicks this close (px) to a station dot pick the station, not the grid.
const STATION_HIT_PX = 5;

/** The [w, s, e, n] extent of the grid layer, from its TileJSON. */
async function gridBounds() {
  try {
    const res = await fetch(tileJsonUrl('grids'));
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const { bounds } = await res.json();
    if (Array.isArray(bounds) && bounds.length === 4) return bounds;
  } catch (err) {
    panel.showStatus(`无法读取网格图层 (grids.json): ${err.message}`);
    console.error('grids.json:', err);
  }
  return null;
}

function createMap(bounds) {
  // Keep the grids clear of the side panel when it sits on the left.
  const left = window.innerWidth > 640 ? 330 : 20;
  const view = bounds
    ? { bounds, fitBoundsOptions: { padding: { top: 20, bottom: 20, right: 20, left } } }
    : FALLBACK_VIEW;
  const map = new maplibregl.Map({
    container: 'map',
    style: buildStyle(tileJsonUrl),
    ...view,
    // North stays up: grid boundaries are read against the street layout.
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    attributionControl: { compact: true },
  });
  map.touchZoomRotate.disableRotation();
  // Added before any tile is laid out, so the first frame already has the hatch.
  map.addImage(HATCH_IMAGE, hatchImage(EXCLUSIVE_COLOUR));
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
  return map;
}

function watchForErrors(map) {
  // Registering a listener replaces MapLibre's own console logging, so log here.
  map.on('error', (e) => {
    console.error('map error:', e.error?.message ?? e.error);
    panel.showStatus(`地图数据加载失败 map data failed: ${e.error?.message ?? ''}`);
  });
}

/** Sets body[data-ready="1"] once every source's tiles are in (tests wait on it). */
function signalReady(map) {
  map.on('idle', function markReady() {
    if (!LAYERS.every((source) => map.isSourceLoaded(source))) return;
    map.off('idle', markReady);
    document.body.dataset.ready = '1';
  });
}

function selectGrid(map, code) {
  map.setFilter(GRID_SELECTED, code ? ['==', ['get', 'code'], code] : NO_SELECTION);
}

function wireClicks(map) {
  // Only the newest click may fill the panel; slower older answers are dropped
  // (not aborted, so the network log stays free of cancelled requests).
  let latest = 0;

  async function lookup(lngLat) {
    const seq = ++latest;
    panel.showLookupPending(lngLat);
    const url = new URL(LOOKUP_URL);
    url.searchParams.set('lon', lngLat.lng.toFixed(7));
    url.searchParams.set('lat', lngLat.lat.toFixed(7));
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const result = await res.json();
      if (seq !== latest) return;
      panel.showLookup(result);
      selectGrid(map, result.grid?.code);
    } catch (err) {
      if (seq !== latest) return;
      console.error('lookup failed:', err);
      panel.showLookupError(`查询失败 lookup failed: ${err.message}`);
      selectGrid(map, null);
    }
  }

  map.on('click', (e) => {
    const { x, y } = e.point;
    const r = STATION_HIT_PX;
    const [station] = map.queryRenderedFeatures([[x - r, y - r], [x + r, y + r]], {
      layers: [STATION_CIRCLE],
    });
    if (station) {
      panel.showStation(station.properties);
      return;
    }
    lookup(e.lngLat.wrap());
  });

  for (const layer of [GRID_FILL, STATION_CIRCLE]) {
    map.on('mouseenter', layer, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', layer, () => { map.getCanvas().style.cursor = ''; });
  }
}

panel.renderLegend();
const map = createMap(await gridBounds());
window.gridmap = { map };
watchForErrors(map);
signalReady(map);
wireClicks(map);
