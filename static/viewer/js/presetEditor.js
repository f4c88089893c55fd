// The CT preset table as a dialog: rows of name / center / width, editable, added and
// removed, checked as typed (the problem shown next to its field), saved in this
// browser's localStorage, or reset to the defaults.

import { DEFAULT_CT_PRESETS, loadCtPresets, presetProblems, saveCtPresets } from "./presets.js";

export class PresetEditor {
  constructor(onsave) {
    this.onsave = onsave;
    this.dialog = document.getElementById("preset-editor");
    this.body = this.dialog.querySelector("tbody");
    this.formError = this.dialog.querySelector(".form-error");
    document.getElementById("preset-add").addEventListener("click", () => {
      this.addRow({ name: "", center: "", width: "" }).querySelector("input").focus();
    });
    document.getElementById("preset-defaults").addEventListener("click", () => this.fill(DEFAULT_CT_PRESETS));
    document.getElementById("preset-save").addEventListener("click", () => this.save());
    for (const button of this.dialog.querySelectorAll("[data-close]")) {
      button.addEventListener("click", () => this.dialog.close());
    }
  }

  open() {
    this.fill(loadCtPresets());
    this.dialog.showModal();
  }

  fill(presets) {
    this.body.replaceChildren();
    this.formError.textContent = "";
    for (const preset of presets) this.addRow(preset);
  }

  addRow(preset) {
    const row = this.body.insertRow();
    const fields = [
      ["name", "Name", "text"],
      ["center", "Center in HU", "number"],
      ["width", "Width in HU", "number"],
    ];
    for (const [field, label, kind] of fields) {
      const cell = row.insertCell();
      const input = document.createElement("input");
      input.name = field;
      input.value = String(preset[field]);
      input.setAttribute("aria-label", label);
      input.autocomplete = "off";
      if (kind === "number") {
        input.inputMode = "decimal";
        input.className = "number";
      }
      const error = document.createElement("span");
      error.className = "field-error";
      error.id = `preset-error-${(this.counter = (this.counter || 0) + 1)}`;
      input.setAttribute("aria-describedby", error.id);
      input.addEventListener("change", () => this.check());
      cell.append(input, error);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${preset.name || "this row"}`);
    remove.addEventListener("click", () => {
      row.remove();
      this.check();
    });
    row.insertCell().append(remove);
    return row;
  }

  rows() {
    return [...this.body.rows].map((row) => {
      const value = (name) => row.querySelector(`input[name=${name}]`);
      return { row, name: value("name").value, center: value("center").value, width: value("width").value };
    });
  }

  // Marks every field at fault; returns whether the table is valid.
  check() {
    const rows = this.rows();
    let valid = true;
    rows.forEach((entry, index) => {
      const problems = presetProblems(entry, rows.slice(0, index));
      for (const field of ["name", "center", "width"]) {
        const input = entry.row.querySelector(`input[name=${field}]`);
        const error = entry.row.querySelector(`#${CSS.escape(input.getAttribute("aria-describedby"))}`);
        error.textContent = problems[field] || "";
        input.setAttribute("aria-invalid", String(Boolean(problems[field])));
        if (problems[field]) valid = false;
      }
    });
    this.formError.textContent = rows.length ? "" : "Keep at least one preset, or reset to the defaults.";
    return valid && rows.length > 0;
  }

  save() {
    if (!this.check()) {
      this.dialog.querySelector("input[aria-invalid=true]")?.focus();
      return;
    }
    const presets = this.rows().map((r) => ({ name: r.name.trim(), center: Number(r.center), width: Number(r.width) }));
    try {
      saveCtPresets(presets);
    } catch (error) {
      this.formError.textContent = `Not saved: ${error.message || error}`;
      return;
    }
    this.dialog.close();
    this.onsave(presets);
  }
}
