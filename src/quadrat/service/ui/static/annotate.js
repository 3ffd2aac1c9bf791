// The annotation page: one image, its points, the machine's top-5, keyboard first.
// Every change is a PUT to the server at once; Ctrl+Z posts the undo token it returned.
"use strict";

(() => {
  const el = Q.el;
  const $ = (id) => document.getElementById(id);
  const state = {
    image: null,
    points: [],
    current: 0,
    labels: [],
    labelById: new Map(),
    labelByKey: new Map(),
    sourceId: null,
    canEdit: false,
    undo: [],
    results: [],
    highlighted: 0,
    busy: Promise.resolve(),
    pending: 0,
  };
  const viewer = new Viewer($("canvas"), (i) => select(i, true), (row, column) => addPoint(row, column));
  // A press on the image gives the workspace the keyboard (the viewer's canvas takes none).
  $("viewer").addEventListener("pointerdown", () => $("viewer").focus({ preventScroll: true }), true);

  function say(text) {
    $("error").textContent = "";
    $("saved").textContent = text;
  }

  function fail(error) {
    $("error").textContent = error.message || String(error);
  }

  function labelText(id) {
    const label = state.labelById.get(id);
    return label ? label.code : "–";
  }

  // ------------------------------------------------------------------ loading

  async function loadLabels(sourceId) {
    if (state.sourceId === sourceId) return;
    const data = await Q.api("GET", `/ui/api/sources/${sourceId}/labels`);
    state.sourceId = sourceId;
    state.labels = data.labels;
    state.labelById = new Map(data.labels.map((l) => [l.id, l]));
    state.labelByKey = new Map(data.labels.filter((l) => l.hotkey).map((l) => [l.hotkey, l]));
    $("legend").replaceChildren(
      ...data.labels.map((l) =>
        el("tr", {},
          el("td", {}, l.hotkey ? el("kbd", { text: l.hotkey }) : ""),
          el("td", { text: l.code }), el("td", { text: l.name }), el("td", { text: l.group || "" })))
    );
  }

  async function firstImage(sourceId) {
    for (const status of ["todo", ""]) {
      const query = status ? `?status=${status}` : "";
      const page = await Q.api("GET", `/ui/api/sources/${sourceId}/images${query}`);
      if (page.images.length) return page.images[0].id;
    }
    return null;
  }

  async function loadImage(imageId, pointNumber) {
    const tiles = viewer.open(imageId);  // the descriptor and first tiles come with the JSON
    tiles.catch(() => {});
    const data = await Q.api("GET", `/ui/api/images/${imageId}`);
    await loadLabels(data.source.id);
    state.image = data;
    state.points = data.points;
    state.canEdit = data.role === "annotator" || data.role === "admin";
    $("read-only").hidden = state.canEdit;
    $("no-points").hidden = state.points.length > 0;
    $("generate-points").disabled = !state.canEdit;
    $("image-name").textContent = data.name;
    $("image-name").title = data.name;
    $("source-name").textContent = data.source.name + " /";
    $("image-position").textContent = `image ${data.position} of ${data.total}`;
    $("previous-image").disabled = data.previous_id === null;
    $("next-image").disabled = data.next_id === null;
    document.title = `${data.name} · ${data.source.name} · quadrat`;
    await tiles;
    viewer.show(data.width, data.height, data.orientation, state.points);
    const wanted = state.points.findIndex((p) => p.number === pointNumber);
    let start = wanted >= 0 ? wanted : state.points.findIndex((p) => !isHuman(p));
    if (start < 0) start = 0;
    renderPoints();
    select(start, false);
  }

  function isHuman(point) {
    return point.status === "confirmed" || point.status === "imported";
  }

  // ------------------------------------------------------------------ rendering

  function renderPoints() {
    $("points").replaceChildren(
      ...state.points.map((p, i) =>
        el("li", {},
          el("button", {
            type: "button",
            class: "point status-" + (p.status || "unannotated"),
            "data-number": p.number,
            "data-status": p.status || "unannotated",
            "aria-current": i === state.current ? "true" : null,
            onclick: () => select(i, true),
          }, `${p.number} · ${labelText(p.label_id)} · ${p.status || "unannotated"}`)))
    );
  }

  function pointButton(number) {
    return $("points").querySelector(`button[data-number="${number}"]`);
  }

  // After a save: that point's marker and list entry (not the whole list).
  function showPoint(point) {
    const button = pointButton(point.number);
    if (button) {
      const status = point.status || "unannotated";
      button.className = "point status-" + status;
      button.dataset.status = status;
      button.textContent = `${point.number} · ${labelText(point.label_id)} · ${status}`;
    }
    viewer.setPoints(state.points, state.current);
    if (state.points[state.current] && state.points[state.current].id === point.id) {
      select(state.current, false);
    }
  }

  // Scroll only the list (scrollIntoView would scroll the whole panel too).
  function keepVisible(list, item) {
    const top = item.offsetTop - list.offsetTop;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (top + item.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = top + item.offsetHeight - list.clientHeight;
    }
  }

  function select(i, focusViewer) {
    if (!state.points.length) {
      $("point-title").textContent = "No points on this image";
      return;
    }
    state.current = Math.max(0, Math.min(state.points.length - 1, i));
    const p = state.points[state.current];
    if (state.follow) viewer.focusOn(state.current, FOCUS_SIDE);
    else viewer.reveal(state.current);
    viewer.setPoints(state.points, state.current);
    $("point-title").textContent = `Point ${p.number} of ${state.points.length}`;
    const who = p.annotator ? ` by ${p.annotator}` : "";
    $("point-status").textContent =
      `${labelText(p.label_id)} — ${p.status || "unannotated"}${who}`;
    $("point-status").className = "point-status status-" + (p.status || "unannotated");
    $("patch").src = `/ui/api/points/${p.id}/patch`;
    $("patch").alt = `Patch around point ${p.number}`;
    $("suggestions").replaceChildren(
      ...p.suggestions.map((s, k) => {
        const label = state.labelById.get(s.label_id) || { code: "?", name: "" };
        return el("li", {},
          el("button", {
            type: "button",
            class: s.label_id === p.label_id ? "suggestion chosen" : "suggestion",
            "aria-keyshortcuts": String(k + 1),
            disabled: !state.canEdit,
            onclick: () => choose(s.label_id),
          },
          el("kbd", { text: String(k + 1) }), " ",
          el("span", { class: "code", text: label.code }), " ",
          el("span", { class: "name", text: label.name }), " ",
          el("span", { class: "score", text: Q.percent(s.score) })));
      })
    );
    if (!p.suggestions.length) {
      $("suggestions").append(el("li", { class: "none", text: "No machine suggestions for this point." }));
    }
    for (const button of $("points").querySelectorAll('button[aria-current="true"]')) {
      button.removeAttribute("aria-current");
    }
    const button = pointButton(p.number);
    if (button) {
      button.setAttribute("aria-current", "true");
      keepVisible($("points"), button.parentElement);
    }
    history.replaceState(null, "", `/ui/annotate?image=${state.image.id}&point=${p.number}`);
    if (focusViewer) $("viewer").focus();
  }

  // ------------------------------------------------------------------ changes

  // Changes are sent one after another, so a fast typist's keys are saved in order; when
  // none is waiting the request leaves at once, before the page redraws anything.
  function queue(task) {
    const run = state.pending === 0 ? task() : null;
    state.pending += 1;
    state.busy = (run ? run : state.busy.then(task))
      .catch(fail)
      .finally(() => { state.pending -= 1; });
    return state.busy;
  }

  function replacePoint(point) {
    const i = state.points.findIndex((p) => p.id === point.id);
    if (i >= 0) state.points[i] = point;
    return i;
  }

  function choose(labelId) {
    if (!state.canEdit) {
      fail(new Error("Your role on this source is viewer: you cannot change labels."));
      return;
    }
    const index = state.current;
    const point = state.points[index];
    if (!point) return;
    queue(async () => {
      const data = await Q.api("PUT", `/ui/api/points/${point.id}/annotation`, { label_id: labelId });
      replacePoint(data.point);
      state.undo.push({ token: data.undo, number: data.point.number });
      showPoint(data.point);
      say(`Saved: point ${data.point.number} is ${labelText(labelId)}`);
    });
    // Move on at once; the request is already on its way.
    if (index < state.points.length - 1) select(index + 1, true);
  }

  function accept(k) {
    const point = state.points[state.current];
    if (!point) return;
    const suggestion = point.suggestions[k];
    if (suggestion) choose(suggestion.label_id);
    else if (k === 0 && point.label_id !== null) choose(point.label_id);
  }

  function undo() {
    queue(async () => {
      const last = state.undo.pop();
      if (!last) {
        say("Nothing to undo.");
        return;
      }
      const data = await Q.api("POST", "/ui/api/undo", { undo: last.token });
      const i = replacePoint(data.point);
      showPoint(data.point);
      select(i >= 0 ? i : state.current, false);
      say(`Undone: point ${data.point.number} is ${labelText(data.point.label_id)} again`);
    });
  }

  // Points by hand: Shift+click adds one, Delete removes the current one (annotators).
  function addPoint(row, column) {
    if (!state.canEdit) return fail(new Error("Adding points needs the annotator role."));
    queue(async () => {
      const data = await Q.api("POST", `/ui/api/images/${state.image.id}/points`, { row, column });
      state.points.push(data.point);
      renderPoints();
      select(state.points.length - 1, true);
      say(`Added point ${data.point.number}`);
    });
  }

  function removePoint() {
    const point = state.points[state.current];
    if (!point) return;
    if (!state.canEdit) return fail(new Error("Removing points needs the annotator role."));
    if (!window.confirm(`Remove point ${point.number} and its label?`)) return;
    queue(async () => {
      await Q.api("DELETE", `/ui/api/points/${point.id}`);
      state.points = state.points.filter((p) => p.id !== point.id);
      state.undo = state.undo.filter((u) => u.number !== point.number);
      renderPoints();
      select(Math.min(state.current, state.points.length - 1), true);
      say(`Removed point ${point.number}`);
    });
  }

  // An image without points gets the source's point set (annotators).
  function generatePoints() {
    if (!state.canEdit) return fail(new Error("Generating points needs the annotator role."));
    queue(async () => {
      const data = await Q.api("POST", `/ui/api/images/${state.image.id}/generate-points`);
      state.points = data.points;
      $("no-points").hidden = state.points.length > 0;
      renderPoints();
      select(0, true);
      say(`Generated ${data.points.length} points (${data.spec}); the machine's suggestions are on their way…`);
      if (data.suggesting) waitForSuggestions(state.image.id, 120);
    });
  }

  // Poll the background run that extracts and classifies the new points, then reload.
  async function waitForSuggestions(imageId, triesLeft) {
    try {
      const data = await Q.api("GET", `/ui/api/sources/${state.image.source.id}/training`);
      const t = data.training;
      if ((t.state === "queued" || t.state === "running") && triesLeft > 0) {
        setTimeout(() => waitForSuggestions(imageId, triesLeft - 1), 1000);
        return;
      }
      if (state.image.id !== imageId) return;
      if (t.state === "failed") return fail(new Error("No suggestions: " + t.message));
      await state.busy;
      await loadImage(imageId, null);
      say("Suggestions ready");
    } catch (error) {
      fail(error);
    }
  }
  $("generate-points").addEventListener("click", generatePoints);

  async function goImage(id) {
    if (id === null || id === undefined) return;
    await state.busy;
    state.undo = [];
    try {
      await loadImage(id, null);
      $("viewer").focus();
    } catch (error) {
      fail(error);
    }
  }

  // ------------------------------------------------------------------ label search

  function searchResults(text) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    const starts = [], contains = [];
    for (const label of state.labels) {
      const code = label.code.toLowerCase(), name = label.name.toLowerCase();
      if (code.startsWith(q) || name.startsWith(q)) starts.push(label);
      else if (code.includes(q) || name.includes(q)) contains.push(label);
    }
    return starts.concat(contains).slice(0, 12);
  }

  function renderResults() {
    const list = $("label-results");
    list.replaceChildren(
      ...state.results.map((label, i) =>
        el("li", {
          id: "label-result-" + i,
          role: "option",
          "aria-selected": i === state.highlighted ? "true" : "false",
          onmousedown: (event) => { event.preventDefault(); pickResult(i); },
        }, el("span", { class: "code", text: label.code }), " ", label.name))
    );
    const input = $("label-search");
    input.setAttribute("aria-expanded", state.results.length ? "true" : "false");
    if (state.results.length) input.setAttribute("aria-activedescendant", "label-result-" + state.highlighted);
    else input.removeAttribute("aria-activedescendant");
  }

  function pickResult(i) {
    const label = state.results[i];
    if (!label) return;
    const input = $("label-search");
    input.value = "";
    state.results = [];
    renderResults();
    $("viewer").focus();
    choose(label.id);
  }

  $("label-search").addEventListener("input", (event) => {
    state.results = searchResults(event.target.value);
    state.highlighted = 0;
    renderResults();
  });

  $("label-search").addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const n = state.results.length;
      if (n) state.highlighted = (state.highlighted + (event.key === "ArrowDown" ? 1 : n - 1)) % n;
      renderResults();
    } else if (event.key === "Enter") {
      event.preventDefault();
      pickResult(state.highlighted);
    } else if (event.key === "Escape") {
      event.target.value = "";
      state.results = [];
      renderResults();
      $("viewer").focus();
    }
  });

  // ------------------------------------------------------------------ keys

  function inField(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLSelectElement ||
      target instanceof HTMLTextAreaElement;
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key === "PageDown" || event.key === "PageUp") {
      if (inField(target)) return;
      event.preventDefault();
      goImage(event.key === "PageDown" ? state.image.next_id : state.image.previous_id);
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z" && !inField(target)) {
      event.preventDefault();
      undo();
      return;
    }
    // The rest only where the workspace has the focus (buttons keep Enter, links keep Tab).
    const inWorkspace = $("viewer").contains(target) || target === document.body;
    if (!inWorkspace || event.ctrlKey || event.metaKey || event.altKey) return;
    const n = state.points.length;
    if (event.key === "Tab") {
      const next = state.current + (event.shiftKey ? -1 : 1);
      if (next >= 0 && next < n) {  // past either end, Tab leaves the image as usual
        event.preventDefault();
        select(next, true);
      }
    } else if (event.key === "ArrowRight" || event.key === "ArrowDown") {
      event.preventDefault();
      select(Math.min(n - 1, state.current + 1), true);
    } else if (event.key === "ArrowLeft" || event.key === "ArrowUp") {
      event.preventDefault();
      select(Math.max(0, state.current - 1), true);
    } else if (/^[1-5]$/.test(event.key)) {
      event.preventDefault();
      accept(Number(event.key) - 1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      accept(0);
    } else if (event.key === "/") {
      event.preventDefault();
      $("label-search").focus();
    } else if (event.key === "+" || event.key === "=") {
      viewer.zoomAt(1.25, state.current);
    } else if (event.key === "-") {
      viewer.zoomAt(1 / 1.25, state.current);
    } else if (event.key === "0") {
      viewer.fit();
    } else if (event.key === "*") {
      event.preventDefault();
      zoomToPoint(!state.follow);
    } else if (event.key === ".") {
      event.preventDefault();
      showNumbers(document.body.classList.contains("no-numbers"));
    } else if (event.key === "Delete") {
      event.preventDefault();
      removePoint();
    } else if (state.labelByKey.has(event.key)) {
      event.preventDefault();
      choose(state.labelByKey.get(event.key).id);
    }
  });

  // "Zoom to point": every point picked is shown centred, three patches wide (dense point
  // sets at the fitted zoom are hard to read); remembered in this browser.
  const FOCUS_SIDE = 3 * 224;
  function zoomToPoint(on) {
    state.follow = on;
    $("zoom-to-point").setAttribute("aria-pressed", String(on));
    try { localStorage.setItem("quadrat.follow", on ? "on" : "off"); } catch (e) { /* private mode */ }
    if (!state.points.length || viewer.opened === null) return;
    if (on) viewer.focusOn(state.current, FOCUS_SIDE);
    else viewer.fit();
  }
  $("zoom-to-point").addEventListener("click", () => zoomToPoint(!state.follow));
  try { state.follow = localStorage.getItem("quadrat.follow") === "on"; } catch (e) { state.follow = false; }
  $("zoom-to-point").setAttribute("aria-pressed", String(state.follow));

  // Numbers on the markers: with 200 points at the fitted zoom they cover each other, so
  // they can be hidden (the current point keeps its number); remembered in this browser.
  function showNumbers(shown) {
    document.body.classList.toggle("no-numbers", !shown);
    $("toggle-numbers").setAttribute("aria-pressed", String(shown));
    try { localStorage.setItem("quadrat.numbers", shown ? "shown" : "hidden"); } catch (e) { /* private mode */ }
  }
  $("toggle-numbers").addEventListener("click", () => {
    showNumbers(document.body.classList.contains("no-numbers"));
  });
  try { showNumbers(localStorage.getItem("quadrat.numbers") !== "hidden"); } catch (e) { showNumbers(true); }

  $("previous-image").addEventListener("click", () => goImage(state.image.previous_id));
  $("next-image").addEventListener("click", () => goImage(state.image.next_id));

  // ------------------------------------------------------------------ start

  (async () => {
    try {
      await Q.header();
      const params = new URLSearchParams(location.search);
      let imageId = params.get("image");
      if (!imageId && params.get("source")) imageId = await firstImage(params.get("source"));
      if (!imageId) {
        $("image-name").textContent = "No image to annotate";
        return;
      }
      await loadImage(Number(imageId), Number(params.get("point")) || null);
      await viewer.drawn(5000);  // ready: the points and the view's tiles are on screen
      document.body.dataset.ready = "true";
      $("viewer").focus();
    } catch (error) {
      fail(error);
    }
  })();
})();
