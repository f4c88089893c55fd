// Angles: three points (arm, vertex, arm: drag one arm to the vertex, click the other
// arm's end) or, as the Cobb angle, two lines of two points each (drag each line).

import { PointsTool } from "./pointsTool.js";

export class AngleTool extends PointsTool {
  constructor() {
    super({ kind: "angle", count: 3, label: "Angle (drag an arm to the vertex, click the other arm)" });
  }
}

export class CobbAngleTool extends PointsTool {
  constructor() {
    super({ kind: "angle", count: 4, label: "Cobb angle (drag one line, then the other)" });
  }
}
