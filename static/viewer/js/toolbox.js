// The toolbar, the keyboard and the mouse: ONE table of bindings (data) drives the key
// handling, the routing of mouse drags and the wheel (layout.js), the toolbar buttons'
// titles and the help panel, which also lists the touch gestures. Actions act on the
// active viewport of the layout.

import { presetsFor } from "./presets.js";

// kind "key": event.key values (letters case-insensitive), each doing ``action``.
// kind "gesture": ``mouse`` lists the mouse inputs that do it, each { input: "drag" or
// "wheel", button (MouseEvent.button: 0 primary, 1 middle, 2 secondary; absent: any),
// shift / ctrl: true where that key must be held }, routed by layout.js to the viewport
// cell's ``tool`` ("active": the drag tool chosen with W, P or Z); ``keys`` names the
// other ways (touch, the slider, clicks), shown only.
export const BINDINGS = [
  { section: "Stack", kind: "key", keys: ["ArrowDown"], action: "slice-next", label: "Next slice" },
  { section: "Stack", kind: "key", keys: ["ArrowUp"], action: "slice-previous", label: "Previous slice" },
  { section: "Stack", kind: "key", keys: ["PageDown"], action: "slice-next-10", label: "10 slices on" },
  { section: "Stack", kind: "key", keys: ["PageUp"], action: "slice-previous-10", label: "10 slices back" },
  { section: "Stack", kind: "key", keys: ["Home"], action: "slice-first", label: "First slice" },
  { section: "Stack", kind: "key", keys: ["End"], action: "slice-last", label: "Last slice" },
  { section: "Stack", kind: "key", keys: ["c"], action: "cine", label: "Play / stop cine" },
  { section: "Stack", kind: "gesture", mouse: [{ input: "wheel" }], tool: "scroll", label: "Scroll slices" },
  { section: "Stack", kind: "gesture", keys: ["Drag the slider"], label: "Go to a slice" },
  { section: "Window", kind: "key", keys: ["w"], action: "tool-windowLevel", label: "Drag tool: window/level" },
  {
    section: "Window",
    kind: "gesture",
    mouse: [{ input: "drag" }],
    tool: "active",
    keys: ["One finger"],
    label: "Window/level (with that tool): right/left widens/narrows, down/up raises/lowers the level",
  },
  { section: "Window", kind: "key", keys: ["i"], action: "invert", label: "Invert" },
  { section: "Window", kind: "key", keys: ["e"], action: "edit-presets", label: "Edit CT presets" },
  { section: "Window", kind: "key", keys: [" "], action: "reset", label: "Reset window, zoom, rotation and flip" },
  { section: "Zoom", kind: "key", keys: ["p"], action: "tool-pan", label: "Drag tool: pan" },
  { section: "Zoom", kind: "key", keys: ["z"], action: "tool-zoom", label: "Drag tool: zoom" },
  { section: "Zoom", kind: "key", keys: ["+", "="], action: "zoom-in", label: "Zoom in" },
  { section: "Zoom", kind: "key", keys: ["-"], action: "zoom-out", label: "Zoom out" },
  { section: "Zoom", kind: "key", keys: ["0"], action: "zoom-fit", label: "Fit to the viewport" },
  { section: "Zoom", kind: "key", keys: ["1"], action: "zoom-actual", label: "Actual pixels (1:1)" },
  {
    section: "Zoom",
    kind: "gesture",
    mouse: [{ input: "drag", shift: true }, { input: "drag", button: 1 }],
    tool: "pan",
    label: "Pan",
  },
  { section: "Zoom", kind: "gesture", mouse: [{ input: "drag", button: 2 }], tool: "zoom", label: "Zoom (up: in)" },
  { section: "Zoom", kind: "gesture", mouse: [{ input: "wheel", ctrl: true }], tool: "zoom", label: "Zoom about the pointer" },
  { section: "Zoom", kind: "gesture", keys: ["Pinch (two fingers)"], label: "Zoom about the fingers' midpoint" },
  { section: "Zoom", kind: "gesture", keys: ["Two fingers move"], label: "Pan" },
  { section: "Orientation", kind: "key", keys: ["l"], action: "rotate-left", label: "Rotate 90° left" },
  { section: "Orientation", kind: "key", keys: ["r"], action: "rotate-right", label: "Rotate 90° right" },
  { section: "Orientation", kind: "key", keys: ["h"], action: "flip-horizontal", label: "Flip horizontally" },
  { section: "Orientation", kind: "key", keys: ["v"], action: "flip-vertical", label: "Flip vertically" },
  { section: "Measure", kind: "key", keys: ["d"], action: "tool-length", label: "Draw tool: length" },
  { section: "Measure", kind: "key", keys: ["a"], action: "tool-angle", label: "Draw tool: angle (arm, vertex, arm)" },
  { section: "Measure", kind: "key", keys: ["b"], action: "tool-cobb", label: "Draw tool: Cobb angle (two lines)" },
  { section: "Measure", kind: "key", keys: ["q"], action: "tool-ellipse", label: "Draw tool: ellipse ROI" },
  { section: "Measure", kind: "key", keys: ["x"], action: "tool-rectangle", label: "Draw tool: rectangle ROI" },
  { section: "Measure", kind: "key", keys: ["f"], action: "tool-polygon", label: "Draw tool: polygon / freehand ROI" },
  { section: "Measure", kind: "key", keys: ["t"], action: "tool-probe", label: "Draw tool: probe (a pixel's value)" },
  { section: "Measure", kind: "key", keys: ["g"], action: "tool-arrow", label: "Draw tool: arrow with a label" },
  { section: "Measure", kind: "key", keys: ["Enter"], action: "finish-shape", label: "Close the polygon being drawn" },
  { section: "Measure", kind: "key", keys: ["Delete", "Backspace"], action: "delete-measurement", label: "Delete the selected measurement" },
  { section: "Measure", kind: "key", keys: ["z"], ctrl: true, shift: false, action: "undo", label: "Undo (measurements)" },
  { section: "Measure", kind: "key", keys: ["y"], ctrl: true, action: "redo", label: "Redo (measurements)" },
  { section: "Measure", kind: "key", keys: ["z"], ctrl: true, shift: true, action: "redo", label: "Redo (measurements)" },
  { section: "Measure", kind: "key", keys: ["m"], action: "measurements-panel", label: "Show / hide the measurements panel" },
  {
    section: "Measure",
    kind: "gesture",
    keys: ["Drag (one finger) with a draw tool", "Click points", "Double-click"],
    label: "Draw: drag or click the points; double-click closes a polygon",
  },
  { section: "Measure", kind: "gesture", keys: ["Click a measurement", "Drag it", "Drag a handle"], label: "Select, move, edit" },
  { section: "Compare", kind: "key", keys: ["k"], action: "link", label: "Lock: link scrolling at the current offset (again: unlock)" },
  { section: "Compare", kind: "gesture", keys: ["Scroll toggle"], label: "Linked scrolling on / off (same frame of reference: by position)" },
  { section: "Compare", kind: "gesture", keys: ["W/L toggle"], label: "Linked window/level on / off (same modality)" },
  { section: "Compare", kind: "gesture", keys: ["Zoom toggle"], label: "Linked zoom and pan on / off" },
  { section: "Compare", kind: "gesture", keys: ["Protocol menu"], label: "Hang another protocol" },
  { section: "View", kind: "key", keys: ["o"], action: "overlays", label: "Show / hide overlays" },
  { section: "View", kind: "key", keys: ["s"], action: "series-panel", label: "Show / hide the series panel" },
  { section: "View", kind: "key", keys: ["n"], action: "next-viewport", label: "Next viewport" },
  { section: "View", kind: "gesture", keys: ["Click a viewport"], label: "Make it the active viewport" },
  { section: "View", kind: "gesture", keys: ["Click a series"], label: "Show it in the active viewport" },
  { section: "View", kind: "gesture", keys: ["Drag a series onto a viewport"], label: "Show it there" },
  { section: "Help", kind: "key", keys: ["?"], action: "help", label: "This help" },
  { section: "Help", kind: "key", keys: ["Escape"], action: "close", label: "Close help, dialogs and menus" },
];

