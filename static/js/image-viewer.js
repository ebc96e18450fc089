// The image page (templates/pacs_link/series_viewer.html): one image of a series rendered by the server
// with a window (width/level, HU for CT), changed by the preset buttons, by typing, or by dragging on
// the image (left-right: width, up-down: level); the value under the pointer; scrolling through the
// series (mouse wheel, arrow keys, the slider), with the neighbours loaded ahead. A series' images are
// each frame of each instance: a multi-frame instance (an enhanced CT or MR, an ultrasound loop)
// scrolls through its frames (?f=, from 0) before the next instance.
//
// The server renders every picture (pacs_link.views.instance_image); this script only builds their
// addresses. At most one picture is requested at a time and only the latest window is asked for
// next, so a fast drag costs a few renders, not one per mouse event.
(() => {
  const viewer = document.getElementById("pacs-viewer");
  if (!viewer) return;

  // [instance id, frame] of each image, in scrolling order.
  const images = JSON.parse(document.getElementById("pacs-images").textContent);
  const base = viewer.dataset.base;
  const img = document.getElementById("pacs-image");
  const widthInput = document.getElementById("pacs-width");
  const levelInput = document.getElementById("pacs-level");
  const slider = document.getElementById("pacs-slice");
  const position = document.getElementById("pacs-position");
  const readout = document.getElementById("pacs-readout");
  const overlayWindow = document.getElementById("pacs-overlay-window");
  const overlayPosition = document.getElementById("pacs-overlay-position");
  const status = document.getElementById("pacs-status");
  const pngLink = document.getElementById("pacs-download-png");
  const jpgLink = document.getElementById("pacs-download-jpg");
  const ownWindow = document.getElementById("pacs-own-window");
  const presets = Array.from(document.querySelectorAll("[data-preset]"));
  const unitLabels = Array.from(document.querySelectorAll("[data-units]"));

  // How long typing in the width or level waits before asking for the picture (ms).
  const TYPING_DELAY = 250;
  // How many images' values (for the readout) are kept: a 512x512 CT slice is 512 KB.
  const VALUES_KEPT = 8;
  // Mouse-wheel travel per image (a wheel notch is ~100; trackpads send many small deltas).
  const WHEEL_STEP = 60;

  let index = Math.min(Math.max(parseInt(viewer.dataset.index, 10) || 0, 0), images.length - 1);
  // null: each image in its own window (the file's, else its value range); else the chosen one.
  let chosen = null;
  let info = null; // the current image's info.json
  let units = viewer.dataset.modality === "CT" ? "HU" : "";
  const infos = new Map();
  const values = new Map();

  const instanceUrl = (id, path) => `${base}${encodeURIComponent(id)}/${path}`;
  const round = (value) => Math.round(value * 100) / 100;

  function windowQuery(extra = {}) {
    const params = new URLSearchParams();
    if (chosen) {
      params.set("w", String(round(chosen.width)));
      params.set("l", String(round(chosen.level)));
    }
    Object.entries(extra).forEach(([key, value]) => params.set(key, value));
    const query = params.toString();
    return query ? `?${query}` : "";
  }

  // The frame goes in the address only for a multi-frame instance's later frames: frame 0 keeps the
  // address it always had (and the browser's copy of it).
  const frameOf = (i) => (images[i][1] ? { f: String(images[i][1]) } : {});
  const imageUrl = (i, ext = "png", extra = {}) =>
    instanceUrl(images[i][0], `image.${ext}`) + windowQuery({ ...frameOf(i), ...extra });
  // The address of image i's info.json or values, and the key it is kept under.
  const frameUrl = (i, path) => {
    const query = new URLSearchParams(frameOf(i)).toString();
    return instanceUrl(images[i][0], path) + (query ? `?${query}` : "");
  };
  const keyOf = (i) => images[i].join("/");

  // --- what the image's info says ---------------------------------------------------------------

  // Each frame's own: an enhanced image's rescale and window may differ from frame to frame.
  function loadInfo(i) {
    const key = keyOf(i);
    if (!infos.has(key)) {
      infos.set(
        key,
        fetch(frameUrl(i, "info.json"), { credentials: "same-origin" }).then((response) => {
          if (!response.ok) {
            infos.delete(key);
            return response.text().then((text) => Promise.reject(new Error(text)));
          }
          return response.json();
        }),
      );
    }
    return infos.get(key);
  }

  // The image's own window (the file's first, else its value range): [width, level], null for colour.
  function ownWindowOf(data) {
    const pair = data && data.default_window;
    return Array.isArray(pair) ? { width: pair[0], level: pair[1] } : null;
  }

  function showWindow() {
    const current = chosen || ownWindowOf(info);
    if (current) {
      if (document.activeElement !== widthInput) widthInput.value = String(round(current.width));
      if (document.activeElement !== levelInput) levelInput.value = String(round(current.level));
      overlayWindow.textContent = `W ${round(current.width)} L ${round(current.level)}${units ? ` ${units}` : ""} ·`;
    }
    presets.forEach((button) => {
      const pressed =
        chosen !== null &&
        Number(button.dataset.width) === chosen.width &&
        Number(button.dataset.level) === chosen.level;
      button.setAttribute("aria-pressed", pressed ? "true" : "false");
      button.classList.toggle("active", pressed);
    });
    pngLink.href = imageUrl(index, "png", { download: "1" });
    jpgLink.href = imageUrl(index, "jpg", { download: "1" });
  }

  // --- the picture ----------------------------------------------------------------------------

  let loading = false;
  let wanted = null; // the address to show once the request in flight is done
  let timer = 0;

  function request() {
    const url = imageUrl(index);
    if (loading) {
      wanted = url;
      return;
    }
    if (img.getAttribute("src") === url) return;
    loading = true;
    const next = new Image();
    next.onload = () => {
      img.src = url; // from the browser's cache: the server marks renders cacheable
      status.textContent = "";
      done();
      preloadNeighbours();
    };
    next.onerror = () => {
      // Ask again for the text of the refusal (503: the PACS did not answer; 404: no longer there).
      fetch(url, { credentials: "same-origin" })
        .then((response) => (response.ok ? "" : response.text()))
        .catch(() => viewer.dataset.textPacsDown)
        .then((text) => {
          status.textContent = text || viewer.dataset.textPacsDown;
          done();
        });
    };
    next.src = url;
  }

  function done() {
    loading = false;
    if (wanted !== null) {
      wanted = null;
      request();
    }
  }

  // Asks for the picture after `delay` ms, on the next frame; a newer call replaces an older one.
  function schedule(delay = 0) {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => window.requestAnimationFrame(request), delay);
  }

  function preloadNeighbours() {
    [index + 1, index - 1].forEach((i) => {
      if (i >= 0 && i < images.length) {
        const neighbour = new Image();
        neighbour.src = imageUrl(i);
      }
    });
  }

  // --- the series -----------------------------------------------------------------------------

  function go(i, first = false) {
    const next = Math.min(Math.max(i, 0), images.length - 1);
    if (next === index && !first) return;
    index = next;
    slider.value = String(index + 1);
    const text = `${index + 1} / ${images.length}`;
    position.textContent = text;
    overlayPosition.textContent = text;
    img.alt = viewer.dataset.textPosition.replace("{n}", index + 1).replace("{total}", images.length);
    readout.textContent = "";
    const url = new URL(window.location.href);
    url.searchParams.set("i", String(index));
    window.history.replaceState(null, "", url);
    info = null;
    loadInfo(index).then(
      (data) => {
        if (index !== next) return;
        info = data;
        if (data.units !== undefined) units = data.units || "";
        unitLabels.forEach((label) => {
          label.textContent = units;
        });
        // A colour image has no window: the server shows it as it is.
        [widthInput, levelInput, ownWindow, ...presets].forEach((control) => {
          control.disabled = Boolean(data.colour);
        });
        showWindow();
      },
      (error) => {
        status.textContent = error.message || viewer.dataset.textPacsDown;
      },
    );
    showWindow();
    schedule();
  }

  slider.addEventListener("input", () => go(parseInt(slider.value, 10) - 1));

  let wheel = 0;
  viewer.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      wheel += event.deltaY;
      while (Math.abs(wheel) >= WHEEL_STEP) {
        const step = Math.sign(wheel);
        wheel -= step * WHEEL_STEP;
        go(index + step);
      }
    },
    { passive: false },
  );

  const KEYS = { ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1, PageUp: -10 };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    // Typing in the width or level, or moving the slider (which scrolls by itself), is not scrolling.
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) {
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key in KEYS) {
      event.preventDefault();
      go(index + KEYS[event.key]);
    } else if (event.key === "Home") {
      event.preventDefault();
      go(0);
    } else if (event.key === "End") {
      event.preventDefault();
      go(images.length - 1);
    }
  });

  // --- the window -----------------------------------------------------------------------------

  function choose(width, level, delay = 0) {
    chosen = { width: Math.max(1, width), level };
    showWindow();
    schedule(delay);
  }

  presets.forEach((button) => {
    button.addEventListener("click", () => choose(Number(button.dataset.width), Number(button.dataset.level)));
  });

  function typed(delay) {
    const width = parseFloat(widthInput.value);
    const level = parseFloat(levelInput.value);
    if (Number.isFinite(width) && width >= 1 && Number.isFinite(level)) choose(width, level, delay);
  }
  widthInput.addEventListener("input", () => typed(TYPING_DELAY));
  levelInput.addEventListener("input", () => typed(TYPING_DELAY));
  widthInput.addEventListener("change", () => typed(0));
  levelInput.addEventListener("change", () => typed(0));

  ownWindow.addEventListener("click", () => {
    chosen = null;
    showWindow();
    schedule();
  });

  let drag = null;
  img.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const typedWindow = { width: parseFloat(widthInput.value), level: parseFloat(levelInput.value) };
    const start = chosen || ownWindowOf(info) || (Number.isFinite(typedWindow.width) && Number.isFinite(typedWindow.level) ? typedWindow : null);
    if (!start) return;
    event.preventDefault();
    img.setPointerCapture(event.pointerId);
    viewer.classList.add("pacs-dragging");
    // HU per pixel dragged: finer for a narrow window (brain), coarser for a wide one (lung, bone).
    drag = { x: event.clientX, y: event.clientY, width: start.width, level: start.level, scale: Math.max(1, start.width / 256) };
  });
  img.addEventListener("pointermove", (event) => {
    if (drag) {
      const width = Math.round(drag.width + (event.clientX - drag.x) * drag.scale);
      const level = Math.round(drag.level + (event.clientY - drag.y) * drag.scale);
      choose(width, level);
    }
    showValue(event);
  });
  const endDrag = () => {
    drag = null;
    viewer.classList.remove("pacs-dragging");
  };
  img.addEventListener("pointerup", endDrag);
  img.addEventListener("pointercancel", endDrag);
  img.addEventListener("pointerleave", () => {
    if (!drag) readout.textContent = "";
  });

  // --- the value under the pointer --------------------------------------------------------------

  function loadValues(i) {
    const key = keyOf(i);
    if (!values.has(key)) {
      const loaded = fetch(frameUrl(i, "values"), { credentials: "same-origin" }).then((response) => {
        if (!response.ok) {
          values.delete(key);
          return Promise.reject(new Error(response.statusText));
        }
        const rows = parseInt(response.headers.get("X-Rows"), 10);
        const columns = parseInt(response.headers.get("X-Columns"), 10);
        // What one step is worth (1 for HU; a power of ten for fractional values such as PET's).
        return Promise.all([response.arrayBuffer(), loadInfo(i)]).then(([buffer, about]) => ({
          rows,
          columns,
          scale: (about && about.values_scale) || 1,
          data: new Int16Array(buffer),
        }));
      });
      values.set(key, loaded);
      if (values.size > VALUES_KEPT) values.delete(values.keys().next().value);
    }
    return values.get(key);
  }

  let lastPointer = null;
  function showValue(event) {
    lastPointer = { x: event.clientX, y: event.clientY };
    const shown = index;
    loadValues(shown).then(
      (grid) => {
        if (shown !== index || !lastPointer) return;
        // The picture is drawn "contain" in the element's box: centred, scaled to fit.
        const box = img.getBoundingClientRect();
        const fit = Math.min(box.width / grid.columns, box.height / grid.rows);
        const left = box.left + (box.width - grid.columns * fit) / 2;
        const top = box.top + (box.height - grid.rows * fit) / 2;
        const column = Math.floor((lastPointer.x - left) / fit);
        const row = Math.floor((lastPointer.y - top) / fit);
        if (column < 0 || row < 0 || column >= grid.columns || row >= grid.rows) {
          readout.textContent = "";
          return;
        }
        const value = round(grid.data[row * grid.columns + column] * grid.scale);
        readout.textContent = `${value}${units ? ` ${units}` : ""} (${column}, ${row})`;
      },
      () => {
        readout.textContent = "";
      },
    );
  }

  go(index, true);
})();
