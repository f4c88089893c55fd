// The viewer page: load the study (and any studies to compare with it), list their
// series grouped by study and the patient's priors, hang them by the hanging protocol the
// server chooses (hanging.js; without one, as before: side by side), and link the
// viewports (sync.js). Layout handling is in layout.js, the toolbar and shortcuts in
// toolbox.js, share links and live sessions in share.js and live.js. Plain ES modules.

import { fetchHangingProtocols, fetchPriors, fetchStudy } from "./api.js";
import { HangingProtocols } from "./hanging.js";
import { Layout, SERIES_DRAG_TYPE } from "./layout.js";
import { MeasurementStore } from "./measurementStore.js";
import { MeasurementsPanel } from "./measurementsPanel.js";
import { PresetEditor } from "./presetEditor.js";
import { alertWhenShareGone, startSharing } from "./share.js";
import { ViewportSync } from "./sync.js";
import { Toolbox } from "./toolbox.js";

const grid = document.getElementById("grid");
const panel = document.getElementById("series-panel");
const template = document.getElementById("viewport-template");

// How a compared study reads next to the first one: by its date and time relative to it
// (two studies of one day are told apart by their time).
function labelStudies(studies) {
  const [primary, ...others] = studies;
  if (!others.length) return;
  primary.label = "Current";
  const when = (study) => (study.study_date ? `${study.study_date}T${study.study_time || ""}` : "");
  for (const study of others) {
    const [mine, theirs] = [when(study), when(primary)];
    if (mine && theirs && mine < theirs) study.label = "Prior";
    else if (mine && theirs && mine > theirs) study.label = "Later";
    else study.label = "Compared";
  }
}

function seriesButton(series, layout) {
  const button = document.createElement("button");
  button.type = "button";
  button.draggable = true;
  button.dataset.series = series.series_instance_uid;
  const image = document.createElement("img");
  image.alt = "";
  image.loading = "lazy";
  image.addEventListener("error", () => image.classList.add("missing")); // e.g. 422 undecodable
  image.src = series.thumbnail;
  const label = document.createElement("span");
  label.textContent = `${series.modality} ${series.series_number ?? ""} · ${series.number_of_instances} im\n${series.series_description || ""}`;
  button.append(image, label);
  // Images whose pixel data is known not to decode (the index's undecodable flag).
  const undecodable = series.instances.filter((i) => Object.keys(i.undecodable || {}).length).length;
  if (undecodable) {
    button.dataset.undecodable = String(undecodable);
    const warning = document.createElement("span");
    warning.className = "undecodable";
    warning.textContent = `${undecodable} cannot be shown`;
    warning.title = "Their pixel data does not decode; the stored objects are kept unchanged.";
    button.append(warning);
  }
  button.addEventListener("click", () => layout.hang(layout.active, series));
  button.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData(SERIES_DRAG_TYPE, series.series_instance_uid);
    event.dataTransfer.effectAllowed = "copy";
  });
  return button;
}

