// Stack scroll: the wheel, the scrollbar, and steps for the keys of the shortcut table
// (toolbox.js): one slice, ten, first and last.

export class ScrollTool {
  constructor(viewport, scrollbar) {
    this.viewport = viewport;
    this.scrollbar = scrollbar;
    scrollbar.addEventListener("input", () => viewport.setSlice(Number(scrollbar.value) - 1));
  }

  wheel(event) {
    event.preventDefault();
    this.step(Math.sign(event.deltaY));
  }

  step(count) {
    this.viewport.setSlice(this.viewport.slice + count);
  }

  first() {
    this.viewport.setSlice(0);
  }

  last() {
    this.viewport.setSlice(this.viewport.count - 1);
  }
}
