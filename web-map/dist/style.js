// The map style: sources, layers and the colours the legend repeats.
//
// No basemap, no glyphs, no sprite: the page must work on an offline
// government intranet, so everything drawn here comes from gridmap-server's
// own vector tiles. Text (symbol) layers wait for locally generated CJK glyphs.

// 网格五色管理法: the status colour every grid carries.
export const STATUS_COLOURS = {
  green: '#2e9d4f',
  blue: '#2f6fd6',
  yellow: '#e8c21b',
  orange: '#f08a24',
  red: '#d93636',
};

export const STATUS_LABELS = {
  green: '绿 green',
  blue: '蓝 blue',
  yellow: '黄 yellow',
  orange: '橙 orange',
  red: '红 red',
};

// Station colours are kept away from the five status hues so a station dot
// never reads as a grid status.
export const STATION_COLOURS = {
  service_centre: '#6a1b9a',
  red_station: '#a31545',
  grid_station: '#00838f',
  rider_rest_stop: '#5d4037',
};

export const STATION_LABELS = {
  service_centre: '党群服务中心',
  red_station: '红色驿站',
  grid_station: '网格驿站',
  rider_rest_stop: '新就业群体驿站',
};

export const GRID_KIND_LABELS = { basic: '基础网格', exclusive: '专属网格' };

export const EXCLUSIVE_COLOUR = '#4a148c';

// Image id of the diagonal hatch drawn over exclusive grids (see hatch.js).
export const HATCH_IMAGE = 'exclusive-hatch';

export const LAYERS = [
  'districts', 'streets', 'communities', 'grids',
  'grid_units', 'buildings', 'stations', 'roads',
];

// Layer ids the rest of the page (and tests/web) refer to.
export const GRID_FILL = 'grids-fill';
export const GRID_SELECTED = 'grids-selected';
export const STATION_CIRCLE = 'stations-circle';

// Matches no grid: codes are digits, never empty.
export const NO_SELECTION = ['==', ['get', 'code'], ''];

function matchColour(property, colours, fallback) {
  return ['match', ['get', property], ...Object.entries(colours).flat(), fallback];
}

/** @param {(layer: string) => string} tileJsonUrl */
export function buildStyle(tileJsonUrl) {
  const sources = Object.fromEntries(
    LAYERS.map((layer) => [layer, { type: 'vector', url: tileJsonUrl(layer) }]),
  );

  // Drawn bottom to top: fills first, then lines from fine to coarse so the
  // administrative boundaries stay readable, then the selection and stations.
  const layers = [
    { id: 'background', type: 'background', paint: { 'background-color': '#f4f2ed' } },
    {
      id: GRID_FILL, type: 'fill', source: 'grids', 'source-layer': 'grids',
      paint: {
        'fill-color': matchColour('status', STATUS_COLOURS, '#999999'),
        'fill-opacity': 0.38,
      },
    },
    {
      id: 'grids-exclusive-hatch', type: 'fill', source: 'grids', 'source-layer': 'grids',
      filter: ['==', ['get', 'kind'], 'exclusive'],
      paint: { 'fill-pattern': HATCH_IMAGE },
    },
    {
      id: 'buildings-fill', type: 'fill', source: 'buildings', 'source-layer': 'buildings',
      minzoom: 14,
      paint: { 'fill-color': '#8c8f94', 'fill-opacity': 0.55, 'fill-outline-color': '#5f6368' },
    },
    {
      id: 'roads-line', type: 'line', source: 'roads', 'source-layer': 'roads',
      filter: ['!=', ['get', 'class'], 'footway'],
      layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: {
        'line-color': matchColour('class', { primary: '#9e7d5a', secondary: '#b09a7e' }, '#c2b8aa'),
        'line-width': [
          'interpolate', ['linear'], ['zoom'],
          10, ['match', ['get', 'class'], 'primary', 1.6, 'secondary', 1, 0.4],
          16, ['match', ['get', 'class'], 'primary', 7, 'secondary', 5, 3],
        ],
      },
    },
    {
      id: 'roads-footway', type: 'line', source: 'roads', 'source-layer': 'roads',
      filter: ['==', ['get', 'class'], 'footway'],
      minzoom: 13,
      paint: { 'line-color': '#a89f91', 'line-width': 1, 'line-dasharray': [2, 2] },
    },
    {
      id: 'grid_units-outline', type: 'line', source: 'grid_units', 'source-layer': 'grid_units',
      minzoom: 14,
      paint: { 'line-color': '#6b6b6b', 'line-width': 0.5, 'line-opacity': 0.7 },
    },
    {
      id: 'grids-outline', type: 'line', source: 'grids', 'source-layer': 'grids',
      paint: {
        'line-color': '#3c3c3c',
        'line-width': ['interpolate', ['linear'], ['zoom'], 11, 0.3, 16, 1.2],
        'line-opacity': 0.8,
      },
    },
    {
      id: 'grids-exclusive-outline', type: 'line', source: 'grids', 'source-layer': 'grids',
      filter: ['==', ['get', 'kind'], 'exclusive'],
      paint: {
        'line-color': EXCLUSIVE_COLOUR,
        'line-width': ['interpolate', ['linear'], ['zoom'], 11, 1, 16, 2.5],
        'line-dasharray': [3, 1.5],
      },
    },
    {
      id: 'communities-outline', type: 'line', source: 'communities', 'source-layer': 'communities',
      paint: {
        'line-color': '#404040',
        'line-width': ['interpolate', ['linear'], ['zoom'], 10, 0.6, 16, 1.6],
        'line-dasharray': [4, 2],
      },
    },
    {
      id: 'streets-outline', type: 'line', source: 'streets', 'source-layer': 'streets',
      layout: { 'line-join': 'round' },
      paint: {
        'line-color': '#262626',
        'line-width': ['interpolate', ['linear'], ['zoom'], 9, 1.5, 16, 4],
      },
    },
    {
      id: 'districts-outline', type: 'line', source: 'districts', 'source-layer': 'districts',
      layout: { 'line-join': 'round' },
      paint: {
        'line-color': '#111111',
        'line-width': ['interpolate', ['linear'], ['zoom'], 8, 2, 16, 6],
        'line-opacity': 0.85,
      },
    },
    {
      id: GRID_SELECTED, type: 'line', source: 'grids', 'source-layer': 'grids',
      filter: NO_SELECTION,
      layout: { 'line-join': 'round' },
      paint: { 'line-color': '#00b8d9', 'line-width': 4 },
    },
    {
      id: STATION_CIRCLE, type: 'circle', source: 'stations', 'source-layer': 'stations',
      paint: {
        'circle-color': matchColour('kind', STATION_COLOURS, '#333333'),
        'circle-radius': [
          'interpolate', ['linear'], ['zoom'],
          10, ['match', ['get', 'kind'], 'service_centre', 4, 2.5],
          16, ['match', ['get', 'kind'], 'service_centre', 10, 7],
        ],
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 1.2,
      },
    },
  ];

  return { version: 8, name: 'gridmap', sources, layers };
}
