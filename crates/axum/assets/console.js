// The Tollgate console's progressive enhancement. Every page works without this script; it
// adds a copy button, a dialog to confirm a deletion, "more tokens" without leaving the page
// and the expiry date field only when it is needed. It never builds HTML from strings: text
// goes in with textContent, and rows come from the server's own escaped pages.
(function () {
  "use strict";

  // Copy: a <button data-copy="ID" hidden> copies the value of the field #ID.
  function setupCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      if (!field) {
        return;
      }
      var say = function (text) {
        if (status) {
          status.textContent = text;
        }
      };
      var fallback = function () {
        field.focus();
        field.select();
        var copied = false;
        try {
          copied = document.execCommand("copy");
        } catch (e) {
          copied = false;
        }
        say(copied ? "Copied." : "Press Ctrl+C (or ⌘C) to copy the selected token.");
      };
      button.hidden = false;
      button.addEventListener("click", function () {
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(function () {
            say("Copied.");
          }, fallback);
        } else {
          fallback();
        }
      });
      // Clicking the field selects the whole token.
      field.addEventListener("focus", function () {
        field.select();
      });
    });
  }

  // Delete: links with data-delete open the dialog instead of the confirmation page.
  function setupDelete() {
    var dialog = document.getElementById("delete-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return;
    }
    var form = dialog.querySelector("form");
    var name = dialog.querySelector("[data-delete-name]");
    var version = form.querySelector("input[name=version]");
    var cancel = dialog.querySelector("[data-cancel]");
    var opener = null;
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[data-delete]") : null;
      if (!link) {
        return;
      }
      event.preventDefault();
      name.textContent = link.getAttribute("data-delete");
      form.setAttribute("action", link.getAttribute("data-action"));
      version.value = link.getAttribute("data-version") || "";
      opener = link;
      dialog.showModal();
      // The safe choice has the focus; Escape closes the dialog too.
      cancel.focus();
    });
    cancel.addEventListener("click", function () {
      dialog.close();
    });
    dialog.addEventListener("close", function () {
      if (opener && document.body.contains(opener)) {
        opener.focus();
      }
    });
  }

  // More: the next page's rows are appended to the table.
  function setupMore() {
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a#more") : null;
      var rows = document.getElementById("token-rows");
      if (!link || !rows || !window.fetch || !window.DOMParser) {
        return;
      }
      event.preventDefault();
      if (link.getAttribute("aria-busy") === "true") {
        return;
      }
      link.setAttribute("aria-busy", "true");
      var href = link.href;
      fetch(href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var incoming = page.getElementById("token-rows");
          var first = null;
          if (incoming) {
            Array.prototype.slice.call(incoming.children).forEach(function (row) {
              var adopted = document.adoptNode(row);
              rows.appendChild(adopted);
              first = first || adopted;
            });
          }
          var next = page.getElementById("more");
          if (next) {
            link.setAttribute("href", next.getAttribute("href"));
            link.removeAttribute("aria-busy");
          } else {
            link.parentNode.removeChild(link);
          }
          var count = document.getElementById("count");
          if (count) {
            count.textContent = rows.children.length + " tokens shown" + (next ? "." : ", all of them.");
          }
          var target = first && first.querySelector("a");
          if (target) {
            target.focus();
          }
        })
        .catch(function () {
          window.location.href = href;
        });
    });
  }

  // Expiry: the date field shows only with "On a date…".
  function setupExpiry() {
    document.querySelectorAll("select[data-expiry]").forEach(function (select) {
      var field = document.getElementById(select.getAttribute("data-expiry"));
      if (!field) {
        return;
      }
      var sync = function () {
        field.hidden = select.value !== "date";
      };
      select.addEventListener("change", sync);
      sync();
    });
  }

  setupCopy();
  setupDelete();
  setupMore();
  setupExpiry();
})();
