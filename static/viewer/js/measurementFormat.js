// How a measurement's server result reads: UCUM units in words people use (HU for
// [hnsf'U], mm², px), the quantities in a fixed order. Text only; never markup.

const UNITS = { mm: "mm", mm2: "mm²", deg: "°", "[hnsf'U]": "HU", "{px}": "px", "{px2}": "px²", 1: "(stored value)" };
const ORDER = ["length", "angle", "value", "area", "mean", "std", "min", "max", "pixels"];
const NAMES = { length: "", angle: "", value: "", area: "Area", mean: "Mean", std: "SD", min: "Min", max: "Max", pixels: "Pixels" };

export function unitName(unit) {
  return UNITS[unit] ?? unit ?? "";
}

export function quantityText(name, quantity) {
  const digits = name === "pixels" ? 0 : quantity.unit === "1" || quantity.unit === "{px}" ? 0 : 1;
  const unit = name === "pixels" ? "" : unitName(quantity.unit);
  const number = Number(quantity.value).toFixed(digits);
  const spaced = unit === "°" ? `${number}°` : [number, unit].filter(Boolean).join(" ");
  return [NAMES[name] ?? name, spaced].filter(Boolean).join(" ");
}

// The result as lines: the main value first, then the statistics.
export function resultLines(measurement) {
  const result = measurement.result || {};
  return ORDER.filter((name) => result[name]).map((name) => quantityText(name, result[name]));
}

export const KIND_NAMES = {
  length: "Length",
  angle: "Angle",
  ellipse: "Ellipse",
  rectangle: "Rectangle",
  polygon: "Polygon",
  point: "Probe",
  arrow: "Arrow",
};

// The short text beside a shape on the image: the main value, or for an ROI its mean ±
// SD and area (the panel has every statistic).
export function canvasLines(measurement) {
  const result = measurement.result || {};
  if (result.mean) {
    const unit = unitName(result.mean.unit);
    const mean = Number(result.mean.value).toFixed(1);
    const sd = result.std ? ` ± ${Number(result.std.value).toFixed(1)}` : "";
    return [`${mean}${sd} ${unit}`.trim(), result.area ? quantityText("area", result.area) : ""].filter(Boolean);
  }
  return resultLines(measurement);
}
