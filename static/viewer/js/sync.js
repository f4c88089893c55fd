// Linked viewports, apart from any one tool: scrolling (by position in the patient, or by
// an offset locked by the user), window/level and zoom/pan, each switched on and off on
// its own (the toolbar's Scroll, W/L and Zoom toggles, and the lock). The viewports say
// what changed (viewport.js ``changed(kind)``); this module moves the others. A change it
// makes itself is not passed on again (no feedback loops). Geometry: math/slicePosition.js.
//
// Scrolling: a viewport follows another
// * by position where both stacks have positions, the same (0020,0052) Frame of
//   Reference UID and normals within 30° (slicePosition.js: the source slice's centre
//   projected on the target's normal, the nearest target slice, PS3.3 C.7.6.2);
// * else by offset where the user locked them (or the hanging protocol did, for studies
//   of different frames of reference): target position − source position, each along
//   its own normal, as it was at that moment, kept while scrolling;
// * else not at all (no positions: a radiograph, a cine loop, one image).

import { linkableByPosition, nearestByOffset, nearestByPosition, stackGeometry } from "./math/slicePosition.js";

export const SYNC_KINDS = ["scroll", "window", "zoom"];

export class ViewportSync {
  constructor(layout) {
    this.layout = layout;
    this.enabled = { scroll: true, window: false, zoom: false };
    this.anchors = new Map(); // viewport -> its position along its normal when locked
    this.geometries = new WeakMap(); // viewport -> { series, geometry }
    this.applying = false; // true while this module moves viewports
    this.onchange = () => {}; // the toolbar follows (toolbox.js)
    layout.sync = this;
  }

  viewports() {
    return this.layout.cells.map((cell) => cell.viewport).filter((viewport) => viewport.series);
  }

  geometry(viewport) {
    const cached = this.geometries.get(viewport);
    if (cached && cached.series === viewport.series) return cached.geometry;
    const geometry = stackGeometry(viewport.stack, viewport.series?.frame_of_reference_uid);
    this.geometries.set(viewport, { series: viewport.series, geometry });
    return geometry;
  }

  position(viewport) {
    return this.geometry(viewport).positions[viewport.slice] ?? null;
  }

  // How ``target`` follows ``source`` when it scrolls: { kind: "position" }, { kind:
  // "offset", offset } or null.
  scrollLink(source, target) {
    if (source === target || !this.enabled.scroll) return null;
    const a = this.geometry(source);
    const b = this.geometry(target);
    if (!a.positioned || !b.positioned) return null;
    if (linkableByPosition(a, b)) return { kind: "position" };
    if (this.anchors.has(source) && this.anchors.has(target)) {
      return { kind: "offset", offset: this.anchors.get(target) - this.anchors.get(source) };
    }
    return null;
  }

  // The slice ``target`` shows for the slice ``source`` shows, or -1.
  targetSlice(source, target, link = this.scrollLink(source, target)) {
    if (!link) return -1;
    const geometry = this.geometry(target);
    if (link.kind === "position") return nearestByPosition(source.current.instance, geometry);
    return nearestByOffset(this.position(source), link.offset, geometry);
  }

  get locked() {
    return this.viewports().filter((viewport) => this.anchors.has(viewport)).length >= 2;
  }

  // A viewport changed (viewport.js): move the linked ones, unless this module moved it.
  changed(viewport, kind) {
    if (kind === "series") {
      this.anchors.delete(viewport); // an offset means nothing for another series
      this.refresh();
    }
    if (this.applying) return;
    if (kind === "slice") this.follow(viewport, (s, t) => this.followSlice(s, t));
    else if (kind === "window" && this.enabled.window) this.follow(viewport, (s, t) => this.followWindow(s, t));
    else if (kind === "zoom" && this.enabled.zoom) this.follow(viewport, (s, t) => this.followView(s, t));
  }

