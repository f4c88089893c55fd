// One viewport showing a stack: the frames of a series in slice order, drawn from
// server-rendered images. Neighbouring slices are fetched ahead at the current window,
// so scrolling through a loaded series does not wait for the server.

import { errorMessage, renderedUrl, tileUrl } from "./api.js";
import { edgeLetters, slicePosition } from "./math/orientation.js";
import {
  IDENTITY_TURN,
  centerKeeping,
  displayTransform,
  flippedHorizontally,
  flippedVertically,
  levelFor,
  rotated,
  tilesInView,
} from "./math/transform.js";

const PREFETCH = 10; // slices ahead and behind
const CACHE_LIMIT = 400; // decoded images kept

export class StackViewport {
  constructor(element) {
    this.element = element;
    this.canvas = element.querySelector("canvas");
    this.context = this.canvas.getContext("2d");
    this.message = element.querySelector(".viewport-message");
    this.overlays = {
      tl: element.querySelector(".overlay.top-left"),
      tr: element.querySelector(".overlay.top-right"),
      bl: element.querySelector(".overlay.bottom-left"),
      br: element.querySelector(".overlay.bottom-right"),
    };
    this.letters = {
      left: element.querySelector(".orientation.left"),
      right: element.querySelector(".orientation.right"),
      top: element.querySelector(".orientation.top"),
      bottom: element.querySelector(".orientation.bottom"),
    };
    this.scaleBar = element.querySelector(".scale-bar");
    this.study = null; // the study of the series shown (series.study)
    this.images = new Map(); // url -> Promise<HTMLImageElement>
    this.ready = new Map(); // url -> HTMLImageElement, once loaded
    this.magnification = 1; // relative to fit
    this.center = null; // image point at the canvas centre; null: the image's centre
    this.turn = IDENTITY_TURN; // rotation (quarter turns clockwise) and flip, math/transform.js
    this.series = null;
    this.stack = [];
    this.slice = 0;
    this.window = null; // null: the server's default for the image
    this.inverted = false;
    this.interactive = null; // in-flight cheap render while dragging
    this.onchange = () => {};
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
    this.onchange();
    return this.show();
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
    return this.setWindow(this.defaultWindow());
  }

  setSlice(index) {
    const clamped = Math.min(Math.max(index, 0), this.count - 1);
    if (clamped === this.slice && this.drawn) return Promise.resolve();
    this.slice = clamped;
    this.onchange();
    return this.show();
  }

