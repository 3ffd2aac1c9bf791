// Shared by every page: JSON calls with the session's CSRF token, sign-out, small helpers.
"use strict";

const Q = (() => {
  let csrf = null;

  async function session() {
    const response = await fetch("/ui/api/session", { credentials: "same-origin" });
    const data = await response.json();
    csrf = data.csrf;
    return data;
  }

  function loginUrl() {
    return "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  // fetch JSON; a change carries X-CSRF-Token; 401 sends the person to the sign-in page.
  async function api(method, path, body) {
    if (method !== "GET" && csrf === null) await session();
    const options = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    if (response.status === 401) {
      location.href = loginUrl();
      throw new Error("Signed out");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_error) {
      data = null;
    }
    if (!response.ok) {
      let detail = data && (data.detail || (data.errors && data.errors[0] && data.errors[0].detail));
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg || String(d)).join("; ");
      const error = new Error(detail ? String(detail) : "HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function signOut() {
    try {
      await api("POST", "/ui/api/logout");
    } finally {
      location.href = "/ui/login";
    }
  }

  // The header's "signed in as" and sign-out button.
  async function header() {
    const who = await session();
    if (!who.user) {
      location.href = loginUrl();
      throw new Error("Signed out");
    }
    const name = document.getElementById("user-name");
    if (name) name.textContent = who.user.username;
    const button = document.getElementById("sign-out");
    if (button) button.addEventListener("click", signOut);
    return who.user;
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : Math.round(value * 100) + "%";
  }

  return { api, session, el, header, percent, signOut };
})();
