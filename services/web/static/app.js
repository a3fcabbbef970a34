// The dashboard's few behaviours. No inline scripts: the Content-Security-Policy forbids them.
(function () {
  "use strict";

  // Menus and popovers (<details>): one open at a time; Escape or a click outside closes.
  function closeAll(except) {
    document.querySelectorAll("details.dropdown[open], details.popover[open]").forEach(function (d) {
      if (d !== except && !d.contains(except)) d.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    var inside = event.target.closest("details.dropdown, details.popover");
    closeAll(inside);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = document.querySelector("details.dropdown[open], details.popover[open]");
      if (open) {
        open.removeAttribute("open");
        var summary = open.querySelector("summary");
        if (summary) summary.focus();
      }
    }
  });

  // A refreshing list waits while someone reads a receipt, uses a menu or types in it.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail.elt;
    if (!el || !el.hasAttribute("data-poll")) return;
    var busy = el.querySelector("details[open]") ||
      (document.activeElement && el.contains(document.activeElement) &&
        document.activeElement.tagName !== "BODY");
    if (busy) event.preventDefault();
  });

  // "Select all" checkboxes: <input type="checkbox" data-select-all="name">.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("input[data-select-all]")) {
      var name = box.getAttribute("data-select-all");
      document.querySelectorAll('input[type="checkbox"][name="' + name + '"]').forEach(function (c) {
        c.checked = box.checked;
      });
    }
    var counter = document.querySelector("[data-selected-count]");
    if (counter) {
      var which = counter.getAttribute("data-selected-count");
      counter.textContent = document.querySelectorAll('input[name="' + which + '"]:checked').length;
    }
  });

  // Buttons that ask before acting: <button data-confirm="Text">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // --- phones and tablets ---
  // A table stacks into rows on a phone; each cell is labelled with its column's name,
  // taken from the table's header unless the template gives the cell a data-label.
  function labelCells(root) {
    (root || document).querySelectorAll("table.grid").forEach(function (table) {
      if (!table.tHead || !table.tHead.rows.length) return;
      var names = [];
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        // the column's name only: not the words of a filter popover in the header
        var named = th.cloneNode(true);
        Array.prototype.forEach.call(named.querySelectorAll("details"), function (d) { d.remove(); });
        var name = named.textContent.replace(/[▲▼↑↓]/g, "").replace(/\s+/g, " ").trim();
        for (var i = 0; i < (th.colSpan || 1); i++) names.push(name);
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (!cell.hasAttribute("data-label") && cell.colSpan === 1) {
              cell.setAttribute("data-label", names[column] || "");
            }
            column += cell.colSpan || 1;
          });
        });
      });
    });
  }

  // --- feedback ---
  // While a request runs, a bar at the top of the page moves and the button pressed shows
  // it is busy and cannot be pressed again (a form cannot be sent twice). A button with
  // data-working="Sending…" says that instead of its label while a long action runs.
  var busy = 0;
  function showBusy(on) {
    busy = Math.max(0, busy + (on ? 1 : -1));
    document.documentElement.classList.toggle("is-busy", busy > 0);
    var bar = document.getElementById("busy");
    if (bar) bar.hidden = busy === 0;
  }
  function markBusy(button, keepFocus) {
    if (!button) return;
    button.classList.add("is-busy");
    button.setAttribute("aria-busy", "true");
    var working = button.getAttribute("data-working");
    if (working) {
      button.setAttribute("data-label-before", button.textContent);
      button.textContent = working;
    }
    var note = button.form && button.form.querySelector("[data-working-note]");
    if (note) note.hidden = false;
    // disabled once the form's values are taken, so the button's own name and value go too;
    // an htmx button keeps its focus instead (a disabled one loses it, and the element
    // swapped in for it would not get it back): a second press is refused while busy
    if (keepFocus) button.setAttribute("aria-disabled", "true");
    else window.setTimeout(function () { button.disabled = true; }, 0);
  }
  function unmarkBusy(button) {
    if (!button) return;
    button.classList.remove("is-busy");
    button.removeAttribute("aria-busy");
    button.removeAttribute("aria-disabled");
    button.disabled = false;
    var before = button.getAttribute("data-label-before");
    if (before !== null) {
      button.textContent = before;
      button.removeAttribute("data-label-before");
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
    if (form.getAttribute("data-sending") === "1") {
      event.preventDefault(); // already on its way: a second press sends nothing
      return;
    }
    form.setAttribute("data-sending", "1");
    markBusy(event.submitter || form.querySelector("button[type=submit], button:not([type])"));
    showBusy(true);
  });
  // Back to a page kept by the browser: its forms may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      form.removeAttribute("data-sending");
      form.querySelectorAll("button.is-busy").forEach(unmarkBusy);
    });
    busy = 0;
    showBusy(false);
  });

  function isPoll(el) {
    return el && el.closest && el.closest("[data-poll], #badge-slot") !== null;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail.elt;
    var xhr = event.detail.xhr;
    if (event.defaultPrevented || isPoll(el) || !xhr) return;
    var config = event.detail.requestConfig;
    var submitter = config && config.triggeringEvent && config.triggeringEvent.submitter;
    var button = el.matches("button, input[type=submit]") ? el : submitter || null;
    if (button && button.classList.contains("is-busy")) {
      event.preventDefault(); // already on its way: a second press sends nothing
      return;
    }
    markBusy(button, true);
    showBusy(true);
    // the request's end, however it ends (the element may have been swapped away by then)
    xhr.addEventListener("loadend", function () {
      if (button && document.contains(button)) unmarkBusy(button);
      showBusy(false);
    });
  });
  document.addEventListener("htmx:afterSettle", function () { labelCells(); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { labelCells(); });
  } else {
    labelCells();
  }

  // Popovers marked data-hover (receipts) open on hover and on keyboard focus as well as on
  // click; one opened by hover closes when the pointer leaves, one clicked stays open.
  function hoverPopover(target) {
    return target && target.closest ? target.closest("details.popover[data-hover]") : null;
  }
  document.addEventListener("mouseover", function (event) {
    var d = hoverPopover(event.target);
    if (d && !d.open) {
      closeAll(d);
      d.setAttribute("data-hovered", "1");
      d.open = true;
    }
  });
  document.addEventListener("mouseout", function (event) {
    var d = hoverPopover(event.target);
    if (d && d.hasAttribute("data-hovered") && !d.contains(event.relatedTarget)) {
      d.removeAttribute("data-hovered");
      d.open = false;
    }
  });
  document.addEventListener("focusin", function (event) {
    var d = hoverPopover(event.target);
    if (d && !d.open && event.target.tagName === "SUMMARY") {
      closeAll(d);
      d.setAttribute("data-hovered", "1");
      d.open = true;
    }
  });
  // a click on the summary of a popover hover opened keeps it open (instead of closing it)
  document.addEventListener("click", function (event) {
    var summary = event.target.closest ? event.target.closest("details.popover[data-hover] > summary") : null;
    if (!summary) return;
    var d = summary.parentElement;
    if (d.hasAttribute("data-hovered")) {
      event.preventDefault();
      d.removeAttribute("data-hovered");
      d.open = true;
    }
  });

  // AR: a column hidden at this width (its figures on the line under each name, app.css)
  // keeps its filter, moved into the Patient header; back in its own header when shown.
  function placeHiddenFilters() {
    var holder = document.querySelector("[data-tablet-filters]");
    if (!holder) return;
    var moved = Array.prototype.map.call(
      document.querySelectorAll("#ar-table thead th.sec details.colfilter, #ar-table thead th.opt details.colfilter"),
      function (d) { return [d, d.parentElement]; });
    function place() {
      moved.forEach(function (pair) {
        var hidden = window.getComputedStyle(pair[1].closest("th")).display === "none";
        var where = hidden ? holder : pair[1];
        if (pair[0].parentElement !== where) where.appendChild(pair[0]);
      });
    }
    window.addEventListener("resize", place);
    place();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", placeHiddenFilters);
  } else {
    placeHiddenFilters();
  }

  // Printing: a button that prints the page (the receipt) with the print stylesheet.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });
})();
