// Reads a PMTiles archive with protomaps' reference implementation (the npm
// package `pmtiles`), independently of the Rust writer, and prints JSON:
//   { header: {...}, metadata: {...}, entries: N,
//     tiles: [{ z, x, y, data: hex of the decompressed tile }] }
// Every tile id the directories address (root and leaves, runs expanded) is
// listed, and each tile is fetched through the reader's own lookup (getZxy).
//
//   node importer/tests/pmtiles_reader/read_pmtiles.mjs FILE.pmtiles
//
// Needs `npm ci` in this folder (scripts/install-deps runs it).

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PMTiles, tileIdToZxy } from 'pmtiles';

/** A local file as a pmtiles Source (the package ships only browser and HTTP sources). */
class LocalFileSource {
  constructor(path) {
    this.path = path;
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  getKey() {
    return this.path;
  }

  async getBytes(offset, length) {
    const end = Math.min(offset + length, this.size);
    const buffer = Buffer.alloc(Math.max(0, end - offset));
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(this.fd, buffer, read, buffer.length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return { data: buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + read) };
  }

  close() {
    closeSync(this.fd);
  }
}

const path = process.argv[2];
if (!path) {
  console.error('usage: read_pmtiles.mjs FILE.pmtiles');
  process.exit(2);
}
const source = new LocalFileSource(path);
const archive = new PMTiles(source);
const header = await archive.getHeader();
const metadata = await archive.getMetadata();

// Walk the directories: an entry with runLength 0 points at a leaf directory.
const tileIds = [];
let entries = 0;
const walk = async (offset, length, depth) => {
  if (depth > 3) throw new Error('directory deeper than the spec allows');
  const directory = await archive.cache.getDirectory(source, offset, length, header);
  for (const entry of directory) {
    if (entry.runLength === 0) {
      await walk(header.leafDirectoryOffset + entry.offset, entry.length, depth + 1);
    } else {
      entries += 1;
      for (let i = 0; i < entry.runLength; i += 1) tileIds.push(entry.tileId + i);
    }
  }
};
await walk(header.rootDirectoryOffset, header.rootDirectoryLength, 0);

const tiles = [];
for (const tileId of tileIds) {
  const [z, x, y] = tileIdToZxy(tileId);
  const response = await archive.getZxy(z, x, y);
  if (!response) throw new Error(`tile ${z}/${x}/${y} is listed but not found`);
  tiles.push({ z, x, y, data: Buffer.from(response.data).toString('hex') });
}
source.close();
process.stdout.write(JSON.stringify({ header, metadata, entries, tiles }));
