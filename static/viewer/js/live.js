// A live share session (issue 15): the presenter's view reaches every follower through
// the link's event stream, GET /api/shares/<id>/live (server-sent events: "state" whenever
// the view, the presenter or the followers change, { version, presenter, followers,
// connected, state, you_present, signed_in_followers? }; "gone" { state, message } when
// the link expires or is revoked). The state kept in the database is the view of
// sharedView.js.
//
// Presenting: every change of the viewer (series, image, window, zoom and pan, turn,
// layout, active viewport, selected measurement) is sent (POST /api/shares/<id>/live),
// at most once per THROTTLE_MS and always the last one: a change within the interval is
// sent when it ends, and one made while a request is on its way right after it.
// Following: each state is applied as it comes. A wheel, a drag or a key on the images
// (or a tool of the toolbar) detaches the follower, who then looks around alone until the
// bar's Follow button, which applies the presenter's view at once. Who presents can change
// (hand-over to a signed-in follower): the stream's ``you_present`` says whether this page
// does, and it switches between the two.
//
// Hooks for tests and integrations: document.body.dataset.live is "presenting",
// "following", "detached" or "ended".

import { jsonRequest } from "./api.js";
import { applyView, captureView, unsharedViewports } from "./sharedView.js";
import { bindingFor } from "./toolbox.js";

export const THROTTLE_MS = 100;
const RECONNECT_MS = 3000;
// Toolbar actions and keys that change nothing the presenter shows: they do not detach.
const PASSIVE_ACTIONS = new Set(["help", "close", "overlays", "series-panel", "measurements-panel", "more", "edit-presets"]);

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

export class LiveSession {
  // ``viewer``: { layout, sync, store, ensureStudy, watch } (main.js). ``bar``: the
  // #live-bar element. ``presenting``: this page starts as the presenter (?present=, or a
  // live link just made); the stream has the last word. ``studies``: the link's study
  // UIDs where known (a presenter never sends a view of another study). ``onEnd``: told
  // the message when the link is gone.
  constructor(viewer, shareId, { bar, presenting = false, studies = null, onEnd = () => {} } = {}) {
    this.viewer = viewer;
    this.id = shareId;
    this.url = `/api/shares/${encodeURIComponent(shareId)}`;
    this.bar = bar;
    this.presenting = presenting;
    this.studies = studies;
    this.onEnd = onEnd;
    this.following = true;
    this.ended = false;
    this.message = null; // the stream's last "state" event
    this.appliedKey = null; // the presenter's state last applied, as JSON
    this.sentKey = null; // the state last published, as JSON
    this.lastSent = -Infinity;
    this.timer = null;
    this.inFlight = false;
    this.dirty = false;
    this.pending = null;
    this.applying = false;
    this.problem = "";
    this.cleanups = [];
  }

  start() {
    this.wireBar();
    this.watchInput();
    this.cleanups.push(this.viewer.watch(() => this.changed()));
    this.connect();
    if (this.presenting) this.changed();
    this.render();
    return this;
  }

  stop() {
    this.source?.close();
    clearTimeout(this.timer);
    clearTimeout(this.reconnectTimer);
    for (const cleanup of this.cleanups) cleanup();
    this.cleanups = [];
  }

  // -- the stream -----------------------------------------------------------------------

