// The login page: served at "/" while there is no session; a login reloads the same address (hash included),
// which then serves the app.
"use strict";
document.getElementById("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("login-error"), button = document.getElementById("login-submit");
  error.textContent = "";
  button.disabled = true;
  try {
    const res = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: document.getElementById("login-name").value,
                             password: document.getElementById("login-password").value }),
    });
    if (res.ok) { location.reload(); return; }
    let message = `HTTP ${res.status}`;
    try { message = (await res.json()).error || message; } catch { /* not JSON */ }
    error.textContent = message;
  } catch (err) {
    error.textContent = "cannot reach the server: " + err.message;
  } finally {
    button.disabled = false;
  }
});
