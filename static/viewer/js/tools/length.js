// Length (drag, or click both ends): the server measures it (POST /api/measurements, kind "length").

import { PointsTool } from "./pointsTool.js";

export class LengthTool extends PointsTool {
  constructor() {
    super({ kind: "length", count: 2, label: "Length (drag, or click both ends)" });
  }
}