  connect() {
    this.source?.close();
    const source = new EventSource(`${this.url}/live`);
    this.source = source;
    source.addEventListener("state", (event) => this.received(JSON.parse(event.data)));
    source.addEventListener("gone", (event) => {
      const data = JSON.parse(event.data);
      this.end(data.message || "This share link has ended");
    });
    source.addEventListener("open", () => {
      if (this.problem) {
        this.problem = "";
        this.render();
      }
    });
    // A stream that ends (after its lifetime on the server, or a dropped connection) is
    // reconnected by the browser; one refused (an HTTP error) is closed: ask why.
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED && !this.ended) this.refused();
    });
  }

  async refused() {
    const controller = new AbortController();
    try {
      const response = await fetch(`${this.url}/live`, {
        headers: { Accept: "text/event-stream" },
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        const message = body.message || `the live session answered ${response.status}`;
        if (response.status === 410) return this.end(message);
        if (response.status === 404 || response.status === 403) return this.end(`This live session cannot be joined: ${message}`);
        this.problem = message;
      }
      controller.abort();
    } catch {
      this.problem = "the live session's connection was lost; trying again";
    }
    this.render();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.ended || this.connect(), RECONNECT_MS);
  }

  received(message) {
    if (this.ended) return;
    this.message = message;
    const presenting = Boolean(message.you_present);
    if (presenting !== this.presenting) {
      this.presenting = presenting;
      this.following = true;
      this.sentKey = null;
      this.appliedKey = null;
      if (presenting) this.changed(); // followers see this page's view from now on
    }
    if (!this.presenting && this.following && message.state) this.apply(message.state);
    this.render();
  }

  end(message) {
    if (this.ended) return;
    this.ended = true;
    this.endMessage = message;
    this.stop();
    this.render();
    this.onEnd(message);
  }

  // -- following --------------------------------------------------------------------------

  // Apply ``state`` unless it is the one applied last (``force``: re-following); one at a
  // time, the newest waiting one next.
  async apply(state, { force = false } = {}) {
    const key = JSON.stringify(state);
    if (!force && key === this.appliedKey && !this.pending) return;
    this.pending = { state, key };
    if (this.applying) return;
    this.applying = true;
    try {
      while (this.pending && this.following && !this.presenting && !this.ended) {
        const next = this.pending;
        this.pending = null;
        try {
          await applyView(this.viewer, next.state);
          this.appliedKey = next.key;
        } catch (error) {
          this.problem = `the presenter's view could not be shown: ${error.message || error}`;
          this.render();
        }
      }
    } finally {
      this.applying = false;
      this.pending = null;
    }
  }

  detach() {
    if (this.presenting || !this.following || this.ended) return;
    this.following = false;
    this.pending = null;
    this.render();
    jsonRequest("POST", `${this.url}/following`, { following: false }).catch(() => {});
  }

  follow() {
    if (this.presenting || this.following || this.ended) return;
    this.following = true;
    this.render();
    if (this.message?.state) this.apply(this.message.state, { force: true });
    jsonRequest("POST", `${this.url}/following`, { following: true }).catch(() => {});
  }

  // The follower's own looking around detaches it: captured before the viewer acts on it.
  watchInput() {
    const { layout } = this.viewer;
    const listen = (target, type, handler, options = true) => {
      target?.addEventListener(type, handler, options);
      this.cleanups.push(() => target?.removeEventListener(type, handler, options));
    };
    const acted = () => {
      if (this.presenting) this.changed();
      else this.detach();
    };
    listen(layout.grid, "pointerdown", acted);
    listen(layout.grid, "wheel", acted, { capture: true, passive: true });
    listen(document, "keydown", (event) => {
      const target = event.target;
      if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
      if (document.querySelector("dialog[open]")) return;
      const binding = bindingFor(event);
      if (binding && !PASSIVE_ACTIONS.has(binding.action)) acted();
    });
    const toolbar = document.getElementById("toolbar");
    listen(toolbar, "click", (event) => {
      const button = event.target.closest?.("[data-action]");
      if (button && !PASSIVE_ACTIONS.has(button.dataset.action)) acted();
    });
    listen(toolbar, "change", acted);
    listen(document.getElementById("series-panel"), "click", (event) => {
      if (event.target.closest?.("button")) acted();
    });
    // The presenter: whatever a pointer did may have changed the view (rotation, flip and
    // inversion tell no listener); publishing sends only what differs.
    listen(document, "pointerup", () => this.presenting && this.changed());
    listen(document, "keyup", () => this.presenting && this.changed());
  }

  // -- presenting -------------------------------------------------------------------------

  // Something in the viewer changed: publish soon (throttled, the last change always sent).
  changed() {
    if (!this.presenting || this.ended || this.timer) return;
    const wait = Math.max(0, THROTTLE_MS - (performance.now() - this.lastSent));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.publish();
    }, wait);
  }

  async publish() {
    if (!this.presenting || this.ended) return;
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    const state = captureView(this.viewer, this.studies);
    const key = JSON.stringify(state);
    if (key === this.sentKey) return;
    this.inFlight = true;
    this.lastSent = performance.now();
    const unshared = this.studies ? unsharedViewports(state) : 0;
    try {
      await jsonRequest("POST", `${this.url}/live`, { state });
      this.sentKey = key;
      this.problem = unshared ? `${plural(unshared, "viewport shows", "viewports show")} a study outside the link: not sent` : "";
    } catch (error) {
      if (error.status === 410) this.end(error.message);
      else if (error.code === "not_presenter") this.presenting = false;
      else this.problem = `not sent: ${error.message}`;
    } finally {
      this.inFlight = false;
      this.render();
      if (this.dirty) {
        this.dirty = false;
        this.changed();
      }
    }
  }

  async handOver(visitorId) {
    try {
      const message = await jsonRequest("POST", `${this.url}/presenter`, { visitor: visitorId });
      this.received(message);
    } catch (error) {
      this.problem = `not handed over: ${error.message}`;
      this.render();
    }
  }

  // -- the bar ----------------------------------------------------------------------------

  wireBar() {
    const part = (name) => this.bar.querySelector(`[data-live="${name}"]`);
    this.parts = {
      text: part("text"),
      note: part("note"),
      detach: part("detach"),
      follow: part("follow"),
      handover: part("handover"),
      handoverTo: part("handover-to"),
      handoverButton: part("handover-button"),
    };
    const click = (element, handler) => {
      element?.addEventListener("click", handler);
      this.cleanups.push(() => element?.removeEventListener("click", handler));
    };
    click(this.parts.detach, () => this.detach());
    click(this.parts.follow, () => this.follow());
    click(this.parts.handoverButton, () => {
      const visitor = this.parts.handoverTo?.value;
      if (visitor) this.handOver(visitor);
    });
  }

  mode() {
    if (this.ended) return "ended";
    if (this.presenting) return "presenting";
    return this.following ? "following" : "detached";
  }

  render() {
    const { text, note, detach, follow, handover, handoverTo } = this.parts;
    const mode = this.mode();
    document.body.dataset.live = mode;
    this.bar.hidden = false;
    this.bar.dataset.mode = mode;
    const message = this.message;
    const followers = message ? ` · ${message.followers} following` : "";
    if (mode === "ended") text.textContent = `Live session ended: ${this.endMessage}`;
    else if (mode === "presenting") text.textContent = `You are presenting${followers}`;
    else text.textContent = `Presenting: ${message?.presenter || "…"}${followers}`;
    note.textContent = mode === "detached" ? "Detached: you look around on your own." : this.problem;
    detach.hidden = mode !== "following";
    follow.hidden = mode !== "detached";
    const candidates = mode === "presenting" ? message?.signed_in_followers || [] : [];
    handover.hidden = !candidates.length;
    if (candidates.length) {
      const chosen = handoverTo.value;
      handoverTo.replaceChildren(...candidates.map((v) => new Option(v.name, v.id)));
      if (candidates.some((v) => v.id === chosen)) handoverTo.value = chosen;
    }
  }
}
