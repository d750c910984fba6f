/**
 * multipart/related (RFC 2046 §5.1, as DICOMweb uses it in PS3.18 §8.7.1) parsed as a stream: parts
 * are yielded as soon as their closing delimiter arrives, and chunks are searched where they lie, not
 * appended to a buffer: a part's bytes are copied once into a buffer of its own, or not at all when
 * taken as chunks (a 10 MB whole instance). Orthanc sends no Content-Length on multi-frame answers, so
 * the delimiters are all we have.
 */

export interface MultipartPart {
  /** Part headers, names lower-cased. */
  headers: Record<string, string>;
  data: Buffer;
}

/** A part as the chunks its body arrived in (views into them), not joined. */
export interface MultipartChunkedPart {
  headers: Record<string, string>;
  chunks: Buffer[];
}

export class MultipartError extends Error {}

export interface ContentType {
  /** Lower-cased `type/subtype`. */
  mediaType: string;
  /** Parameters, names lower-cased, values unquoted. */
  params: Record<string, string>;
}

/**
 * Parses a Content-Type header, honouring quoted parameter values that themselves contain `;` and `=`:
 * Orthanc answers `multipart/related; type="image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"; boundary=...`.
 */
export function parseContentType(header: string): ContentType {
  const params: Record<string, string> = {};
  let i = header.indexOf(';');
  const mediaType = (i < 0 ? header : header.slice(0, i)).trim().toLowerCase();
  while (i >= 0 && i < header.length) {
    i++;
    const eq = header.indexOf('=', i);
    if (eq < 0) break;
    const name = header.slice(i, eq).trim().toLowerCase();
    let value: string;
    let j = eq + 1;
    while (header[j] === ' ') j++;
    if (header[j] === '"') {
      let end = j + 1;
      value = '';
      while (end < header.length && header[end] !== '"') {
        if (header[end] === '\\' && end + 1 < header.length) end++;
        value += header[end];
        end++;
      }
      i = header.indexOf(';', end);
    } else {
      const end = header.indexOf(';', j);
      value = (end < 0 ? header.slice(j) : header.slice(j, end)).trim();
      i = end;
    }
    if (name) params[name] = value;
  }
  return { mediaType, params };
}

/**
 * The transfer syntax of a DICOMweb part or response: a `transfer-syntax` parameter, or one nested in
 * the quoted `type` parameter of a multipart Content-Type (Orthanc's form).
 */
export function readTransferSyntaxParam(contentType: ContentType): string | undefined {
  const direct = contentType.params['transfer-syntax'];
  if (direct) return direct;
  const inner = contentType.params['type'];
  return inner ? parseContentType(inner).params['transfer-syntax'] : undefined;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

function parseHeaders(block: Buffer): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/**
 * Whether a delimiter may start in `tail` (shorter than a delimiter) and run on into `chunk`: true
 * when one does, or when `chunk` is too short to tell.
 */
function straddles(tail: Buffer, chunk: Buffer, delimiter: Buffer): boolean {
  if (tail.length === 0) return false;
  if (chunk.length < delimiter.length - 1) return true;
  return Buffer.concat([tail, chunk.subarray(0, delimiter.length - 1)]).indexOf(delimiter) >= 0;
}

/**
 * Yields the parts of a multipart body, each in one buffer of its own (a single chunk is copied too,
 * so that a small frame does not pin the 64 KB it arrived in). Throws MultipartError when the body
 * ends before the close delimiter.
 */
export async function* parseMultipart(body: AsyncIterable<Uint8Array>, boundary: string): AsyncGenerator<MultipartPart> {
  for await (const { headers, chunks } of parseMultipartChunks(body, boundary)) {
    yield { headers, data: chunks.length === 1 ? Buffer.from(chunks[0]!) : Buffer.concat(chunks) };
  }
}

/**
 * Yields the parts of a multipart body as the chunks they arrived in, for a part too large to join
 * (a whole instance: see ByteChunks). Throws MultipartError when the body ends before the close delimiter.
 */
export async function* parseMultipartChunks(body: AsyncIterable<Uint8Array>, boundary: string): AsyncGenerator<MultipartChunkedPart> {
  if (!boundary || boundary.length > 200) throw new MultipartError('Missing or invalid multipart boundary');
  // Every delimiter is CRLF "--" boundary; prefixing the body with CRLF makes the first one match too.
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let tail: Buffer = Buffer.from(CRLF);
  // Widened by hand: TypeScript would narrow a literal initialiser and miss the loop's assignments.
  let state = 'preamble' as 'preamble' | 'after-delimiter' | 'headers' | 'body';
  let headers: Record<string, string> = {};
  let bodyChunks: Buffer[] = [];

  for await (const raw of body) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if ((state === 'body' || state === 'preamble') && tail.length < delimiter.length && !straddles(tail, chunk, delimiter)) {
      // The common case inside a large part: no delimiter begins in the bytes kept from the last
      // chunk, so those bytes are body and this chunk is searched as it is, not copied onto them.
      if (state === 'body' && tail.length > 0) bodyChunks.push(tail);
      tail = chunk;
    } else {
      tail = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
    }
    for (;;) {
      if (state === 'preamble' || state === 'body') {
        const at = tail.indexOf(delimiter);
        if (at < 0) {
          // Keep just enough to find a delimiter that straddles this chunk and the next.
          const keep = Math.min(tail.length, delimiter.length - 1);
          if (state === 'body' && tail.length > keep) bodyChunks.push(tail.subarray(0, tail.length - keep));
          tail = tail.subarray(tail.length - keep);
          break;
        }
        if (state === 'body') {
          bodyChunks.push(tail.subarray(0, at));
          const chunks = bodyChunks;
          bodyChunks = [];
          yield { headers, chunks };
        }
        tail = tail.subarray(at + delimiter.length);
        state = 'after-delimiter';
      } else if (state === 'after-delimiter') {
        if (tail.length < 2) break;
        if (tail[0] === 0x2d && tail[1] === 0x2d) return; // the close delimiter
        const eol = tail.indexOf(CRLF); // transport padding may precede it
        if (eol < 0) break;
        tail = tail.subarray(eol + 2);
        state = 'headers';
      } else if (state === 'headers') {
        if (tail.length >= 2 && tail[0] === 0x0d && tail[1] === 0x0a) {
          headers = {};
          tail = tail.subarray(2);
          state = 'body';
          continue;
        }
        const end = tail.indexOf(HEADER_END);
        if (end < 0) {
          if (tail.length > 64 * 1024) throw new MultipartError('Multipart part headers are too long');
          break;
        }
        headers = parseHeaders(tail.subarray(0, end));
        tail = tail.subarray(end + HEADER_END.length);
        state = 'body';
      }
    }
  }
  throw new MultipartError('The multipart body ended before its close delimiter (truncated answer)');
}
