// The sources page: counts per source, classifier history, label next, cover with its
// interval, and a pageable image list.
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
        el("li", { "data-classifier": c.id },
          `Classifier ${c.id} (${c.kind}, ${c.n_images} images): accuracy ${Q.percent(c.accuracy)}, `,
          c.verdict || (c.accepted ? "accepted" : "rejected"))
      )
    );
  }

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  }

  // Accuracy per training round: one bar each, green accepted, grey rejected.
  function historyPlot(source) {
    const rounds = source.classifiers;
    const w = 24, h = 60;
    const bars = rounds.map((c, i) => {
      const a = c.accuracy || 0;
      return svg("rect", {
        x: String(i * w + 4), y: String(h - a * h), width: String(w - 6), height: String(a * h),
        fill: c.accepted ? "#2e8b57" : "#9e9e9e",
      }, svg("title", {}, `classifier ${c.id}: ${Q.percent(c.accuracy)}`));
    });
    return svg("svg", {
      class: "plot", width: String(rounds.length * w + 8), height: String(h + 2), role: "img",
      "aria-label": "Accuracy per training round: " + rounds.map((c) => Q.percent(c.accuracy)).join(", "),
    }, svg("line", { x1: "0", x2: String(rounds.length * w + 8), y1: String(h), y2: String(h), stroke: "#333" }), ...bars);
  }

  function curvePlot(curve) {
    const w = 300, h = 80;
    const line = (values, colour) => svg("polyline", {
      fill: "none", stroke: colour, "stroke-width": "2",
      points: values.map((v, i) => (v === null ? null : `${(curve.threshold[i] * w).toFixed(1)},${(h - v * h).toFixed(1)}`)).filter(Boolean).join(" "),
    });
    const marker = svg("line", { x1: "0", x2: "0", y1: "0", y2: String(h), stroke: "#0b5cad", "stroke-width": "2" });
    const plot = svg("svg", {
      class: "plot", width: String(w), height: String(h), role: "img",
      "aria-label": "Share of points auto-accepted (orange) and their accuracy (green) by threshold",
    }, svg("rect", { x: "0", y: "0", width: String(w), height: String(h), fill: "#f3f5f8" }),
    line(curve.fraction_accepted, "#d97900"), line(curve.accuracy_accepted, "#2e8b57"), marker);
    plot.moveMarker = (t) => { marker.setAttribute("x1", String(t * w)); marker.setAttribute("x2", String(t * w)); };
    return plot;
  }

  function alleviate(source) {
    const box = el("section", { class: "alleviate", "aria-labelledby": "alleviate-title-" + source.id },
      el("h3", { id: "alleviate-title-" + source.id, text: "Alleviate" }));
    Q.api("GET", `/ui/api/sources/${source.id}/alleviate`).then((data) => {
      const curve = data.curve;
      if (!curve.threshold.length) {
        box.append(el("p", { text: "No validation curve yet: train a classifier first." }));
        return;
      }
      const id = "alleviate-" + source.id;
      const start = data.threshold === null ? 1 : data.threshold;
      const input = el("input", { type: "range", id, min: "0", max: "100", step: "1", value: String(Math.round(start * 100)) });
      const effect = el("p", { id: id + "-effect", "aria-live": "polite" });
      const plot = curvePlot(curve);
      const show = () => {
        const t = Number(input.value) / 100;
        let i = curve.threshold.findIndex((x) => x >= t - 1e-9);
        if (i < 0) i = curve.threshold.length - 1;
        effect.textContent = `At ${input.value}%: ${Q.percent(curve.fraction_accepted[i])} of points auto-accepted, ` +
          `expected accuracy ${Q.percent(curve.accuracy_accepted[i])} on them (validation of classifier ${data.classifier_id}).`;
        input.setAttribute("aria-valuetext", `${input.value}%: ${Q.percent(curve.fraction_accepted[i])} accepted`);
        plot.moveMarker(t);
      };
      input.addEventListener("input", show);
      const status = el("p", { role: "status" });
      const now = el("span", { text: data.threshold === null ? "off" : `${Math.round(data.threshold * 100)}%` });
      box.append(
        el("p", {}, "Threshold now: ", now),
        el("label", { for: id, text: "Auto-accept points the classifier scores at or above" }), " ", input,
        effect, plot,
        el("p", { class: "hint", text: "Orange: share of points auto-accepted; green: their accuracy; both on the last validation." }));
      if (data.can_apply) {
        box.append(el("button", {
          type: "button", id: id + "-apply", text: "Apply threshold",
          onclick: async () => {
            status.textContent = "Applying…";
            try {
              const done = await Q.api("POST", `/ui/api/sources/${source.id}/alleviate`, { threshold: Number(input.value) / 100 });
              now.textContent = `${Math.round(done.threshold * 100)}%`;
              status.textContent = `Applied: ${done.alleviated} of ${done.points} machine-labelled points auto-accepted.`;
            } catch (failure) {
              status.textContent = failure.message;
            }
          },
        }));
      } else {
        box.append(el("p", { class: "hint", text: "Applying a threshold needs the admin role." }));
      }
      box.append(status);
      show();
    }).catch((failure) => box.append(el("p", { class: "error", text: failure.message })));
    return box;
  }

  // "Label next" (annotators): the points whose label would teach the classifier most.
  // Other tools' formats (quadrat formats): a list and a download link that follows it.
  let formats = null;
  function otherFormats(source) {
    const id = `formats-${source.id}`;
    const select = el("select", { id });
    const link = el("a", { class: "button", download: "", text: "Download" });
    const follow = () => {
      link.href = `/ui/api/sources/${source.id}/export/format/${encodeURIComponent(select.value)}`;
      const chosen = (formats || []).find((f) => f.name === select.value);
      link.title = chosen ? chosen.description : "";
    };
    select.addEventListener("change", follow);
    formats = formats || Q.api("GET", "/ui/api/export-formats").then((data) => data.formats);
    Promise.resolve(formats).then((list) => {
      formats = list;
      select.replaceChildren(...list.map((f) =>
        el("option", { value: f.name, text: `${f.name} (${f.suffix.slice(1)})` })));
      follow();
    }).catch(() => { select.disabled = true; });
    return el("p", { class: "actions" },
      el("label", { for: id, text: "Export for another tool: " }), select, " ", link);
  }

  function labelNext(source) {
    const id = "label-next-" + source.id;
    const box = el("section", { class: "label-next", "aria-labelledby": id + "-title" },
      el("h3", { id: id + "-title", text: "Label next" }),
      el("p", { class: "hint", text: "Unconfirmed points the classifier is least sure of (smallest margin between its two top labels), spread over the features so they are not near-duplicates." }));
    Q.api("GET", `/ui/api/sources/${source.id}/suggest?n=10`).then((data) => {
      if (!data.points.length) {
        box.append(el("p", { text: "Every point has a person's label." }));
        return;
      }
      box.append(el("ol", { id, class: "suggest" },
        ...data.points.map((p) => el("li", { "data-point": p.point_id },
          el("a", { href: `/ui/annotate?image=${p.image_id}&point=${p.point}`, text: `${p.image} #${p.point}` }),
          p.top_label ? ` — machine: ${p.top_label} ${Q.percent(p.top_score)}, margin ${Q.percent(p.margin)}` : ""))));
    }).catch((failure) => box.append(el("p", { class: "hint", text: failure.message })));
    return box;
  }

  // Cover of the whole source with its bootstrap interval, naive or corrected.
  function cover(source) {
    const id = "cover-" + source.id;
    const method = el("select", { id: id + "-corrected" },
      el("option", { value: "none", text: "as labelled" }),
      el("option", { value: "acc", text: "corrected (ACC, confusion matrix)" }),
      el("option", { value: "pacc", text: "corrected (PACC, calibrated scores)" }));
    const status = el("p", { role: "status", "aria-live": "polite" });
    const table = el("table", { id, class: "cover" });
    let coverRequest = 0;
    const load = async () => {
      const ticket = ++coverRequest;
      status.textContent = "Computing…";
      try {
        const data = await Q.api("GET", `/ui/api/sources/${source.id}/cover?level=source&corrected=${method.value}`);
        if (ticket !== coverRequest) return;
        const row = data.rows[0] || {};
        const pct = (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + "%");
        table.replaceChildren(
          el("caption", { text: `${method.selectedOptions[0].text}: cover of ${row.Images ?? 0} images, ${row.Points ?? 0} points; ${Math.round(data.confidence * 100)}% interval from ${data.replicates} bootstrap replicates` }),
          el("thead", {}, el("tr", {}, ...["Label", "Labelled", "Estimate", "Interval"].map((t) => el("th", { scope: "col", text: t })))),
          el("tbody", {}, ...data.labels.map((label) => el("tr", {},
            el("th", { scope: "row", text: label }),
            el("td", { text: pct(row[label]) }),
            el("td", { text: pct(row[label + " estimate"]) }),
            el("td", { text: `${pct(row[label + " lower"])} – ${pct(row[label + " upper"])}` })))));
        status.textContent = "";
      } catch (failure) {
        table.replaceChildren();
        status.textContent = failure.message;
      }
    };
    method.addEventListener("change", load);
    load();
    return el("section", { class: "cover-box", "aria-labelledby": id + "-title" },
      el("h3", { id: id + "-title", text: "Cover" }),
      el("p", {}, el("label", { for: id + "-corrected", text: "Show cover " }), method),
      status, table,
      el("p", { class: "hint", text: "Images with unannotated points are left out, as in CoralNet. Per image or site: quadrat export cover --intervals." }));
  }

  // Where the source stands in the policy: how many images until the next classifier.
  function progress(policy, id) {
    if (!policy) return null;
    const left = policy.next_at - policy.confirmed_images;
    const text = policy.due
      ? `${policy.confirmed_images} confirmed images: a classifier is due and trains in the background.`
      : `${policy.confirmed_images} confirmed images; the next classifier is trained at ${policy.next_at} (${left} more to confirm).`;
    return el("p", { id: id + "-policy", text });
  }

  // "Train now" (admins) and what the background training did last (polled while it runs).
  function training(source) {
    const id = "training-" + source.id;
    const status = el("p", { id: id + "-status", role: "status", "aria-live": "polite" });
    const box = el("section", { class: "training", "aria-labelledby": id + "-title" },
      el("h3", { id: id + "-title", text: "Training" }),
      el("p", { class: "hint", text: "A classifier is trained in the background when enough images are confirmed (CoralNet's rule: the first at 20 images, then at 10 % more); it replaces the active one only if it is at least 1 % more accurate." }),
      progress(source.policy, id));
    const describe = (t) => {
      if (!t || t.state === "idle") return "No training recorded yet.";
      // While queued or running, the message says where and since when (shared by every
      // server process of the project).
      const detail = t.message ? ": " + t.message : (t.started_at ? `: started ${t.started_at}` : "");
      if (t.state === "queued") return "Training queued" + detail + ".";
      if (t.state === "running") return "Training in the background" + detail + ".";
      if (t.state === "failed") return "Training failed: " + t.message;
      const suggested = t.reclassified !== null ? ` ${t.reclassified} points classified.` : "";
      if (!t.trained) return "No training due: " + t.message + "." + suggested;
      const why = t.forced ? `Train now, by ${t.requested_by}` : "the policy";
      return `Latest training (${why}): ${t.message}.` +
        (t.reclassified !== null ? ` ${t.reclassified} points classified again.` : "");
    };
    const poll = async () => {
      try {
        const data = await Q.api("GET", `/ui/api/sources/${source.id}/training`);
        status.textContent = describe(data.training);
        if (data.training.state === "queued" || data.training.state === "running") {
          setTimeout(poll, 1000);
        } else if (box.dataset.waiting) {
          delete box.dataset.waiting;
          refresh();
        }
      } catch (failure) {
        status.textContent = failure.message;
      }
    };
    status.textContent = describe(source.training);
    if (source.role === "admin") {
      box.append(el("button", {
        type: "button", id: id + "-now", text: "Train now",
        onclick: async () => {
          try {
            await Q.api("POST", `/ui/api/sources/${source.id}/train`);
            box.dataset.waiting = "1";
            poll();
          } catch (failure) {
            status.textContent = failure.message;
          }
        },
      }));
    }
    box.append(status);
    if (source.training && (source.training.state === "queued" || source.training.state === "running")) {
      box.dataset.waiting = "1";
      poll();
    }
    return box;
  }

  async function refresh() {
    const data = await Q.api("GET", "/ui/api/sources");
    document.getElementById("sources").replaceChildren(...data.sources.map(card));
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
      source.classifiers.length ? historyPlot(source) : null,
      el("p", { class: "actions" },
        el("a", { class: "button", href: "/ui/annotate?source=" + source.id, text: "Annotate next image" }),
        " ",
        el("button", { type: "button", onclick: () => showImages(source) , text: "Browse images" }),
        " ",
        el("a", { class: "button", href: "/ui/review?source=" + source.id, text: "Review labels" })),
      el("p", { class: "actions" }, "Export (CoralNet CSV): ",
        ...["annotations", "cover", "labelset"].flatMap((kind, i) => [
          i ? " · " : "",
          el("a", { href: `/ui/api/sources/${source.id}/export/${kind}.csv`, download: "", text: kind }),
        ])),
      otherFormats(source),
      source.role === "viewer" ? null : labelNext(source),
      cover(source),
      training(source),
      alleviate(source)
    );
  }

  async function showImages(source) {
    browser.source = source;
    browser.page = 1;
    document.getElementById("browser").hidden = false;
    document.getElementById("browser-title").textContent = "Images of " + source.name;
    const labels = await Q.api("GET", `/ui/api/sources/${source.id}/labels`);
    document.getElementById("filter-label").replaceChildren(
      el("option", { value: "", text: "any" }),
      ...labels.labels.map((l) => el("option", { value: String(l.id), text: `${l.code} — ${l.name}` })));
    await loadImages();
  }

  // Filters fire one request per change; a slow earlier answer must never
  // overwrite a later one, so each request takes a number and only the
  // newest may draw the table.
  let imagesRequest = 0;

  async function loadImages() {
    const ticket = ++imagesRequest;
    const status = document.getElementById("filter-status").value;
    const sort = document.getElementById("filter-sort").value;
    const query = new URLSearchParams({ sort, page: String(browser.page) });
    if (status) query.set("status", status);
    const value = (id) => document.getElementById(id).value.trim();
    if (value("filter-label")) query.set("label_id", value("filter-label"));
    if (value("filter-date-from")) query.set("date_from", value("filter-date-from"));
    if (value("filter-date-to")) query.set("date_to", value("filter-date-to"));
    if (value("filter-site")) query.set("site", value("filter-site"));
    if (value("filter-confidence") !== "") {
      query.set("max_confidence", String(Math.min(100, Math.max(0, Number(value("filter-confidence")))) / 100));
    }
    const data = await Q.api("GET", `/ui/api/sources/${browser.source.id}/images?${query}`);
    if (ticket !== imagesRequest) return;
    browser.pages = data.pages;
    const rows = document.getElementById("image-rows");
    rows.replaceChildren(
      ...data.images.map((image) =>
        el("tr", {},
          el("th", { scope: "row" },
            el("a", { class: "image-link", href: "/ui/annotate?image=" + image.id },
              // The thumbnail's left edge is the image's status colour; the name says it all
              // to a screen reader, so the picture is decorative (empty alt).
              el("img", { class: "thumb status-" + image.status, src: `/ui/api/images/${image.id}/thumbnail`,
                alt: "", loading: "lazy", width: 80, height: 60 }),
              el("span", { text: image.name }))),
          el("td", { text: image.date || "–" }),
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
  for (const id of ["filter-label", "filter-date-from", "filter-date-to", "filter-site", "filter-confidence"]) {
    document.getElementById(id).addEventListener("change", () => {
      browser.page = 1;
      loadImages().catch((failure) => { error.textContent = failure.message; });
    });
  }
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
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
