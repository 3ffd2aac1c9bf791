// The sources page: counts per source, classifier history, and a pageable image list.
"use strict";

(() => {
  const el = Q.el;
  const error = document.getElementById("error");
  const browser = { source: null, page: 1, pages: 1 };

  function countsTable(source) {
    const images = source.images;
    const points = source.points;
    return el(
      "table",
      { class: "counts" },
      el("caption", { text: "Images and points by status" }),
      el(
        "thead",
        {},
        el("tr", {}, el("th", { scope: "col", text: "" }),
          ...["unannotated", "machine", "partial", "confirmed"].map((s) => el("th", { scope: "col", text: s })))
      ),
      el(
        "tbody",
        {},
        el("tr", {}, el("th", { scope: "row", text: "images" }),
          ...["unannotated", "machine", "partial", "confirmed"].map((s) => el("td", { text: images[s] }))),
        el("tr", {}, el("th", { scope: "row", text: "points" }),
          el("td", { text: points.unannotated }),
          el("td", { text: points.machine + points.alleviate }),
          el("td", { text: "–" }),
          el("td", { text: points.confirmed + points.imported }))
      )
    );
  }

  function history(source) {
    if (!source.classifiers.length) return el("p", { text: "No classifier trained yet." });
    return el(
      "ol",
      { class: "history", "aria-label": "Classifier history" },
      ...source.classifiers.map((c) =>
        el("li", {},
          `Classifier ${c.id} (${c.kind}, ${c.n_images} images): accuracy ${Q.percent(c.accuracy)}, `,
          c.accepted ? "accepted" : "rejected")
      )
    );
  }

  function card(source) {
    const active = source.active_classifier;
    return el(
      "section",
      { class: "card", "aria-labelledby": "source-" + source.id },
      el("h2", { id: "source-" + source.id, text: source.name }),
      el("p", {}, `Your role: ${source.role}. `,
        active ? `Active classifier ${active.id} on ${active.extractor}, accuracy ${Q.percent(active.accuracy)}.` : ""),
      countsTable(source),
      history(source),
      el("p", { class: "actions" },
        el("a", { class: "button", href: "/ui/annotate?source=" + source.id, text: "Annotate next image" }),
        " ",
        el("button", { type: "button", onclick: () => showImages(source) , text: "Browse images" }))
    );
  }

  async function showImages(source) {
    browser.source = source;
    browser.page = 1;
    document.getElementById("browser").hidden = false;
    document.getElementById("browser-title").textContent = "Images of " + source.name;
    await loadImages();
  }

  async function loadImages() {
    const status = document.getElementById("filter-status").value;
    const sort = document.getElementById("filter-sort").value;
    const query = new URLSearchParams({ sort, page: String(browser.page) });
    if (status) query.set("status", status);
    const data = await Q.api("GET", `/ui/api/sources/${browser.source.id}/images?${query}`);
    browser.pages = data.pages;
    const rows = document.getElementById("image-rows");
    rows.replaceChildren(
      ...data.images.map((image) =>
        el("tr", {},
          el("th", { scope: "row" }, el("a", { href: "/ui/annotate?image=" + image.id, text: image.name })),
          el("td", {}, el("span", { class: "status status-" + image.status, text: image.status })),
          el("td", { text: image.points }),
          el("td", { text: image.confirmed }),
          el("td", { text: image.machine }),
          el("td", { text: Q.percent(image.uncertainty) }))
      )
    );
    document.getElementById("images-caption").textContent = `${data.total} images`;
    document.getElementById("page-info").textContent = `Page ${data.page} of ${data.pages}`;
    document.getElementById("page-prev").disabled = data.page <= 1;
    document.getElementById("page-next").disabled = data.page >= data.pages;
  }

  document.getElementById("filter-status").addEventListener("change", () => { browser.page = 1; loadImages(); });
  document.getElementById("filter-sort").addEventListener("change", () => { browser.page = 1; loadImages(); });
  document.getElementById("page-prev").addEventListener("click", () => { browser.page -= 1; loadImages(); });
  document.getElementById("page-next").addEventListener("click", () => { browser.page += 1; loadImages(); });

  (async () => {
    try {
      await Q.header();
      const data = await Q.api("GET", "/ui/api/sources");
      const holder = document.getElementById("sources");
      if (!data.sources.length) {
        holder.append(el("p", { text: "You have no role on any source yet; ask an administrator." }));
      }
      holder.append(...data.sources.map(card));
    } catch (failure) {
      error.textContent = failure.message;
    }
  })();
})();
