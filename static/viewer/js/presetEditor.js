// The CT preset table editor (filled in with the preset storage).
export class PresetEditor {
  constructor(onsave) {
    this.onsave = onsave;
  }

  open() {}
}