  setWindow(window, { interactive = false } = {}) {
    this.window = window ? { center: window.center, width: Math.max(window.width, 1) } : null;
    this.dragging = interactive;
    this.onchange();
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

  urlFor(entry, options = {}) {
    const { instance, frame } = entry;
    const longest = Math.max(instance.columns || 0, instance.rows || 0);
    const size = this.pixelSize();
    // Turned a quarter, the image's columns run down the canvas.
    const box = this.turn.rotation % 2 ? { width: size.height, height: size.width } : size;
    // Large images come at the canvas's size; small ones at their own.
    const viewport = longest > Math.max(box.width, box.height) ? box : undefined;
    return renderedUrl(instance, frame, { window: this.window, viewport, ...options });
  }

  pixelSize() {
    const ratio = window.devicePixelRatio || 1;
    return {
      width: Math.max(1, Math.round(this.element.clientWidth * ratio)),
      height: Math.max(1, Math.round(this.element.clientHeight * ratio)),
    };
  }

  load(url) {
    let promise = this.images.get(url);
    if (!promise) {
      promise = new Promise((resolve, reject) => {
        const image = new Image();
        image.decoding = "async";
        image.onload = () => {
          this.ready.set(url, image);
          if (this.ready.size > CACHE_LIMIT) this.ready.delete(this.ready.keys().next().value);
          resolve(image);
        };
        image.onerror = () => reject(new Error(url));
        image.src = url;
      });
      promise.catch(() => this.images.delete(url));
      this.images.set(url, promise);
      if (this.images.size > CACHE_LIMIT) this.images.delete(this.images.keys().next().value);
    }
    return promise;
  }

  async show() {
    const entry = this.current;
    if (!entry) return;
    const url = this.urlFor(entry);
    const slice = this.slice;
    const generation = ++this.generation;
    const known = entry.instance.undecodable?.[String(entry.frame)];
    if (known) {
      // The index knows this frame does not decode: say why without asking for it.
      this.image = null;
      this.draw();
      this.showMessage(`Slice ${slice + 1} cannot be shown: ${known}`);
      this.prefetch();
      return;
    }
    try {
      const image = await this.load(url);
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
    const box = this.pixelSize();
    const url = renderedUrl(entry.instance, entry.frame, {
      window: this.window,
      accept: "image/jpeg",
      quality: 70,
      viewport: { width: Math.ceil(box.width / 2), height: Math.ceil(box.height / 2) },
    });
    this.interactive = this.load(url)
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
    for (let step = 1; step <= PREFETCH; step += 1) {
      for (const index of [this.slice + step, this.slice - step]) {
        const entry = this.stack[index];
        if (entry && !entry.instance.undecodable?.[String(entry.frame)]) {
          this.load(this.urlFor(entry)).catch(() => {});
        }
      }
    }
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

  draw() {
    const { width, height } = this.pixelSize();
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    const context = this.context;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, width, height);
    this.drawn = Boolean(this.image);
    this.matrix = null;
    if (this.image && this.current) {
      const view = this.view();
      const canvas = { width, height };
      const m = displayTransform(view, canvas);
      this.matrix = m;
      this.aspect = view.aspect;
      context.setTransform(m.a, m.b, m.c, m.d, m.e, m.f);
      context.imageSmoothingEnabled = true;
      context.imageSmoothingQuality = "high";
      // The whole-image render first (in image pixels: the matrix scales, turns and
      // flips it); where zoomed, sharper tiles drawn over it.
      context.drawImage(this.image, 0, 0, view.columns, view.rows);
      if (this.magnification > 1 && !this.dragging) this.drawTiles(view, canvas, m.scale);
      if (this.inverted) {
        // White "difference" over the image inverts it (v -> 255 - v) in every browser
        // (the context's CSS filter is missing from Safari).
        context.globalCompositeOperation = "difference";
        context.fillStyle = "#fff";
        context.fillRect(0, 0, view.columns, view.rows);
        context.globalCompositeOperation = "source-over";
      }
      context.setTransform(1, 0, 0, 1, 0, 0);
      this.displayScale = m.scale / (window.devicePixelRatio || 1);
    }
    this.canvas.dataset.slice = String(this.slice + 1);
    this.canvas.dataset.rotation = String(this.turn.rotation * 90);
    this.canvas.dataset.flipped = String(this.turn.flipped);
    this.canvas.dataset.inverted = String(this.inverted);
    this.writeOverlays();
  }

  // Tiles of the pyramid level whose resolution the zoom needs, only those in view.
  drawTiles(view, canvas, scale) {
    const { instance, frame } = this.current;
    const level = levelFor(scale, instance.tiles.levels);
    if (!level) return;
    const size = 2 ** level.level; // image pixels per tile pixel
    const span = instance.tiles.size * size;
    // Tiles overlap by one device pixel so no antialiased seam shows between them; when
    // magnified, pixels are drawn as squares (smoothing would blend each tile's edge
    // with nothing and draw a faint grid).
    const overlap = 1 / scale;
    this.context.imageSmoothingEnabled = scale < 1;
    for (const { column, row } of tilesInView(view, canvas, level, instance.tiles.size)) {
      const url = tileUrl(instance, frame, level.level, column, row, this.window);
      const tile = this.ready.get(url);
      if (tile) {
        this.context.drawImage(
          tile,
          column * span,
          row * span,
          tile.naturalWidth * size + overlap,
          tile.naturalHeight * size + overlap,
        );
      } else {
        this.load(url).then(() => this.requestDraw(), () => {});
      }
    }
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
    return { width: this.canvas.width, height: this.canvas.height };
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

  writeOverlays() {
    const entry = this.current;
    if (!entry) return;
    const { instance } = entry;
    const study = this.study;
    const patient = study.patient;
    const series = this.series;
    this.overlays.tl.textContent = [
      patient.patient_name_display,
      `ID ${patient.patient_id}`,
      patient.patient_birth_date ? `Born ${patient.patient_birth_date} ${patient.patient_sex || ""}` : "",
    ].filter(Boolean).join("\n");
    this.overlays.tr.textContent = [
      [study.label, study.study_date, study.study_description].filter(Boolean).join(" "),
      `${series.modality} ${series.series_number ?? ""} ${series.series_description || ""}`.trim(),
    ].filter(Boolean).join("\n");
    const position = slicePosition(instance);
    this.overlays.bl.textContent = [
      `Im ${this.slice + 1}/${this.count}` + (instance.number_of_frames > 1 ? ` (frame ${entry.frame})` : ""),
      position === null ? "" : `Pos ${position.toFixed(1)} mm`,
      instance.slice_thickness ? `Thk ${instance.slice_thickness} mm` : "",
    ].filter(Boolean).join("\n");
    const w = this.window;
    this.overlays.br.textContent = [
      w ? `W ${Math.round(w.width)} L ${Math.round(w.center)}` : "W/L default",
      this.displayScale ? `Zoom ${this.displayScale.toFixed(2)}×` : "",
    ].filter(Boolean).join("\n");
    this.writeOrientationAndScale(instance);
  }

  // Patient-direction letters at the edges (PS3.3 C.7.6.2.1.1: the row direction points
  // to the image's right edge, the column direction to its bottom; rotation and flip move
  // them with the image), and a scale bar in mm where the spacing is known (saying which
  // attribute gave it), in pixels otherwise. The display keeps the physical aspect, so a
  // screen pixel spans column spacing / scale in every direction.
  writeOrientationAndScale(instance) {
    const letters = this.matrix
      ? edgeLetters(instance.image_orientation_patient, this.matrix, this.aspect)
      : { left: "", right: "", top: "", bottom: "" };
    for (const edge of ["left", "right", "top", "bottom"]) this.letters[edge].textContent = letters[edge];
    const bar = this.scaleBar.querySelector(".bar");
    const label = this.scaleBar.querySelector(".label");
    if (!this.displayScale) {
      label.textContent = "";
      bar.style.width = "0";
      return;
    }
    const spacing = instance.pixel_spacing;
    const unitPerCssPixel = spacing ? spacing.column_mm / this.displayScale : 1 / this.displayScale;
    const target = this.element.clientWidth / 5; // about a fifth of the viewport
    const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
    const length = steps.filter((v) => v / unitPerCssPixel <= target).pop() || steps[0];
    bar.style.width = `${length / unitPerCssPixel}px`;
    label.textContent = spacing ? `${length} mm (${spacing.attribute})` : `${length} px (no pixel spacing)`;
  }

  showMessage(text) {
    this.message.textContent = text;
    this.message.hidden = false;
  }

  hideMessage() {
    this.message.hidden = true;
  }
}
