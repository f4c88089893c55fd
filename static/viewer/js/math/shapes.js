// Pure geometry of measurements, no DOM: handles, hit testing, moving and editing.
// Points are {x, y}; the functions work in whatever space they are given (annotations.js
// passes canvas device pixels for hit testing, image coordinates for editing).
// Image coordinates follow math/transform.js: (column, row), (0, 0) the top-left corner
// of the top-left pixel. Ellipse and rectangle are given by two opposite corners of their
// axis-aligned bounding box; a quarter-turned, flipped display keeps such a box axis-aligned.

export function distance(p, q) {
  return Math.hypot(p.x - q.x, p.y - q.y);
}

// Distance from p to the segment ab.
export function distanceToSegment(p, a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const length2 = dx * dx + dy * dy;
  const t = length2 ? Math.min(Math.max(((p.x - a.x) * dx + (p.y - a.y) * dy) / length2, 0), 1) : 0;
  return Math.hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

// The corners of the box spanned by p0 and p1, clockwise from p0.
export function boxCorners([p0, p1]) {
  return [p0, { x: p1.x, y: p0.y }, p1, { x: p0.x, y: p1.y }];
}

// The segments a shape's outline is made of (the ellipse: none; see ellipseOf).
export function segments(kind, points) {
  if (kind === "rectangle") {
    const c = boxCorners(points);
    return c.map((p, i) => [p, c[(i + 1) % 4]]);
  }
  if (kind === "polygon") return points.map((p, i) => [p, points[(i + 1) % points.length]]);
  if (kind === "angle" && points.length === 4) return [[points[0], points[1]], [points[2], points[3]]];
  return points.slice(1).map((p, i) => [points[i], p]);
}

export function ellipseOf([p0, p1]) {
  return {
    cx: (p0.x + p1.x) / 2,
    cy: (p0.y + p1.y) / 2,
    rx: Math.abs(p1.x - p0.x) / 2,
    ry: Math.abs(p1.y - p0.y) / 2,
  };
}

// The points a user drags to edit a shape.
export function handles(kind, points) {
  return kind === "rectangle" || kind === "ellipse" ? boxCorners(points) : points;
}

// The index of the point of ``list`` nearest p within ``tolerance``, or -1.
export function nearest(list, p, tolerance) {
  let best = -1;
  let bestDistance = tolerance;
  list.forEach((h, i) => {
    const d = distance(h, p);
    if (d <= bestDistance) [best, bestDistance] = [i, d];
  });
  return best;
}

function insidePolygon(points, p) {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i, i += 1) {
    const a = points[i];
    const b = points[j];
    if (a.y > p.y !== b.y > p.y && p.x < ((b.x - a.x) * (p.y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

// Whether p touches the shape: within ``tolerance`` of its outline, or (``interior``)
// inside an ROI.
export function hits(kind, points, p, tolerance, interior = true) {
  if (kind === "point") return distance(points[0], p) <= tolerance;
  if (kind === "ellipse") {
    const { cx, cy, rx, ry } = ellipseOf(points);
    const outer = Math.hypot((p.x - cx) / Math.max(rx + tolerance, 1e-9), (p.y - cy) / Math.max(ry + tolerance, 1e-9));
    const inner = Math.hypot((p.x - cx) / Math.max(rx - tolerance, 1e-9), (p.y - cy) / Math.max(ry - tolerance, 1e-9));
    return outer <= 1 && (interior || inner >= 1);
  }
  if (kind === "rectangle" || kind === "polygon") {
    const outline = kind === "rectangle" ? boxCorners(points) : points;
    if (interior && insidePolygon(outline, p)) return true;
  }
  return segments(kind, points).some(([a, b]) => distanceToSegment(p, a, b) <= tolerance);
}

// The points after handle ``index`` moved to p.
export function withHandle(kind, points, index, p) {
  if (kind === "rectangle" || kind === "ellipse") {
    const [p0, p1] = points;
    const next = [{ ...p0 }, { ...p1 }];
    if (index === 0) next[0] = { ...p };
    else if (index === 1) [next[1].x, next[0].y] = [p.x, p.y];
    else if (index === 2) next[1] = { ...p };
    else [next[0].x, next[1].y] = [p.x, p.y];
    return next;
  }
  return points.map((q, i) => (i === index ? { ...p } : q));
}

// The points moved by (dx, dy), kept inside [0, columns] × [0, rows] as a whole.
export function translated(points, dx, dy, columns, rows) {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const cx = Math.min(Math.max(dx, -Math.min(...xs)), columns - Math.max(...xs));
  const cy = Math.min(Math.max(dy, -Math.min(...ys)), rows - Math.max(...ys));
  return points.map((p) => ({ x: p.x + cx, y: p.y + cy }));
}

export function clampPoint(p, columns, rows) {
  return { x: Math.min(Math.max(p.x, 0), columns), y: Math.min(Math.max(p.y, 0), rows) };
}

// Where a shape's text goes: right of its rightmost point (canvas space).
export function labelAnchor(points) {
  return points.reduce((best, p) => (p.x > best.x ? p : best), points[0]);
}
