// The view a share link carries, and a live session's presenter sends on: captured from
// the viewer and applied to another. One shape for both (viewer.services.sharing checks
// it): { layout: "1x1" | "1x2" | "2x1" | "2x2", viewports: [{ study_instance_uid,
// series_instance_uid, sop_instance_uid, frame (1-based), window: { center, width } or
// null (the image's default), zoom (magnification relative to fit), pan: { x, y } (the
// image point at the canvas centre relative to the image's columns and rows) or null
// (centred), rotation (quarter turns clockwise), flipped, inverted, interactive (the
// window is being dragged) }], active (the active viewport's index), measurement (the
// selected measurement's id, or null) }. The slice is named by its SOP Instance UID and
// frame, not an index, so it is the same image whatever the stack's order.

import { LAYOUTS } from "./layout.js";

const round = (value, digits) => Number(value.toFixed(digits));

export function viewportState(viewport) {
  const entry = viewport.current;
  const pan = viewport.relativeCenter();
  const state = {
    study_instance_uid: viewport.study?.study_instance_uid ?? null,
    series_instance_uid: viewport.series?.series_instance_uid ?? null,
    sop_instance_uid: entry?.instance.sop_instance_uid ?? null,
    frame: entry?.frame ?? null,
    window: viewport.window ? { center: viewport.window.center, width: viewport.window.width } : null,
    zoom: round(viewport.magnification, 4),
    pan: pan ? { x: round(pan.x, 5), y: round(pan.y, 5) } : null,
    rotation: viewport.turn.rotation,
    flipped: viewport.turn.flipped,
    inverted: viewport.inverted,
  };
  if (viewport.dragging) state.interactive = true;
  return state;
}

// The viewer's view now. ``shared``: the study UIDs the link may show (null: any); a
// viewport showing another study is sent empty, so followers keep what they have there.
export function captureView({ layout, store }, shared = null) {
  return {
    layout: layout.value,
    viewports: layout.cells.map((cell) => {
      const state = viewportState(cell.viewport);
      return shared && state.study_instance_uid && !shared.includes(state.study_instance_uid) ? {} : state;
    }),
    active: Math.max(layout.cells.indexOf(layout.active), 0),
    measurement: store?.selected ?? null,
  };
}

// How many viewports ``captureView`` left empty because their study is not the link's.
export function unsharedViewports(view) {
  return view.viewports.filter((v) => !v.study_instance_uid).length;
}

// The stack index of the image a viewport state names, or undefined.
function sliceOf(viewport, spec) {
  if (!spec.sop_instance_uid) return undefined;
  const frame = Number(spec.frame) || 1;
  const index = viewport.stack.findIndex((e) => e.instance.sop_instance_uid === spec.sop_instance_uid && e.frame === frame);
  return index >= 0 ? index : undefined;
}

function windowOf(spec) {
  if (spec.window === null) return null;
  const { center, width } = spec.window || {};
  return Number.isFinite(center) && Number.isFinite(width) ? { center, width } : undefined;
}

// Show ``view`` (the shape above) in the viewer: its studies fetched where not loaded
// (``ensureStudy``, main.js), the layout, each viewport's series, image, window, zoom,
// pan and turn, the active viewport and the selected measurement. Linked viewports do not
// move each other meanwhile: the view names every viewport's state. A field it lacks,
// or a series this page cannot show, leaves that part as it is.
export async function applyView({ layout, sync, store, ensureStudy }, view) {
  if (!view || typeof view !== "object") return;
  const specs = Array.isArray(view.viewports) ? view.viewports.map((s) => (s && typeof s === "object" ? s : {})) : [];
  const studies = [...new Set(specs.map((s) => s.study_instance_uid).filter(Boolean))];
  await Promise.all(studies.map((uid) => ensureStudy(uid).catch(() => null)));
  const seriesOf = (spec) =>
    spec?.series_instance_uid ? layout.hangable.find((s) => s.series_instance_uid === spec.series_instance_uid) || null : null;
  sync.quietly(() => {
    if (LAYOUTS.includes(view.layout) && view.layout !== layout.value) layout.set(view.layout, (index) => seriesOf(specs[index]));
    layout.cells.forEach((cell, index) => {
      const spec = specs[index];
      const series = seriesOf(spec);
      if (!series) return;
      if (cell.viewport.series !== series) layout.hang(cell, series);
      cell.viewport.applyView({
        slice: sliceOf(cell.viewport, spec),
        window: windowOf(spec),
        magnification: Number.isFinite(spec.zoom) ? spec.zoom : undefined,
        center: spec.pan && Number.isFinite(spec.pan.x) && Number.isFinite(spec.pan.y) ? spec.pan : null,
        rotation: Number.isInteger(spec.rotation) ? ((spec.rotation % 4) + 4) % 4 : undefined,
        flipped: typeof spec.flipped === "boolean" ? spec.flipped : undefined,
        inverted: typeof spec.inverted === "boolean" ? spec.inverted : undefined,
        interactive: spec.interactive === true,
      });
    });
    const active = layout.cells[view.active];
    if (active && active !== layout.active) layout.activate(active);
  });
  if (store && view.measurement !== undefined && view.measurement !== store.selected) {
    if (view.measurement === null || store.byId(view.measurement)) store.select(view.measurement);
  }
}
