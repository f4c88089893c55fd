// Probe (click a pixel): the server measures it (POST /api/measurements, kind "point").

import { PointsTool } from "./pointsTool.js";

export class ProbeTool extends PointsTool {
  constructor() {
    super({ kind: "point", count: 1, label: "Probe (click a pixel)" });
  }
}
