// The image viewer: OpenSeadragon (vendor/openseadragon, BSD-3) showing the server's Deep
// Zoom tiles (/ui/api/images/{id}/tiles.dzi), so a 100-megapixel mosaic costs only the tiles
// on screen. Zoom: wheel, double-click, + - 0 (keys handled by annotate.js); pan: drag.
// The tiles are the *upright* image (the server applied the EXIF orientation); points are
// in stored pixels, so every marker goes through the same orientation map as the pixels.
// Markers are OpenSeadragon overlays: HTML elements that stay on their point while the view
// moves. OpenSeadragon's own keyboard handling is off and its canvas takes no focus: the
// page's #viewer section keeps the focus and all the keys.
"use strict";

class Viewer {
  constructor(element, onPick, onAdd) {
    this.element = element;
    this.onPick = onPick;
    this.onAdd = onAdd;
    this.width = 1;       // stored pixels
    this.height = 1;
    this.orientation = 1;
    this.points = [];
    this.current = -1;
    this.markers = [];    // one element per point, in this.points' order
    this.shown = null;    // the point ids the markers were made for
    this.opened = null;   // image id of the tiles on screen
    // OpenSeadragon injects a <style> unless it finds style[data-openseadragon-mobile-css];
    // the page's CSP refuses inline styles (a console error each load). A "style" element
    // outside the HTML namespace matches that selector and is no style sheet; the one rule
    // OpenSeadragon wanted is in app.css.
    if (!document.querySelector("style[data-openseadragon-mobile-css]")) {
      const stub = document.createElementNS("urn:quadrat:stub", "style");
      stub.setAttribute("data-openseadragon-mobile-css", "true");
      stub.setAttribute("hidden", "");
      document.head.append(stub);
    }
    this.osd = OpenSeadragon({
      element,
      drawer: "canvas",             // same pixels everywhere (no WebGL differences)
      tabIndex: "",                 // the canvas takes no focus: #viewer keeps it
      keyboardNavEnabled: false,    // 1-5, w/a/s/d, r, f... are the page's keys
      showNavigationControl: false, // no button images to ship; keys and wheel zoom
      showNavigator: false,         // a minimap over the image would hide markers under it
      immediateRender: true,        // the level on screen first, not every level up to it
      blendTime: 0,
      animationTime: 0.35,
      visibilityRatio: 0.3,
      minZoomImageRatio: 0.5,
      maxZoomPixelRatio: 8,
      imageLoaderLimit: 6,
      clickTimeThreshold: 1500,     // a slow press that did not move still picks a point
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
      gestureSettingsPen: { clickToZoom: false, dblClickToZoom: true },
      gestureSettingsTouch: { clickToZoom: false, dblClickToZoom: true, pinchRotate: false },
    });
    this.osd.addHandler("canvas-click", (event) => this.click(event));
    // A marker takes its own clicks (OpenSeadragon reports none on overlays); a press that
    // became a drag is a pan, not a pick.
    this.press = null;
    element.addEventListener("pointerdown", (e) => { this.press = [e.clientX, e.clientY]; }, true);
    element.addEventListener("click", (event) => {
      const marker = event.target.closest ? event.target.closest(".marker") : null;
      if (!marker || event.shiftKey) return;
      const press = this.press;
      if (press && Math.hypot(event.clientX - press[0], event.clientY - press[1]) > 5) return;
      this.onPick(Number(marker.dataset.index));
    });
    this.osd.addHandler("canvas-key", (event) => { event.preventDefaultAction = true; });
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

  uprightWidth() {
    return this.orientation >= 5 ? this.height : this.width;
  }

  // A point's centre in OpenSeadragon's viewport units (the image is 1 wide).
  location(p) {
    const [a, b, c, d, e, f] = this.orient();
    const x = p.column + 0.5, y = p.row + 0.5, w = this.uprightWidth();
    return new OpenSeadragon.Point((a * x + c * y + e) / w, (b * x + d * y + f) / w);
  }

  // Viewport units -> stored [row, column] (the inverse of location()).
  toStored(point) {
    const [a, b, c, d, e, f] = this.orient();
    const w = this.uprightWidth();
    const ox = point.x * w - e, oy = point.y * w - f;
    return [Math.floor(c * ox + d * oy), Math.floor(a * ox + b * oy)];
  }

  // Fetch the DZI descriptor (so a refusal shows the server's reason), then open its tiles.
  async open(imageId) {
    const response = await fetch(`/ui/api/images/${imageId}/tiles.dzi`, { credentials: "same-origin" });
    if (response.status === 401) {
      location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("Signed out");
    }
    if (!response.ok) {
      let detail = "HTTP " + response.status;
      try { detail = (await response.json()).detail || detail; } catch (_error) { /* not JSON */ }
      throw new Error("Image not shown: " + detail);
    }
    const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
    const root = xml.documentElement, size = root.getElementsByTagName("Size")[0];
    const source = {
      Image: {
        xmlns: root.namespaceURI,
        Url: root.getAttribute("Url"),
        Format: root.getAttribute("Format"),
        Overlap: root.getAttribute("Overlap"),
        TileSize: root.getAttribute("TileSize"),
        Size: { Width: size.getAttribute("Width"), Height: size.getAttribute("Height") },
      },
    };
    await new Promise((resolve, reject) => {
      const opened = () => { this.osd.removeHandler("open-failed", failed); resolve(); };
      const failed = (event) => {
        this.osd.removeHandler("open", opened);
        reject(new Error("Image not shown: " + (event.message || "the viewer could not open it")));
      };
      this.osd.addOnceHandler("open", opened);
      this.osd.addOnceHandler("open-failed", failed);
      this.osd.open(source);
    });
    this.opened = imageId;
    this.shown = null;  // OpenSeadragon dropped the overlays: make the markers again
  }

  // Resolves when the tiles of the view are all loaded (or after limitMs: never hangs).
  drawn(limitMs) {
    const item = this.osd.world.getItemAt(0);
    if (!item || item.getFullyLoaded()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (event) => { if (event.fullyLoaded) done(); };
      const done = () => {
        clearTimeout(timer);
        item.removeHandler("fully-loaded-change", check);
        resolve();
      };
      const timer = setTimeout(done, limitMs);
      item.addHandler("fully-loaded-change", check);
    });
  }

