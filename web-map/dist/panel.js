// The side panel: the lookup chain, station details and the legend.
// Text only goes in through textContent, never innerHTML: names come from
// imported city data.

import {
  STATUS_COLOURS, STATUS_LABELS, STATION_COLOURS, STATION_LABELS,
  GRID_KIND_LABELS,
} from './style.js';

const $ = (id) => document.getElementById(id);

function setText(id, text) {
  $(id).textContent = text ?? '';
}

/** "name（code）", or "" when the level is missing. */
function nameAndCode(unit) {
  if (!unit) return '';
  return unit.code ? `${unit.name ?? ''}（${unit.code}）` : (unit.name ?? '');
}

function swatch(className, colour) {
  const span = document.createElement('span');
  span.className = className;
  if (colour) span.style.background = colour;
  return span;
}

function legendItem(mark, text) {
  const li = document.createElement('li');
  li.append(mark, text);
  return li;
}

export function renderLegend() {
  $('legend-status').replaceChildren(...Object.entries(STATUS_COLOURS).map(
    ([status, colour]) => legendItem(swatch('swatch', colour), STATUS_LABELS[status]),
  ));
  $('legend-kind').replaceChildren(
    legendItem(swatch('swatch', '#ffffff'), '基础网格 basic'),
    legendItem(swatch('swatch exclusive'), '专属网格 exclusive'),
    legendItem(swatch('swatch selected'), '已选网格 selected'),
  );
  $('legend-stations').replaceChildren(...Object.entries(STATION_COLOURS).map(
    ([kind, colour]) => legendItem(swatch('dot', colour), STATION_LABELS[kind]),
  ));
}

/** Shows a problem the user should know about (missing tiles, lookup failure). */
export function showStatus(text) {
  $('status').textContent = text;
  $('status').hidden = !text;
}

function clearChain() {
  for (const id of ['chain-grid-code', 'chain-grid-name', 'chain-grid-kind',
    'chain-community', 'chain-street', 'chain-district']) {
    setText(id, '');
  }
}

export function showLookupPending(lngLat) {
  $('station').hidden = true;
  clearChain();
  setText('chain-point', `${lngLat.lng.toFixed(6)}, ${lngLat.lat.toFixed(6)}`);
  setText('chain-message', '查询中… looking up');
  $('chain-message').classList.remove('warn');
}

/** Renders a /api/v1/lookup answer. */
export function showLookup(result) {
  const { grid } = result;
  if (grid) {
    setText('chain-message', '');
    setText('chain-grid-code', grid.code);
    setText('chain-grid-name', grid.name);
    const kind = GRID_KIND_LABELS[grid.kind] ?? grid.kind ?? '';
    const status = STATUS_LABELS[grid.status] ?? grid.status ?? '';
    setText('chain-grid-kind', [kind, status].filter(Boolean).join(' / '));
  } else {
    setText('chain-message', '不在任何网格内 · not inside any grid');
    $('chain-message').classList.add('warn');
  }
  setText('chain-community', nameAndCode(result.community));
  setText('chain-street', nameAndCode(result.street));
  setText('chain-district', nameAndCode(result.district));
}

export function showLookupError(text) {
  setText('chain-message', text);
  $('chain-message').classList.add('warn');
}

/** Renders the properties of a clicked station feature. */
export function showStation(props) {
  setText('station-name', props.name);
  setText('station-kind', STATION_LABELS[props.kind] ?? props.kind);
  const amenities = String(props.amenities ?? '').split('、').filter(Boolean);
  $('station-amenities').replaceChildren(...amenities.map((a) => {
    const li = document.createElement('li');
    li.textContent = a;
    return li;
  }));
  if (amenities.length === 0) setText('station-amenities', '—');
  $('station').hidden = false;
}
