// Signs an operator in with a JSON request (never a form post, so that no other site can
// submit it), then reloads the page that asked for the login.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = JSON.stringify({
      name: form.elements.name.value.trim(),
      password: form.elements.password.value,
    });
    try {
      const response = await fetch("/console/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body,
        credentials: "same-origin",
      });
      if (response.ok) {
        window.location.reload();
        return;
      }
      const payload = await response.json().catch(() => ({}));
      error.textContent =
        typeof payload.detail === "string" ? payload.detail : `Sign-in failed (${response.status})`;
    } catch (e) {
      error.textContent = "The server could not be reached.";
    }
    form.elements.password.value = "";
    form.elements.password.focus();
  });
});
