// Stripe's Payment Element on the pay page and the virtual terminal. The card is typed
// into Stripe's own frame; this form sends only the PaymentMethod id Stripe gives back
// (payment_method). The container carries the publishable key, the practice's connected
// account and the amount in cents. When Stripe.js did not load, the page says so.
(function () {
  "use strict";

  function start() {
    var box = document.getElementById("payment-element");
    if (!box) {
      return;
    }
    var form = box.closest("form");
    var field = form.querySelector('input[name="payment_method"]');
    var button = form.querySelector('button[type="submit"]');
    var problem = document.getElementById("card-form-problem");
    var say = function (text) {
      problem.textContent = text;
      problem.hidden = false;
    };
    if (typeof window.Stripe !== "function") {
      say(
        "The card form could not load, so no card can be taken here right now. " +
          "Check the connection and reload the page; no payment was made."
      );
      button.disabled = true;
      return;
    }
    var options = box.dataset.account ? { stripeAccount: box.dataset.account } : undefined;
    var stripe = window.Stripe(box.dataset.key, options);
    var elements = stripe.elements({
      mode: "payment",
      amount: Math.max(parseInt(box.dataset.amount, 10) || 50, 50),
      currency: "usd",
      captureMethod: "manual",
      paymentMethodCreation: "manual",
      paymentMethodTypes: ["card"]
    });
    elements.create("payment").mount(box);
    var sending = false;
    form.addEventListener("submit", function (event) {
      if (field.value || sending) {
        return;
      }
      event.preventDefault();
      sending = true;
      button.disabled = true;
      elements
        .submit()
        .then(function (checked) {
          if (checked.error) {
            throw checked.error;
          }
          return stripe.createPaymentMethod({ elements: elements });
        })
        .then(function (made) {
          if (made.error) {
            throw made.error;
          }
          field.value = made.paymentMethod.id;
          form.submit();
        })
        .catch(function (error) {
          say(error.message || "The card could not be read. Check it and try again.");
          sending = false;
          button.disabled = false;
        });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
