// Arrow from its tail to its head (drag), with a text label asked for when drawn.

import { PointsTool } from "./pointsTool.js";

export class ArrowTool extends PointsTool {
  constructor() {
    super({ kind: "arrow", count: 2, needsLabel: true, label: "Arrow with a label (drag tail to head)" });
  }
}
