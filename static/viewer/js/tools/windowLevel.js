// Window/level by dragging: horizontal changes the width, vertical the centre. While the
// pointer moves, the viewport asks for a cheap JPEG; when it stops, the exact PNG.

export class WindowLevelTool {
  constructor(viewport) {
    this.viewport = viewport;
    this.start = null;
  }

  sensitivity() {
    const w = this.viewport.window;
    return Math.max((w ? w.width : 256) / 256, 0.1);
  }

  pointerDown(event) {
    const window = this.viewport.window || this.viewport.guessWindow();
    this.start = { x: event.clientX, y: event.clientY, center: window.center, width: window.width };
  }

  pointerMove(event) {
    if (!this.start) return;
    const k = this.sensitivity();
    const width = Math.max(1, this.start.width + (event.clientX - this.start.x) * k);
    const center = this.start.center + (event.clientY - this.start.y) * k;
    this.viewport.setWindow({ center, width }, { interactive: true });
  }

  pointerUp() {
    if (!this.start) return;
    this.start = null;
    this.viewport.setWindow(this.viewport.window, { interactive: false });
  }
}
