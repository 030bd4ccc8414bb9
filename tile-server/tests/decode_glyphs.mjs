// Decodes a MapLibre glyphs PBF with the `pbf` package (MapLibre's own
// protobuf library, from web-map/node_modules) compiled from the published
// glyphs.proto schema, independently of the Rust encoder. Prints JSON:
//   { stacks: [{ name, range, glyphs: [{ id, width, height, left, top, advance, bitmapLength }] }] }
//
//   node tile-server/tests/decode_glyphs.mjs FILE.pbf

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const modules = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web-map', 'node_modules');
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { PbfReader } = await load('pbf/index.js');
const { compile } = await load('pbf/compile.js');
const { default: schema } = await load('protocol-buffers-schema/index.js');

const GLYPHS_PROTO = `
syntax = "proto2";
package llmr.glyphs;
message glyph {
  required uint32 id = 1;
  optional bytes bitmap = 2;
  required uint32 width = 3;
  required uint32 height = 4;
  required sint32 left = 5;
  required sint32 top = 6;
  required uint32 advance = 7;
}
message fontstack {
  required string name = 1;
  required string range = 2;
  repeated glyph glyphs = 3;
}
message glyphs {
  repeated fontstack stacks = 1;
  extensions 16 to 8191;
}
`;

const { readglyphs } = compile(schema.parse(GLYPHS_PROTO));
const message = readglyphs(new PbfReader(readFileSync(process.argv[2])));
const stacks = message.stacks.map(({ name, range, glyphs }) => ({
  name,
  range,
  glyphs: glyphs.map(({ id, width, height, left, top, advance, bitmap }) => ({
    id, width, height, left, top, advance, bitmapLength: bitmap ? bitmap.length : 0,
  })),
}));
process.stdout.write(JSON.stringify({ stacks }));
