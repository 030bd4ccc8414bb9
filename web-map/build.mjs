// Copies MapLibre GL JS from node_modules into dist/vendor/, the only
// generated part of dist/ (git-ignored). The rest of dist/ is the page source,
// served as is by gridmap-server: no bundler, no transpiling.
//
// maplibre-gl 6 ships ES modules only; the main module loads its worker from
// the file next to it (maplibre-gl-worker.mjs), so both are copied.

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('maplibre-gl/package.json'));
const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));

const out = join(here, 'dist', 'vendor');
mkdirSync(out, { recursive: true });

for (const file of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs']) {
  // The source maps are not shipped (8 MB); drop their references so browser
  // devtools do not report a missing file.
  const code = readFileSync(join(pkgDir, 'dist', file), 'utf8')
    .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  writeFileSync(join(out, file), code);
}
copyFileSync(join(pkgDir, 'dist', 'maplibre-gl.css'), join(out, 'maplibre-gl.css'));
copyFileSync(join(pkgDir, 'LICENSE.txt'), join(out, 'LICENSE.txt'));

console.log(`maplibre-gl ${version} -> ${out}`);