  show(width, height, orientation, points) {
    this.width = width;
    this.height = height;
    this.orientation = orientation || 1;
    this.shown = null;
    this.setPoints(points, this.current);
  }

  // Markers for these points; only their classes change when the set of points did not.
  setPoints(points, current) {
    this.points = points;
    this.current = current;
    const ids = points.map((p) => p.id).join(",");
    if (ids !== this.shown) {
      this.osd.clearOverlays();
      this.markers = points.map((p, i) => {
        const marker = document.createElement("div");
        marker.dataset.index = String(i);
        marker.dataset.number = String(p.number);
        marker.setAttribute("aria-hidden", "true");  // the list of points is the accessible copy
        this.osd.addOverlay({
          element: marker,
          location: this.location(p),
          placement: OpenSeadragon.Placement.TOP_LEFT,  // app.css centres the dot
          checkResize: false,
          rotationMode: OpenSeadragon.OverlayRotationMode.NO_ROTATION,
        });
        return marker;
      });
      this.shown = ids;
    }
    points.forEach((p, i) => {
      const name = `marker status-${p.status || "unannotated"}${i === current ? " current" : ""}`;
      const marker = this.markers[i];
      if (marker.className !== name) marker.className = name;
      marker.dataset.status = p.status || "unannotated";
    });
  }

  fit() {
    this.osd.viewport.goHome();
  }

  zoom(factor) {
    this.osd.viewport.zoomBy(factor);
    this.osd.viewport.applyConstraints();
  }

  // Zoom about point i (the keys' zoom: the current point stays where it is).
  zoomAt(factor, i) {
    const p = this.points[i];
    if (!p) return this.zoom(factor);
    this.osd.viewport.zoomBy(factor, this.location(p));
    this.osd.viewport.applyConstraints();
    this.reveal(i);
  }

  // Centre point i with a square of `side` image pixels around it filling the view (the
  // page's "zoom to point" mode: the point's surroundings, not the whole photo).
  focusOn(i, side) {
    const p = this.points[i];
    if (!p || this.opened === null) return;
    const at = this.location(p), half = side / 2 / this.uprightWidth();
    this.osd.viewport.fitBounds(new OpenSeadragon.Rect(at.x - half, at.y - half, 2 * half, 2 * half));
  }

  // Keep point i on screen: when zoomed in and the point is outside the view, pan to it.
  // Never when the whole image is on screen (a point on the image's edge sits on the
  // container's edge there; panning would push the image off screen for nothing).
  reveal(i) {
    const p = this.points[i];
    if (!p || this.opened === null) return;
    const viewport = this.osd.viewport;
    if (viewport.getZoom(false) <= viewport.getHomeZoom() * 1.001) return;
    const at = viewport.pixelFromPoint(this.location(p), false);
    const size = viewport.getContainerSize(), m = 12;
    if (at.x < m || at.y < m || at.x > size.x - m || at.y > size.y - m) {
      viewport.panTo(this.location(p));
      viewport.applyConstraints();
    }
  }

  click(event) {
    if (!event.quick) return;
    event.preventDefaultAction = true;
    const viewport = this.osd.viewport;
    if (event.shift && this.onAdd) {
      const [row, column] = this.toStored(viewport.pointFromPixel(event.position, true));
      if (row >= 0 && column >= 0 && row < this.height && column < this.width) this.onAdd(row, column);
      return;
    }
    let best = -1, bestDistance = 18 ** 2;
    this.points.forEach((p, i) => {
      const at = viewport.pixelFromPoint(this.location(p), true);
      const distance = (at.x - event.position.x) ** 2 + (at.y - event.position.y) ** 2;
      if (distance < bestDistance) { best = i; bestDistance = distance; }
    });
    if (best >= 0) this.onPick(best);
  }
}