const KEY_NAMES = { ArrowDown: "↓", ArrowUp: "↑", " ": "Space", Escape: "Esc", PageDown: "Page Down", PageUp: "Page Up" };
const BUTTON_NAMES = { 1: "Middle", 2: "Right" };
const capitalized = (text) => text[0].toUpperCase() + text.slice(1);

export function keyName(key) {
  return KEY_NAMES[key] ?? (key.length === 1 ? key.toUpperCase() : key);
}

// A key of a binding with the modifiers it needs: "Ctrl+Shift+Z".
export function chordName(binding, key) {
  return [binding.ctrl && "Ctrl", binding.shift && "Shift", keyName(key)].filter(Boolean).join("+");
}

// What the help panel calls a mouse input of the table: "Drag", "Shift-drag",
// "Middle-drag", "Ctrl + wheel" ...
export function mouseName({ input, button, shift, ctrl }) {
  const held = [ctrl && "Ctrl", shift && "Shift"].filter(Boolean);
  if (input === "wheel") return capitalized([...held, "wheel"].join(" + "));
  return capitalized([...held, BUTTON_NAMES[button], "drag"].filter(Boolean).join("-"));
}

// Every way to make a binding the help panel names: its mouse inputs, then the others.
export function gestureNames(binding) {
  return [...(binding.mouse ?? []).map(mouseName), ...(binding.keys ?? [])];
}

