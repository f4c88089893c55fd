// One viewport showing a stack: the frames of a series in slice order, drawn from
// server-rendered images. Neighbouring slices are fetched ahead at the current window,
// so scrolling through a loaded series does not wait for the server.

import { errorMessage, renderedUrl, tileUrl } from "./api.js";

const PREFETCH = 10; // slices ahead and behind
const CACHE_LIMIT = 400; // decoded images kept

export class StackViewport {
  constructor(element, study) {
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
    this.orientation = {
      left: element.querySelector(".orientation.left"),
      right: element.querySelector(".orientation.right"),
      top: element.querySelector(".orientation.top"),
      bottom: element.querySelector(".orientation.bottom"),
    };
    this.scaleBar = element.querySelector(".scale-bar");
    this.study = study;
    this.images = new Map(); // url -> Promise<HTMLImageElement>
    this.ready = new Map(); // url -> HTMLImageElement, once loaded
    this.magnification = 1; // relative to fit
    this.center = null; // image point at the canvas centre; null: the image's centre
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
    this.magnification = 1;
    this.center = null;
    this.stack = series.instances.flatMap((instance) =>
      Array.from({ length: Math.max(instance.number_of_frames, 1) }, (_, i) => ({ instance, frame: i + 1 })),
    );
    this.window = null;
    const first = this.stack[0]?.instance;
    const preset = first?.presets?.find((p) => p.kind === "window");
    if (preset) this.window = { center: preset.center, width: preset.width };
    this.slice = 0;
    this.onchange();
    return this.show();
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
    const box = this.pixelSize();
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
        if (entry) this.load(this.urlFor(entry)).catch(() => {});
      }
    }
  }

  // Geometry of the current image on the canvas: device pixels per image column (scale),
  // the physical row/column aspect, and the image point at the canvas centre.
  geometry(width, height) {
    const { instance } = this.current;
    const columns = instance.columns || this.image.naturalWidth;
    const rows = instance.rows || this.image.naturalHeight;
    const spacing = instance.pixel_spacing;
    const aspect = spacing ? spacing.row_mm / spacing.column_mm : 1;
    const fit = Math.min(width / columns, height / (rows * aspect));
    const center = this.center || { x: columns / 2, y: rows / 2 };
    return { columns, rows, aspect, fit, scale: fit * this.magnification, cx: center.x, cy: center.y };
  }

  draw() {
    const { width, height } = this.pixelSize();
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    const context = this.context;
    context.fillStyle = "#000";
    context.fillRect(0, 0, width, height);
    this.drawn = Boolean(this.image);
    if (this.image && this.current) {
      const g = this.geometry(width, height);
      const x0 = width / 2 - g.cx * g.scale;
      const y0 = height / 2 - g.cy * g.scale * g.aspect;
      context.imageSmoothingEnabled = true;
      context.imageSmoothingQuality = "high";
      context.filter = this.inverted ? "invert(1)" : "none";
      // The whole-image render first; where zoomed, sharper tiles drawn over it.
      context.drawImage(this.image, x0, y0, g.columns * g.scale, g.rows * g.aspect * g.scale);
      if (this.magnification > 1 && !this.dragging) this.drawTiles(g, width, height, x0, y0);
      context.filter = "none";
      this.displayScale = g.scale / (window.devicePixelRatio || 1);
    }
    this.canvas.dataset.slice = String(this.slice + 1);
    this.writeOverlays();
  }

  // Tiles of the pyramid level whose resolution the zoom needs, only those in view.
  drawTiles(g, width, height, x0, y0) {
    const { instance, frame } = this.current;
    const levels = instance.tiles.levels;
    if (!levels.length) return;
    const wanted = g.scale >= 1 ? 0 : Math.floor(Math.log2(1 / g.scale));
    const level = levels[Math.min(wanted, levels.length - 1)];
    const span = instance.tiles.size * 2 ** level.level; // image pixels per tile
    const left = g.cx - width / 2 / g.scale;
    const right = g.cx + width / 2 / g.scale;
    const top = g.cy - height / 2 / (g.scale * g.aspect);
    const bottom = g.cy + height / 2 / (g.scale * g.aspect);
    const clampTo = (v, n) => Math.min(Math.max(v, 0), n - 1);
    const c0 = clampTo(Math.floor(left / span), level.columns);
    const c1 = clampTo(Math.floor(right / span), level.columns);
    const r0 = clampTo(Math.floor(top / span), level.rows);
    const r1 = clampTo(Math.floor(bottom / span), level.rows);
    for (let row = r0; row <= r1; row += 1) {
      for (let column = c0; column <= c1; column += 1) {
        const url = tileUrl(instance, frame, level.level, column, row, this.window);
        const tile = this.ready.get(url);
        if (tile) {
          const size = 2 ** level.level * g.scale;
          this.context.drawImage(
            tile,
            x0 + column * span * g.scale,
            y0 + row * span * g.scale * g.aspect,
            tile.naturalWidth * size,
            tile.naturalHeight * size * g.aspect,
          );
        } else {
          this.load(url).then(() => this.requestDraw(), () => {});
        }
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

  // Zoom by ``factor`` (relative to fit; 1 = fit), keeping the view's centre.
  setMagnification(magnification) {
    this.magnification = Math.min(Math.max(magnification, 1), 64);
    if (this.magnification === 1) this.center = null;
    this.requestDraw();
  }

  // One device pixel per image pixel.
  actualSize() {
    if (!this.image) return;
    const { width, height } = this.pixelSize();
    this.setMagnification(1 / this.geometry(width, height).fit);
  }

  panBy(dx, dy) {
    if (!this.image) return;
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.pixelSize();
    const g = this.geometry(width, height);
    this.center = { x: g.cx - (dx * ratio) / g.scale, y: g.cy - (dy * ratio) / (g.scale * g.aspect) };
    this.requestDraw();
  }

  writeOverlays() {
    const entry = this.current;
    if (!entry) return;
    const { instance } = entry;
    const patient = this.study.patient;
    const series = this.series;
    this.overlays.tl.textContent = [
      formatName(patient.patient_name),
      `ID ${patient.patient_id}`,
      patient.patient_birth_date ? `Born ${patient.patient_birth_date} ${patient.patient_sex || ""}` : "",
    ].filter(Boolean).join("\n");
    this.overlays.tr.textContent = [
      `${this.study.study_date || ""} ${this.study.study_description || ""}`.trim(),
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
  // to the right edge, the column direction to the bottom), and a scale bar in mm where
  // the spacing is known (saying which attribute gave it), in pixels otherwise.
  writeOrientationAndScale(instance) {
    const o = instance.image_orientation_patient;
    const row = Array.isArray(o) && o.length === 6 ? o.slice(0, 3) : null;
    const column = row ? o.slice(3, 6) : null;
    this.orientation.right.textContent = row ? directionLetters(row) : "";
    this.orientation.left.textContent = row ? directionLetters(row.map((v) => -v)) : "";
    this.orientation.bottom.textContent = column ? directionLetters(column) : "";
    this.orientation.top.textContent = column ? directionLetters(column.map((v) => -v)) : "";
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

// PN "Family^Given^Middle" groups "=" -> "Family, Given Middle = …"
export function formatName(value) {
  return String(value || "")
    .split("=")
    .map((group) => {
      const [family = "", ...rest] = group.split("^");
      const given = rest.slice(0, 2).filter(Boolean).join(" ");
      return family && given ? `${family}, ${given}` : family || given;
    })
    .filter(Boolean)
    .join(" = ");
}

// Position along the slice normal (row × column direction), in mm; else Slice Location.
export function slicePosition(instance) {
  const p = instance.image_position_patient;
  const o = instance.image_orientation_patient;
  if (Array.isArray(p) && Array.isArray(o) && o.length === 6) {
    const n = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
    return p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
  }
  return instance.slice_location ?? null;
}

// The letters of a patient direction (LPS axes): +x L, +y P, +z H (head); most significant
// first, components under 0.25 left out (an oblique plane reads e.g. "LP").
export function directionLetters(vector) {
  const names = [
    ["L", "R"],
    ["P", "A"],
    ["H", "F"],
  ];
  return vector
    .map((value, axis) => ({ value, axis }))
    .filter(({ value }) => Math.abs(value) >= 0.25)
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
    .map(({ value, axis }) => names[axis][value > 0 ? 0 : 1])
    .join("");
}
