// One viewport showing a stack: the frames of a series in slice order, drawn from
// server-rendered images. Its state (series, slice, window, zoom, pan, rotation, flip,
// cine) lives here; imageLoader.js fetches and caches the images and prefetches
// neighbouring slices at the current window, imageCanvas.js draws them, overlays.js
// writes the text over them.

import { errorMessage } from "./api.js";
import { ImageCanvas } from "./imageCanvas.js";
import { ImageLoader, draggingUrl, frameUrl, undecodableReason } from "./imageLoader.js";
import {
  IDENTITY_TURN,
  centerKeeping,
  displayTransform,
  flippedHorizontally,
  flippedVertically,
  rotated,
} from "./math/transform.js";
import { positionAlongNormal } from "./math/slicePosition.js";
import { Overlays } from "./overlays.js";

export class StackViewport {
  constructor(element) {
    this.element = element;
    this.surface = new ImageCanvas(element);
    this.canvas = this.surface.canvas;
    this.loader = new ImageLoader();
    this.overlays = new Overlays(element);
    this.study = null; // the study of the series shown (series.study)
    this.magnification = 1; // relative to fit
    this.center = null; // image point at the canvas centre; null: the image's centre
    this.turn = IDENTITY_TURN; // rotation (quarter turns clockwise) and flip, math/transform.js
    this.series = null;
    this.stack = [];
    this.slice = 0;
    this.window = null; // null: the server's default for the image
    this.inverted = false;
    this.interactive = null; // in-flight cheap render while dragging
    this.annotations = null; // the measurement layer (annotations.js), set by layout.js
    this.onchange = () => {};
    // Who hears of a change, with its kind: "series", "slice", "window" or "zoom" (zoom,
    // pan and fit). sync.js listens here to link viewports; no tool does.
    this.listeners = new Set();
    this.linked = false; // in a linked scroll group with another viewport (sync.js)
    this.generation = 0; // bumped by every change of slice, series or window
    new ResizeObserver(() => {
      this.draw();
      // Large images are rendered at the canvas's size: ask again once resizing settles.
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => this.show(), 150);
    }).observe(element);
  }

  get count() {
    return this.stack.length;
  }

  get current() {
    return this.stack[this.slice];
  }

  setSeries(series) {
    this.stop();
    this.series = series;
    this.study = series.study;
    this.magnification = 1;
    this.center = null;
    this.turn = IDENTITY_TURN;
    this.stack = series.instances.flatMap((instance) =>
      Array.from({ length: Math.max(instance.number_of_frames, 1) }, (_, i) => ({ instance, frame: i + 1 })),
    );
    this.slice = 0;
    this.window = this.defaultWindow();
    this.changed("series");
    return this.show();
  }

  listen(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // The layout's onchange (scrollbar), the automation hooks, then the listeners.
  changed(kind) {
    this.onchange();
    this.writeHooks();
    for (const listener of this.listeners) listener(kind, this);
  }

  // Automation hooks on the viewport element, kept current on every change (for browser
  // tests, integrations and load tests, as OHIF's data-cy attributes): the UIDs of what
  // is shown, its frame (1-based), its position along the slice normal (IPP · n in mm, 2
  // decimals; empty where (0020,0032)/(0020,0037) are missing), the window as
  // "center,width" (empty: the server's default) and whether it scrolls linked.
  writeHooks() {
    const data = this.element.dataset;
    const entry = this.current;
    data.studyInstanceUid = this.study?.study_instance_uid ?? "";
    data.seriesInstanceUid = this.series?.series_instance_uid ?? "";
    data.sopInstanceUid = entry?.instance.sop_instance_uid ?? "";
    data.frame = entry ? String(entry.frame) : "";
    const position = entry && entry.instance.number_of_frames <= 1 ? positionAlongNormal(entry.instance) : null;
    data.positionMm = position === null ? "" : position.toFixed(2);
    data.window = this.window ? `${round(this.window.center)},${round(this.window.width)}` : "";
    data.linked = String(Boolean(this.linked));
    data.magnification = this.magnification.toFixed(3);
    const center = this.relativeCenter();
    data.pan = center ? `${center.x.toFixed(4)},${center.y.toFixed(4)}` : "";
  }

  setLinked(linked) {
    if (this.linked === linked) return;
    this.linked = linked;
    this.writeHooks();
    this.writeOverlays();
  }

  // The pan as the image point at the canvas centre relative to the image's size (0..1
  // across the columns and down the rows); null: centred.
  relativeCenter() {
    const instance = this.current?.instance;
    if (!this.center || !instance?.columns || !instance?.rows) return null;
    return { x: this.center.x / instance.columns, y: this.center.y / instance.rows };
  }

  // Zoom and pan from another viewport (sync.js): the same magnification relative to
  // fit, the same relative centre.
  setView({ magnification, center }) {
    const instance = this.current?.instance;
    this.magnification = Math.min(Math.max(magnification, 1), 64);
    this.center =
      center && instance?.columns && instance?.rows && this.magnification > 1
        ? { x: center.x * instance.columns, y: center.y * instance.rows }
        : null;
    this.requestDraw();
    this.changed("zoom");
  }

  // A whole view at once, as another viewer showed it (live.js: a presenter's state; a
  // share link's opening view): the stack index, the window (null: the image's server
  // default), the magnification relative to fit and the relative centre (as setView),
  // rotation, flip and inversion; a field left undefined stays as it is. One render for
  // all of it, each kind of change announced as the single setters do. ``interactive``:
  // the presenter is dragging the window, so the cheap render will do.
  applyView({ slice, window, magnification, center, rotation, flipped, inverted, interactive = false }) {
    const kinds = [];
    let render = !this.drawn;
    if (slice !== undefined && this.count) {
      const clamped = Math.min(Math.max(slice, 0), this.count - 1);
      if (clamped !== this.slice) {
        this.slice = clamped;
        kinds.push("slice");
        render = true;
      }
    }
    if (window !== undefined) {
      const next = window ? { center: window.center, width: Math.max(window.width, 1) } : null;
      const same = next === null ? this.window === null : this.window?.center === next.center && this.window?.width === next.width;
      if (!same || this.dragging !== interactive) {
        this.window = next;
        this.dragging = interactive;
        kinds.push("window");
        render = true;
      }
    }
    if (rotation !== undefined || flipped !== undefined) {
      const turn = { rotation: rotation ?? this.turn.rotation, flipped: flipped ?? this.turn.flipped };
      if (turn.rotation !== this.turn.rotation || turn.flipped !== this.turn.flipped) {
        if (turn.rotation !== this.turn.rotation) render = true; // rendered for the turned box
        this.turn = turn;
      }
    }
    if (magnification !== undefined) {
      const instance = this.current?.instance;
      const next = Math.min(Math.max(magnification, 1), 64);
      const point =
        center && instance?.columns && instance?.rows && next > 1 ? { x: center.x * instance.columns, y: center.y * instance.rows } : null;
      const moved = point?.x !== this.center?.x || point?.y !== this.center?.y;
      if (next !== this.magnification || moved) {
        this.magnification = next;
        this.center = point;
        kinds.push("zoom");
      }
    }
    if (inverted !== undefined) this.inverted = Boolean(inverted);
    for (const kind of kinds) this.changed(kind);
    if (render && interactive && kinds.length === 1 && kinds[0] === "window") return this.showInteractive();
    if (render) return this.show();
    this.requestDraw();
    return Promise.resolve();
  }

  // The window the current image opens with: its header's first (0028,1050) Window
  // Center / (0028,1051) Window Width pair (PS3.3 C.11.2.1.2), else null (the server's
  // default for the image).
  defaultWindow() {
    const preset = this.current?.instance.presets?.find((p) => p.kind === "window");
    return preset ? { center: preset.center, width: preset.width } : null;
  }

  // Back to the image's default window, uninverted, fitted (no pan), upright and
  // unflipped. The series, the slice and cine stay as they are.
  reset() {
    this.magnification = 1;
    this.center = null;
    this.turn = IDENTITY_TURN;
    this.inverted = false;
    this.changed("zoom");
    return this.setWindow(this.defaultWindow());
  }

  setSlice(index) {
    const clamped = Math.min(Math.max(index, 0), this.count - 1);
    if (clamped === this.slice && this.drawn) return Promise.resolve();
    this.slice = clamped;
    this.changed("slice");
    return this.show();
  }

  setWindow(window, { interactive = false } = {}) {
    this.window = window ? { center: window.center, width: Math.max(window.width, 1) } : null;
    this.dragging = interactive;
    this.changed("window");
    if (interactive) return this.showInteractive();
    return this.show();
  }

  // Cine: advance one slice (or frame) every 1/fps seconds, wrapping at the end.
  play(fps) {
    this.stop();
    this.cine = setInterval(() => this.setSlice((this.slice + 1) % this.count), 1000 / fps);
  }

  stop() {
    clearInterval(this.cine);
    this.cine = null;
  }

  // The rate the header recommends (Recommended Display Frame Rate, Cine Rate or 1/Frame
  // Time), else 10 per second.
  defaultFrameRate() {
    return Math.round(this.current?.instance.frame_rate || 10);
  }

  setInverted(inverted) {
    this.inverted = inverted;
    this.draw();
  }

  guessWindow() {
    const instance = this.current?.instance;
    const bits = instance?.bits_stored || 8;
    const slope = instance?.rescale_slope ?? 1;
    const intercept = instance?.rescale_intercept ?? 0;
    const top = 2 ** bits * slope;
    return { center: intercept + top / 2, width: top };
  }

  // The rendered URL of a stack entry at the current window, canvas size and rotation.
  urlFor(entry, options = {}) {
    const state = { window: this.window, canvas: this.surface.pixelSize(), rotation: this.turn.rotation };
    return frameUrl(entry, state, options);
  }

  async show() {
    const entry = this.current;
    if (!entry) return;
    const url = this.urlFor(entry);
    const slice = this.slice;
    const generation = ++this.generation;
    const known = undecodableReason(entry);
    if (known) {
      // The index knows this frame does not decode: say why without asking for it.
      this.image = null;
      this.draw();
      this.showMessage(`Slice ${slice + 1} cannot be shown: ${known}`);
      this.prefetch();
      return;
    }
    try {
      const image = await this.loader.load(url);
      if (generation !== this.generation) return; // a newer request supersedes this one
      this.image = image;
      this.canvas.dataset.url = url;
      this.hideMessage();
      this.draw();
      // Timing marks for bench/viewer.py (and any real-user monitoring).
      if (!performance.getEntriesByName("loupe:first-image").length) performance.mark("loupe:first-image");
      performance.mark("loupe:slice", { detail: slice });
    } catch {
      if (generation !== this.generation) return;
      this.image = null;
      this.draw();
      this.showMessage(`Slice ${slice + 1} cannot be shown: ${await errorMessage(url)}`);
    }
    this.prefetch();
  }

  async showInteractive() {
    // One cheap request at a time; the latest window wins.
    if (this.interactive) {
      this.interactivePending = true;
      return;
    }
    const entry = this.current;
    if (!entry) return;
    const url = draggingUrl(entry, { window: this.window, canvas: this.surface.pixelSize() });
    this.interactive = this.loader
      .load(url)
      .then((image) => {
        this.image = image;
        this.draw();
      })
      .catch(() => {})
      .finally(() => {
        this.interactive = null;
        if (this.interactivePending) {
          this.interactivePending = false;
          this.showInteractive();
        }
      });
  }

  prefetch() {
    this.loader.prefetch(this.stack, this.slice, (entry) => this.urlFor(entry));
  }

  // The view of the current image (math/transform.js): size, physical aspect, zoom, pan,
  // rotation and flip.
  view() {
    const { instance } = this.current;
    const spacing = instance.pixel_spacing;
    return {
      columns: instance.columns || this.image.naturalWidth,
      rows: instance.rows || this.image.naturalHeight,
      aspect: spacing ? spacing.row_mm / spacing.column_mm : 1,
      magnification: this.magnification,
      center: this.center,
      rotation: this.turn.rotation,
      flipped: this.turn.flipped,
    };
  }

  // The pyramid's tiles of the current frame at the current window, for imageCanvas.js;
  // each tile not loaded yet is asked for, and the canvas drawn again once it arrives.
  tiles() {
    const entry = this.current;
    const tile = (level, column, row) =>
      this.loader.tile(entry, level, column, row, this.window, () => this.requestDraw());
    return { ...entry.instance.tiles, tile };
  }

  draw() {
    const entry = this.current;
    const view = this.image && entry ? this.view() : null;
    // Where zoomed (and not while the window is dragged), sharper tiles over the image.
    const tiles = view && this.magnification > 1 && !this.dragging ? this.tiles() : null;
    this.matrix = this.surface.draw(this.image, view, { tiles, inverted: this.inverted });
    this.drawn = Boolean(this.image);
    if (this.matrix) this.annotations?.draw(this.surface.context);
    if (this.matrix) {
      this.aspect = view.aspect;
      this.displayScale = this.matrix.scale / (window.devicePixelRatio || 1);
    }
    this.canvas.dataset.slice = String(this.slice + 1);
    this.canvas.dataset.rotation = String(this.turn.rotation * 90);
    this.canvas.dataset.flipped = String(this.turn.flipped);
    this.canvas.dataset.inverted = String(this.inverted);
    this.writeOverlays();
  }

  requestDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.draw();
    });
  }

  canvasSize() {
    return this.surface.size();
  }

  // A point of the viewport element (CSS pixels from its top-left) in canvas pixels.
  canvasPoint(x, y) {
    const ratio = window.devicePixelRatio || 1;
    return { x: x * ratio, y: y * ratio };
  }

  // Zoom to ``magnification`` (relative to fit; 1 = fit, at least 1, at most 64), keeping
  // the image point under ``anchor`` (canvas pixels; default the centre) where it is.
  setMagnification(magnification, anchor = null) {
    const next = Math.min(Math.max(magnification, 1), 64);
    if (next === 1) this.center = null;
    else if (this.image && this.current && anchor) {
      const view = this.view();
      this.center = centerKeeping(view, { ...view, magnification: next }, this.canvasSize(), anchor);
    }
    this.magnification = next;
    this.requestDraw();
    this.changed("zoom");
  }

  // One device pixel per image pixel.
  actualSize() {
    if (!this.image) return;
    const m = displayTransform({ ...this.view(), magnification: 1 }, this.canvasSize());
    this.setMagnification(1 / m.scale);
  }

  // Move the image by (dx, dy) CSS pixels on the screen, whatever its rotation and flip.
  panBy(dx, dy) {
    if (!this.image || !this.current) return;
    const canvas = this.canvasSize();
    const anchor = { x: canvas.width / 2, y: canvas.height / 2 };
    const d = this.canvasPoint(dx, dy);
    const view = this.view();
    this.center = centerKeeping(view, view, canvas, anchor, { x: anchor.x + d.x, y: anchor.y + d.y });
    this.requestDraw();
    this.changed("zoom");
  }

  // Pinch: from the view at the gesture's start, the image point that was under
  // ``from`` (canvas pixels) goes under ``to``, at ``magnification``.
  pinch(start, from, to, magnification) {
    if (!this.image || !this.current) return;
    const view = { ...this.view(), magnification: start.magnification, center: start.center };
    const next = Math.min(Math.max(magnification, 1), 64);
    this.center = centerKeeping(view, { ...view, magnification: next }, this.canvasSize(), from, to);
    this.magnification = next;
    this.requestDraw();
    this.changed("zoom");
  }

  // Rotation and flip act on what the screen shows (math/transform.js).
  rotate(quarterTurns) {
    this.turn = rotated(this.turn, quarterTurns);
    this.requestDraw();
    this.show(); // large images are rendered for the canvas's turned box
  }

  flipHorizontal() {
    this.turn = flippedHorizontally(this.turn);
    this.requestDraw();
  }

  flipVertical() {
    this.turn = flippedVertically(this.turn);
    this.requestDraw();
  }

  // The overlays for the current image, slice, window and zoom (overlays.js).
  writeOverlays() {
    const entry = this.current;
    if (!entry) return;
    this.overlays.write({
      entry,
      study: this.study,
      series: this.series,
      slice: this.slice,
      count: this.count,
      window: this.window,
      displayScale: this.displayScale,
      matrix: this.matrix,
      aspect: this.aspect,
      linked: this.linked,
    });
  }

  showMessage(text) {
    this.overlays.showMessage(text);
  }

  hideMessage() {
    this.overlays.hideMessage();
  }
}

function round(value) {
  return Math.round(value * 100) / 100;
}
