// In the sign-in popup, after login: give the one-time code to the frame that opened us
// (same origin only), then close.
const page = document.getElementById("handoff");
const status = document.getElementById("handoff-status");
if (window.opener && !window.opener.closed) {
  window.opener.postMessage({ type: "loupe-signin", code: page.dataset.code }, window.location.origin);
  window.close();
} else {
  status.textContent = "Signed in. Close this window and open the images again from the chart.";
}
