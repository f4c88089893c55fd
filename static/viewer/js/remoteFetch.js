// The fetch-progress page of a remote study (templates/viewer/remote_fetch.html): polls
// the status endpoint until the study is held here, then opens the viewer.

const section = document.getElementById("remote-fetch");
const bar = document.getElementById("fetch-progress");
const statusLine = document.getElementById("fetch-status");
const errorLine = document.getElementById("fetch-error");
const POLL_MS = 1000;

function show(status) {
  const total = status.total || 0;
  bar.max = Math.max(total, 1);
  bar.value = status.fetched + status.failed;
  statusLine.textContent = `${status.fetched} of ${total || "?"} images fetched` +
    (status.failed ? `, ${status.failed} refused` : "");
}

async function poll() {
  let status;
  try {
    const response = await fetch(section.dataset.statusUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    status = await response.json();
    if (!response.ok) {
      throw new Error(status.message || `HTTP ${response.status}`);
    }
  } catch (error) {
    errorLine.textContent = `The fetch's progress cannot be read: ${error.message}`;
    errorLine.hidden = false;
    setTimeout(poll, POLL_MS * 5);
    return;
  }
  show(status);
  if (status.state === "cached") {
    window.location.assign(status.viewer_url || section.dataset.viewerUrl);
  } else if (status.state === "failed") {
    errorLine.textContent = `The study could not be fetched: ${status.message}. Reload the page to try again.`;
    errorLine.hidden = false;
  } else {
    setTimeout(poll, POLL_MS);
  }
}

poll();
