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

  // Printing: a button that prints the page (the receipt) with the print stylesheet.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });
})();
