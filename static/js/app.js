/* Small progressive enhancements. Pages work without this file; no inline scripts anywhere (CSP). */
(function () {
  "use strict";

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function palette() {
    var out = [];
    for (var i = 1; i <= 8; i++) out.push(css("--chart-" + i));
    return out;
  }

  // A chart's data: JSON in the canvas's data-series attribute (htmx removes <script> elements it swaps in,
  // json_script ones included, so the data cannot live in one).
  function readSeries(canvas) {
    try { return JSON.parse(canvas.dataset.series || "null"); } catch (e) { return null; }
  }

  // Values arrive as decimal strings; Chart.js needs numbers only to draw (display text stays server-side).
  function toNumber(s) { return s === null || s === undefined ? null : Number(s); }

  function destroyOn(canvas) {
    if (window.Chart) {
      var existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
    }
  }

  function drawLine(canvas) {
    var data = readSeries(canvas);
    if (!data || !window.Chart) return;
    destroyOn(canvas);
    var accent = css("--accent");
    var grid = css("--border");
    var muted = css("--muted");
    var ctx = canvas.getContext("2d");
    var gradient = ctx.createLinearGradient(0, 0, 0, canvas.clientHeight || 260);
    gradient.addColorStop(0, accent + "33");
    gradient.addColorStop(1, accent + "00");
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [{
          data: data.values.map(toNumber), borderColor: accent, backgroundColor: gradient, fill: true,
          borderWidth: 2, pointRadius: 0, pointHoverRadius: 3, tension: 0.25, spanGaps: true
        }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: {
            displayColors: false,
            callbacks: {
              label: function (item) { return data.display[item.dataIndex] + " " + (data.currency || ""); }
            }
          }
        },
        scales: {
          x: { grid: { display: false }, ticks: { color: muted, maxTicksLimit: 6, maxRotation: 0, autoSkip: true }, border: { color: grid } },
          y: { position: "right", grid: { color: grid }, border: { display: false },
               ticks: { color: muted, maxTicksLimit: 5, callback: function (v) { return compact(v); } } }
        }
      }
    });
  }

  function drawDoughnut(canvas) {
    var data = readSeries(canvas);
    if (!data || !window.Chart) return;
    destroyOn(canvas);
    var colors = palette();
    new window.Chart(canvas, {
      type: "doughnut",
      data: {
        labels: data.labels,
        datasets: [{ data: data.values.map(toNumber), backgroundColor: data.labels.map(function (_, i) { return colors[i % colors.length]; }),
                     borderColor: css("--surface"), borderWidth: 2 }]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, cutout: "68%",
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (item) { return data.labels[item.dataIndex] + ": " + data.display[item.dataIndex]; } } } }
      }
    });
  }

  function compact(v) {
    var abs = Math.abs(v);
    if (abs >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (abs >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (abs >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(Math.round(v * 100) / 100);
  }

  function drawCharts(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.chart === "line") drawLine(canvas);
      else if (canvas.dataset.chart === "doughnut") drawDoughnut(canvas);
    });
  }

  // Auto-submit controls marked data-autosubmit when JS is on (the form still has a submit button without JS).
  function wireAutosubmit(root) {
    (root || document).querySelectorAll("[data-autosubmit]").forEach(function (el) {
      if (el.dataset.wired) return;
      el.dataset.wired = "1";
      el.addEventListener("change", function () {
        var form = el.form;
        if (form) { if (form.requestSubmit) form.requestSubmit(); else form.submit(); }
      });
    });
    (root || document).querySelectorAll("[data-js-hide]").forEach(function (el) { el.hidden = true; });
  }

  // Portfolio switcher: a select that navigates (a plain form GET without JS).
  function wireSwitcher(root) {
    (root || document).querySelectorAll("select[data-navigate]").forEach(function (sel) {
      if (sel.dataset.wired) return;
      sel.dataset.wired = "1";
      sel.addEventListener("change", function () { if (sel.value) window.location.href = sel.value; });
    });
  }

  // An NFT image that cannot be loaded (host down, offline, ipfs gateway slow) shows the same placeholder as
  // an NFT without an image, not the browser's broken-image icon with its alt text.
  function replaceBrokenImage(img) {
    var box = img.parentNode;
    if (!box || !box.classList || !box.classList.contains("nft-media")) return;
    var placeholder = document.createElement("span");
    placeholder.textContent = "No image";
    placeholder.title = "The image could not be loaded";
    box.replaceChild(placeholder, img);
  }

  function markBrokenImages(root) {
    (root || document).querySelectorAll(".nft-media img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0) replaceBrokenImage(img);
    });
  }

  document.addEventListener("error", function (evt) {
    if (evt.target && evt.target.tagName === "IMG") replaceBrokenImage(evt.target);
  }, true);

  // The server refused a field holding a private key or seed phrase (portfolio.middleware.SecretQueryMiddleware):
  // blank it here too, so the text leaves the page, and say why.
  document.addEventListener("htmx:afterRequest", function (evt) {
    var xhr = evt.detail && evt.detail.xhr;
    var names = xhr && xhr.getResponseHeader("X-Refused-Fields");
    if (names === null || names === undefined || !xhr.getResponseHeader("HX-Replace-Url")) return;
    var form = evt.detail.elt && (evt.detail.elt.form || evt.detail.elt.closest && evt.detail.elt.closest("form"));
    names.split(",").forEach(function (name) {
      if (!name || !form) return;
      form.querySelectorAll("[name='" + name.replace(/[^\w-]/g, "") + "']").forEach(function (field) {
        if (field.type !== "hidden") field.value = "";
      });
    });
    var note = document.getElementById("refused-note");
    if (!note && form) {
      note = document.createElement("p");
      note.id = "refused-note";
      note.className = "message message-error";
      note.setAttribute("role", "alert");
      form.parentNode.insertBefore(note, form);
    }
    if (note) note.textContent = "This looks like a private key or seed phrase. This app is watch-only: it was not searched or kept.";
  });

  // A refresh run ended (the progress fragment's answer carries HX-Trigger: sync-finished): fetch this page
  // again and swap in its regions marked data-sync-live (the new figures), keeping the progress line and
  // its errors in view. Without JavaScript the run's page links back instead.
  document.addEventListener("sync-finished", function () {
    if (!window.htmx) return;
    document.querySelectorAll("[data-sync-live][id]").forEach(function (region) {
      var swapped = window.htmx.ajax("GET", window.location.href, { source: region, target: "#" + region.id, select: "#" + region.id, swap: "outerHTML" });
      // The swapped-out region is what htmx's settle event names: draw the new region's charts here.
      if (swapped && swapped.then) swapped.then(function () { init(document); });
    });
  });

  // A holding's per-wallet rows: the first click loads them under the row (htmx, hx-trigger "click once"),
  // later clicks fold and unfold them here; the link says whether they are shown.
  document.addEventListener("click", function (evt) {
    var link = evt.target && evt.target.closest && evt.target.closest("[data-testid='holding-expand']");
    if (!link || evt.ctrlKey || evt.metaKey || evt.shiftKey) return;
    var row = link.closest("tr");
    var parts = row && row.nextElementSibling;
    if (!parts || !parts.classList.contains("holding-parts")) return;
    evt.preventDefault();
    evt.stopImmediatePropagation();
    parts.hidden = !parts.hidden;
    markExpanded(document);
  }, true);

  function markExpanded(root) {
    (root || document).querySelectorAll("tr.holding-row").forEach(function (row) {
      var parts = row.nextElementSibling;
      var open = !!(parts && parts.classList.contains("holding-parts") && !parts.hidden);
      row.classList.toggle("open", open);
      var link = row.querySelector("[data-testid='holding-expand']");
      if (link) link.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // A refused refresh (429: asked moments ago; 503: the task queue is down) answers with a short message.
  // htmx leaves 4xx/5xx answers unswapped: show it in a note above the progress line instead, so the
  // click is never met with silence and a run in flight keeps its progress.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var elt = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    if (!elt || !elt.closest || !elt.closest(".refresh-form")) return;
    var status = evt.detail.xhr.status;
    var region = document.getElementById("sync-status");
    if (!region) return;
    var note = document.getElementById("refresh-note");
    if (status === 429 || status === 503) {
      if (!note) {
        note = document.createElement("div");
        note.id = "refresh-note";
        note.setAttribute("aria-live", "polite");
        region.parentNode.insertBefore(note, region);
      }
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
      evt.detail.target = note;
    } else if (note) {
      note.textContent = "";
    }
  });

  // A table too wide for the screen scrolls inside its box: make that box focusable so it can be scrolled
  // from the keyboard (WCAG 2.1.1), and name it after its table's caption or its card's heading.
  function focusableScrollers(root) {
    stackWideTables(root);
    (root || document).querySelectorAll(".table-wrap").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
        if (!box.hasAttribute("role")) {
          var card = box.closest(".card");
          var title = box.querySelector("caption") || (card && card.querySelector("h2"));
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", title ? title.textContent.trim() : "Table");
        }
      }
    });
  }

  // On a phone a table that is still too wide becomes stacked rows (the .stack-sm CSS), each cell labelled
  // with its column's heading; without JavaScript it scrolls inside its box instead.
  function stackWideTables(root) {
    if (!window.matchMedia || !window.matchMedia("(max-width: 560px)").matches) return;
    (root || document).querySelectorAll(".table-wrap > table:not(.stack-sm):not(.holdings)").forEach(function (table) {
      var box = table.parentNode;
      if (box.scrollWidth <= box.clientWidth + 1) return;
      var heads = [].map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        [].forEach.call(tr.children, function (cell, i) {
          if (i > 0 && heads[i] && !cell.hasAttribute("data-label") && cell.tagName === "TD") cell.setAttribute("data-label", heads[i]);
        });
      });
      table.classList.add("stack-sm");
    });
  }

  // The menu toggle (a checkbox, so the menu works without JavaScript) says whether the menu is open.
  function wireNavToggle() {
    var toggle = document.getElementById("nav-toggle");
    if (!toggle || toggle.dataset.wired) return;
    toggle.dataset.wired = "1";
    var sync = function () { toggle.setAttribute("aria-expanded", toggle.checked ? "true" : "false"); };
    toggle.addEventListener("change", sync);
    sync();
  }

  function init(root) {
    drawCharts(root); wireAutosubmit(root); wireSwitcher(root); markBrokenImages(root); focusableScrollers(root); wireNavToggle(); markExpanded(document);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (evt) { init(evt.target); });
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { drawCharts(document); });
  }
  if (window.addEventListener) {
    window.addEventListener("resize", function () { focusableScrollers(document); });
  }
})();
