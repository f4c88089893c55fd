// The measurement layer of one viewport: draws the saved measurements of the frame shown
// and the one being drawn, in image coordinates through the viewport's display matrix
// (so they follow zoom, pan, rotation and flip), with the server's values beside them;
// and, as a drag tool (layout.js), draws new measurements, selects, moves and edits
// them by their handles. Geometry is in math/shapes.js, the drawing tools in tools/.

import { canvasLines } from "./measurementFormat.js";
import { pointsOf } from "./measurementStore.js";
import { clampPoint, ellipseOf, handles, hits, labelAnchor, nearest, translated, withHandle } from "./math/shapes.js";
import { apply, invert } from "./math/transform.js";
import { AngleTool, CobbAngleTool } from "./tools/angle.js";
import { ArrowTool } from "./tools/arrow.js";
import { EllipseTool } from "./tools/ellipse.js";
import { LengthTool } from "./tools/length.js";
import { PolygonTool } from "./tools/polygon.js";
import { ProbeTool } from "./tools/probe.js";
import { RectangleTool } from "./tools/rectangle.js";

// Layout tool name -> drawing tool class.
export const MEASUREMENT_TOOLS = {
  length: LengthTool,
  angle: AngleTool,
  cobb: CobbAngleTool,
  ellipse: EllipseTool,
  rectangle: RectangleTool,
  polygon: PolygonTool,
  probe: ProbeTool,
  arrow: ArrowTool,
};

const COLOR = "#ffd23f";
const SELECTED = "#4fd1ff";
const HANDLE = 4; // CSS pixels, half the handle's side
const TOLERANCE = 6; // CSS pixels within which a click hits a line or a handle

export class AnnotationLayer {
  constructor(viewport, store) {
    this.viewport = viewport;
    this.store = store;
    this.tools = Object.fromEntries(Object.entries(MEASUREMENT_TOOLS).map(([name, Tool]) => [name, new Tool()]));
    this.toolName = null; // the drawing tool chosen, or null
    this.edit = null; // { id, kind, handle (-1: the body), start, points }
    store.subscribe(() => viewport.requestDraw());
    viewport.element.addEventListener("dblclick", () => this.finishPolygon());
  }

  get tool() {
    return this.toolName ? this.tools[this.toolName] : null;
  }

  ratio() {
    return window.devicePixelRatio || 1;
  }

  // The event's point: CSS pixels in the element, and the image point under it.
  points(event) {
    const box = this.viewport.element.getBoundingClientRect();
    const screen = { x: event.clientX - box.left, y: event.clientY - box.top };
    const image = apply(invert(this.viewport.matrix), this.viewport.canvasPoint(screen.x, screen.y));
    const { columns, rows } = this.viewport.view();
    return { screen, image: clampPoint(image, columns, rows) };
  }

  toCanvas(p) {
    return apply(this.viewport.matrix, p);
  }

  shown() {
    const entry = this.viewport.current;
    if (!entry || !this.viewport.matrix) return [];
    return this.store.on(entry.instance.sop_instance_uid, entry.frame);
  }

  // The saved measurement of this frame under a pointer event, and its handle (-1: body).
  hit(event) {
    if (!this.viewport.matrix || !this.viewport.current) return null;
    const box = this.viewport.element.getBoundingClientRect();
    const p = this.viewport.canvasPoint(event.clientX - box.left, event.clientY - box.top);
    const tolerance = TOLERANCE * this.ratio();
    const shown = this.shown();
    const selectedFirst = [...shown].sort((a, b) => (b.id === this.store.selected) - (a.id === this.store.selected));
    for (const m of selectedFirst) {
      const canvasPoints = pointsOf(m).map((q) => this.toCanvas(q));
      // Handles are found in image space and mapped: a turned display swaps the box's corners.
      const handle = nearest(handles(m.kind, pointsOf(m)).map((q) => this.toCanvas(q)), p, tolerance);
      if (handle >= 0) return { measurement: m, handle };
      // With a drawing tool, only outlines catch a press: inside an ROI it draws.
      if (hits(m.kind, canvasPoints, p, tolerance, !this.tool)) return { measurement: m, handle: -1 };
    }
    return null;
  }

  // Does this primary-button press belong to the layer (a measurement under it, or a
  // drawing tool chosen)?
  wants(event) {
    return Boolean(this.tool) || Boolean(this.hit(event));
  }

  pointerDown(event) {
    if (!this.viewport.matrix) return;
    const found = this.tool?.draft ? null : this.hit(event);
    const { image, screen } = this.points(event);
    if (found) {
      const m = found.measurement;
      this.store.select(m.id);
      this.edit = { id: m.id, kind: m.kind, handle: found.handle, start: image, original: pointsOf(m), points: pointsOf(m), moved: false };
      return;
    }
    if (!this.tool) return;
    this.store.select(null);
    this.finish(this.tool.down(image, screen));
  }

  pointerMove(event) {
    const { image, screen } = this.points(event);
    if (this.edit) {
      const { columns, rows } = this.viewport.view();
      this.edit.points =
        this.edit.handle >= 0
          ? withHandle(this.edit.kind, this.edit.original, this.edit.handle, image)
          : translated(this.edit.original, image.x - this.edit.start.x, image.y - this.edit.start.y, columns, rows);
      this.edit.moved = true;
      this.viewport.requestDraw();
      return;
    }
    this.tool?.move(image, screen);
    this.viewport.requestDraw();
  }

