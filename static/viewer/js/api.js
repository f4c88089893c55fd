// Talking to Loupe's server: the study's metadata and the URLs of rendered frames.

// A share link's session whose link expired or was revoked gets 410 on its next request
// (viewer.middleware.ShareSessionMiddleware), with {code: "share_gone", message} saying
// which. Every request here that meets one says so once, as the window event
// "loupe:share-gone" {detail: {message}}, so the page can tell the visitor why instead of
// showing broken images (share.js).
export const SHARE_GONE_EVENT = "loupe:share-gone";

export function reportShareGone(message) {
  window.dispatchEvent(new CustomEvent(SHARE_GONE_EVENT, { detail: { message: message || "This share link has ended" } }));
}

async function reportIfGone(response) {
  if (response.status !== 410) return;
  let message = "";
  try {
    message = (await response.clone().json()).message;
  } catch {
    message = "";
  }
  reportShareGone(message);
}

export async function fetchStudy(studyUid) {
  const response = await fetch(`/api/studies/${encodeURIComponent(studyUid)}`, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  await reportIfGone(response);
  if (!response.ok) throw new Error(`the study could not be loaded (${response.status})`);
  return response.json();
}

async function getJson(path, what) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  await reportIfGone(response);
  if (!response.ok) {
    const error = new Error(`${what} could not be loaded (${response.status})`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// The patient's earlier studies, newest first: [{ study_instance_uid, study_date,
// study_time, modalities, body_part, description, number_of_instances, relevant,
// linked, patient: { patient_id, issuer_of_patient_id } }].
// ``remote``: also the patient's earlier studies held only by an upstream archive (each
// with ``remote``, the archive's name, and ``open_url``, the page that fetches it).
export function fetchPriors(studyUid, { remote = false } = {}) {
  const query = remote ? "?remote=1" : "";
  return getJson(`/api/studies/${encodeURIComponent(studyUid)}/priors${query}`, "the prior studies");
}

// The hanging protocols for a study (and the studies compared with it): { chosen: name
// or null, protocols: [{ name, description, matches, score, layout, sync: { scroll,
// window, zoom }, viewports: [{ index, study_instance_uid, series_instance_uid, preset,
// cine, role }] }] }.
export function fetchHangingProtocols(studyUid, compare = []) {
  const query = compare.length ? `?compare=${compare.map(encodeURIComponent).join(",")}` : "";
  return getJson(`/api/studies/${encodeURIComponent(studyUid)}/hanging-protocols${query}`, "the hanging protocols");
}

// PS3.18 rendered frame URL; window as center,width (linear), format and size options.
export function renderedUrl(instance, frame, { window, accept = "image/png", quality, viewport } = {}) {
  const url = new URL(instance.urls.rendered.replace("{frame}", String(frame)), location.origin);
  if (window) url.searchParams.set("window", `${round(window.center)},${round(window.width)}`);
  url.searchParams.set("accept", accept);
  if (quality) url.searchParams.set("quality", String(quality));
  if (viewport) url.searchParams.set("viewport", `${viewport.width},${viewport.height}`);
  return url.pathname + url.search;
}

// One tile of the pyramid (level 0 = full resolution), PNG at the given window.
export function tileUrl(instance, frame, level, column, row, window) {
  const path = instance.urls.tile
    .replace("{frame}", String(frame))
    .replace("{level}", String(level))
    .replace("{column}", String(column))
    .replace("{row}", String(row));
  const query = new URLSearchParams({ accept: "image/png" });
  if (window) query.set("window", `${round(window.center)},${round(window.width)}`);
  return `${path}?${query}`;
}

// The JSON error body of a failed image request, as a sentence for the viewport.
export async function errorMessage(url) {
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    await reportIfGone(response);
    const body = await response.json();
    return body.message || `the server answered ${response.status}`;
  } catch {
    return "the image could not be loaded";
  }
}

function round(value) {
  return Math.round(value * 100) / 100;
}

// JSON requests with the session's CSRF token (measurements, share links); a failure
// throws an Error carrying the server's {code, message} and the HTTP status.
function csrfToken() {
  return document.getElementById("csrf")?.value || document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

export async function jsonRequest(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await reportIfGone(response);
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = new Error(payload?.message || `the server answered ${response.status}`);
    error.code = payload?.code;
    error.status = response.status;
    throw error;
  }
  return payload;
}

export const measurementsApi = {
  list: (studyUid) => jsonRequest("GET", `/api/studies/${encodeURIComponent(studyUid)}/measurements`),
  create: (body) => jsonRequest("POST", "/api/measurements", body),
  update: (id, patch) => jsonRequest("PATCH", `/api/measurements/${encodeURIComponent(id)}`, patch),
  remove: (id) => jsonRequest("DELETE", `/api/measurements/${encodeURIComponent(id)}`),
};
