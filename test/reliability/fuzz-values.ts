/**
 * The nasty values of the fuzz scenario (issue 7, part 3), by the kind of field they are thrown at, and
 * the seeded generator that picks them. Pure data and arithmetic: the same seed gives the same inputs,
 * so a failure found in a full run can be replayed from the seed in the report.
 */
import { mulberry32 } from '../../src/embed/generate/graph.js';

/** A seeded generator (mulberry32: small, fast, and good enough to pick test inputs). */
export interface Rng {
  /** In [0, 1). */
  float(): number;
  /** A whole number in [0, maxExclusive). */
  int(maxExclusive: number): number;
  pick<T>(items: readonly T[]): T;
  chance(probability: number): boolean;
}

export function createRng(seed: number): Rng {
  const float = mulberry32(seed);
  const int = (maxExclusive: number) => Math.floor(float() * maxExclusive);
  return { float, int, pick: (items) => items[int(items.length)]!, chance: (p) => float() < p };
}

/** Ways out of a folder, as a request might spell them (the folder source must never build a path from one). */
export function traversalValues(canaryPaths: readonly string[]): string[] {
  const relative = ['..', '../..', '../../..', '../../../../../../etc/passwd', '..\\..\\windows\\win.ini'];
  return [
    '.',
    '..',
    '%2e%2e',
    '%2e%2e%2f',
    '%2E%2E%2F%2E%2E%2F',
    '%252e%252e%252f',
    '..%2f..%2fetc%2fpasswd',
    '..%5c..%5c',
    '..%c0%af..%c0%af',
    '%c0%ae%c0%ae/',
    '....//....//',
    '/etc/passwd',
    '%2Fetc%2Fpasswd',
    'C:\\Windows\\win.ini',
    '\\\\server\\share',
    'file:///etc/passwd',
    '~/.ssh/id_rsa',
    ...relative,
    ...canaryPaths,
    ...canaryPaths.map((p) => encodeURIComponent(p)),
    ...canaryPaths.map((p) => encodeURIComponent(encodeURIComponent(p))),
  ];
}

/** Things a DICOM UID must not be (PS3.5 §9.1: digits and dots, at most 64, no leading zeros). */
export const UID_VALUES: readonly string[] = [
  '',
  ' ',
  '1'.repeat(65),
  `1.2.${'3'.repeat(61)}`,
  `1.${'2.'.repeat(40)}3`,
  'abc',
  '1.2.3a',
  '1.2.3.',
  '.1.2.3',
  '1..2',
  '1.02.3',
  '00.1',
  '-1.2',
  '+1.2',
  '1e5',
  '0x1F',
  '١.٢.٣',
  '１.２.３',
  '1.2.3\u0000',
  '1.2%003',
  '%00',
  '1.2.3%0a',
  '1.2.3 ',
  ' 1.2.3',
  '1.2.3\t',
  '1.2.3;',
  '1,2,3',
  '😀',
  'é',
  '%',
  '%zz',
  '%E0%A4%A',
  '%ff%fe',
  '%u002e',
  '<script>alert(1)</script>',
  "' OR '1'='1",
  '${jndi:ldap://x}',
  '{{7*7}}',
  'null',
  'undefined',
  'NaN',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'a'.repeat(4096),
  '9'.repeat(20000),
];

/** Things a whole number in a path or query must not be. */
export const NUMBER_VALUES: readonly string[] = [
  '',
  ' ',
  '-1',
  '-0',
  '0.5',
  '1.0',
  '.5',
  '1.',
  '1e3',
  '1E400',
  '-1e-7',
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '0X1f',
  '0b11',
  '0o17',
  '1_000',
  '1,000',
  ' 1',
  '1 ',
  '\t1',
  '1\n',
  '+1',
  '１',
  '٣',
  '9'.repeat(11),
  '9'.repeat(400),
  '4294967296',
  '2147483648',
  '9007199254740993',
  '00000000001',
  '0000000000000000000001',
  '1;2',
  '1&2',
  '%31',
  '%2D1',
  '1%00',
  '%00',
  'null',
  'true',
  '[]',
  '{}',
  '[1]',
  '1/0',
  '__proto__',
  'constructor',
];

/** Short strings for enum-like and free-text fields (mode, model ids, run ids, job ids, q). */
export const STRING_VALUES: readonly string[] = [
  '',
  ' ',
  '-',
  '--',
  'a'.repeat(64),
  'a'.repeat(129),
  'x'.repeat(70_000),
  'PATCHES',
  'merged ',
  'Stain-Texture',
  'stain_texture',
  'path-foundation',
  'remedis',
  '.hidden',
  'a/b',
  'a%2fb',
  'a\\b',
  '*',
  '%',
  '%%',
  '%G1',
  '%ff',
  '\u0000',
  '\u202e',
  '😀',
  '-'.repeat(36),
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '00000000-0000-4000-8000-000000000000',
  'FFFFFFFF-FFFF-4FFF-8FFF-FFFFFFFFFFFF',
  'constructor',
  '__proto__',
  'toString',
  'valueOf',
  'hasOwnProperty',
];
