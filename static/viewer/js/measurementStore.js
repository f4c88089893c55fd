// The study's measurements as the server has them, shared by every viewport and the
// panel, with the one undo/redo history. Every value shown comes from the server's
// "result"; the browser only sends points (image coordinates, see math/transform.js).
// History entries hold a ``ref`` ({ id }) so that a measurement deleted and made again
// (undo of a delete, redo of a create) keeps its place in the history under its new id.

import { measurementsApi } from "./api.js";

const asPairs = (points) => points.map((p) => [round(p.x), round(p.y)]);
const round = (v) => Math.round(v * 1000) / 1000;

export function pointsOf(measurement) {
  return measurement.points.map(([x, y]) => ({ x, y }));
}

export class MeasurementStore {
  constructor(api = measurementsApi) {
    this.api = api;
    this.items = []; // newest first, as the server lists them
    this.selected = null; // id
    this.undoStack = [];
    this.redoStack = [];
    this.listeners = new Set();
    this.status = "";
  }

  subscribe(listener) {
    this.listeners.add(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this);
  }

  say(text) {
    this.status = text;
    this.changed();
  }

  async load(studyUids) {
    const lists = await Promise.all(
      studyUids.map((uid) => this.api.list(uid).catch((error) => (this.say(`Measurements not loaded: ${error.message}`), []))),
    );
    this.items = lists.flat().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    this.changed();
  }

  byId(id) {
    return this.items.find((m) => m.id === id);
  }

  // The measurements drawn on one frame of one instance.
  on(sopInstanceUid, frame) {
    return this.items.filter((m) => m.sop_instance_uid === sopInstanceUid && (m.frame ?? 1) === frame);
  }

  select(id) {
    this.selected = id;
    this.changed();
  }

  async run(action, history = true) {
    try {
      const entry = await action();
      if (history && entry) {
        this.undoStack.push(entry);
        this.redoStack = [];
      }
      this.status = "";
      this.changed();
      return true;
    } catch (error) {
      this.say(`Not saved: ${error.message}`);
      return false;
    }
  }

  async post(body) {
    const saved = await this.api.create(body);
    this.items.unshift(saved);
    return saved;
  }

  async drop(id) {
    await this.api.remove(id);
    this.items = this.items.filter((m) => m.id !== id);
    if (this.selected === id) this.selected = null;
  }

  async patch(id, change) {
    const body = {};
    if (change.points) body.points = asPairs(change.points);
    if (change.label !== undefined) body.label = change.label;
    const saved = await this.api.update(id, body);
    this.items = this.items.map((m) => (m.id === id ? saved : m));
    return saved;
  }

  // A new measurement: { study_instance_uid, series_instance_uid, sop_instance_uid,
  // frame, kind, points: [{x, y}], label }.
  create(draft) {
    const body = { ...draft, points: asPairs(draft.points), label: draft.label || "" };
    return this.run(async () => {
      const saved = await this.post(body);
      this.selected = saved.id;
      return { type: "create", ref: { id: saved.id }, body };
    });
  }

  update(id, change) {
    const before = this.byId(id);
    if (!before) return Promise.resolve(false);
    const previous = { points: pointsOf(before), label: before.label };
    return this.run(async () => {
      await this.patch(id, change);
      return { type: "update", ref: { id }, before: previous, after: change };
    });
  }

  remove(id) {
    const measurement = this.byId(id);
    if (!measurement) return Promise.resolve(false);
    const body = bodyOf(measurement);
    return this.run(async () => {
      await this.drop(id);
      return { type: "delete", ref: { id }, body };
    });
  }

  async undo() {
    const entry = this.undoStack.pop();
    if (!entry) return;
    const done = await this.run(() => this.apply(entry, true), false);
    (done ? this.redoStack : this.undoStack).push(entry);
  }

  async redo() {
    const entry = this.redoStack.pop();
    if (!entry) return;
    const done = await this.run(() => this.apply(entry, false), false);
    (done ? this.undoStack : this.redoStack).push(entry);
  }

  // Do (``backwards`` false) or undo an entry of the history against the server.
  async apply(entry, backwards) {
    const make = (entry.type === "create") !== backwards;
    if (entry.type === "update") {
      await this.patch(entry.ref.id, backwards ? entry.before : entry.after);
    } else if (make) {
      const saved = await this.post(entry.body);
      entry.ref.id = saved.id;
    } else {
      await this.drop(entry.ref.id);
    }
    return null;
  }
}

function bodyOf(m) {
  return {
    study_instance_uid: m.study_instance_uid,
    series_instance_uid: m.series_instance_uid,
    sop_instance_uid: m.sop_instance_uid,
    frame: m.frame ?? 1,
    kind: m.kind,
    points: m.points,
    label: m.label || "",
  };
}
