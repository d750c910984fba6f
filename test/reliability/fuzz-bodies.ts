/**
 * Query strings, bodies and headers of the fuzz scenario (issue 7, part 3): what arrives around the path
 * rather than in it. Pure data, like fuzz-values.ts.
 */

/** Malformed or hostile query strings, appended raw (no encoding by us). */
export const RAW_QUERIES: readonly string[] = [
  '?',
  '??',
  '?&&&',
  '?=',
  '?=1',
  '?&=&',
  '?%',
  '?%=%',
  '?a=%',
  '?a=%zz',
  '?a=%E0%A4%A',
  '?a=%ff%fe',
  '?%00=%00',
  '?__proto__=1',
  '?__proto__[x]=1',
  '?constructor[prototype][x]=1',
  '?toString=1',
  '?a[]=1&a[]=2',
  '?a[b][c]=1',
  '?a=1;b=2',
  '?a=1#fragment',
  '?+=+',
  `?${'k'.repeat(10_000)}=1`,
  `?a=${'v'.repeat(100_000)}`,
  `?${Array.from({ length: 2000 }, (_, i) => `k${i}=${i}`).join('&')}`,
];

/** JSON bodies that are not what a route wants, as text. */
export const RAW_BODIES: readonly string[] = [
  '',
  ' ',
  '\n',
  '{',
  '}',
  '{"model":',
  '{"model":"stain-texture",}',
  '{model: "stain-texture"}',
  "{'model':'stain-texture'}",
  '{"a":1}}',
  'nul',
  'null',
  'true',
  '0',
  '-1',
  '1e309',
  '"stain-texture"',
  '[]',
  '[{"model":"stain-texture"}]',
  '[[[[[[[[[[]]]]]]]]]]',
  '[1,2,3]',
  '{}',
  '{"__proto__":{"admin":true,"model":"x"}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"model":"stain-texture","__proto__":{"mpp":0.0001}}',
  '{"model":"stain-texture","model":"other"}',
  '{"token":{"$ne":null}}',
  '{"token":["a","b"]}',
  '{"token":null}',
  '{"token":12345678901234567890}',
  '\ufeff{"model":"stain-texture"}',
  '{"model":"\\ud800"}',
  '{"model":"\\u0000"}',
  '\u0000\u0000\u0000',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`,
  `{"model":"${'a'.repeat(60_000)}"}`,
  `{"token":"${'t'.repeat(60_000)}"}`,
];

/** Values for one field of a JSON body: wrong types, out of range, hostile. */
export const JSON_FIELD_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  -0,
  0.5,
  1.5,
  1e-300,
  1e300,
  Number.MAX_SAFE_INTEGER,
  2 ** 53 + 1,
  '',
  '0.5',
  'NaN',
  'Infinity',
  'stain-texture',
  'a'.repeat(10_000),
  [],
  [0.5],
  {},
  { $gt: 0 },
  { __proto__: null },
  JSON.parse('{"__proto__":{"x":1}}') as unknown,
];

/** Content types to send with a body (the routes must not care, or must refuse cleanly). */
export const CONTENT_TYPES: readonly (string | undefined)[] = [
  undefined,
  'application/json',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'multipart/form-data',
  'application/octet-stream',
  'application/json; charset=nonsense',
  ';;;',
  'a'.repeat(5000),
];

/** Values for a header that a route or the front door reads (auth, cookie, validators, content type). */
export function headerValues(token: string | undefined): string[] {
  return [
    '',
    'Bearer',
    'Bearer ',
    `Bearer ${token ?? 'x'}x`,
    `bearer ${token ?? 'x'}`,
    `Basic ${Buffer.from('a:b').toString('base64')}`,
    'wsigw_session=garbage',
    'wsigw_session=a.b.c',
    `wsigw_session=${Buffer.from('{"t":0,"exp":99999999999999}').toString('base64url')}.AAAA`,
    'W/"*"',
    '*',
    'bytes=0-1,2-3',
    'x'.repeat(8000),
    'null',
    '\u00ff\u00fe',
  ];
}

let hugeCache: Map<number, string> | undefined;
/** A body of `bytes` bytes that starts like JSON (cached: the full scale sends thousands). */
export function hugeBody(bytes: number): string {
  hugeCache ??= new Map();
  let body = hugeCache.get(bytes);
  if (body === undefined) {
    // `{"model":"` and `"}` are 12 bytes.
    body = `{"model":"${'x'.repeat(Math.max(0, bytes - 12))}"}`;
    hugeCache.set(bytes, body);
  }
  return body;
}