// The binding for a keydown event, or undefined. Letters ignore case, and Shift unless
// the binding says (``shift``); Ctrl (or Cmd) only where the binding asks for it
// (``ctrl``: undo, redo), so other browser shortcuts are left alone; Alt never.
export function bindingFor(event) {
  if (event.altKey) return undefined;
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return BINDINGS.find(
    (b) =>
      b.kind === "key" &&
      b.keys.includes(key) &&
      Boolean(b.ctrl) === ctrl &&
      (!b.ctrl || b.shift === undefined || b.shift === event.shiftKey),
  );
}

// The gesture binding for a mouse ``input`` ("drag": a pointerdown; "wheel") and its event,
// or undefined. Of the table's mouse inputs that match (the button where one is given, the
// keys that must be held), the most particular wins: a held key counts more than a button,
// a button more than none, so Shift-drag with any button pans and a plain drag is the
// active tool's.
export function gestureFor(input, event) {
  let best;
  let bestScore = -1;
  for (const binding of BINDINGS) {
    for (const mouse of binding.mouse ?? []) {
      if (mouse.input !== input) continue;
      if (mouse.button !== undefined && mouse.button !== event.button) continue;
      if ((mouse.shift && !event.shiftKey) || (mouse.ctrl && !event.ctrlKey)) continue;
      const held = Number(Boolean(mouse.shift)) + Number(Boolean(mouse.ctrl));
      const score = 2 * held + Number(mouse.button !== undefined);
      if (score > bestScore) [best, bestScore] = [binding, score];
    }
  }
  return best;
}

