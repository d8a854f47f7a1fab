// Progressive enhancement of the console. Every page works without this file:
// dialogs fall back to pages of their own, menus are <details> elements.
(function () {
  "use strict";

  // The control that opened each dialog, which gets focus back when the dialog
  // closes (Escape, Cancel or close()). The browser's own restore fails when
  // that control is hidden by then, as a menu item is once its menu closes.
  var openers = new WeakMap();

  function returnFocus(event) {
    var opener = openers.get(event.target);
    if (opener && opener.isConnected && opener.getClientRects().length) {
      opener.focus();
    }
  }

  function openDialog(dialog, opener) {
    openers.set(dialog, opener);
    if (!dialog.hasAttribute("data-returns-focus")) {
      dialog.setAttribute("data-returns-focus", "");
      dialog.addEventListener("close", returnFocus);
    }
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    var first = dialog.querySelector("input:not([type=hidden]), select, textarea, button");
    if (first) {
      first.focus();
    }
  }

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) {
        menu.removeAttribute("open");
      }
    });
  }

  function statusNear(element) {
    var panel = element.closest("section, .panel, dialog") || document;
    return panel.querySelector(".copy-status");
  }

  function copyFrom(button) {
    var input = document.getElementById(button.getAttribute("data-copy-from"));
    var status = statusNear(button);
    function report(text) {
      if (status) {
        status.textContent = text;
      }
    }
    function fallback() {
      input.focus();
      input.select();
      var copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (error) {
        copied = false;
      }
      report(copied ? "Copied to the clipboard." :
        "Could not copy: the text is selected, press Ctrl+C or Cmd+C to copy it.");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () {
        report("Copied to the clipboard.");
      }, fallback);
    } else {
      fallback();
    }
  }

  function confirmWith(control) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) {
      return false;
    }
    dialog.querySelector("form").setAttribute("action", control.getAttribute("data-confirm-action"));
    dialog.querySelector("#confirm-dialog-title").textContent = control.getAttribute("data-confirm-heading");
    dialog.querySelector("#confirm-dialog-body").textContent = control.getAttribute("data-confirm-body");
    dialog.querySelector("#confirm-dialog-submit").textContent = control.getAttribute("data-confirm-button");
    // A menu item is hidden once its menu closes, so focus returns to the
    // menu's button (its summary) instead.
    var menu = control.closest("details.menu");
    var opener = menu ? menu.querySelector("summary") : control;
    closeMenus(null);
    openDialog(dialog, opener);
    return true;
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-open-dialog], [data-close-dialog], [data-confirm-action], [data-copy-from]");
    if (!target) {
      var menu = event.target.closest("details.menu");
      closeMenus(menu);
      return;
    }
    if (target.hasAttribute("data-open-dialog")) {
      var dialog = document.getElementById(target.getAttribute("data-open-dialog"));
      if (dialog) {
        event.preventDefault();
        openDialog(dialog, target);
      }
    } else if (target.hasAttribute("data-close-dialog")) {
      event.preventDefault();
      target.closest("dialog").close();
    } else if (target.hasAttribute("data-confirm-action")) {
      if (confirmWith(target)) {
        event.preventDefault();
      }
    } else if (target.hasAttribute("data-copy-from")) {
      event.preventDefault();
      copyFrom(target);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var open = document.querySelector("details.menu[open]");
    if (open) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
    }
  });

  // The response to the Generate token form shows the secret once. Its address
  // becomes the provisioning page's, so a reload fetches that page afresh
  // instead of sending the form again.
  var created = document.querySelector("[data-replace-url]");
  if (created && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", created.getAttribute("data-replace-url"));
  }
})();