  follow(source, move) {
    this.applying = true;
    try {
      for (const target of this.viewports()) if (target !== source) move(source, target);
    } finally {
      this.applying = false;
    }
  }

  followSlice(source, target) {
    const index = this.targetSlice(source, target);
    if (index >= 0 && index !== target.slice) target.setSlice(index);
  }

  // The same center/width in the viewports of the same modality.
  followWindow(source, target) {
    if (target.series.modality !== source.series.modality) return;
    const same = (a, b) => (a === null && b === null) || (a && b && a.center === b.center && a.width === b.width);
    if (same(target.window, source.window) && !source.dragging && !target.dragging) return;
    target.setWindow(source.window, { interactive: Boolean(source.dragging) });
  }

  // The same magnification (relative to fit) and the same relative pan.
  followView(source, target) {
    target.setView({ magnification: source.magnification, center: source.relativeCenter() });
  }

  // Switch one kind of linking on or off. Switched on, the others take the active
  // viewport's state at once: scrolling by position aligns them, and viewports linked by
  // offset keep the offset they have NOW (switch off, adjust one, switch on: a new offset).
  setEnabled(kind, on, from = this.layout.viewport) {
    if (!SYNC_KINDS.includes(kind)) return;
    this.enabled[kind] = Boolean(on);
    if (on && kind === "scroll" && this.anchors.size) this.lock({ quiet: true });
    if (on && from?.series) this.align(kind, from);
    this.refresh();
  }

  toggle(kind) {
    this.setEnabled(kind, !this.enabled[kind]);
  }

  // Bring every other viewport to ``from``'s slice, window or view.
  align(kind, from) {
    if (kind === "scroll") this.follow(from, (s, t) => this.followSlice(s, t));
    if (kind === "window") this.follow(from, (s, t) => this.followWindow(s, t));
    if (kind === "zoom") this.follow(from, (s, t) => this.followView(s, t));
  }

  // The lock: link every viewport with positions by the offset between them now
  // (switching linked scrolling on); pressed again, the offsets go.
  toggleLock() {
    if (this.locked) this.unlock();
    else this.lock();
  }

  lock({ quiet = false } = {}) {
    this.anchors.clear();
    for (const viewport of this.viewports()) {
      const position = this.geometry(viewport).positioned ? this.position(viewport) : null;
      if (position !== null) this.anchors.set(viewport, position);
    }
    this.enabled.scroll = true;
    if (!quiet) this.refresh();
  }

  unlock() {
    this.anchors.clear();
    this.refresh();
  }

  // A hanging protocol's sync {scroll, window, zoom}: set the toggles (each viewport keeps
  // the preset the protocol gave it); with scrolling linked, align the others to the
  // first viewport and lock those that cannot link by position (other frames of
  // reference) at the offset they open with.
  configure(sync = {}, from = this.layout.cells[0]?.viewport) {
    this.anchors.clear();
    for (const kind of SYNC_KINDS) this.enabled[kind] = Boolean(sync[kind]);
    if (this.enabled.scroll && from?.series) {
      this.align("scroll", from);
      const others = this.viewports().filter((v) => v !== from && this.geometry(v).positioned);
      if (this.geometry(from).positioned && others.some((v) => !linkableByPosition(this.geometry(from), this.geometry(v)))) {
        this.lock({ quiet: true });
      }
    }
    this.refresh();
  }

  // Run ``change`` without passing its viewport changes on (a protocol hanging, say).
  quietly(change) {
    const applying = this.applying;
    this.applying = true;
    try {
      return change();
    } finally {
      this.applying = applying;
    }
  }

  // data-linked of every viewport and the toolbar's toggles.
  refresh() {
    const viewports = this.viewports();
    for (const cell of this.layout.cells) {
      const viewport = cell.viewport;
      const linked = viewports.some((other) => other !== viewport && this.scrollLink(viewport, other));
      viewport.setLinked(Boolean(viewport.series) && linked);
    }
    this.onchange();
  }
}