export class Toolbox {
  constructor(layout, { presetEditor = null, store = null, panel = null, sync = null } = {}) {
    this.layout = layout;
    this.linking = sync; // linked viewports (sync.js)
    this.store = store; // measurements (measurementStore.js)
    this.panel = panel; // the measurements panel
    this.presetEditor = presetEditor;
    this.toolbar = document.getElementById("toolbar");
    this.presetSelect = document.getElementById("preset");
    this.layoutSelect = document.getElementById("layout");
    this.cineButton = document.querySelector('[data-action="cine"]');
    this.fpsInput = document.getElementById("fps");
    this.help = document.getElementById("help-panel");
    this.more = document.getElementById("more-tools");
    this.moreButton = document.getElementById("more");
    const viewport = () => this.layout.viewport;
    const scroll = () => this.layout.active.scroll;
    this.actions = {
      "slice-next": () => scroll().step(1),
      "slice-previous": () => scroll().step(-1),
      "slice-next-10": () => scroll().step(10),
      "slice-previous-10": () => scroll().step(-10),
      "slice-first": () => scroll().first(),
      "slice-last": () => scroll().last(),
      cine: () => this.toggleCine(),
      "tool-windowLevel": () => this.setTool("windowLevel"),
      "tool-pan": () => this.setTool("pan"),
      "tool-zoom": () => this.setTool("zoom"),
      "tool-length": () => this.setTool("length"),
      "tool-angle": () => this.setTool("angle"),
      "tool-cobb": () => this.setTool("cobb"),
      "tool-ellipse": () => this.setTool("ellipse"),
      "tool-rectangle": () => this.setTool("rectangle"),
      "tool-polygon": () => this.setTool("polygon"),
      "tool-probe": () => this.setTool("probe"),
      "tool-arrow": () => this.setTool("arrow"),
      "finish-shape": () => this.layout.active.annotations.finishPolygon(),
      "delete-measurement": () => this.store?.selected != null && this.store.remove(this.store.selected),
      undo: () => this.store?.undo(),
      redo: () => this.store?.redo(),
      "measurements-panel": () => this.panel?.toggle(),
      invert: () => viewport().setInverted(!viewport().inverted),
      "edit-presets": () => this.presetEditor?.open(),
      reset: () => this.reset(),
      "zoom-in": () => viewport().setMagnification(viewport().magnification * 2),
      "zoom-out": () => viewport().setMagnification(viewport().magnification / 2),
      "zoom-fit": () => viewport().setMagnification(1),
      "zoom-actual": () => viewport().actualSize(),
      "rotate-left": () => viewport().rotate(-1),
      "rotate-right": () => viewport().rotate(1),
      "flip-horizontal": () => viewport().flipHorizontal(),
      "flip-vertical": () => viewport().flipVertical(),
      overlays: () => this.toggleOverlays(),
      "series-panel": () => this.toggleSeriesPanel(),
      "next-viewport": () => {
        const cells = this.layout.cells;
        this.layout.activate(cells[(cells.indexOf(this.layout.active) + 1) % cells.length]);
      },
      "sync-scroll": () => this.linking?.toggle("scroll"),
      "sync-window": () => this.linking?.toggle("window"),
      "sync-zoom": () => this.linking?.toggle("zoom"),
      link: () => this.linking?.toggleLock(),
      help: () => this.toggleHelp(),
      close: () => this.closeMenus(),
      more: () => this.toggleMore(),
    };
    this.wireToolbar();
    this.renderHelp();
    this.help.querySelector("[data-close]").addEventListener("click", () => this.help.close());
    document.addEventListener("keydown", (event) => this.key(event));
  }

  wireToolbar() {
    for (const button of this.toolbar.querySelectorAll("[data-action]")) {
      const binding = BINDINGS.find((b) => b.action === button.dataset.action);
      if (binding) {
        const keys = binding.keys.map(keyName).join(" or ");
        button.title = `${binding.label} (${keys})`;
        button.setAttribute("aria-keyshortcuts", binding.keys.map((k) => (k === " " ? "Space" : k)).join(" "));
        if (!button.getAttribute("aria-label") && !button.textContent.trim().match(/^[A-Za-z]/)) {
          button.setAttribute("aria-label", binding.label);
        }
      }
      button.addEventListener("click", (event) => {
        this.actions[button.dataset.action]?.();
        if (this.more.contains(button) && button.dataset.action !== "more") this.closeMore();
        // A pointer click leaves the keyboard to the image (Space resets, not re-clicks);
        // a keyboard user's focus stays on the button.
        if (event.detail > 0 && button.dataset.action !== "more") this.layout.active?.element.focus({ preventScroll: true });
      });
    }
    this.layoutSelect.addEventListener("change", () => this.layout.set(this.layoutSelect.value));
    this.fpsInput.addEventListener("change", () => {
      const viewport = this.layout.viewport;
      if (viewport.cine) viewport.play(this.fps());
    });
    this.presetSelect.addEventListener("change", () => {
      const preset = this.presets[Number(this.presetSelect.value)];
      if (preset) this.layout.viewport.setWindow(preset);
    });
    document.addEventListener("pointerdown", (event) => {
      if (!this.more.classList.contains("open")) return;
      if (!this.more.contains(event.target) && event.target !== this.moreButton) this.closeMore();
    });
  }

