// Where a slice lies in the patient, and which slice of another stack lies nearest it:
// the geometry of linked scrolling (sync.js). Pure functions of the instance JSON
// (GET /api/studies/<uid>); no DOM.
//
// PS3.3 C.7.6.2 Image Plane Module, C.7.6.2.1.1: (0020,0037) Image Orientation
// (Patient) holds the row direction cosines (the direction of increasing column) and
// then the column direction cosines (increasing row); (0020,0032) Image Position
// (Patient) is the centre of the first transmitted (top-left) pixel, in mm, in the
// patient coordinates of the series' (0020,0052) Frame of Reference (DICOM LPS). The
// slice normal is n = row direction × column direction, and a slice's position along
// the normal is IPP · n. (0028,0030) Pixel Spacing is the row spacing (between the
// centres of adjacent rows, down a column) and then the column spacing (across a row).
//
// Linking by position (same Frame of Reference UID): the normals must be "parallel"
// within PARALLEL_TOLERANCE_DEG. It is generous on purpose: a gantry-tilted current
// (here 18.5° off axial) against an untilted prior is the everyday case, and the tilted
// slice is still the one to compare. So the source slice is not mapped by its own
// position along its own normal but by its CENTRE point in patient coordinates
// (IPP + columns/2 · column spacing · row direction + rows/2 · row spacing · column
// direction), projected on the TARGET's normal; the target slice whose IPP · n_target
// is nearest that projection is the one shown.

export const PARALLEL_TOLERANCE_DEG = 30;

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

function finiteVector(value, length) {
  return Array.isArray(value) && value.length === length && value.every((v) => typeof v === "number" && Number.isFinite(v));
}

// The unit slice normal of an (0020,0037) value, or null (missing, malformed, degenerate).
export function sliceNormal(orientation) {
  if (!finiteVector(orientation, 6)) return null;
  const [r0, r1, r2, c0, c1, c2] = orientation;
  const n = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
  const length = Math.hypot(...n);
  if (!(length > 1e-6)) return null;
  return n.map((v) => v / length);
}

// Position of an instance along its own slice normal, IPP · n in mm; null where
// (0020,0032) or (0020,0037) is missing (no fallback: a position is never guessed).
export function positionAlongNormal(instance) {
  const n = sliceNormal(instance?.image_orientation_patient);
  const p = instance?.image_position_patient;
  if (!n || !finiteVector(p, 3)) return null;
  return dot(p, n);
}

// The patient point (mm) at the centre of the image: IPP moved half the columns along the
// row direction (at the column spacing) and half the rows along the column direction (at
// the row spacing). Null without position, orientation, size or spacing.
export function sliceCentre(instance) {
  const o = instance?.image_orientation_patient;
  const p = instance?.image_position_patient;
  const spacing = instance?.pixel_spacing;
  if (!finiteVector(o, 6) || !finiteVector(p, 3) || !spacing || !instance.rows || !instance.columns) return null;
  const across = (instance.columns / 2) * spacing.column_mm;
  const down = (instance.rows / 2) * spacing.row_mm;
  return [0, 1, 2].map((i) => p[i] + across * o[i] + down * o[3 + i]);
}

// The angle between two slice normals in degrees, 0..90 (a normal and its opposite are
// the same plane).
export function angleBetween(a, b) {
  const cosine = Math.min(Math.abs(dot(a, b)), 1);
  return (Math.acos(cosine) * 180) / Math.PI;
}

export function parallel(a, b, toleranceDeg = PARALLEL_TOLERANCE_DEG) {
  return Boolean(a && b) && angleBetween(a, b) <= toleranceDeg + 1e-9;
}

// The geometry of a stack (viewport.js: [{ instance, frame }], in slice order) for
// linking: the series' Frame of Reference UID, the normal of its first slice, and each
// entry's position along its own normal (null where unknown). A frame of a multi-frame
// instance has no position of its own in the instance JSON: null, never faked.
export function stackGeometry(stack, frameOfReferenceUid = null) {
  const positions = stack.map(({ instance }) => (instance.number_of_frames > 1 ? null : positionAlongNormal(instance)));
  const first = stack.find(({ instance }) => sliceNormal(instance.image_orientation_patient));
  return {
    frameOfReferenceUid: frameOfReferenceUid || null,
    normal: first ? sliceNormal(first.instance.image_orientation_patient) : null,
    positions,
    positioned: stack.length > 1 && positions.every((p) => p !== null),
  };
}

// Whether two stacks link by position: both positioned, the same (non-empty) Frame of
// Reference, normals parallel within the tolerance.
export function linkableByPosition(a, b, toleranceDeg = PARALLEL_TOLERANCE_DEG) {
  return (
    a.positioned &&
    b.positioned &&
    Boolean(a.frameOfReferenceUid) &&
    a.frameOfReferenceUid === b.frameOfReferenceUid &&
    parallel(a.normal, b.normal, toleranceDeg)
  );
}

// Index of the position nearest ``value`` (the first of equals), or -1 for none.
export function nearestIndex(positions, value) {
  let best = -1;
  let distance = Infinity;
  positions.forEach((position, index) => {
    if (position === null) return;
    const d = Math.abs(position - value);
    if (d < distance - 1e-9) [best, distance] = [index, d];
  });
  return best;
}

// The target slice for a source slice in the same Frame of Reference: the source
// slice's centre projected on the target's normal, the nearest target position.
export function nearestByPosition(sourceInstance, target) {
  const centre = sliceCentre(sourceInstance);
  if (!centre || !target.normal) return -1;
  return nearestIndex(target.positions, dot(centre, target.normal));
}

// The target slice for a source position when linked by an offset (target position −
// source position, each along its own normal, taken when the user linked them).
export function nearestByOffset(sourcePosition, offset, target) {
  if (sourcePosition === null || sourcePosition === undefined) return -1;
  return nearestIndex(target.positions, sourcePosition + offset);
}
