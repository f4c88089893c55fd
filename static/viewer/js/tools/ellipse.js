// Ellipse ROI (drag corner to corner): the server measures it (POST /api/measurements, kind "ellipse").

import { PointsTool } from "./pointsTool.js";

export class EllipseTool extends PointsTool {
  constructor() {
    super({ kind: "ellipse", count: 2, label: "Ellipse ROI (drag corner to corner)" });
  }
}
