import { describe, expect, it } from 'vitest';
import { parseSeriesSummary, parseWsiInstance } from './dicom-json.js';
import { isDicomUid } from './uid.js';

const ui = (value: string) => ({ vr: 'UI', Value: [value] });

describe('isDicomUid', () => {
  it('takes digits and dots up to 64 characters', () => {
    expect(isDicomUid('1.2.840.10008.1.2.4.50')).toBe(true);
    expect(isDicomUid(`1.${'2'.repeat(62)}`)).toBe(true);
    expect(isDicomUid(`1.${'2'.repeat(63)}`)).toBe(false);
  });
  it('refuses what could climb out of a URL path', () => {
    for (const bad of [undefined, '', '1.2/../../system', '..', '1..2', '.1', '1.', '1.2%2f..', 'https://evil/1.2', '1.2 ']) expect(isDicomUid(bad)).toBe(false);
  });
});

describe('UIDs from the PACS', () => {
  it('drops a search result or an instance whose UID is not a UID', () => {
    expect(parseSeriesSummary({ '0020000D': ui('1.2.3'), '0020000E': ui('1.2.3/../../../system') })).toBeUndefined();
    expect(parseSeriesSummary({ '0020000D': ui('1.2.3'), '0020000E': ui('1.2.3.4') })).toMatchObject({ seriesUid: '1.2.3.4' });
    expect(parseWsiInstance({ '0020000D': ui('1.2.3'), '0020000E': ui('1.2.3.4'), '00080018': ui('../../system') })).toBeUndefined();
    expect(parseWsiInstance({ '0020000D': ui('1.2.3'), '0020000E': ui('1.2.3.4'), '00080018': ui('1.2.3.4.5') })).toMatchObject({ sopInstanceUid: '1.2.3.4.5' });
  });
});