  pointerUp() {
    if (this.edit) {
      const { id, points, moved } = this.edit;
      if (moved) {
        this.store.update(id, { points }).finally(() => {
          this.edit = null;
          this.viewport.requestDraw();
        });
      } else this.edit = null;
      return;
    }
    this.finish(this.tool?.up() ?? null);
    this.viewport.requestDraw();
  }

  finishPolygon() {
    if (this.tool && !this.tool.count) this.finish(this.tool.close());
  }

  cancel() {
    this.tool?.cancel();
    this.viewport.requestDraw();
  }

  // A finished drawing goes to the server, on the frame shown.
  finish(points) {
    if (!points) return;
    const tool = this.tool;
    const entry = this.viewport.current;
    let label = "";
    if (tool.needsLabel) {
      label = window.prompt("Label for the arrow", "") ?? "";
    }
    const draft = {
      study_instance_uid: this.viewport.study.study_instance_uid,
      series_instance_uid: this.viewport.series.series_instance_uid,
      sop_instance_uid: entry.instance.sop_instance_uid,
      frame: entry.frame,
      kind: tool.kind,
      points,
      label,
    };
    this.pending = draft;
    this.store.create(draft).finally(() => {
      this.pending = null;
      this.viewport.requestDraw();
    });
  }

  // Called by the viewport after the image is drawn (device pixels, identity transform).
  draw(context) {
    if (!this.viewport.matrix) return;
    const ratio = this.ratio();
    context.save();
    context.lineWidth = 1.5 * ratio;
    context.font = `${12 * ratio}px system-ui, sans-serif`;
    context.textBaseline = "top";
    for (const m of this.shown()) {
      const editing = this.edit?.id === m.id ? this.edit.points : null;
      const imagePoints = editing || pointsOf(m);
      const points = imagePoints.map((p) => this.toCanvas(p));
      const selected = m.id === this.store.selected;
      const lines = editing ? ["…"] : [m.label, ...canvasLines(m)].filter(Boolean);
      this.shape(context, m.kind, points, selected ? SELECTED : COLOR, lines);
      if (selected) this.handles(context, handles(m.kind, imagePoints).map((p) => this.toCanvas(p)));
    }
    const draft = this.pending ? this.pending.points : this.tool?.provisional();
    if (draft?.length) {
      const kind = this.pending ? this.pending.kind : this.tool.kind;
      this.shape(context, kind, draft.map((p) => this.toCanvas(p)), COLOR, this.pending ? ["…"] : [], true);
    }
    context.restore();
  }

  shape(context, kind, points, color, lines, provisional = false) {
    const ratio = this.ratio();
    context.strokeStyle = color;
    context.fillStyle = color;
    context.setLineDash(provisional ? [4 * ratio, 3 * ratio] : []);
    context.beginPath();
    if (kind === "ellipse" && points.length >= 2) {
      const { cx, cy, rx, ry } = ellipseOf(points);
      context.ellipse(cx, cy, rx, ry, 0, 0, 2 * Math.PI);
    } else if (kind === "rectangle" && points.length >= 2) {
      const [p, q] = points;
      context.rect(Math.min(p.x, q.x), Math.min(p.y, q.y), Math.abs(q.x - p.x), Math.abs(q.y - p.y));
    } else if (kind === "point") {
      const [p] = points;
      const r = 5 * ratio;
      context.moveTo(p.x - r, p.y);
      context.lineTo(p.x + r, p.y);
      context.moveTo(p.x, p.y - r);
      context.lineTo(p.x, p.y + r);
    } else if (kind === "angle" && points.length === 4) {
      context.moveTo(points[0].x, points[0].y);
      context.lineTo(points[1].x, points[1].y);
      context.moveTo(points[2].x, points[2].y);
      context.lineTo(points[3].x, points[3].y);
    } else {
      points.forEach((p, i) => (i ? context.lineTo(p.x, p.y) : context.moveTo(p.x, p.y)));
      if (kind === "polygon" && !provisional) context.closePath();
    }
    context.stroke();
    if (kind === "arrow" && points.length === 2) this.arrowHead(context, points[0], points[1]);
    context.setLineDash([]);
    if (lines.length && points.length) {
      const anchor = labelAnchor(points);
      const x = anchor.x + 8 * ratio;
      let y = anchor.y - 6 * ratio;
      context.shadowColor = "#000";
      context.shadowBlur = 3 * ratio;
      for (const line of lines) {
        context.fillText(line, x, y);
        y += 14 * ratio;
      }
      context.shadowBlur = 0;
    }
  }

  arrowHead(context, tail, head) {
    const ratio = this.ratio();
    const angle = Math.atan2(head.y - tail.y, head.x - tail.x);
    const size = 10 * ratio;
    context.beginPath();
    context.moveTo(head.x, head.y);
    context.lineTo(head.x - size * Math.cos(angle - 0.4), head.y - size * Math.sin(angle - 0.4));
    context.lineTo(head.x - size * Math.cos(angle + 0.4), head.y - size * Math.sin(angle + 0.4));
    context.closePath();
    context.fill();
  }

  handles(context, list) {
    const side = HANDLE * this.ratio();
    context.fillStyle = SELECTED;
    for (const h of list) context.fillRect(h.x - side, h.y - side, 2 * side, 2 * side);
  }
}
