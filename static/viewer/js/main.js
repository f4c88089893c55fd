// The viewer page: load the study (and any studies to compare with it), list their
// series grouped by study, lay out viewports and hang series in them. Layout handling
// is in layout.js, the toolbar and shortcuts in toolbox.js. Plain ES modules.

import { fetchStudy } from "./api.js";
import { Layout, SERIES_DRAG_TYPE } from "./layout.js";
import { MeasurementStore } from "./measurementStore.js";
import { MeasurementsPanel } from "./measurementsPanel.js";
import { PresetEditor } from "./presetEditor.js";
import { Toolbox } from "./toolbox.js";

const grid = document.getElementById("grid");
const panel = document.getElementById("series-panel");
const template = document.getElementById("viewport-template");

// How a compared study reads next to the first one: by its date relative to it.
function labelStudies(studies) {
  const [primary, ...others] = studies;
  if (!others.length) return;
  primary.label = "Current";
  for (const study of others) {
    if (study.study_date && primary.study_date && study.study_date < primary.study_date) study.label = "Prior";
    else if (study.study_date && primary.study_date && study.study_date > primary.study_date) study.label = "Later";
    else study.label = "Compared";
  }
}

function seriesButton(series, layout) {
  const button = document.createElement("button");
  button.type = "button";
  button.draggable = true;
  button.dataset.series = series.series_instance_uid;
  const image = document.createElement("img");
  image.alt = "";
  image.loading = "lazy";
  image.addEventListener("error", () => image.classList.add("missing")); // e.g. 422 undecodable
  image.src = series.thumbnail;
  const label = document.createElement("span");
  label.textContent = `${series.modality} ${series.series_number ?? ""} · ${series.number_of_instances} im\n${series.series_description || ""}`;
  button.append(image, label);
  // Images whose pixel data is known not to decode (the index's undecodable flag).
  const undecodable = series.instances.filter((i) => Object.keys(i.undecodable || {}).length).length;
  if (undecodable) {
    button.dataset.undecodable = String(undecodable);
    const warning = document.createElement("span");
    warning.className = "undecodable";
    warning.textContent = `${undecodable} cannot be shown`;
    warning.title = "Their pixel data does not decode; the stored objects are kept unchanged.";
    button.append(warning);
  }
  button.addEventListener("click", () => layout.hang(layout.active, series));
  button.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData(SERIES_DRAG_TYPE, series.series_instance_uid);
    event.dataTransfer.effectAllowed = "copy";
  });
  return button;
}

function listSeries(studies, layout) {
  for (const study of studies) {
    const group = document.createElement("section");
    group.className = "study-group";
    group.dataset.study = study.study_instance_uid;
    const heading = document.createElement("h2");
    heading.textContent = [study.label, study.study_date].filter(Boolean).join(" · ") || "Study";
    heading.title = study.study_description || "";
    const description = document.createElement("p");
    description.textContent = study.study_description || "";
    group.append(heading, description);
    for (const series of study.series.filter((s) => s.hangable)) group.append(seriesButton(series, layout));
    panel.append(group);
  }
}

function markSeries(layout) {
  const shown = layout.viewport?.series?.series_instance_uid;
  panel.querySelectorAll("button[data-series]").forEach((b) => b.classList.toggle("active", b.dataset.series === shown));
}

// In a comparison, viewport i shows study i's series most like the first study's first
// series (same modality and description, else same modality, else its first).
function comparisonHanging(studies) {
  const reference = studies[0].series.find((s) => s.hangable);
  return studies.map((study) => {
    const candidates = study.series.filter((s) => s.hangable);
    if (!reference) return candidates[0];
    return (
      candidates.find((s) => s.modality === reference.modality && s.series_description === reference.series_description) ||
      candidates.find((s) => s.modality === reference.modality) ||
      candidates[0]
    );
  });
}

async function start() {
  const uids = grid.dataset.studies.split(" ").filter(Boolean);
  let studies;
  try {
    studies = await Promise.all(uids.map((uid) => fetchStudy(uid)));
  } catch (error) {
    grid.textContent = String(error.message || error);
    return;
  }
  labelStudies(studies);
  for (const study of studies) {
    for (const series of study.series) {
      series.study = study;
      series.hangable = series.instances.some((i) => i.number_of_frames > 0);
    }
  }
  const hangable = studies.flatMap((study) => study.series.filter((s) => s.hangable));
  const store = new MeasurementStore();
  const layout = new Layout(grid, template, hangable, store);
  const measurementsPanel = new MeasurementsPanel(document.getElementById("measurements-panel"), store, layout);
  const toolbox = new Toolbox(layout, {
    presetEditor: new PresetEditor(() => toolbox.sync()),
    store,
    panel: measurementsPanel,
  });
  layout.onactivate = () => {
    toolbox.sync();
    markSeries(layout);
  };
  layout.onhang = (cell) => {
    if (cell === layout.active) toolbox.sync();
    markSeries(layout);
  };
  layout.onviewchange = (cell) => {
    if (cell === layout.active) toolbox.syncPreset();
  };
  listSeries(studies, layout);
  if (studies.length > 1) {
    const hanging = comparisonHanging(studies);
    layout.set(studies.length === 2 ? "1x2" : "2x2", (index) => hanging[index]);
  } else {
    layout.set("1x1");
  }
  if (!hangable.length) layout.viewport.showMessage("This study has no images to show.");
  if (window.matchMedia("(max-width: 960px)").matches) document.body.classList.add("series-collapsed");
  markSeries(layout);
  store.load(uids);
  window.loupeMeasurements = store; // for the browser tests and the console
}

start();
