// The text over a viewport's image: the four corners (patient, study and series, slice,
// window and zoom), the patient-direction letters at the edges, the scale bar, and the
// message shown in place of an image.

import { edgeLetters, slicePosition } from "./math/orientation.js";

const EDGES = ["left", "right", "top", "bottom"];
const SCALE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

export class Overlays {
  constructor(element) {
    this.element = element;
    this.message = element.querySelector(".viewport-message");
    this.corners = {
      tl: element.querySelector(".overlay.top-left"),
      tr: element.querySelector(".overlay.top-right"),
      bl: element.querySelector(".overlay.bottom-left"),
      br: element.querySelector(".overlay.bottom-right"),
    };
    this.letters = Object.fromEntries(EDGES.map((edge) => [edge, element.querySelector(`.orientation.${edge}`)]));
    this.scaleBar = element.querySelector(".scale-bar");
  }

  // ``entry`` ({ instance, frame }) is slice ``slice`` of ``count`` in ``series`` of
  // ``study``, shown at ``window`` (null: the server's default); ``displayScale`` is CSS
  // pixels per image column, ``matrix`` and ``aspect`` the display transform and the
  // physical aspect it drew with (matrix null: no image drawn); ``linked``: it scrolls
  // with another viewport (sync.js).
  write({ entry, study, series, slice, count, window, displayScale, matrix, aspect, linked = false }) {
    const { instance } = entry;
    const patient = study.patient;
    this.corners.tl.textContent = [
      patient.patient_name_display,
      `ID ${patient.patient_id}`,
      patient.patient_birth_date ? `Born ${patient.patient_birth_date} ${patient.patient_sex || ""}` : "",
    ].filter(Boolean).join("\n");
    this.corners.tr.textContent = [
      [study.label, study.study_date, study.study_description].filter(Boolean).join(" "),
      `${series.modality} ${series.series_number ?? ""} ${series.series_description || ""}`.trim(),
    ].filter(Boolean).join("\n");
    const position = slicePosition(instance);
    this.corners.bl.textContent = [
      `Im ${slice + 1}/${count}` + (instance.number_of_frames > 1 ? ` (frame ${entry.frame})` : ""),
      position === null ? "" : `Pos ${position.toFixed(1)} mm`,
      instance.slice_thickness ? `Thk ${instance.slice_thickness} mm` : "",
      linked ? "Linked" : "",
    ].filter(Boolean).join("\n");
    this.corners.br.textContent = [
      window ? `W ${Math.round(window.width)} L ${Math.round(window.center)}` : "W/L default",
      displayScale ? `Zoom ${displayScale.toFixed(2)}×` : "",
    ].filter(Boolean).join("\n");
    this.writeLetters(instance, matrix, aspect);
    this.writeScaleBar(instance, displayScale);
  }

  // Patient-direction letters at the edges (PS3.3 C.7.6.2.1.1: the row direction points
  // to the image's right edge, the column direction to its bottom; rotation and flip move
  // them with the image); none without a drawn image.
  writeLetters(instance, matrix, aspect) {
    const letters = matrix
      ? edgeLetters(instance.image_orientation_patient, matrix, aspect)
      : { left: "", right: "", top: "", bottom: "" };
    for (const edge of EDGES) this.letters[edge].textContent = letters[edge];
  }

  // A scale bar of about a fifth of the viewport, in mm where the spacing is known
  // (saying which attribute gave it), in pixels otherwise. The display keeps the physical
  // aspect, so a screen pixel spans column spacing / scale in every direction.
  writeScaleBar(instance, displayScale) {
    const bar = this.scaleBar.querySelector(".bar");
    const label = this.scaleBar.querySelector(".label");
    if (!displayScale) {
      label.textContent = "";
      bar.style.width = "0";
      return;
    }
    const spacing = instance.pixel_spacing;
    const unitPerCssPixel = spacing ? spacing.column_mm / displayScale : 1 / displayScale;
    const target = this.element.clientWidth / 5;
    const length = SCALE_STEPS.filter((v) => v / unitPerCssPixel <= target).pop() || SCALE_STEPS[0];
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
