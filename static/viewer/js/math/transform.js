// The display transform: where an image point lands on the canvas, for a given zoom, pan,
// rotation and flip. Pure functions of plain objects; no DOM.
//
// Conventions (as in highdicom's spatial module, said explicitly):
// * image point (x, y) = (column, row) in image pixels; (0, 0) is the top-left corner of
//   the top-left pixel, so pixel (c, r) covers [c, c+1) × [r, r+1) and its centre is
//   (c + 0.5, r + 0.5);
// * canvas point (x, y) in device pixels, (0, 0) at the top-left, y down;
// * a view is { columns, rows, aspect, magnification, center, rotation, flipped }:
//   aspect = row spacing / column spacing (PS3.3 C.7.6.2.1.1 Pixel Spacing; 1 without
//   spacing), magnification relative to "fit", center = the image point at the canvas
//   centre (null: the image's centre), rotation in quarter turns clockwise (0..3), and
//   flipped = mirrored left-right *before* the rotation. A view shows
//   R(rotation) · F(flipped) · S(scale, scale × aspect) of the image.
// * a matrix is { a, b, c, d, e, f } in CanvasRenderingContext2D.setTransform order:
//   x' = a x + c y + e, y' = b x + d y + f.

export const IDENTITY_TURN = Object.freeze({ rotation: 0, flipped: false });

// Device pixels per image column at magnification 1: the whole image fits the canvas.
export function fitScale(view, canvas) {
  const width = view.columns;
  const height = view.rows * view.aspect;
  const [shownWidth, shownHeight] = view.rotation % 2 ? [height, width] : [width, height];
  return Math.min(canvas.width / shownWidth, canvas.height / shownHeight);
}

export function imageCenter(view) {
  return view.center ?? { x: view.columns / 2, y: view.rows / 2 };
}

// The linear part (no translation) for a scale in device pixels per image column.
function linear(view, scale) {
  let a = scale;
  let b = 0;
  let c = 0;
  let d = scale * view.aspect;
  if (view.flipped) {
    a = -a;
    c = -c;
  }
  for (let turn = 0; turn < ((view.rotation % 4) + 4) % 4; turn += 1) {
    // A quarter turn clockwise on a y-down screen: (x, y) -> (-y, x).
    [a, b, c, d] = [-b, a, -d, c];
  }
  return { a, b, c, d };
}

// Image point -> canvas device pixel, with the image's centre (or view.center) at the
// canvas centre. ``scale`` is device pixels per image column.
export function displayTransform(view, canvas) {
  const scale = fitScale(view, canvas) * view.magnification;
  const { a, b, c, d } = linear(view, scale);
  const center = imageCenter(view);
  return {
    a,
    b,
    c,
    d,
    e: canvas.width / 2 - (a * center.x + c * center.y),
    f: canvas.height / 2 - (b * center.x + d * center.y),
    scale,
  };
}

export function invert(m) {
  const det = m.a * m.d - m.b * m.c;
  const a = m.d / det;
  const b = -m.b / det;
  const c = -m.c / det;
  const d = m.a / det;
  return { a, b, c, d, e: -(a * m.e + c * m.f), f: -(b * m.e + d * m.f) };
}

export function apply(m, point) {
  return { x: m.a * point.x + m.c * point.y + m.e, y: m.b * point.x + m.d * point.y + m.f };
}

export function applyLinear(m, vector) {
  return { x: m.a * vector.x + m.c * vector.y, y: m.b * vector.x + m.d * vector.y };
}

// The image rectangle the canvas shows: the bounding box of its corners mapped back.
export function visibleImageRect(view, canvas) {
  const inverse = invert(displayTransform(view, canvas));
  const corners = [
    { x: 0, y: 0 },
    { x: canvas.width, y: 0 },
    { x: 0, y: canvas.height },
    { x: canvas.width, y: canvas.height },
  ].map((p) => apply(inverse, p));
  const xs = corners.map((p) => p.x);
  const ys = corners.map((p) => p.y);
  return { left: Math.min(...xs), right: Math.max(...xs), top: Math.min(...ys), bottom: Math.max(...ys) };
}

// The pyramid level a scale needs: the coarsest whose pixels are not bigger than a
// device pixel (level n halves the resolution n times; levels from the study JSON).
export function levelFor(scale, levels) {
  if (!levels.length) return null;
  const wanted = scale >= 1 ? 0 : Math.floor(Math.log2(1 / scale));
  return levels[Math.min(wanted, levels.length - 1)];
}

// The tiles of ``level`` that intersect the canvas: [{ column, row }], row-major.
// ``tileSize`` is the tile edge in pixels of that level (it spans tileSize × 2^level
// image pixels).
export function tilesInView(view, canvas, level, tileSize) {
  const rect = visibleImageRect(view, canvas);
  const span = tileSize * 2 ** level.level;
  const clamp = (v, n) => Math.min(Math.max(v, 0), n - 1);
  const c0 = clamp(Math.floor(rect.left / span), level.columns);
  const c1 = clamp(Math.ceil(rect.right / span) - 1, level.columns);
  const r0 = clamp(Math.floor(rect.top / span), level.rows);
  const r1 = clamp(Math.ceil(rect.bottom / span) - 1, level.rows);
  if (rect.right <= 0 || rect.bottom <= 0 || rect.left >= view.columns || rect.top >= view.rows) return [];
  const tiles = [];
  for (let row = r0; row <= r1; row += 1) {
    for (let column = c0; column <= c1; column += 1) tiles.push({ column, row });
  }
  return tiles;
}

// The centre that keeps the image point under ``anchor`` (a canvas point) at ``target``
// after the view changes to ``next`` (a new magnification, say): zoom about a point,
// pinch about the fingers' midpoint, or pan (anchor ≠ target, same magnification).
export function centerKeeping(view, next, canvas, anchor, target = anchor) {
  const point = apply(invert(displayTransform(view, canvas)), anchor);
  const scale = fitScale(next, canvas) * next.magnification;
  const inverse = invert({ ...linear(next, scale), e: 0, f: 0 });
  const offset = applyLinear(inverse, { x: target.x - canvas.width / 2, y: target.y - canvas.height / 2 });
  return { x: point.x - offset.x, y: point.y - offset.y };
}

// Rotation and flip act on the screen, whatever the current state: rotating then
// flipping horizontally mirrors what is on the screen left-right.
export function rotated(turn, quarterTurns) {
  return { rotation: (((turn.rotation + quarterTurns) % 4) + 4) % 4, flipped: turn.flipped };
}

// F_screen · R^r · F^f = R^(-r) · F^(f+1): mirroring conjugates a rotation to its inverse.
export function flippedHorizontally(turn) {
  return { rotation: (4 - turn.rotation) % 4, flipped: !turn.flipped };
}

// A vertical mirror is a horizontal one followed by a half turn.
export function flippedVertically(turn) {
  return rotated(flippedHorizontally(turn), 2);
}
