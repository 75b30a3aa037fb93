// arc-atlas ui: small progressive enhancements, no framework. Everything works without
// JavaScript except the keyboard shortcuts, copy buttons and the timeline filter.
// Loaded with `defer` from base.html; the Content-Security-Policy forbids inline scripts.
"use strict";

(function () {
  // True while the user types in a field, where single-letter shortcuts must not fire.
  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  // (a) Review queue shortcuts: a approve, q quarantine, s skip, n the note; Escape leaves a field.
  function queueShortcuts() {
    if (document.body.dataset.page !== "queue") return;
    var buttons = { a: "queue-approve", q: "queue-quarantine", s: "queue-skip" };
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if (typing(event.target)) {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      var key = event.key.toLowerCase();
      if (key === "n") {
        var note = document.getElementById("queue-note");
        if (note) {
          event.preventDefault();
          note.focus();
        }
        return;
      }
      var id = buttons[key];
      if (!id) return;
      var button = document.getElementById(id);
      if (button && !button.disabled) {
        event.preventDefault();
        button.click();
      }
    });
  }

  // (b) A "select all" checkbox toggles every session checkbox.
  function selectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        document.querySelectorAll("input[type=checkbox][name=session_id]").forEach(function (one) {
          if (!one.disabled) one.checked = box.checked;
        });
      });
    });
  }

  function isField(element) {
    var tag = element.tagName.toLowerCase();
    return tag === "input" || tag === "textarea";
  }

  // (c) Copy buttons: data-copy names the element whose text goes to the clipboard.
  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        var source = document.getElementById(button.dataset.copy);
        if (!source) return;
        var text = isField(source) ? source.value : source.textContent;
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          window.setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(source, done); });
        } else {
          fallbackCopy(source, done);
        }
      });
    });
  }

  // The clipboard API needs a secure context; http://HOST:PORT of another machine is not one.
  function fallbackCopy(source, done) {
    if (isField(source)) {
      source.select();
      if (document.execCommand("copy")) done();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      if (document.execCommand("copy")) done();
    } finally {
      selection.removeAllRanges();
    }
  }

  // (d) Forms that change many sessions ask first.
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  // (e) Event timeline filter: selects with data-filter-events="type" or "actor".
  function timelineFilter() {
    var controls = document.querySelectorAll("[data-filter-events]");
    if (!controls.length) return;
    var apply = function () {
      var wanted = {};
      controls.forEach(function (control) {
        wanted[control.dataset.filterEvents] = control.value;
      });
      document.querySelectorAll("li[data-event-type][data-actor]").forEach(function (row) {
        var show =
          (!wanted.type || row.dataset.eventType === wanted.type) &&
          (!wanted.actor || row.dataset.actor === wanted.actor);
        row.hidden = !show;
      });
    };
    controls.forEach(function (control) {
      control.addEventListener("change", apply);
      control.addEventListener("input", apply);
    });
    apply();
  }

  function start() {
    queueShortcuts();
    selectAll();
    copyButtons();
    confirmForms();
    timelineFilter();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
