// A canvas image viewer: zoom (wheel, + - 0), pan (drag), EXIF orientation, point markers.
// Points are in stored pixels; the image is drawn upright (its EXIF orientation applied)
// and the markers go through the same transform.
"use strict";

const STATUS_COLOURS = {
  unannotated: "#9e9e9e",
  machine: "#ff9800",
  alleviate: "#ffe23b",
  confirmed: "#2ecc71",
  imported: "#3d8bfd",
};

class Viewer {
  constructor(canvas, onPick, onAdd) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onPick = onPick;
    this.onAdd = onAdd;
    this.image = null;
    this.width = 1;
    this.height = 1;
    this.orientation = 1;
    this.points = [];
    this.current = -1;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.drag = null;
    // The image is drawn on its own canvas only when the view changes; markers are drawn
    // over a copy of it, at most once a frame, so a keypress costs a blit, not a resample.
    this.base = document.createElement("canvas");
    this.baseValid = false;
    this.frame = 0;
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
  }

  // Stored (x, y) -> upright (X, Y): the EXIF orientation as an affine map [a b c d e f].
  orient() {
    const W = this.width, H = this.height;
    return {
      1: [1, 0, 0, 1, 0, 0], 2: [-1, 0, 0, 1, W, 0], 3: [-1, 0, 0, -1, W, H],
      4: [1, 0, 0, -1, 0, H], 5: [0, 1, 1, 0, 0, 0], 6: [0, 1, -1, 0, H, 0],
      7: [0, -1, -1, 0, H, W], 8: [0, -1, 1, 0, 0, W],
    }[this.orientation] || [1, 0, 0, 1, 0, 0];
  }

  upright() {
    return this.orientation >= 5 ? [this.height, this.width] : [this.width, this.height];
  }

  toScreen(row, column) {
    const [a, b, c, d, e, f] = this.orient();
    const x = column + 0.5, y = row + 0.5;
    return [this.scale * (a * x + c * y + e) + this.tx, this.scale * (b * x + d * y + f) + this.ty];
  }

  // Screen pixel (canvas units) -> stored [row, column] (the inverse of toScreen).
  toStored(sx, sy) {
    const [a, b, c, d, e, f] = this.orient();
    const ox = (sx - this.tx) / this.scale - e, oy = (sy - this.ty) / this.scale - f;
    return [Math.floor(c * ox + d * oy), Math.floor(a * ox + b * oy)];
  }

  show(image, width, height, orientation, points) {
    const first = this.image === null || this.width !== width || this.height !== height;
    this.image = image;
    this.width = width;
    this.height = height;
    this.orientation = orientation || 1;
    this.points = points;
    if (first) this.fit();
    this.draw();
  }

  setPoints(points, current) {
    this.points = points;
    this.current = current;
    this.request(false);
  }

  // Redraw on the next frame (the image too when the view changed).
  request(view) {
    if (view) this.baseValid = false;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  draw() {
    this.request(true);
  }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(box.width * ratio));
    this.canvas.height = Math.max(1, Math.round(box.height * ratio));
    this.canvas.style.width = box.width + "px";
    this.canvas.style.height = box.height + "px";
    this.ratio = ratio;
    this.fit();
  }

  fit() {
    const [W, H] = this.upright();
    const cw = this.canvas.width, ch = this.canvas.height;
    this.scale = Math.min(cw / W, ch / H);
    this.tx = (cw - W * this.scale) / 2;
    this.ty = (ch - H * this.scale) / 2;
    this.draw();
  }

  zoom(factor, cx, cy) {
    const x = cx === undefined ? this.canvas.width / 2 : cx;
    const y = cy === undefined ? this.canvas.height / 2 : cy;
    const scale = Math.min(40, Math.max(0.02, this.scale * factor));
    const k = scale / this.scale;
    this.tx = x - k * (x - this.tx);
    this.ty = y - k * (y - this.ty);
    this.scale = scale;
    this.draw();
  }

  // Zoom about point i (the keys' zoom: the current point stays where it is).
  zoomAt(factor, i) {
    const p = this.points[i];
    if (!p) return this.zoom(factor);
    const [x, y] = this.toScreen(p.row, p.column);
    this.zoom(factor, x, y);
    this.reveal(i);
  }

  // Keep point i on screen (pan to it when it is outside the view).
  reveal(i) {
    const p = this.points[i];
    if (!p) return;
    const [sx, sy] = this.toScreen(p.row, p.column);
    const m = 12 * (this.ratio || 1);
    if (sx < m || sy < m || sx > this.canvas.width - m || sy > this.canvas.height - m) {
      this.tx += this.canvas.width / 2 - sx;
      this.ty += this.canvas.height / 2 - sy;
      this.request(true);
    }
  }

  wheel(event) {
    event.preventDefault();
    const r = this.ratio || 1;
    this.zoom(event.deltaY < 0 ? 1.2 : 1 / 1.2, event.offsetX * r, event.offsetY * r);
  }

  down(event) {
    this.drag = { x: event.clientX, y: event.clientY, tx: this.tx, ty: this.ty, moved: false };
    this.canvas.setPointerCapture(event.pointerId);
  }

  move(event) {
    if (!this.drag) return;
    const r = this.ratio || 1;
    const dx = (event.clientX - this.drag.x) * r, dy = (event.clientY - this.drag.y) * r;
    if (Math.abs(dx) + Math.abs(dy) > 4) this.drag.moved = true;
    this.tx = this.drag.tx + dx;
    this.ty = this.drag.ty + dy;
    this.draw();
  }

  up(event) {
    const drag = this.drag;
    this.drag = null;
    if (!drag || drag.moved) return;
    const r = this.ratio || 1;
    const x = event.offsetX * r, y = event.offsetY * r;
    if (event.shiftKey && this.onAdd) {
      const [row, column] = this.toStored(x, y);
      if (row >= 0 && column >= 0 && row < this.height && column < this.width) this.onAdd(row, column);
      return;
    }
    let best = -1, bestDistance = (18 * r) ** 2;
    this.points.forEach((p, i) => {
      const [sx, sy] = this.toScreen(p.row, p.column);
      const distance = (sx - x) ** 2 + (sy - y) ** 2;
      if (distance < bestDistance) { best = i; bestDistance = distance; }
    });
    if (best >= 0) this.onPick(best);
  }

  renderBase() {
    const base = this.base;
    if (base.width !== this.canvas.width || base.height !== this.canvas.height) {
      base.width = this.canvas.width;
      base.height = this.canvas.height;
    }
    const g = base.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = "#1b1f24";
    g.fillRect(0, 0, base.width, base.height);
    if (this.image) {
      const [a, b, c, d, e, f] = this.orient();
      g.setTransform(this.scale, 0, 0, this.scale, this.tx, this.ty);
      g.transform(a, b, c, d, e, f);
      g.imageSmoothingEnabled = this.scale < 2;
      g.drawImage(this.image, 0, 0, this.width, this.height);
    }
    this.baseValid = true;
  }

  render() {
    if (!this.baseValid) this.renderBase();
    const g = this.context;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.drawImage(this.base, 0, 0);
    if (!this.image) return;
    const r = this.ratio || 1;
    const radius = 7 * r;
    g.font = `bold ${11 * r}px system-ui, sans-serif`;
    g.textBaseline = "middle";
    this.points.forEach((p, i) => {
      const [x, y] = this.toScreen(p.row, p.column);
      g.beginPath();
      g.arc(x, y, radius, 0, 2 * Math.PI);
      g.fillStyle = STATUS_COLOURS[p.status || "unannotated"] || STATUS_COLOURS.unannotated;
      g.fill();
      g.lineWidth = 1.5 * r;
      g.strokeStyle = "#000";
      g.stroke();
      if (i === this.current) {
        g.beginPath();
        g.arc(x, y, radius + 5 * r, 0, 2 * Math.PI);
        g.lineWidth = 3 * r;
        g.strokeStyle = "#fff";
        g.stroke();
        g.beginPath();
        g.arc(x, y, radius + 8 * r, 0, 2 * Math.PI);
        g.lineWidth = 1.5 * r;
        g.strokeStyle = "#000";
        g.stroke();
      }
      const text = String(p.number);
      const tx = x + radius + 3 * r;
      g.lineWidth = 3 * r;
      g.strokeStyle = "#000";
      g.strokeText(text, tx, y);
      g.fillStyle = "#fff";
      g.fillText(text, tx, y);
    });
  }
}
