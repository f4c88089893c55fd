// Stack scroll: wheel, arrow keys, Page Up/Down, Home/End and the scrollbar.

export class ScrollTool {
  constructor(viewport, scrollbar) {
    this.viewport = viewport;
    this.scrollbar = scrollbar;
    scrollbar.addEventListener("input", () => viewport.setSlice(Number(scrollbar.value) - 1));
  }

  wheel(event) {
    event.preventDefault();
    this.viewport.setSlice(this.viewport.slice + Math.sign(event.deltaY));
  }

  key(event) {
    const steps = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
    if (event.key in steps) this.viewport.setSlice(this.viewport.slice + steps[event.key]);
    else if (event.key === "Home") this.viewport.setSlice(0);
    else if (event.key === "End") this.viewport.setSlice(this.viewport.count - 1);
    else return false;
    event.preventDefault();
    return true;
  }
}