// The study browser: each loaded study's series, then the patient's priors that are not
// loaded (GET /api/studies/<uid>/priors), each with a button that loads it and shows it
// beside the current study; the relevant one is marked.
function listSeries(studies, layout, priors = [], compare = null) {
  panel.replaceChildren();
  const relevant = new Set(priors.filter((p) => p.relevant).map((p) => p.study_instance_uid));
  for (const study of studies) {
    const group = document.createElement("section");
    group.className = "study-group";
    group.dataset.study = study.study_instance_uid;
    if (relevant.has(study.study_instance_uid)) group.dataset.relevant = "true";
    const heading = document.createElement("h2");
    heading.textContent = [study.label, study.study_date].filter(Boolean).join(" · ") || "Study";
    heading.title = study.study_description || "";
    const description = document.createElement("p");
    description.textContent = study.study_description || "";
    group.append(heading, description);
    for (const series of study.series.filter((s) => s.hangable)) group.append(seriesButton(series, layout));
    panel.append(group);
  }
  const loaded = new Set(studies.map((s) => s.study_instance_uid));
  const others = priors.filter((p) => !loaded.has(p.study_instance_uid));
  if (!others.length) return;
  const group = document.createElement("section");
  group.className = "study-group priors";
  const heading = document.createElement("h2");
  heading.textContent = "Priors";
  group.append(heading);
  for (const prior of others) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "prior";
    button.dataset.prior = prior.study_instance_uid;
    if (prior.relevant) button.dataset.relevant = "true";
    const when = [prior.study_date, prior.study_time?.slice(0, 4).replace(/^(\d\d)(\d\d)$/, "$1:$2")].filter(Boolean).join(" ");
    const what = [(prior.modalities || []).join("/"), prior.body_part, prior.description].filter(Boolean).join(" · ");
    button.textContent = `${when}\n${what}\n${prior.number_of_instances ?? "?"} im`;
    if (prior.relevant) {
      const mark = document.createElement("span");
      mark.className = "relevant";
      mark.textContent = "relevant";
      button.prepend(mark);
    }
    if (prior.linked) button.title = `Linked identity: ${prior.patient?.patient_id ?? ""}`;
    if (prior.remote) {
      // Held by an upstream archive only: opening it fetches it (its progress page), then
      // shows it in the viewer.
      button.dataset.remote = prior.remote;
      const mark = document.createElement("span");
      mark.className = "badge remote";
      mark.textContent = "remote";
      button.prepend(mark);
      button.title = `On the archive '${prior.remote}': opening it fetches it`;
      button.setAttribute("aria-label", `Fetch and open the study of ${when} from the archive ${prior.remote}: ${what}`);
      button.addEventListener("click", () => location.assign(prior.open_url));
      group.append(button);
      continue;
    }
    button.setAttribute("aria-label", `Compare with the study of ${when}: ${what}`);
    button.addEventListener("click", () => compare?.(prior.study_instance_uid));
    group.append(button);
  }
  panel.append(group);
}

function markSeries(layout) {
  const shown = layout.viewport?.series?.series_instance_uid;
  panel.querySelectorAll("button[data-series]").forEach((b) => b.classList.toggle("active", b.dataset.series === shown));
}

// In a comparison, viewport i shows study i's series most like the first study's first
// series (same modality and description, else same modality, else its first).
function comparisonHanging(studies) {
  const reference = studies[0].series.find((s) => s.hangable);
  return studies.map((study) => {
    const candidates = study.series.filter((s) => s.hangable);
    if (!reference) return candidates[0];
    return (
      candidates.find((s) => s.modality === reference.modality && s.series_description === reference.series_description) ||
      candidates.find((s) => s.modality === reference.modality) ||
      candidates[0]
    );
  });
}

function prepare(study) {
  for (const series of study.series) {
    series.study = study;
    series.hangable = series.instances.some((i) => i.number_of_frames > 0);
  }
}

