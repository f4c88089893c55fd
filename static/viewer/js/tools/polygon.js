// Polygon or freehand ROI: click the vertices and double-click (or Enter) to close, or
// drag from the first point to trace a freehand outline, sampled every 3 CSS pixels.

import { PointsTool } from "./pointsTool.js";

export class PolygonTool extends PointsTool {
  constructor() {
    super({ kind: "polygon", count: null, freehand: true, label: "Polygon / freehand ROI" });
  }
}
