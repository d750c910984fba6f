/**
 * Image layers over the slide, placed in level-0 pixel coordinates: the cluster map and similarity
 * heatmaps are drawn here. Each layer is an OpenSeadragon TiledImage stacked above the slide.
 */
import OpenSeadragon from 'openseadragon';

export interface OverlayOptions {
  /** Your name for the layer; adding an id again replaces that layer. */
  id: string;
  /** The image: a URL the browser can load (same origin, or a blob: URL made from a canvas). */
  url: string;
  /** Where the image lies, in level-0 pixels. @default the whole slide */
  boundsPx?: { x: number; y: number; width: number; height: number };
  /** 0 (transparent) to 1. @default 0.5 */
  opacity?: number;
  /** @default true */
  visible?: boolean;
}

interface Layer {
  item: OpenSeadragon.TiledImage;
  opacity: number;
  visible: boolean;
}

export class OverlayLayers {
  private readonly layers = new Map<string, Layer>();

  constructor(
    private readonly viewer: OpenSeadragon.Viewer,
    /** Level-0 width in pixels: OpenSeadragon's viewport unit is the slide's width. */
    private readonly slideWidthPx: number,
  ) {}

  /** Adds (or replaces) a layer; resolves once its image has loaded. */
  add(options: OverlayOptions): Promise<void> {
    const opacity = clampOpacity(options.opacity ?? 0.5);
    const visible = options.visible ?? true;
    const b = options.boundsPx;
    return new Promise((resolve, reject) => {
      this.viewer.addTiledImage({
        tileSource: { type: 'image', url: options.url, buildPyramid: false },
        x: b ? b.x / this.slideWidthPx : 0,
        y: b ? b.y / this.slideWidthPx : 0,
        width: b ? b.width / this.slideWidthPx : 1,
        opacity: visible ? opacity : 0,
        success: (event: { item: OpenSeadragon.TiledImage }) => {
          this.remove(options.id);
          this.layers.set(options.id, { item: event.item, opacity, visible });
          resolve();
        },
        error: (event: { message?: string }) => reject(new Error(`Overlay ${options.id}: ${event.message ?? 'image failed to load'}`)),
      } as unknown as OpenSeadragon.TileSourceSpecifier);
    });
  }

  remove(id: string): boolean {
    const layer = this.layers.get(id);
    if (!layer) return false;
    this.viewer.world.removeItem(layer.item);
    this.layers.delete(id);
    return true;
  }

  setOpacity(id: string, opacity: number): void {
    const layer = this.get(id);
    layer.opacity = clampOpacity(opacity);
    if (layer.visible) layer.item.setOpacity(layer.opacity);
  }

  setVisible(id: string, visible: boolean): void {
    const layer = this.get(id);
    layer.visible = visible;
    layer.item.setOpacity(visible ? layer.opacity : 0);
  }

  list(): Array<{ id: string; opacity: number; visible: boolean }> {
    return [...this.layers].map(([id, l]) => ({ id, opacity: l.opacity, visible: l.visible }));
  }

  private get(id: string): Layer {
    const layer = this.layers.get(id);
    if (!layer) throw new Error(`No overlay named ${id}`);
    return layer;
  }
}

function clampOpacity(value: number): number {
  if (!Number.isFinite(value)) throw new RangeError('opacity must be a number from 0 to 1');
  return Math.min(1, Math.max(0, value));
}
