/**
 * Patches drawn as solid cells over the slide: the cluster map and the similarity heatmap. A canvas on
 * top of OpenSeadragon, redrawn on every viewport change from the patches' level-0 rectangles, so a
 * cell's edges are its patch's edges at every zoom (no image is scaled, so nothing is smoothed). Edges
 * are rounded to device pixels on their own, which keeps neighbouring cells seamless and crisp.
 */
import OpenSeadragon from 'openseadragon';
import type { PatchSizeLevel0 } from '../../src/analysis/patch-lookup.js';

export interface PatchLayerData {
  /** rows * 2 ints: level-0 x, y of each patch's top-left corner. */
  coordsPx: Int32Array;
  size: PatchSizeLevel0;
  /** rows * 4 bytes, RGBA per patch; alpha 0 leaves the patch out. */
  rgba: Uint8ClampedArray;
}

export class PatchLayer {
  readonly canvas: HTMLCanvasElement;
  private data: PatchLayerData | undefined;
  private opacity = 0.5;
  private visible = true;
  private frame = 0;
  /** Extra outlines (the query patch of a similarity map), drawn over the cells. */
  private outline: { row: number; colour: string } | undefined;

  constructor(
    private readonly viewer: OpenSeadragon.Viewer,
    /** The slide's TiledImage: level-0 pixels map to the screen through it. */
    private readonly slideItem: () => OpenSeadragon.TiledImage,
  ) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'patch-layer';
    // Above the tiles, below OpenSeadragon's controls; clicks go through to the viewer.
    Object.assign(this.canvas.style, { position: 'absolute', inset: '0', width: '100%', height: '100%', pointerEvents: 'none' });
    viewer.canvas.appendChild(this.canvas);
    const schedule = (): void => this.schedule();
    viewer.addHandler('update-viewport', schedule);
    viewer.addHandler('resize', schedule);
  }

  set(data: PatchLayerData | undefined, outline?: { row: number; colour: string }): void {
    this.data = data;
    this.outline = outline;
    this.schedule();
  }

  setOpacity(opacity: number): void {
    this.opacity = Math.min(1, Math.max(0, opacity));
    this.canvas.style.opacity = String(this.opacity);
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    this.canvas.hidden = !visible;
    this.schedule();
  }

  getState(): { visible: boolean; opacity: number; patches: number } {
    return { visible: this.visible, opacity: this.opacity, patches: this.data ? this.data.coordsPx.length / 2 : 0 };
  }

  /** Draws now (tests call it to not wait a frame). */
  draw(): void {
    const ratio = window.devicePixelRatio || 1;
    const widthCss = this.viewer.canvas.clientWidth;
    const heightCss = this.viewer.canvas.clientHeight;
    const width = Math.round(widthCss * ratio);
    const height = Math.round(heightCss * ratio);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    const ctx = this.canvas.getContext('2d');
    const item = this.slideItem();
    if (!ctx || !item) return;
    ctx.clearRect(0, 0, width, height);
    if (!this.visible || !this.data) return;
    // The map from level-0 pixels to device pixels is x * scale + offset (the viewer does not rotate).
    const origin = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    const unit = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(1000, 1000));
    const scaleX = ((unit.x - origin.x) / 1000) * ratio;
    const scaleY = ((unit.y - origin.y) / 1000) * ratio;
    const offsetX = origin.x * ratio;
    const offsetY = origin.y * ratio;
    const { coordsPx, size, rgba } = this.data;
    // One path per colour: a few fills instead of one per patch, and no seams inside a colour.
    const paths = new Map<number, Path2D>();
    for (let row = 0; row < coordsPx.length / 2; row++) {
      if (rgba[row * 4 + 3] === 0) continue;
      const x0 = Math.round(coordsPx[2 * row]! * scaleX + offsetX);
      const y0 = Math.round(coordsPx[2 * row + 1]! * scaleY + offsetY);
      const x1 = Math.max(x0 + 1, Math.round((coordsPx[2 * row]! + size.widthPx) * scaleX + offsetX));
      const y1 = Math.max(y0 + 1, Math.round((coordsPx[2 * row + 1]! + size.heightPx) * scaleY + offsetY));
      if (x1 < 0 || y1 < 0 || x0 > width || y0 > height) continue;
      const colour = (rgba[row * 4]! << 16) | (rgba[row * 4 + 1]! << 8) | rgba[row * 4 + 2]!;
      let path = paths.get(colour);
      if (!path) paths.set(colour, (path = new Path2D()));
      path.rect(x0, y0, x1 - x0, y1 - y0);
    }
    for (const [colour, path] of paths) {
      ctx.fillStyle = `#${colour.toString(16).padStart(6, '0')}`;
      ctx.fill(path);
    }
    if (this.outline) {
      const { row, colour } = this.outline;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2 * ratio;
      const x0 = Math.round(coordsPx[2 * row]! * scaleX + offsetX);
      const y0 = Math.round(coordsPx[2 * row + 1]! * scaleY + offsetY);
      ctx.strokeRect(x0, y0, Math.max(2, size.widthPx * scaleX), Math.max(2, size.heightPx * scaleY));
    }
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }
}
