// The review grid: every patch of one label, least confident first (or nearest first to a
// chosen patch, "Find similar"); select many, relabel.
"use strict";

(() => {
  const el = Q.el;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const sourceId = params.get("source");
  const state = { page: 1, pages: 1, selected: new Set(), labels: [], undo: [], similar: null };

  function fail(error) {
    $("error").textContent = error.message || String(error);
  }

  function updateSelection() {
    $("selected-count").textContent = `${state.selected.size} selected`;
    $("relabel").disabled = state.selected.size === 0;
    $("find-similar").disabled = state.selected.size !== 1;
  }

  // Order the grid by distance (stored features) to one patch: it first, its neighbours next.
  function findSimilar(id) {
    state.similar = id;
    state.page = 1;
    return load();
  }

  function clearSimilar() {
    state.similar = null;
    state.page = 1;
    return load();
  }

  function toggle(item, id) {
    if (state.selected.has(id)) state.selected.delete(id);
    else state.selected.add(id);
    item.setAttribute("aria-checked", state.selected.has(id) ? "true" : "false");
    updateSelection();
  }

  // A slower earlier answer must not overwrite a newer one (see index.js).
  let loadRequest = 0;

  async function load() {
    const ticket = ++loadRequest;
    $("error").textContent = "";
    const query = new URLSearchParams({
      label_id: $("review-label").value,
      status: $("review-status").value,
      sort: $("review-sort").value,
      page: String(state.page),
    });
    if (state.similar !== null) {
      query.set("order", "similar");
      query.set("point", String(state.similar));
    }
    const data = await Q.api("GET", `/ui/api/sources/${sourceId}/review?${query}`);
    if (ticket !== loadRequest) return;
    state.pages = data.pages;
    state.selected.clear();
    updateSelection();
    const label = state.labels.find((l) => String(l.id) === $("review-label").value);
    const chosen = data.points.find((p) => p.id === state.similar);
    $("review-count").textContent = `${data.total} points labelled ${label ? label.code : ""}` +
      (state.similar === null ? "" : chosen
        ? `, nearest first to ${chosen.image_name} #${chosen.number}`
        : `, nearest first to point ${state.similar}`);
    $("clear-similar").hidden = state.similar === null;
    $("grid").replaceChildren(
      ...data.points.map((p) => {
        const item = el("li", {
          class: "tile status-" + p.status + (p.id === state.similar ? " chosen" : ""),
          role: "checkbox",
          tabindex: "0",
          "aria-checked": "false",
          "data-point": p.id,
          "aria-label": `${p.image_name} point ${p.number}, ${p.status}, ${Q.percent(p.score)}`,
        },
        el("img", { src: `/ui/api/points/${p.id}/patch`, alt: "", loading: "lazy", width: "112", height: "112" }),
        el("span", { class: "tile-text" }, `${p.status} · ${Q.percent(p.score)}` +
          (p.distance === undefined || p.distance === null ? "" : ` · d ${p.distance.toFixed(1)}`)),
        el("a", { href: `/ui/annotate?image=${p.image_id}&point=${p.number}`, tabindex: "-1", text: `${p.image_name} #${p.number}` }));
        item.addEventListener("click", (event) => {
          if (event.target.tagName !== "A") toggle(item, p.id);
        });
        item.addEventListener("keydown", (event) => {
          if (event.key === " " || event.key === "Enter") {
            event.preventDefault();
            toggle(item, p.id);
          } else if (event.key === "s" && !event.ctrlKey && !event.metaKey && !event.altKey) {
            event.preventDefault();
            findSimilar(p.id).catch(fail);
          }
        });
        return item;
      })
    );
    $("page-info").textContent = `Page ${data.page} of ${data.pages}`;
    $("page-prev").disabled = data.page <= 1;
    $("page-next").disabled = data.page >= data.pages;
  }

  async function relabel() {
    const ids = [...state.selected];
    if (!ids.length) return;
    const labelId = Number($("relabel-to").value);
    const data = await Q.api("POST", `/ui/api/sources/${sourceId}/relabel`, { point_ids: ids, label_id: labelId });
    state.undo.push(data.undo);
    $("undo-relabel").disabled = false;
    await load();
    const label = state.labels.find((l) => l.id === labelId);
    $("review-count").textContent = `Relabelled ${data.changed} points as ${label.code}. ` + $("review-count").textContent;
  }

  async function undo() {
    const token = state.undo.pop();
    if (!token) return;
    const data = await Q.api("POST", "/ui/api/undo", { undo: token });
    $("undo-relabel").disabled = state.undo.length === 0;
    await load();
    $("review-count").textContent = `Undone: ${data.points.length} points. ` + $("review-count").textContent;
  }

  for (const id of ["review-label", "review-status", "review-sort"]) {
    $(id).addEventListener("change", () => { state.page = 1; state.similar = null; load().catch(fail); });
  }
  $("find-similar").addEventListener("click", () => {
    if (state.selected.size === 1) findSimilar([...state.selected][0]).catch(fail);
  });
  $("clear-similar").addEventListener("click", () => clearSimilar().catch(fail));
  $("page-prev").addEventListener("click", () => { state.page -= 1; load().catch(fail); });
  $("page-next").addEventListener("click", () => { state.page += 1; load().catch(fail); });
  $("relabel").addEventListener("click", () => relabel().catch(fail));
  $("undo-relabel").addEventListener("click", () => undo().catch(fail));

  (async () => {
    try {
      await Q.header();
      const data = await Q.api("GET", `/ui/api/sources/${sourceId}/labels`);
      state.labels = data.labels;
      const points = (l) => (l.confirmed || 0) + (l.machine || 0);
      $("review-label").replaceChildren(...data.labels.map((l) =>
        el("option", { value: l.id, text: `${l.code} — ${l.name} (${points(l)})` })));
      $("relabel-to").replaceChildren(...data.labels.map((l) =>
        el("option", { value: l.id, text: `${l.code} — ${l.name}` })));
      // Open on the label with the most points, not on an empty first one.
      const largest = data.labels.reduce((best, l) => (best && points(best) >= points(l) ? best : l), null);
      const wanted = params.get("label") || (largest && points(largest) ? String(largest.id) : "");
      if (wanted) $("review-label").value = wanted;
      if (params.get("similar")) state.similar = Number(params.get("similar"));
      $("title").textContent = "Review labels";
      await load();
      document.body.dataset.ready = "true";
    } catch (error) {
      fail(error);
    }
  })();
})();
