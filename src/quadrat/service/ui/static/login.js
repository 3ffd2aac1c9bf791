// The sign-in form: posts the credentials with the anonymous session's CSRF token.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const wanted = params.get("next") || "/ui/";
  // Only our own pages: never an open redirect to another site.
  const next = wanted.startsWith("/ui/") && !wanted.startsWith("//") ? wanted : "/ui/";
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");

  Q.session().then((who) => {
    if (who.user) location.href = next;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) {
      error.textContent = "Enter your username and password.";
      return;
    }
    try {
      await Q.api("POST", "/ui/api/login", { username, password });
      location.href = next;
    } catch (failure) {
      error.textContent = failure.message;
      form.password.select();
    }
  });
})();
