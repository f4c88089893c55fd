// Hanging protocols in the viewer: the server chooses (GET /api/studies/<uid>/
// hanging-protocols, viewer/services/hanging); this module applies one: the layout, each
// viewport's study and series, its preset and cine, and the three sync toggles, and shows
// its name in the toolbar's <select id="hanging-protocol">, where choosing another
// re-hangs. document.body.dataset.hangingProtocol names the protocol hung (a hook).

import { presetsFor } from "./presets.js";

// The window a protocol's preset name gives an image: a header preset ((0028,1055)
// Window Center & Width Explanation) or a CT preset of presets.js, by name, ignoring
// case, spaces and underscores ("SOFT_TISSUE" is "Soft tissue"), the header's first;
// undefined for "default", none, or a name this image does not have.
const presetKey = (name) => String(name).trim().toLowerCase().replace(/[\s_-]+/g, " ");

export function presetNamed(name, modality, instance) {
  if (!name || presetKey(name) === "default" || !instance) return undefined;
  const wanted = presetKey(name);
  const preset = presetsFor(modality, instance).find((p) => presetKey(p.name) === wanted);
  return preset ? { center: preset.center, width: preset.width } : undefined;
}

export class HangingProtocols {
  // ``ensureStudy(uid)`` resolves to the study's JSON, fetching it (main.js) when it is
  // not loaded yet; ``studies()`` lists those loaded, the current study first.
  constructor({ layout, sync, select, ensureStudy, studies }) {
    this.layout = layout;
    this.sync = sync;
    this.select = select;
    this.ensureStudy = ensureStudy;
    this.studies = studies;
    this.protocols = [];
    this.chosen = null;
    this.onhung = () => {};
    select?.addEventListener("change", () => {
      const protocol = this.protocols.find((p) => p.name === select.value);
      if (protocol) this.apply(protocol).catch((error) => this.failed(error));
    });
  }

  // The server's answer: the list in the select (the ones that match first), the chosen
  // one selected; returns the chosen protocol, or null.
  list(answer) {
    this.protocols = Array.isArray(answer?.protocols) ? answer.protocols : [];
    const chosen = this.protocols.find((p) => p.name === answer?.chosen) || null;
    if (this.select) {
      this.select.replaceChildren();
      const groups = [
        ["For these studies", this.protocols.filter((p) => p.matches)],
        ["Others", this.protocols.filter((p) => !p.matches)],
      ].filter(([, protocols]) => protocols.length);
      for (const [label, protocols] of groups) {
        const group = document.createElement("optgroup");
        group.label = label;
        for (const protocol of protocols) {
          const option = new Option(protocol.name, protocol.name);
          option.title = protocol.description || "";
          group.append(option);
        }
        this.select.append(group);
      }
      if (!this.protocols.length) this.select.append(new Option("—", ""));
      this.select.value = chosen ? chosen.name : "";
    }
    return chosen;
  }

  failed(error) {
    this.layout.viewport?.showMessage(`The hanging protocol could not be applied: ${error.message || error}`);
  }

  // The series a protocol's viewport shows: the one it names, else the first of its
  // study not hung yet by this protocol, else the layout's own choice (null).
  seriesFor(spec, taken) {
    const study = spec.study_instance_uid
      ? this.studies().find((s) => s.study_instance_uid === spec.study_instance_uid)
      : null;
    const candidates = (study ? study.series : []).filter((s) => s.hangable);
    if (spec.series_instance_uid) {
      const named = candidates.find((s) => s.series_instance_uid === spec.series_instance_uid);
      if (named) return named;
    }
    return candidates.find((s) => !taken.has(s)) || candidates[0] || null;
  }

  async apply(protocol) {
    const specs = [...(protocol.viewports || [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    const needed = [...new Set(specs.map((s) => s.study_instance_uid).filter(Boolean))];
    await Promise.all(needed.map((uid) => this.ensureStudy(uid).catch(() => null)));
    const taken = new Set();
    const chosen = specs.map((spec) => {
      const series = this.seriesFor(spec, taken);
      if (series) taken.add(series);
      return series;
    });
    this.sync.quietly(() => {
      const before = new Set(this.layout.cells);
      this.layout.set(protocol.layout, (index) => chosen[index] || null);
      this.layout.cells.forEach((cell, index) => {
        const series = chosen[index];
        if (series && (before.has(cell) || cell.viewport.series !== series)) this.layout.hang(cell, series);
        const spec = specs[index];
        const viewport = cell.viewport;
        if (!spec || !viewport.series) return;
        const window = presetNamed(spec.preset, viewport.series.modality, viewport.current?.instance);
        if (window) viewport.setWindow(window);
        if (spec.cine && viewport.count > 1) viewport.play(viewport.defaultFrameRate());
      });
    });
    this.sync.configure(protocol.sync || {}, this.layout.cells[0]?.viewport);
    this.layout.activate(this.layout.cells[0]);
    this.chosen = protocol;
    if (this.select) this.select.value = protocol.name;
    document.body.dataset.hangingProtocol = protocol.name;
    this.onhung(protocol);
  }
}
