// Sign in from inside the EHR's frame without ever framing a login page: the login runs in
// a popup (first-party), which posts back a one-time code; this frame redeems it for a
// session of its own (its cookies live in the EHR site's partition).
const button = document.getElementById("signin");
const status = document.getElementById("signin-status");
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;

button.addEventListener("click", () => {
  const popup = window.open(button.dataset.popup, "loupe-signin", "popup,width=520,height=680");
  status.textContent = popup
    ? "Sign in in the window that opened."
    : "The sign-in window was blocked: allow pop-ups for Loupe, then press Sign in again.";
});

window.addEventListener("message", async (event) => {
  if (event.origin !== window.location.origin || event.data?.type !== "loupe-signin") return;
  const response = await fetch(button.dataset.handoff, {
    method: "POST",
    body: new URLSearchParams({ code: String(event.data.code) }),
    headers: { "X-CSRFToken": csrf },
    credentials: "same-origin",
  });
  if (response.ok) window.location.replace(button.dataset.next);
  else status.textContent = "Signing in did not complete. Press Sign in to try again.";
});
