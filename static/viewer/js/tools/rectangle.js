// Rectangle ROI (drag corner to corner): the server measures it (POST /api/measurements, kind "rectangle").

import { PointsTool } from "./pointsTool.js";

export class RectangleTool extends PointsTool {
  constructor() {
    super({ kind: "rectangle", count: 2, label: "Rectangle ROI (drag corner to corner)" });
  }
}
