// The accessibility audit of tests/ui/test_accessibility.py, run in the page: returns
// [rule, element, detail] for every problem found.
() => {
  const problems = [];
  const visible = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.visibility !== "hidden" && style.display !== "none" &&
      box.width > 0 && box.height > 0;
  };
  const describe = (el) => {
    const classes = typeof el.className === "string" && el.className
      ? "." + el.className.split(" ").join(".") : "";
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + classes;
  };
  const textOf = (id) => (document.getElementById(id) || {}).textContent || "";
  const nameOf = (el) => {
    if (el.getAttribute("aria-label")) return el.getAttribute("aria-label");
    const by = el.getAttribute("aria-labelledby");
    if (by) return by.split(" ").map(textOf).join(" ");
    if (el.labels && el.labels.length) {
      return Array.from(el.labels).map((l) => l.textContent).join(" ");
    }
    if (el.title) return el.title;
    if (el.tagName === "BUTTON" || el.tagName === "A") return el.textContent;
    return "";
  };
  for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (el.type === "hidden" || el.closest(".openseadragon-container")) continue;
    if (!nameOf(el).trim()) problems.push(["name", describe(el), "no accessible name"]);
  }
  for (const el of document.querySelectorAll("img")) {
    if (el.closest(".openseadragon-container")) continue;
    if (!el.hasAttribute("alt")) problems.push(["alt", describe(el), "no alt"]);
  }
  for (const el of document.querySelectorAll("[tabindex]")) {
    const index = el.getAttribute("tabindex");
    if (Number(index) > 0) problems.push(["tabindex", describe(el), index]);
  }
  // Contrast (WCAG 2.1 AA): every visible element with text of its own, against the
  // backgrounds under it blended down to the first opaque one (white at the bottom).
  // Text over the photo (in the viewer) is left out: markers carry a dark outline.
  const rgba = (text) => (text.match(/[\d.]+/g) || [0, 0, 0, 0]).map(Number);
  const linear = (c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const blend = (top, bottom) => {
    const a = top.length > 3 ? top[3] : 1;
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a));
  };
  const backgroundOf = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      const alpha = colour.length > 3 ? colour[3] : 1;
      if (alpha > 0) layers.push(colour);
      if (alpha >= 1) break;
    }
    let result = [255, 255, 255];
    for (const layer of layers.reverse()) result = blend(layer, result);
    return result;
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("#viewer") || el.closest(".visually-hidden") || !visible(el)) continue;
    if (el.matches(":disabled") || el.closest(":disabled")) continue;  // WCAG: inactive, exempt
    const ownText = Array.from(el.childNodes).some(
      (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!ownText) continue;
    const style = getComputedStyle(el);
    const background = backgroundOf(el);
    const text = blend(rgba(style.color), background);
    const [high, low] = [luminance(text), luminance(background)].sort((a, b) => b - a);
    const ratio = (high + 0.05) / (low + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    const needed = large ? 3 : 4.5;
    if (ratio + 1e-6 < needed) {
      const on = background.map(Math.round).join(", ");
      problems.push(["contrast", describe(el),
        `${ratio.toFixed(2)} < ${needed}: ${style.color} on rgb(${on})`]);
    }
  }
  return problems;
}
