import { describe, expect, it } from 'vitest';
import { chooseScaleBar, formatDicomDate, formatLength, formatMagnification, formatSize, magnificationOf } from './units.js';

describe('units', () => {
  it('gives the conventional magnification of a pixel spacing', () => {
    expect(formatMagnification(magnificationOf(0.25))).toBe('40×');
    expect(formatMagnification(magnificationOf(0.499))).toBe('20×');
    expect(formatMagnification(magnificationOf(4))).toBe('2.5×');
    expect(formatMagnification(magnificationOf(29))).toBe('0.34×');
  });

  it('picks a 1-2-5 scale bar that fits', () => {
    // 0.5 µm per screen pixel, 160 px at most: 80 µm fit, so 50 µm = 100 px.
    expect(chooseScaleBar(0.5, 160)).toEqual({ lengthUm: 50, widthPx: 100, label: '50 µm' });
    expect(chooseScaleBar(20, 160)).toEqual({ lengthUm: 2000, widthPx: 100, label: '2 mm' });
    const bar = chooseScaleBar(0.0123, 160);
    expect(bar.lengthUm).toBe(1);
    expect(bar.widthPx).toBeLessThanOrEqual(160);
  });

  it('formats lengths, sizes and DICOM dates', () => {
    expect(formatLength(2500)).toBe('2.5 mm');
    expect(formatLength(0.5)).toBe('0.5 µm');
    expect(formatSize(19980, 14835)).toBe('19,980 × 14,835 px');
    expect(formatDicomDate('20261122')).toBe('2026-11-22');
    expect(formatDicomDate(null)).toBe('');
  });
});
