// The viewer page: load the study, list its series, lay out viewports, hang series in
// them and route events to the tools of the active one. Plain ES modules; no build step.

import { fetchStudy } from "./api.js";
import { presetsFor } from "./presets.js";
import { ScrollTool } from "./tools/scroll.js";
import { WindowLevelTool } from "./tools/windowLevel.js";
import { StackViewport } from "./viewport.js";

const grid = document.getElementById("grid");
const panel = document.getElementById("series-panel");
const presetSelect = document.getElementById("preset");
const layoutSelect = document.getElementById("layout");
const cineButton = document.getElementById("cine");
const fpsInput = document.getElementById("fps");
const template = document.getElementById("viewport-template");

let study = null;
let hangable = [];
let cells = []; // { element, viewport, windowLevel, scroll }
let active = null;

function seriesButton(series) {
  const button = document.createElement("button");
  button.type = "button";
  button.draggable = true;
  button.dataset.series = series.series_instance_uid;
  const image = document.createElement("img");
  image.alt = "";
  image.loading = "lazy";
  image.src = series.thumbnail;
  const label = document.createElement("span");
  label.textContent = `${series.modality} ${series.series_number ?? ""} · ${series.number_of_instances} im\n${series.series_description || ""}`;
  button.append(image, label);
  button.addEventListener("click", () => hang(active, series));
  button.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("application/x-loupe-series", series.series_instance_uid);
  });
  return button;
}

function hang(cell, series) {
  if (!cell || !series) return;
  cell.viewport.setSeries(series);
  if (cell === active) syncToolbar();
  markSeries();
}

function markSeries() {
  const shown = active?.viewport.series?.series_instance_uid;
  panel.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.dataset.series === shown));
}

function activate(cell) {
  active = cell;
  cells.forEach((c) => c.element.classList.toggle("active", c === cell));
  syncToolbar();
  markSeries();
}

function syncToolbar() {
  const viewport = active?.viewport;
  const instance = viewport?.current?.instance;
  const presets = instance ? presetsFor(viewport.series.modality, instance) : [];
  presetSelect.replaceChildren(new Option("—", ""));
  presets.forEach((preset, index) => {
    presetSelect.append(new Option(`${preset.name} (${preset.center}/${preset.width})`, String(index)));
  });
  presetSelect.onchange = () => {
    const preset = presets[Number(presetSelect.value)];
    if (preset) viewport.setWindow(preset);
  };
  cineButton.textContent = viewport?.cine ? "Stop" : "Play";
  if (viewport && !viewport.cine) fpsInput.value = String(viewport.defaultFrameRate());
}

function makeCell() {
  const element = template.content.firstElementChild.cloneNode(true);
  const viewport = new StackViewport(element, study);
  const scrollbar = element.querySelector(".scrollbar");
  const cell = { element, viewport, windowLevel: new WindowLevelTool(viewport), scroll: new ScrollTool(viewport, scrollbar) };
  viewport.onchange = () => {
    scrollbar.max = String(Math.max(viewport.count, 1));
    scrollbar.value = String(viewport.slice + 1);
  };
  // Left drag: window/level; Shift-drag or middle button: pan.
  let panning = null;
  element.addEventListener("pointerdown", (event) => {
    if (active !== cell) activate(cell);
    if (event.target === scrollbar) return;
    element.setPointerCapture(event.pointerId);
    if (event.shiftKey || event.button === 1) panning = { x: event.clientX, y: event.clientY };
    else cell.windowLevel.pointerDown(event);
  });
  element.addEventListener("pointermove", (event) => {
    if (panning) {
      viewport.panBy(event.clientX - panning.x, event.clientY - panning.y);
      panning = { x: event.clientX, y: event.clientY };
    } else cell.windowLevel.pointerMove(event);
  });
  element.addEventListener("pointerup", () => {
    if (panning) panning = null;
    else cell.windowLevel.pointerUp();
  });
  element.addEventListener(
    "wheel",
    (event) => {
      if (active !== cell) activate(cell);
      if (!event.ctrlKey) return cell.scroll.wheel(event);
      event.preventDefault();
      viewport.setMagnification(viewport.magnification * (event.deltaY < 0 ? 1.25 : 0.8));
    },
    { passive: false },
  );
  element.addEventListener("dragover", (event) => {
    event.preventDefault();
    element.classList.add("drop-target");
  });
  element.addEventListener("dragleave", () => element.classList.remove("drop-target"));
  element.addEventListener("drop", (event) => {
    event.preventDefault();
    element.classList.remove("drop-target");
    const uid = event.dataTransfer.getData("application/x-loupe-series");
    activate(cell);
    hang(cell, hangable.find((s) => s.series_instance_uid === uid));
  });
  return cell;
}

