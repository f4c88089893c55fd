// The viewport grid: rows × columns cells, the active one, series hung by click or by
// drag and drop (from any study shown), and the routing of pointer events to the tools
// of a cell: one pointer and the wheel go to the tool the bindings table (toolbox.js)
// names for that button and those keys, two pointers pinch-zoom and pan.

import { AnnotationLayer, MEASUREMENT_TOOLS } from "./annotations.js";
import { MeasurementStore } from "./measurementStore.js";
import { gestureFor } from "./toolbox.js";
import { ScrollTool } from "./tools/scroll.js";
import { WindowLevelTool } from "./tools/windowLevel.js";
import { ZoomPanTool } from "./tools/zoomPan.js";
import { StackViewport } from "./viewport.js";

export const LAYOUTS = ["1x1", "1x2", "2x1", "2x2"];
export const SERIES_DRAG_TYPE = "application/x-loupe-series";

export class Layout {
  constructor(grid, template, hangable, store = new MeasurementStore()) {
    this.store = store; // the study's measurements (measurementStore.js)
    this.grid = grid;
    this.template = template;
    this.hangable = hangable; // series with frames, each with .study
    this.cells = [];
    this.active = null;
    this.tool = "windowLevel"; // what a primary-button drag or one finger does (or a measurement tool)
    this.onactivate = () => {};
    this.onhang = () => {};
    this.onviewchange = () => {}; // a viewport's slice or window changed
    this.onlayout = () => {}; // the layout changed (its value, its cells)
    this.sync = null; // linked viewports (sync.js), told of every viewport's change
    this.value = "1x1";
  }

  get viewport() {
    return this.active?.viewport;
  }

  // The tool of ``cell`` that the bindings table gives a mouse ``input`` ("drag" or
  // "wheel") with the button and keys of ``event``: the cell's tool of that name, or for
  // "active" the drag tool chosen ("windowLevel", "pan" or "zoom"), or the measurement
  // layer where a measurement tool is chosen or the press is on a measurement.
  toolFor(cell, input, event) {
    const name = gestureFor(input, event)?.tool;
    if (name !== "active") return cell[name];
    cell.annotations.toolName = MEASUREMENT_TOOLS[this.tool] ? this.tool : null;
    if (input === "drag" && cell.annotations.wants(event)) return cell.annotations;
    return cell[this.tool];
  }

  activate(cell) {
    if (!cell) return;
    this.active = cell;
    this.cells.forEach((c) => {
      c.element.classList.toggle("active", c === cell);
      c.element.setAttribute("aria-current", String(c === cell));
    });
    this.onactivate(cell);
  }

  hang(cell, series) {
    if (!cell || !series) return;
    cell.viewport.setSeries(series);
    this.onhang(cell);
  }

  // Rows × columns viewports, keeping the series already hung; new cells get the series
  // ``choose(index, shown)`` picks, by default the next one not yet shown.
  set(value, choose = null) {
    if (!LAYOUTS.includes(value)) return;
    this.value = value;
    const [rows, columns] = value.split("x").map(Number);
    const count = rows * columns;
    this.grid.className = `grid layout-${value}`;
    this.grid.dataset.layout = value;
    while (this.cells.length > count) {
      const cell = this.cells.pop();
      cell.viewport.stop();
      cell.element.remove();
    }
    while (this.cells.length < count) {
      const cell = this.makeCell();
      this.cells.push(cell);
      this.grid.append(cell.element);
      const shown = new Set(this.cells.map((c) => c.viewport.series?.series_instance_uid));
      const next =
        (choose && choose(this.cells.length - 1, shown)) ||
        this.hangable.find((s) => !shown.has(s.series_instance_uid)) ||
        this.hangable[0];
      if (next) cell.viewport.setSeries(next);
    }
    if (!this.cells.includes(this.active)) this.activate(this.cells[0]);
    else this.onactivate(this.active);
    this.sync?.refresh();
    this.onlayout(value);
  }

  makeCell() {
    const element = this.template.content.firstElementChild.cloneNode(true);
    const viewport = new StackViewport(element);
    const scrollbar = element.querySelector(".scrollbar");
    const cell = {
      element,
      viewport,
      windowLevel: new WindowLevelTool(viewport),
      pan: new ZoomPanTool(viewport, { mode: "pan" }),
      zoom: new ZoomPanTool(viewport, { mode: "zoom" }),
      scroll: new ScrollTool(viewport, scrollbar),
      annotations: new AnnotationLayer(viewport, this.store),
    };
    viewport.annotations = cell.annotations;
    viewport.listen((kind) => this.sync?.changed(viewport, kind));
    viewport.onchange = () => {
      scrollbar.max = String(Math.max(viewport.count, 1));
      scrollbar.value = String(viewport.slice + 1);
      this.onviewchange(cell);
    };
    this.routePointers(cell, scrollbar);
    element.addEventListener(
      "wheel",
      (event) => {
        if (this.active !== cell) this.activate(cell);
        this.toolFor(cell, "wheel", event)?.wheel(event);
      },
      { passive: false },
    );
    element.addEventListener("contextmenu", (event) => event.preventDefault());
    element.addEventListener("dragover", (event) => {
      if (!event.dataTransfer.types.includes(SERIES_DRAG_TYPE)) return;
      event.preventDefault();
      element.classList.add("drop-target");
    });
    element.addEventListener("dragleave", () => element.classList.remove("drop-target"));
    element.addEventListener("drop", (event) => {
      event.preventDefault();
      element.classList.remove("drop-target");
      const uid = event.dataTransfer.getData(SERIES_DRAG_TYPE);
      this.activate(cell);
      this.hang(cell, this.hangable.find((s) => s.series_instance_uid === uid));
    });
    return cell;
  }

  // Pointer Events for mouse, pen and touch alike. One pointer: the tool the bindings
  // table gives its button and keys (a finger is a primary-button drag). A second finger
  // ends that and starts a pinch, which lasts until a finger lifts.
  routePointers(cell, scrollbar) {
    const { element } = cell;
    const pointers = new Map(); // pointerId -> last event
    let tool = null;
    let pinching = false;
    element.addEventListener("pointerdown", (event) => {
      if (this.active !== cell) this.activate(cell);
      if (event.target === scrollbar) return;
      element.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, event);
      if (pointers.size === 2) {
        tool?.pointerUp(event);
        tool = null;
        pinching = true;
        const [first, second] = pointers.values();
        cell.pan.pinchStart(first, second);
      } else if (pointers.size === 1) {
        tool = this.toolFor(cell, "drag", event) ?? null;
        tool?.pointerDown(event);
      }
    });
    element.addEventListener("pointermove", (event) => {
      if (!pointers.has(event.pointerId)) return;
      pointers.set(event.pointerId, event);
      if (pinching) {
        const [first, second] = pointers.values();
        if (second) cell.pan.pinchMove(first, second);
      } else tool?.pointerMove(event);
    });
    const end = (event) => {
      if (!pointers.delete(event.pointerId)) return;
      if (pinching) {
        if (pointers.size < 2) cell.pan.pinchEnd();
        if (pointers.size === 0) pinching = false;
        return;
      }
      tool?.pointerUp(event);
      tool = null;
    };
    element.addEventListener("pointerup", end);
    element.addEventListener("pointercancel", end);
  }
}
