// The measurements panel: the study's measurements (newest first) with the server's
// values and units, label and image; clicking one selects it and shows its image and
// frame in the active viewport. Labels are text (textContent), never markup.

import { KIND_NAMES, resultLines } from "./measurementFormat.js";

export class MeasurementsPanel {
  constructor(element, store, layout) {
    this.element = element;
    this.store = store;
    this.layout = layout;
    this.list = element.querySelector(".measurement-list");
    this.status = element.querySelector(".measurement-status");
    this.opened = false;
    element.querySelector("[data-measure=undo]").addEventListener("click", () => store.undo());
    element.querySelector("[data-measure=redo]").addEventListener("click", () => store.redo());
    store.subscribe(() => this.render());
    this.render();
  }

  toggle(open = !document.body.classList.contains("measurements-open")) {
    document.body.classList.toggle("measurements-open", open);
    this.opened = true;
  }

  // Where a measurement's image sits: the series and the stack index in it.
  imageOf(m) {
    for (const series of this.layout.hangable) {
      const index = series.instances.findIndex((i) => i.sop_instance_uid === m.sop_instance_uid);
      if (index >= 0) return { series, instance: series.instances[index] };
    }
    return null;
  }

  async jump(m) {
    this.store.select(m.id);
    const found = this.imageOf(m);
    const cell = this.layout.active;
    if (!found || !cell) return;
    if (cell.viewport.series !== found.series) {
      this.layout.hang(cell, found.series);
    }
    const viewport = cell.viewport;
    const index = viewport.stack.findIndex(
      (e) => e.instance.sop_instance_uid === m.sop_instance_uid && e.frame === (m.frame ?? 1),
    );
    if (index >= 0) await viewport.setSlice(index);
  }

  render() {
    const { items, selected } = this.store;
    if (items.length && !this.opened) this.toggle(true);
    this.status.textContent = this.store.status;
    this.element.querySelector("[data-measure=undo]").disabled = !this.store.undoStack.length;
    this.element.querySelector("[data-measure=redo]").disabled = !this.store.redoStack.length;
    this.list.replaceChildren(
      ...items.map((m) => {
        const item = document.createElement("li");
        item.dataset.id = String(m.id);
        item.dataset.kind = m.kind;
        item.classList.toggle("selected", m.id === selected);
        const button = document.createElement("button");
        button.type = "button";
        button.className = "measurement";
        const title = document.createElement("span");
        title.className = "kind";
        title.textContent = KIND_NAMES[m.kind] ?? m.kind;
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = m.label || "";
        const values = document.createElement("span");
        values.className = "values";
        values.textContent = resultLines(m).join("\n");
        const where = document.createElement("span");
        where.className = "where";
        const found = this.imageOf(m);
        const series = found ? `${found.series.modality} ${found.series.series_number ?? ""}`.trim() : "";
        const number = found?.instance.instance_number;
        where.textContent = [series, number !== undefined && number !== null ? `im ${number}` : "", `frame ${m.frame ?? 1}`]
          .filter(Boolean)
          .join(" · ");
        button.append(title, label, values, where);
        button.addEventListener("click", () => this.jump(m));
        const rename = document.createElement("button");
        rename.type = "button";
        rename.className = "rename";
        rename.textContent = "Label…";
        rename.addEventListener("click", () => {
          const text = window.prompt("Label", m.label || "");
          if (text !== null) this.store.update(m.id, { label: text });
        });
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "delete";
        remove.textContent = "Delete";
        remove.addEventListener("click", () => this.store.remove(m.id));
        item.append(button, rename, remove);
        return item;
      }),
    );
  }
}