  key(event) {
    if (event.defaultPrevented) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) {
      if (event.key !== "Escape") return;
    }
    if (document.querySelector("dialog[open]")) return; // the dialog has the keyboard
    if (target instanceof HTMLButtonElement && (event.key === " " || event.key === "Enter")) return;
    const binding = bindingFor(event);
    if (!binding || !this.layout.active) return;
    event.preventDefault();
    this.actions[binding.action]();
  }

  fps() {
    return Math.min(Math.max(Number(this.fpsInput.value) || 10, 1), 60);
  }

  toggleCine() {
    const viewport = this.layout.viewport;
    if (viewport.cine) viewport.stop();
    else viewport.play(this.fps());
    this.sync();
  }

  setTool(tool) {
    for (const cell of this.layout.cells) cell.annotations?.cancel();
    this.layout.tool = tool;
    this.sync();
  }

  reset() {
    this.layout.viewport?.reset();
    this.sync();
  }

  toggleOverlays() {
    this.layout.grid.classList.toggle("no-overlays");
  }

  toggleSeriesPanel() {
    document.body.classList.toggle("series-collapsed");
    document.body.classList.add("series-toggled");
  }

  toggleHelp() {
    if (this.help.open) this.help.close();
    else this.help.showModal();
  }

  toggleMore() {
    const open = this.more.classList.toggle("open");
    this.moreButton.setAttribute("aria-expanded", String(open));
  }

  closeMore() {
    this.more.classList.remove("open");
    this.moreButton.setAttribute("aria-expanded", "false");
  }

  closeMenus() {
    this.closeMore();
    for (const cell of this.layout.cells) cell.annotations?.cancel();
    if (this.help.open) this.help.close();
  }

  // The toolbar follows the active viewport: its presets, cine state and frame rate,
  // and the drag tool.
  sync() {
    const viewport = this.layout.viewport;
    const instance = viewport?.current?.instance;
    this.presets = instance ? presetsFor(viewport.series.modality, instance) : [];
    this.presetSelect.replaceChildren(new Option("—", ""));
    this.presets.forEach((preset, index) => {
      const option = new Option(`${preset.name} (${preset.center}/${preset.width})`, String(index));
      this.presetSelect.append(option);
    });
    this.syncPreset();
    this.cineButton.textContent = viewport?.cine ? "Stop" : "Play";
    this.cineButton.setAttribute("aria-pressed", String(Boolean(viewport?.cine)));
    if (viewport && !viewport.cine) this.fpsInput.value = String(viewport.defaultFrameRate());
    this.layoutSelect.value = this.layout.value;
    for (const button of this.toolbar.querySelectorAll("[data-action^='tool-']")) {
      button.setAttribute("aria-pressed", String(button.dataset.action === `tool-${this.layout.tool}`));
    }
    this.syncLinks();
  }

  // The link toggles follow sync.js: Scroll, W/L, Zoom and the lock, pressed or not.
  syncLinks() {
    const sync = this.linking;
    if (!sync) return;
    for (const kind of ["scroll", "window", "zoom"]) {
      this.toolbar.querySelector(`[data-action="sync-${kind}"]`)?.setAttribute("aria-pressed", String(sync.enabled[kind]));
    }
    this.toolbar.querySelector('[data-action="link"]')?.setAttribute("aria-pressed", String(sync.locked));
  }

  // The preset menu names the active viewport's window when it is a preset, else "—".
  syncPreset() {
    const chosen = this.layout.viewport?.window;
    const match = chosen ? (this.presets || []).findIndex((p) => p.center === chosen.center && p.width === chosen.width) : -1;
    const value = match >= 0 ? String(match) : "";
    if (this.presetSelect.value !== value) this.presetSelect.value = value;
  }

  renderHelp() {
    const body = this.help.querySelector("tbody");
    body.replaceChildren();
    let section = null;
    for (const binding of BINDINGS) {
      if (binding.section !== section) {
        section = binding.section;
        const row = body.insertRow();
        const head = document.createElement("th");
        head.colSpan = 2;
        head.scope = "colgroup";
        head.textContent = section;
        row.append(head);
      }
      const row = body.insertRow();
      row.className = binding.kind;
      const keys = row.insertCell();
      const names = binding.kind === "key" ? binding.keys.map((k) => chordName(binding, k)) : gestureNames(binding);
      for (const [index, name] of names.entries()) {
        if (index) keys.append(" or ");
        const element = document.createElement(binding.kind === "key" ? "kbd" : "span");
        element.textContent = name;
        keys.append(element);
      }
      row.insertCell().textContent = binding.label;
    }
  }
}
