// Drawing a measurement by placing its points: each click places one, a drag places two
// (where it starts and where it ends). ``count`` points finish the shape; ``count`` null
// (polygon) finishes on a double-click or Enter. The tools of each kind configure it.

const DRAG = 4; // CSS pixels a press must move to count as a drag

export class PointsTool {
  constructor({ kind, count, label, needsLabel = false, freehand = false }) {
    this.kind = kind;
    this.count = count;
    this.label = label;
    this.needsLabel = needsLabel;
    this.freehand = freehand;
    this.draft = null;
  }

  // ``p`` image point, ``screen`` the CSS pixel point; returns points when finished.
  down(p, screen) {
    if (!this.draft) this.draft = { points: [], live: null };
    const { points } = this.draft;
    this.draft.start = screen;
    this.draft.dragging = false;
    this.draft.lastScreen = screen;
    const last = points[points.length - 1];
    if (!last || !this.draft.lastPlaced || Math.hypot(screen.x - this.draft.lastPlaced.x, screen.y - this.draft.lastPlaced.y) > DRAG) {
      points.push(p);
      this.draft.lastPlaced = screen;
    }
    this.draft.live = null;
    return this.finished();
  }

  move(p, screen) {
    if (!this.draft?.start) return;
    if (Math.hypot(screen.x - this.draft.start.x, screen.y - this.draft.start.y) > DRAG) this.draft.dragging = true;
    if (!this.draft.dragging) return;
    if (this.freehand && this.draft.points.length === 1) this.draft.sampling = true;
    if (this.draft.sampling) {
      if (Math.hypot(screen.x - this.draft.lastScreen.x, screen.y - this.draft.lastScreen.y) >= 3) {
        this.draft.points.push(p);
        this.draft.lastScreen = screen;
      }
      return;
    }
    this.draft.live = p;
  }

  up() {
    if (!this.draft?.start) return null;
    this.draft.start = null;
    if (this.draft.sampling) return this.close();
    if (this.draft.dragging && this.draft.live) {
      this.draft.points.push(this.draft.live);
      this.draft.lastPlaced = null;
    }
    this.draft.live = null;
    return this.finished();
  }

  finished() {
    if (this.count && this.draft && this.draft.points.length >= this.count) {
      const points = this.draft.points.slice(0, this.count);
      this.draft = null;
      return points;
    }
    return null;
  }

  // Enter or a double-click: a polygon of at least three vertices is done.
  close() {
    if (this.count || !this.draft) return null;
    const points = this.draft.points;
    this.draft = null;
    return points.length >= 3 ? points : null;
  }

  cancel() {
    this.draft = null;
  }

  // What to draw meanwhile: the points placed and the one being dragged.
  provisional() {
    if (!this.draft) return null;
    return [...this.draft.points, ...(this.draft.live ? [this.draft.live] : [])];
  }
}
