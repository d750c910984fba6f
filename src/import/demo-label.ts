/**
 * The demo slide's label: printed text and a barcode, drawn pixel by pixel with a 5x7 bitmap font so
 * that no system font (which a server may lack, and which would change the pixels between hosts) is needed.
 */
import type { RgbImage } from './raster.js';

/** 5 columns x 7 rows per glyph, '#' = ink. Only what labels need: capitals, digits, a few signs. */
const GLYPHS: Record<string, string> = {
  A: '.###.#...##...#######...##...##...#', B: '####.#...##...#####.#...##...#####.', C: '.###.#...##....#....#....#...#.###.',
  D: '####.#...##...##...##...##...#####.', E: '######....#....####.#....#....#####', F: '######....#....####.#....#....#....',
  G: '.###.#...##....#.####...##...#.###.', H: '#...##...##...#######...##...##...#', I: '.###...#....#....#....#....#...###.',
  J: '..###...#....#....#....##..#..##...', K: '#...##..#.#.#..##...#.#..#..#.#...#', L: '#....#....#....#....#....#....#####',
  M: '#...###.###.#.##...##...##...##...#', N: '#...###..##.#.##..###...##...##...#', O: '.###.#...##...##...##...##...#.###.',
  P: '####.#...##...#####.#....#....#....', Q: '.###.#...##...##...##.#.##..#..##.#', R: '####.#...##...#####.#.#..#..#.#...#',
  S: '.#####....#.....###.....#....#####.', T: '#####..#....#....#....#....#....#..', U: '#...##...##...##...##...##...#.###.',
  V: '#...##...##...##...##...#.#.#...#..', W: '#...##...##...##.#.##.#.##.#.#.#.#.', X: '#...##...#.#.#...#...#.#.#...##...#',
  Y: '#...##...#.#.#...#....#....#....#..', Z: '#####....#...#...#...#...#....#####', '0': '.###.#...##..###.#.###..##...#.###.',
  '1': '..#...##....#....#....#....#...###.', '2': '.###.#...#....#...#...#...#...#####', '3': '.###.#...#....#..##.....##...#.###.',
  '4': '...#...##..#.#.#..#.#####...#....#.', '5': '######....####.....#....##...#.###.', '6': '.###.#....#....####.#...##...#.###.',
  '7': '#####....#...#...#...#....#....#...', '8': '.###.#...##...#.###.#...##...#.###.', '9': '.###.#...##...#.####....#....#.###.',
  '-': '................###................', '.': '..........................##...##..', ':': '......##...##........##...##.......',
  '&': '.##..#..#.#.#...#...#.#.##..#..##.#', '/': '....#....#...#...#...#...#....#....', ' ': '',
};

const INK: readonly [number, number, number] = [28, 28, 36];
const PAPER: readonly [number, number, number] = [246, 244, 236];

function fill(image: RgbImage, left: number, top: number, widthPx: number, heightPx: number, rgb: readonly number[]): void {
  for (let y = Math.max(0, top); y < Math.min(image.heightPx, top + heightPx); y++) {
    for (let x = Math.max(0, left); x < Math.min(image.widthPx, left + widthPx); x++) {
      const i = (y * image.widthPx + x) * 3;
      image.data[i] = rgb[0]!;
      image.data[i + 1] = rgb[1]!;
      image.data[i + 2] = rgb[2]!;
    }
  }
}

/** Draws `text` (capitals) with its top left at (left, top), each font pixel `scale` px square. */
function drawText(image: RgbImage, text: string, left: number, top: number, scale: number): void {
  for (const [n, char] of [...text.toUpperCase()].entries()) {
    const glyph = (GLYPHS[char] ?? GLYPHS['-']!).padEnd(35, '.');
    for (let i = 0; i < 35; i++) {
      if (glyph[i] === '#') fill(image, left + (n * 6 + (i % 5)) * scale, top + Math.floor(i / 5) * scale, scale, scale, INK);
    }
  }
}

/**
 * A 480 x 240 px slide label: two lines of text, a line naming the seed, and a barcode whose bars
 * follow the seed (so two seeds give two labels). Deterministic.
 */
export function renderDemoLabel(lines: readonly string[], seed: number): RgbImage {
  const widthPx = 480;
  const heightPx = 240;
  const image: RgbImage = { data: Buffer.alloc(widthPx * heightPx * 3), widthPx, heightPx };
  fill(image, 0, 0, widthPx, heightPx, PAPER);
  lines.slice(0, 3).forEach((line, i) => drawText(image, line, 20, 20 + i * 44, i === 0 ? 5 : 4));
  // A barcode: bars 2-6 px wide from a small LCG seeded by the seed.
  let state = (seed * 2654435761) >>> 0;
  for (let x = 20; x < widthPx - 26; ) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const bar = 2 + (state >>> 29);
    fill(image, x, 170, bar, 50, INK);
    x += bar + 2 + ((state >>> 26) & 3);
  }
  return image;
}