async function start() {
  alertWhenShareGone();
  const uids = grid.dataset.studies.split(" ").filter(Boolean);
  const [currentUid, ...compareUids] = uids;
  // Asked for at once, beside the studies; either may be missing (404): then the viewer
  // hangs as it did before protocols.
  const protocolsAnswer = fetchHangingProtocols(currentUid, compareUids).catch(() => null);
  const priorsAnswer = fetchPriors(currentUid).catch(() => null);
  let studies;
  try {
    studies = await Promise.all(uids.map((uid) => fetchStudy(uid)));
  } catch (error) {
    grid.textContent = String(error.message || error);
    return;
  }
  studies.forEach(prepare);
  labelStudies(studies);
  const hangable = studies.flatMap((study) => study.series.filter((s) => s.hangable));
  const store = new MeasurementStore();
  const layout = new Layout(grid, template, hangable, store);
  const sync = new ViewportSync(layout);
  const measurementsPanel = new MeasurementsPanel(document.getElementById("measurements-panel"), store, layout);
  const toolbox = new Toolbox(layout, {
    presetEditor: new PresetEditor(() => toolbox.sync()),
    store,
    panel: measurementsPanel,
    sync,
  });
  // Who hears of every change of the view (a viewport's series, image, window or zoom,
  // the layout, the active viewport, the selected measurement): a live session's
  // presenter (live.js). ``watch`` returns the function that stops it.
  const watchers = new Set();
  const viewChanged = () => watchers.forEach((watcher) => watcher());
  const watch = (watcher) => {
    watchers.add(watcher);
    return () => watchers.delete(watcher);
  };
  store.subscribe(viewChanged);
  sync.onchange = () => toolbox.syncLinks();
  layout.onactivate = () => {
    toolbox.sync();
    markSeries(layout);
    viewChanged();
  };
  layout.onhang = (cell) => {
    if (cell === layout.active) toolbox.sync();
    markSeries(layout);
    viewChanged();
  };
  layout.onviewchange = (cell) => {
    if (cell === layout.active) toolbox.syncPreset();
    viewChanged();
  };
  layout.onlayout = viewChanged;
  let priors = [];
  const relist = () => {
    listSeries(studies, layout, priors, compareWith);
    markSeries(layout);
  };
  // A study not loaded yet (a prior, or one a protocol names): fetched once, its series
  // added to the study browser and to what the layout can hang.
  const loading = new Map();
  const ensureStudy = (uid) => {
    const known = studies.find((s) => s.study_instance_uid === uid);
    if (known) return Promise.resolve(known);
    if (!loading.has(uid)) {
      loading.set(
        uid,
        fetchStudy(uid).then((study) => {
          prepare(study);
          studies.push(study);
          labelStudies(studies);
          layout.hangable.push(...study.series.filter((s) => s.hangable));
          relist();
          store.load(studies.map((s) => s.study_instance_uid));
          return study;
        }),
      );
      loading.get(uid).catch(() => loading.delete(uid));
    }
    return loading.get(uid);
  };
  const hanging = new HangingProtocols({
    layout,
    sync,
    select: document.getElementById("hanging-protocol"),
    ensureStudy,
    studies: () => studies,
  });
  // The study browser's button: the prior beside the current study (its series most like
  // the current one's), the viewports linked as the toggles say.
  async function compareWith(uid) {
    let study;
    try {
      study = await ensureStudy(uid);
    } catch (error) {
      layout.viewport?.showMessage(String(error.message || error));
      return;
    }
    const [, match] = comparisonHanging([studies[0], study]);
    if (layout.cells.length < 2) layout.set("1x2", () => match);
    const cell = layout.cells.find((c) => c.viewport.study === study) || layout.cells[1];
    layout.hang(cell, match);
    layout.activate(cell);
    sync.configure(sync.enabled, layout.cells[0].viewport);
  }
  relist();
  const answer = await protocolsAnswer;
  const chosen = answer ? hanging.list(answer) : null;
  let hung = false;
  if (chosen) {
    try {
      await hanging.apply(chosen);
      hung = true;
    } catch {
      hung = false;
    }
  }
  if (!hung) {
    if (studies.length > 1) {
      const matched = comparisonHanging(studies);
      layout.set(studies.length === 2 ? "1x2" : "2x2", (index) => matched[index]);
    } else {
      layout.set("1x1");
    }
  }
  if (!hangable.length) layout.viewport.showMessage("This study has no images to show.");
  if (window.matchMedia("(max-width: 960px)").matches) document.body.classList.add("series-collapsed");
  markSeries(layout);
  store.load(studies.map((s) => s.study_instance_uid));
  window.loupeMeasurements = store; // for the browser tests and the console
  window.loupeViewer = { layout, sync, hanging }; // for the browser tests and the console
  startSharing({ layout, sync, store, ensureStudy, watch });
  priors = (await priorsAnswer) || [];
  if (!Array.isArray(priors)) priors = [];
  relist();
  // Then those of the upstream archives (slower: each archive is asked), added when they come.
  if (grid.dataset.upstream === "true") {
    const withRemote = await fetchPriors(currentUid, { remote: true }).catch(() => null);
    if (Array.isArray(withRemote)) {
      priors = withRemote;
      relist();
    }
  }
}

start();
