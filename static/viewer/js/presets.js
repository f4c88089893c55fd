// Window presets: the header's own (with their explanations) and, for CT, the usual
// modality table in Hounsfield units. Editable as data.

export const CT_PRESETS = [
  { name: "Brain", center: 40, width: 80 },
  { name: "Soft tissue", center: 40, width: 400 },
  { name: "Lung", center: -600, width: 1500 },
  { name: "Bone", center: 400, width: 1800 },
  { name: "Abdomen", center: 60, width: 400 },
  { name: "Liver", center: 90, width: 150 },
];

export function presetsFor(modality, instance) {
  const header = (instance.presets || [])
    .filter((p) => p.kind === "window")
    .map((p, i) => ({ name: p.explanation || `Header ${i + 1}`, center: p.center, width: p.width, header: true }));
  return modality === "CT" ? [...header, ...CT_PRESETS] : header;
}
