// The viewer page: load the study, list its series, hang the first one, route events
// to the tools. Plain ES modules; no build step.

import { fetchStudy } from "./api.js";
import { presetsFor } from "./presets.js";
import { ScrollTool } from "./tools/scroll.js";
import { WindowLevelTool } from "./tools/windowLevel.js";
import { StackViewport } from "./viewport.js";

const element = document.getElementById("viewport");
const panel = document.getElementById("series-panel");
const presetSelect = document.getElementById("preset");
const scrollbar = document.getElementById("scrollbar");

function seriesButton(series, onPick) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.series = series.series_instance_uid;
  const image = document.createElement("img");
  image.alt = "";
  image.loading = "lazy";
  image.src = series.thumbnail;
  const label = document.createElement("span");
  label.textContent = `${series.modality} ${series.series_number ?? ""} · ${series.number_of_instances} im\n${series.series_description || ""}`;
  button.append(image, label);
  button.addEventListener("click", () => onPick(series, button));
  return button;
}

function fillPresets(viewport) {
  const first = viewport.current?.instance;
  const presets = first ? presetsFor(viewport.series.modality, first) : [];
  presetSelect.replaceChildren(new Option("—", ""));
  presets.forEach((preset, index) => {
    presetSelect.append(new Option(`${preset.name} (${preset.center}/${preset.width})`, String(index)));
  });
  presetSelect.onchange = () => {
    const preset = presets[Number(presetSelect.value)];
    if (preset) viewport.setWindow(preset);
  };
}

async function start() {
  let study;
  try {
    study = await fetchStudy(element.dataset.study);
  } catch (error) {
    element.querySelector("#message").textContent = String(error.message || error);
    element.querySelector("#message").hidden = false;
    return;
  }
  const viewport = new StackViewport(element, study);
  viewport.onchange = () => {
    scrollbar.max = String(Math.max(viewport.count, 1));
    scrollbar.value = String(viewport.slice + 1);
  };
  const windowLevel = new WindowLevelTool(viewport);
  const scroll = new ScrollTool(viewport, scrollbar);

  const pick = (series, button) => {
    panel.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b === button));
    viewport.setSeries(series);
    fillPresets(viewport);
  };
  const hangable = study.series.filter((s) => s.instances.some((i) => i.number_of_frames > 0));
  for (const series of hangable) panel.append(seriesButton(series, pick));
  if (hangable.length) pick(hangable[0], panel.querySelector("button"));
  else viewport.showMessage("This study has no images to show.");

  // Left drag: window/level; Shift-drag or middle button: pan.
  let panning = null;
  element.addEventListener("pointerdown", (event) => {
    if (event.target === scrollbar) return;
    element.setPointerCapture(event.pointerId);
    if (event.shiftKey || event.button === 1) panning = { x: event.clientX, y: event.clientY };
    else windowLevel.pointerDown(event);
  });
  element.addEventListener("pointermove", (event) => {
    if (panning) {
      viewport.panBy(event.clientX - panning.x, event.clientY - panning.y);
      panning = { x: event.clientX, y: event.clientY };
    } else windowLevel.pointerMove(event);
  });
  element.addEventListener("pointerup", () => {
    if (panning) panning = null;
    else windowLevel.pointerUp();
  });
  element.addEventListener(
    "wheel",
    (event) => {
      if (!event.ctrlKey) return scroll.wheel(event);
      event.preventDefault();
      viewport.setMagnification(viewport.magnification * (event.deltaY < 0 ? 1.25 : 0.8));
    },
    { passive: false },
  );
  const zoomIn = () => viewport.setMagnification(viewport.magnification * 2);
  const zoomOut = () => viewport.setMagnification(viewport.magnification / 2);
  const fit = () => viewport.setMagnification(1);
  document.getElementById("zoom-in").addEventListener("click", zoomIn);
  document.getElementById("zoom-out").addEventListener("click", zoomOut);
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("zoom-actual").addEventListener("click", () => viewport.actualSize());

  const invert = document.getElementById("invert");
  invert.addEventListener("click", () => viewport.setInverted(!viewport.inverted));
  const reset = () => {
    viewport.setInverted(false);
    presetSelect.value = "";
    viewport.setSeries(viewport.series);
  };
  document.getElementById("reset").addEventListener("click", reset);
  const toggleOverlays = () => element.classList.toggle("no-overlays");
  document.getElementById("toggle-overlays").addEventListener("click", toggleOverlays);
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (scroll.key(event)) return;
    if (event.key === "i") viewport.setInverted(!viewport.inverted);
    else if (event.key === "r") reset();
    else if (event.key === "o") toggleOverlays();
    else if (event.key === "+" || event.key === "=") zoomIn();
    else if (event.key === "-") zoomOut();
    else if (event.key === "0") fit();
    else if (event.key === "1") viewport.actualSize();
  });
}

start();
