import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../embed/generate/graph.js';
import { parseContentType, parseMultipart, readTransferSyntaxParam, MultipartError, type MultipartPart } from './multipart.js';

async function* chunked(body: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
}

async function collect(body: Buffer, boundary: string, chunkSize: number): Promise<MultipartPart[]> {
  const parts: MultipartPart[] = [];
  for await (const part of parseMultipart(chunked(body, chunkSize), boundary)) parts.push(part);
  return parts;
}

function build(boundary: string, parts: Array<{ type: string; data: Buffer }>, { preamble = '' } = {}): Buffer {
  const pieces: Buffer[] = [Buffer.from(preamble)];
  for (const [i, p] of parts.entries()) {
    pieces.push(Buffer.from(`${i === 0 && !preamble ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${p.type}\r\n\r\n`), p.data);
  }
  pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}

describe('parseContentType', () => {
  it("reads Orthanc's form: transfer syntax inside the quoted type, boundary unquoted", () => {
    const ct = parseContentType(
      'multipart/related; type="image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"; boundary=abc-123',
    );
    expect(ct.mediaType).toBe('multipart/related');
    expect(ct.params['boundary']).toBe('abc-123');
    expect(ct.params['type']).toBe('image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(readTransferSyntaxParam(ct)).toBe('1.2.840.10008.1.2.4.50');
  });

  it('reads the standard form with a quoted boundary and a part-level transfer syntax', () => {
    const ct = parseContentType('multipart/related; type="application/octet-stream"; boundary="b=1;x"');
    expect(ct.params['boundary']).toBe('b=1;x');
    expect(readTransferSyntaxParam(parseContentType('image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90'))).toBe(
      '1.2.840.10008.1.2.4.90',
    );
    expect(readTransferSyntaxParam(parseContentType('application/octet-stream'))).toBeUndefined();
  });
});

describe('parseMultipart', () => {
  const frames = [Buffer.alloc(70_000, 1), Buffer.from('\r\n--notaboundary\r\n'), Buffer.alloc(0), Buffer.alloc(5, 9)];
  const body = build(
    'XyZ',
    frames.map((data) => ({ type: 'image/jpeg', data })),
  );

  it.each([1, 3, 7, 64, 1024, 65_536, body.length])('yields every part byte-exact with %i-byte chunks', async (size) => {
    const parts = await collect(body, 'XyZ', size);
    expect(parts.map((p) => p.data)).toEqual(frames);
    expect(parts.every((p) => p.headers['content-type'] === 'image/jpeg')).toBe(true);
  });

  it('yields every part byte-exact whatever the chunk boundaries, delimiters split at every offset', async () => {
    // Parts full of near-delimiters, cut into chunks of random sizes around the delimiter's length.
    const boundary = 'bound4ry';
    const near = Buffer.from('\r\n--bound4r\r\n-\r\n--bound4ry'.slice(0, -1));
    const parts = Array.from({ length: 6 }, (_, i) => Buffer.concat(Array.from({ length: 40 + i * 13 }, (_, j) => (j % 3 === 0 ? near : Buffer.from([j & 0xff, 0x0d, 0x0a])))));
    const whole = build(boundary, parts.map((data) => ({ type: 'image/jpeg', data })));
    const random = mulberry32(7);
    for (let trial = 0; trial < 50; trial++) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < whole.length; ) {
        const size = 1 + Math.floor(random() * 2 * (boundary.length + 4));
        pieces.push(whole.subarray(i, i + size));
        i += size;
      }
      const got: Buffer[] = [];
      for await (const part of parseMultipart((async function* () { yield* pieces; })(), boundary)) got.push(part.data);
      expect(got).toEqual(parts);
    }
  });

  it('skips a preamble', async () => {
    const withPreamble = build('b', [{ type: 'image/jp2', data: Buffer.from('abc') }], { preamble: 'ignore me\r\n' });
    const parts = await collect(withPreamble, 'b', 2);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.data.toString()).toBe('abc');
  });

  it('fails on a body cut before the close delimiter, after yielding the complete parts', async () => {
    const cut = body.subarray(0, body.length - 20);
    const parts: MultipartPart[] = [];
    await expect(async () => {
      for await (const p of parseMultipart(chunked(cut, 1000), 'XyZ')) parts.push(p);
    }).rejects.toThrow(MultipartError);
    expect(parts.length).toBeLessThan(frames.length);
  });

  it('fails on a body with no parts at all', async () => {
    await expect(collect(Buffer.from('<html>not multipart</html>'), 'XyZ', 10)).rejects.toThrow(MultipartError);
  });
});
