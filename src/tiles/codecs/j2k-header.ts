import { CodecError } from '../../errors.js';

/** Marker codes (ITU-T T.800 Table A.2). */
const SOC = 0xff4f;
const COD = 0xff52;
const SOT = 0xff90;
const SOD = 0xff93;
const EOC = 0xffd9;

/** 'jP  ', the JP2 signature box type, and 'jp2c', the contiguous codestream box (T.800 Annex I). */
const JP2_SIGNATURE_BOX = 0x6a502020;
const JP2_CODESTREAM_BOX = 0x6a703263;

/**
 * Whether the codestream's main-header COD marker says the multiple component transform (RCT for
 * the 5/3 wavelet, ICT for 9/7) was applied to components 0-2 (T.800 A.6.1, SGcod byte 4). When it
 * was, OpenJPEG inverts it while decoding and its output is RGB whatever the Photometric
 * Interpretation says (YBR_RCT/YBR_ICT per PS3.5 8.2.4, or a mislabelled RGB/YBR_FULL).
 *
 * Accepts a raw codestream (what PS3.5 A.4.4 requires) or a JP2 file (what some converters store).
 * A tile-part COD could override this per tile; converters do not do that, so only the main header
 * is read.
 */
export function hasMultipleComponentTransform(data: Uint8Array): boolean {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const start = findCodestreamOffset(view);
  let offset = start + 2;
  while (offset + 4 <= view.byteLength) {
    const marker = view.getUint16(offset);
    if ((marker & 0xff00) !== 0xff00) {
      throw new CodecError(`JPEG 2000 main header is corrupt: no marker at byte ${offset}`);
    }
    if (marker === SOT || marker === SOD || marker === EOC) break;
    // Every main-header marker after SOC is a segment: a 2-byte length (counting itself) follows.
    const segmentBytes = view.getUint16(offset + 2);
    if (marker === COD) {
      // Lcod(2) Scod(1) then SGcod: progression order(1), layers(2), MCT(1).
      const mctOffset = offset + 2 + 2 + 1 + 1 + 2;
      if (segmentBytes < 12 || mctOffset >= view.byteLength) {
        throw new CodecError('JPEG 2000 COD marker segment is truncated');
      }
      return view.getUint8(mctOffset) !== 0;
    }
    if (segmentBytes < 2) throw new CodecError(`JPEG 2000 marker segment at byte ${offset} has a bad length`);
    offset += 2 + segmentBytes;
  }
  throw new CodecError('JPEG 2000 main header has no COD marker');
}

/** Byte offset of SOC: 0 for a raw codestream, the jp2c box's contents for a JP2 file. */
function findCodestreamOffset(view: DataView): number {
  if (view.byteLength >= 2 && view.getUint16(0) === SOC) return 0;
  if (view.byteLength < 12 || view.getUint32(4) !== JP2_SIGNATURE_BOX) {
    throw new CodecError('Frame is neither a JPEG 2000 codestream nor a JP2 file');
  }
  let offset = 0;
  while (offset + 8 <= view.byteLength) {
    // Box header (T.800 I.4): LBox(4) TBox(4), then XLBox(8) when LBox = 1; LBox = 0 runs to the end.
    const lengthField = view.getUint32(offset);
    const type = view.getUint32(offset + 4);
    let headerBytes = 8;
    let boxBytes = lengthField;
    if (lengthField === 1) {
      if (offset + 16 > view.byteLength) break;
      headerBytes = 16;
      boxBytes = Number(view.getBigUint64(offset + 8));
    } else if (lengthField === 0) {
      boxBytes = view.byteLength - offset;
    }
    if (type === JP2_CODESTREAM_BOX) {
      const codestreamOffset = offset + headerBytes;
      if (codestreamOffset + 2 > view.byteLength || view.getUint16(codestreamOffset) !== SOC) break;
      return codestreamOffset;
    }
    if (boxBytes < headerBytes) break;
    offset += boxBytes;
  }
  throw new CodecError('JP2 file has no valid codestream (jp2c) box');
}
