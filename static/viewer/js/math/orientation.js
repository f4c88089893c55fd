// Patient orientation on screen: direction letters at the viewport's edges and the
// position of a slice along its normal. Pure functions; no DOM.
//
// Patient coordinates are DICOM LPS (PS3.3 C.7.6.2.1.1): +x toward the patient's left,
// +y posterior, +z head. (0020,0037) Image Orientation (Patient) gives the row direction
// cosines (the direction of increasing column) and then the column direction cosines
// (increasing row).

import { applyLinear, invert } from "./transform.js";

// The letters of a patient direction: +x L, +y P, +z H; most significant first,
// components under 0.25 left out (an oblique plane reads e.g. "LP").
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

// Position along the slice normal (row × column direction) in mm, the order the series
// is sorted in; else (0020,1041) Slice Location; else null.
export function slicePosition(instance) {
  const p = instance.image_position_patient;
  const o = instance.image_orientation_patient;
  if (Array.isArray(p) && Array.isArray(o) && o.length === 6) {
    const n = [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
    return p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
  }
  return instance.slice_location ?? null;
}

// The patient direction that points along a screen direction, for a display matrix
// (math/transform.js). ``aspect`` = row spacing / column spacing: the matrix maps image
// pixels, and a pixel step along a column is ``aspect`` times longer than along a row.
export function screenDirection(orientation, matrix, screenVector, aspect = 1) {
  const image = applyLinear(invert(matrix), screenVector); // (columns, rows)
  const row = orientation.slice(0, 3);
  const column = orientation.slice(3, 6);
  const v = [0, 1, 2].map((i) => image.x * row[i] + image.y * aspect * column[i]);
  const length = Math.hypot(...v) || 1;
  return v.map((value) => value / length);
}

// Letters for the four edges of the screen, or empty strings without an orientation.
export function edgeLetters(orientation, matrix, aspect = 1) {
  if (!Array.isArray(orientation) || orientation.length !== 6) {
    return { left: "", right: "", top: "", bottom: "" };
  }
  const right = screenDirection(orientation, matrix, { x: 1, y: 0 }, aspect);
  const down = screenDirection(orientation, matrix, { x: 0, y: 1 }, aspect);
  return {
    right: directionLetters(right),
    left: directionLetters(right.map((v) => -v)),
    bottom: directionLetters(down),
    top: directionLetters(down.map((v) => -v)),
  };
}
