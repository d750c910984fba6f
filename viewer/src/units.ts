/** Microscope units for people: magnification from µm/px, scale-bar lengths, sizes. Pure. */

/**
 * The objective magnification a spacing corresponds to, by the convention scanners use
 * (10x ≈ 1 µm/px, so 20x ≈ 0.5 and 40x ≈ 0.25 µm/px).
 */
export function magnificationOf(mppUm: number): number {
  return 10 / mppUm;
}

/** "40×", "2.5×", "0.31×": two significant figures below 10, whole numbers above. */
export function formatMagnification(mag: number): string {
  const text = mag >= 10 ? String(Math.round(mag)) : mag >= 1 ? String(Math.round(mag * 10) / 10) : mag.toPrecision(2);
  return `${text}×`;
}

/** A length in µm as people write it: "500 µm", "1 mm", "2.5 mm", "0.5 µm". */
export function formatLength(um: number): string {
  if (um >= 1000) return `${Number((um / 1000).toPrecision(3))} mm`;
  return `${Number(um.toPrecision(3))} µm`;
}

/**
 * The scale bar: the longest 1, 2 or 5 × 10^n µm that fits in `maxWidthPx` screen pixels at
 * `umPerScreenPx`, and its width in screen pixels.
 */
export function chooseScaleBar(umPerScreenPx: number, maxWidthPx: number): { lengthUm: number; widthPx: number; label: string } {
  const maxUm = umPerScreenPx * maxWidthPx;
  const exponent = Math.floor(Math.log10(maxUm));
  let lengthUm = 10 ** exponent;
  for (const step of [5, 2, 1]) {
    if (step * 10 ** exponent <= maxUm) {
      lengthUm = step * 10 ** exponent;
      break;
    }
  }
  return { lengthUm, widthPx: lengthUm / umPerScreenPx, label: formatLength(lengthUm) };
}

/** "2,220 × 2,967 px". */
export function formatSize(widthPx: number, heightPx: number): string {
  return `${widthPx.toLocaleString('en-US')} × ${heightPx.toLocaleString('en-US')} px`;
}

/** DICOM DA (YYYYMMDD) as an ISO date, or the text unchanged. */
export function formatDicomDate(da: string | null | undefined): string {
  if (!da) return '';
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : da;
}
