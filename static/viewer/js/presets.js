// Window presets: the header's own ((0028,1050) Window Center, (0028,1051) Window Width
// and (0028,1055) Window Center & Width Explanation, PS3.3 C.11.2) and, for CT, a
// modality table in Hounsfield units that the user can edit. The edited table is kept
// in this browser's localStorage (per browser and origin, not per user or server).

export const DEFAULT_CT_PRESETS = Object.freeze([
  { name: "Brain", center: 40, width: 80 },
  { name: "Soft tissue", center: 40, width: 400 },
  { name: "Lung", center: -600, width: 1500 },
  { name: "Bone", center: 400, width: 1800 },
  { name: "Abdomen", center: 60, width: 400 },
  { name: "Liver", center: 90, width: 150 },
]);

export const STORAGE_KEY = "loupe.ct-presets.v1";
const NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)$/;

// Why a row {name, center, width} (strings as typed, or numbers) is not a preset:
// { field: message } for each field at fault; {} when it is one.
export function presetProblems(row, others = []) {
  const problems = {};
  const name = String(row.name ?? "").trim();
  if (!name) problems.name = "a name is needed";
  else if (name.length > 40) problems.name = "at most 40 characters";
  else if (others.some((other) => String(other.name ?? "").trim().toLowerCase() === name.toLowerCase())) {
    problems.name = "another row has this name";
  }
  for (const field of ["center", "width"]) {
    const text = String(row[field] ?? "").trim();
    if (!text) problems[field] = "a number is needed";
    else if (!NUMBER.test(text) || !Number.isFinite(Number(text))) problems[field] = `"${text.slice(0, 12)}" is not a number`;
  }
  if (!problems.width && Number(String(row.width).trim()) <= 0) problems.width = "must be greater than 0";
  return problems;
}

// The rows as presets, or null when any row has a problem.
export function parsePresets(rows) {
  const presets = [];
  for (const [index, row] of rows.entries()) {
    if (Object.keys(presetProblems(row, rows.slice(0, index))).length) return null;
    presets.push({ name: String(row.name).trim(), center: Number(String(row.center).trim()), width: Number(String(row.width).trim()) });
  }
  return presets;
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled in this browser
  }
}

// The CT table: the one saved in this browser if it is valid, else the defaults.
export function loadCtPresets() {
  try {
    const saved = JSON.parse(storage()?.getItem(STORAGE_KEY) ?? "null");
    const parsed = Array.isArray(saved) && saved.length ? parsePresets(saved) : null;
    if (parsed) return parsed;
  } catch {
    // unreadable: fall back to the defaults
  }
  return DEFAULT_CT_PRESETS.map((preset) => ({ ...preset }));
}

// Throws when this browser refuses to store (storage off, quota, private mode).
export function saveCtPresets(presets) {
  const store = storage();
  if (!store) throw new Error("this browser does not allow local storage");
  store.setItem(STORAGE_KEY, JSON.stringify(presets));
}

export function presetsFor(modality, instance) {
  const header = (instance.presets || [])
    .filter((p) => p.kind === "window")
    .map((p, i) => ({ name: p.explanation || `Header ${i + 1}`, center: p.center, width: p.width, header: true }));
  return modality === "CT" ? [...header, ...loadCtPresets()] : header;
}