// Lay out rows × columns viewports, keeping the series already hung; new cells get the
// next series not yet shown.
function layout(value) {
  const [rows, columns] = value.split("x").map(Number);
  const count = rows * columns;
  grid.className = `grid layout-${value}`;
  while (cells.length > count) {
    const cell = cells.pop();
    cell.viewport.stop();
    cell.element.remove();
  }
  while (cells.length < count) {
    const cell = makeCell();
    cells.push(cell);
    grid.append(cell.element);
    const shown = new Set(cells.map((c) => c.viewport.series?.series_instance_uid));
    const next = hangable.find((s) => !shown.has(s.series_instance_uid)) || hangable[0];
    if (next) cell.viewport.setSeries(next);
  }
  if (!cells.includes(active)) activate(cells[0]);
  else syncToolbar();
}

async function start() {
  try {
    study = await fetchStudy(grid.dataset.study);
  } catch (error) {
    grid.textContent = String(error.message || error);
    return;
  }
  hangable = study.series.filter((s) => s.instances.some((i) => i.number_of_frames > 0));
  for (const series of hangable) panel.append(seriesButton(series));
  layout("1x1");
  if (!hangable.length) active.viewport.showMessage("This study has no images to show.");
  markSeries();

  layoutSelect.addEventListener("change", () => layout(layoutSelect.value));
  const viewport = () => active.viewport;
  const toggleCine = () => {
    if (viewport().cine) viewport().stop();
    else viewport().play(Math.min(Math.max(Number(fpsInput.value) || 10, 1), 60));
    syncToolbar();
  };
  cineButton.addEventListener("click", toggleCine);
  fpsInput.addEventListener("change", () => {
    if (viewport().cine) viewport().play(Math.min(Math.max(Number(fpsInput.value) || 10, 1), 60));
  });
  const zoomIn = () => viewport().setMagnification(viewport().magnification * 2);
  const zoomOut = () => viewport().setMagnification(viewport().magnification / 2);
  const fit = () => viewport().setMagnification(1);
  document.getElementById("zoom-in").addEventListener("click", zoomIn);
  document.getElementById("zoom-out").addEventListener("click", zoomOut);
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("zoom-actual").addEventListener("click", () => viewport().actualSize());
  const invert = () => viewport().setInverted(!viewport().inverted);
  document.getElementById("invert").addEventListener("click", invert);
  const reset = () => {
    viewport().setInverted(false);
    presetSelect.value = "";
    viewport().setSeries(viewport().series);
    syncToolbar();
  };
  document.getElementById("reset").addEventListener("click", reset);
  const toggleOverlays = () => grid.classList.toggle("no-overlays");
  document.getElementById("toggle-overlays").addEventListener("click", toggleOverlays);
  const keys = { i: invert, r: reset, o: toggleOverlays, c: toggleCine, "+": zoomIn, "=": zoomIn, "-": zoomOut, 0: fit };
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (active.scroll.key(event)) return;
    if (event.key === "1") viewport().actualSize();
    else if (keys[event.key]) keys[event.key]();
  });
}

start();
