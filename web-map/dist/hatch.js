// A diagonal hatch for exclusive grids (专属网格), drawn in code: the page has
// no sprite server, and a pattern keeps the status colour visible underneath.

const SIZE = 8;

/** RGBA pixels of a transparent tile with one diagonal stripe. */
export function hatchImage(hexColour) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hexColour.slice(i, i + 2), 16));
  const data = new Uint8Array(SIZE * SIZE * 4);
  for (let y = 0; y < SIZE; y += 1) {
    for (let x = 0; x < SIZE; x += 1) {
      // Pixels on the anti-diagonal (and its neighbour) join up seamlessly
      // when the tile repeats.
      const d = (x + y) % SIZE;
      if (d === 0 || d === 1) {
        data.set([r, g, b, d === 0 ? 200 : 90], (y * SIZE + x) * 4);
      }
    }
  }
  return { width: SIZE, height: SIZE, data };
}
