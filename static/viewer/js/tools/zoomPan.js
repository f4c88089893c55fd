// Zoom and pan: drag to pan (or, as the zoom tool, drag up/down to zoom), Ctrl-wheel to
// zoom about the pointer, and two fingers to pinch-zoom about their midpoint while
// panning with it. Geometry is in math/transform.js; this class only reads events.

export class ZoomPanTool {
  constructor(viewport, { mode = "pan" } = {}) {
    this.viewport = viewport;
    this.mode = mode; // "pan" or "zoom" for a one-pointer drag
    this.last = null;
    this.gesture = null;
  }

  // The event's point in canvas pixels.
  point(event) {
    const box = this.viewport.element.getBoundingClientRect();
    return this.viewport.canvasPoint(event.clientX - box.left, event.clientY - box.top);
  }

  pointerDown(event) {
    this.last = { x: event.clientX, y: event.clientY };
    this.anchor = this.point(event);
  }

  pointerMove(event) {
    if (!this.last) return;
    const dx = event.clientX - this.last.x;
    const dy = event.clientY - this.last.y;
    this.last = { x: event.clientX, y: event.clientY };
    if (this.mode === "zoom") {
      // Up zooms in: doubling every 100 CSS pixels, about where the drag started.
      this.viewport.setMagnification(this.viewport.magnification * 2 ** (-dy / 100), this.anchor);
    } else {
      this.viewport.panBy(dx, dy);
    }
  }

  pointerUp() {
    this.last = null;
  }

  wheel(event) {
    event.preventDefault();
    const factor = event.deltaY < 0 ? 1.25 : 0.8;
    this.viewport.setMagnification(this.viewport.magnification * factor, this.point(event));
  }

  // Two pointers (events or {clientX, clientY}): remember the view and the fingers.
  pinchStart(first, second) {
    const a = this.point(first);
    const b = this.point(second);
    this.gesture = {
      view: { magnification: this.viewport.magnification, center: this.viewport.center },
      midpoint: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 },
      distance: Math.max(Math.hypot(a.x - b.x, a.y - b.y), 1),
    };
  }

  pinchMove(first, second) {
    if (!this.gesture) return;
    const a = this.point(first);
    const b = this.point(second);
    const distance = Math.max(Math.hypot(a.x - b.x, a.y - b.y), 1);
    const midpoint = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    const { view } = this.gesture;
    this.viewport.pinch(view, this.gesture.midpoint, midpoint, view.magnification * (distance / this.gesture.distance));
  }

  pinchEnd() {
    this.gesture = null;
  }
}
