// Share links in the viewer (issue 15; the server side is viewer/services/sharing.py):
// * the toolbar's Share button (for those who may share, never in a share session): a
//   dialog (who may open it, expiry, de-identified, live) that makes a link of the
//   studies shown with the current view (POST /api/shares) and shows its URL, once, with
//   a Copy button; a live link makes this page its presenter, as /viewer/<uid>/?present=<id>
//   does (live.js);
// * a share session (the #share-session element's data-share-id, data-share-live,
//   data-share-view): the link's opening view applied (sharedView.js), a live link
//   followed, and when the link ends (expired or revoked: any request answering 410, or
//   the live stream's "gone") an alert saying why in place of broken images.

import { SHARE_GONE_EVENT, jsonRequest } from "./api.js";
import { LiveSession } from "./live.js";
import { applyView, captureView } from "./sharedView.js";

// The studies a link made now holds: those the viewports show (in their order), else
// the page's; at most four (viewer.services.sharing.MAX_STUDIES).
export function studiesShown(layout) {
  const shown = layout.cells.map((cell) => cell.viewport.study?.study_instance_uid).filter(Boolean);
  const page = (layout.grid.dataset.studies || "").split(" ").filter(Boolean);
  return [...new Set(shown.length ? shown : page)].slice(0, 4);
}

function expiresText(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? iso : when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export class ShareDialog {
  constructor(viewer, { button, dialog, onLive = () => {} }) {
    this.viewer = viewer;
    this.dialog = dialog;
    this.onLive = onLive;
    this.form = dialog.querySelector("form");
    this.error = dialog.querySelector(".form-error");
    this.summary = dialog.querySelector("[data-share=studies]");
    this.result = dialog.querySelector("[data-share=result]");
    this.urlInput = dialog.querySelector("[data-share=url]");
    this.copyButton = dialog.querySelector("[data-share=copy]");
    this.copied = dialog.querySelector("[data-share=copied]");
    this.expires = dialog.querySelector("[data-share=expires]");
    this.createButton = dialog.querySelector("[data-share=create]");
    button.addEventListener("click", () => this.open());
    for (const close of dialog.querySelectorAll("[data-close]")) close.addEventListener("click", () => dialog.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.copyButton.addEventListener("click", () => this.copy());
  }

  open() {
    this.studies = studiesShown(this.viewer.layout);
    const count = this.studies.length;
    this.summary.textContent = `${count} ${count === 1 ? "study" : "studies"}, as shown now (layout, series, image, window, zoom).`;
    this.error.textContent = "";
    this.result.hidden = true;
    this.form.hidden = false;
    this.createButton.disabled = !count;
    this.dialog.showModal();
  }

  async create() {
    const data = new FormData(this.form);
    const view = captureView(this.viewer);
    const body = {
      study_instance_uids: this.studies,
      view: { layout: view.layout, viewports: view.viewports },
      audience: data.get("audience"),
      expires_in: Number(data.get("expires_in")),
      deidentify: data.get("deidentify") === "on",
      live: data.get("live") === "on",
    };
    this.createButton.disabled = true;
    this.error.textContent = "";
    try {
      const share = await jsonRequest("POST", "/api/shares", body);
      this.show(share);
      if (share.live) this.onLive(share);
    } catch (error) {
      this.error.textContent = `No link made: ${error.message}`;
    } finally {
      this.createButton.disabled = false;
    }
  }

  show(share) {
    this.form.hidden = true;
    this.result.hidden = false;
    this.result.dataset.shareId = share.id;
    this.urlInput.value = share.url;
    this.copied.textContent = "";
    const what = [share.live ? "live" : "", share.deidentify ? "de-identified" : ""].filter(Boolean).join(", ");
    this.expires.textContent = `${what ? `${what[0].toUpperCase()}${what.slice(1)}; e` : "E"}xpires ${expiresText(share.expires_at)}.`;
    this.urlInput.focus();
    this.urlInput.select();
  }

  async copy() {
    const url = this.urlInput.value;
    try {
      await navigator.clipboard.writeText(url);
      this.copied.textContent = "Copied.";
    } catch {
      // No clipboard permission (or not a secure context): the selection, as the user would.
      this.urlInput.select();
      this.copied.textContent = document.execCommand("copy") ? "Copied." : "Select the link and copy it.";
    }
  }
}

// The link is gone: an alert over the page saying why (once).
function showGone(alert, message) {
  if (!alert || document.body.classList.contains("share-gone")) return;
  document.body.classList.add("share-gone");
  alert.querySelector("[data-share=gone-message]").textContent = message;
  alert.hidden = false;
}

function parsed(json) {
  try {
    return json ? JSON.parse(json) : null;
  } catch {
    return null;
  }
}

// In a share session, the alert for a link that ends (any request answering 410 says
// so): listened for from the page's start, before any study has loaded.
export function alertWhenShareGone() {
  if (!document.getElementById("share-session")) return;
  const alert = document.getElementById("share-gone");
  window.addEventListener(SHARE_GONE_EVENT, (event) => showGone(alert, event.detail.message));
}

// Wire sharing into the viewer (main.js calls this once the studies are hung).
export function startSharing(viewer) {
  const bar = document.getElementById("live-bar");
  const session = document.getElementById("share-session");
  if (session) {
    const alert = document.getElementById("share-gone");
    const view = parsed(session.dataset.shareView);
    const opened = view ? applyView(viewer, view).catch(() => {}) : Promise.resolve();
    if (session.dataset.shareLive === "true") {
      document.body.dataset.shareLive = "true";
      opened.then(() => {
        viewer.live = new LiveSession(viewer, session.dataset.shareId, {
          bar,
          onEnd: (message) => showGone(alert, message),
        }).start();
      });
    }
    return;
  }
  // Presenting ends with the link: the address stops saying ?present= (a reload would
  // only be told again that the link is gone).
  const ended = (id) => {
    const url = new URL(location.href);
    if (url.searchParams.get("present") !== id) return;
    url.searchParams.delete("present");
    history.replaceState(history.state, "", url);
  };
  const present = (id, studies = null) => {
    viewer.live?.stop();
    viewer.live = new LiveSession(viewer, id, { bar, presenting: true, studies, onEnd: () => ended(id) }).start();
  };
  const button = document.getElementById("share");
  const dialog = document.getElementById("share-dialog");
  if (button && dialog) {
    new ShareDialog(viewer, {
      button,
      dialog,
      onLive: (share) => {
        const url = new URL(location.href);
        url.searchParams.set("present", share.id);
        history.replaceState(history.state, "", url); // a reload keeps presenting
        present(share.id, share.study_instance_uids);
      },
    });
  }
  const presentId = new URLSearchParams(location.search).get("present");
  if (presentId) {
    // The link's studies, where this user manages it (else the server checks alone).
    jsonRequest("GET", `/api/shares/${encodeURIComponent(presentId)}`)
      .then((share) => share.study_instance_uids)
      .catch(() => null)
      .then((studies) => present(presentId, studies));
  }
}
