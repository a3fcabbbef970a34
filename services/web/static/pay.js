// The pay page's button says what will be charged: "Pay $50.00" once the patient types
// 50 in the amount field. An amount that is not dollars and cents, zero, or more than
// what is owed (data-max-cents) leaves the button as "Pay" (the server says why when the
// form is sent). A static script: the page's Content-Security-Policy allows no inline one.
(function () {
  "use strict";

  // dollars and cents as the server reads them: an optional $, digits (commas between
  // groups of three), at most two decimals; the amount in cents, or null
  var DOLLARS = /^\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,9})(?:\.[0-9]{1,2})?$/;

  function cents(text) {
    var cleaned = text.trim();
    if (!DOLLARS.test(cleaned)) {
      return null;
    }
    var parts = cleaned.replace("$", "").replace(/,/g, "").split(".");
    var fraction = ((parts[1] || "") + "00").slice(0, 2);
    return parseInt(parts[0], 10) * 100 + parseInt(fraction, 10);
  }

  function dollars(amount) {
    var whole = Math.floor(amount / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var rest = (amount % 100).toString();
    return "$" + whole + "." + (rest.length < 2 ? "0" + rest : rest);
  }

  function start() {
    var field = document.getElementById("amount");
    var button = document.getElementById("pay-button");
    if (!field || !button) {
      return;
    }
    var most = parseInt(button.dataset.maxCents, 10);
    var follow = function () {
      var amount = cents(field.value);
      var fits = amount !== null && amount > 0 && !(most > 0 && amount > most);
      button.textContent = fits ? "Pay " + dollars(amount) : "Pay";
    };
    field.addEventListener("input", follow);
    follow();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// The pay button, once pressed, shows that the payment is on its way and cannot be pressed
// again (a second press would send nothing new, but the patient should see it is working).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.querySelector("#payment-element")) return;
    if (form.getAttribute("data-sending") === "1") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sending", "1");
    var button = form.querySelector("#pay-button");
    if (button) {
      button.setAttribute("aria-busy", "true");
      button.textContent = "Paying…";
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      form.removeAttribute("data-sending");
      var button = form.querySelector("#pay-button");
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    });
  });
})();
