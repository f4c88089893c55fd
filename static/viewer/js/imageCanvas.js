// A viewport's canvas: sized to its element in device pixels, drawn with the whole-image
// render and, where zoomed, the sharper tiles of the pyramid over it.

import { displayTransform, levelFor, tilesInView } from "./math/transform.js";

export class ImageCanvas {
  constructor(element) {
    this.element = element;
    this.canvas = element.querySelector("canvas");
    this.context = this.canvas.getContext("2d");
  }

  // The element's size in device pixels: the size the canvas is drawn at.
  pixelSize() {
    const ratio = window.devicePixelRatio || 1;
    return {
      width: Math.max(1, Math.round(this.element.clientWidth * ratio)),
      height: Math.max(1, Math.round(this.element.clientHeight * ratio)),
    };
  }

  // The canvas's size as last drawn, in device pixels.
  size() {
    return { width: this.canvas.width, height: this.canvas.height };
  }

  // Black, and ``image`` over it in ``view`` (math/transform.js) where there is one;
  // ``tiles`` ({ size, levels, tile(level, column, row) -> image or null }) draws the
  // pyramid's tiles over the image, ``inverted`` inverts what is drawn. Returns the
  // display matrix, or null when no image was drawn.
  draw(image, view, { tiles = null, inverted = false } = {}) {
    const { width, height } = this.pixelSize();
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    const context = this.context;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, width, height);
    if (!image || !view) return null;
    const canvas = { width, height };
    const m = displayTransform(view, canvas);
    context.setTransform(m.a, m.b, m.c, m.d, m.e, m.f);
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = "high";
    // The whole-image render first (in image pixels: the matrix scales, turns and
    // flips it); where zoomed, sharper tiles drawn over it.
    context.drawImage(image, 0, 0, view.columns, view.rows);
    if (tiles) this.drawTiles(view, canvas, m.scale, tiles);
    if (inverted) {
      // White "difference" over the image inverts it (v -> 255 - v) in every browser
      // (the context's CSS filter is missing from Safari).
      context.globalCompositeOperation = "difference";
      context.fillStyle = "#fff";
      context.fillRect(0, 0, view.columns, view.rows);
      context.globalCompositeOperation = "source-over";
    }
    context.setTransform(1, 0, 0, 1, 0, 0);
    return m;
  }

  // Tiles of the pyramid level whose resolution the zoom needs, only those in view.
  drawTiles(view, canvas, scale, tiles) {
    const level = levelFor(scale, tiles.levels);
    if (!level) return;
    const size = 2 ** level.level; // image pixels per tile pixel
    const span = tiles.size * size;
    // Tiles overlap by one device pixel so no antialiased seam shows between them; when
    // magnified, pixels are drawn as squares (smoothing would blend each tile's edge
    // with nothing and draw a faint grid).
    const overlap = 1 / scale;
    this.context.imageSmoothingEnabled = scale < 1;
    for (const { column, row } of tilesInView(view, canvas, level, tiles.size)) {
      const tile = tiles.tile(level.level, column, row);
      if (tile) {
        this.context.drawImage(
          tile,
          column * span,
          row * span,
          tile.naturalWidth * size + overlap,
          tile.naturalHeight * size + overlap,
        );
      }
    }
  }
}
