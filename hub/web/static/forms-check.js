// Residents' form pages (hub/forms/templates/forms/resident_page.html): inline validation.
// After a field was changed and left, the page's fields (never a file's contents) go to
// POST /f/{form}/check/{n}, which runs the very rules of "next" (hub/forms/resident_check.py);
// the field's message is shown in the markup the server uses (fields.html: the error text with
// an id and the words "エラー:", aria-invalid, aria-describedby) and said politely. Nothing is
// saved and submitting is never blocked: the server checks again and shows its error summary.
// The page is complete without this script; if a check fails, nothing changes.
// Also: before leaving a page with typed answers not yet saved with "next", the browser asks.
(function () {
  "use strict";
  const form = document.querySelector("form[data-check]");
  if (!form || !window.fetch || !window.URLSearchParams || !Element.prototype.closest) return;
  const url = form.getAttribute("data-check");
  const label = form.getAttribute("data-error-label") || "";
  const live = document.getElementById("forms-check-live");
  const csrfField = form.querySelector("input[name=csrf]");
  const WAIT_MS = 250;
  const edited = new Set();   // inputs typed into since they were last left
  const touched = new Set();  // inputs changed and left: their errors are shown
  let timer = 0;
  let seq = 0;
  let controller = null;
  let dirty = false;
  let leaving = false;

  function controls(scope) { return scope.querySelectorAll("input, select, textarea"); }
  function wrapperOf(el) { return el.closest("[data-field]"); }
  function checkable(wrap) {
    const type = wrap && wrap.getAttribute("data-type");
    return Boolean(type) && type !== "file" && type !== "fixed_text";
  }
  function named(wrap, name) {
    return Array.prototype.some.call(controls(wrap), function (c) { return c.name === name; });
  }
  function anyTouched(wrap) {
    return Array.prototype.some.call(controls(wrap), function (c) { return touched.has(c.name); });
  }

  // fields the server marked keep their messages until they are right
  form.querySelectorAll(".field--error[data-field]").forEach(function (wrap) {
    controls(wrap).forEach(function (c) { if (c.name) touched.add(c.name); });
  });

  function body() {
    const params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      const type = el.type;
      if (!el.name || el.disabled || type === "file" || type === "submit" || type === "button") {
        return;
      }
      if ((type === "checkbox" || type === "radio") && !el.checked) return;
      if (el.tagName === "SELECT" && el.multiple) {
        Array.prototype.forEach.call(el.selectedOptions, function (o) {
          params.append(el.name, o.value);
        });
        return;
      }
      params.append(el.name, el.value);
    });
    return params;
  }

  // whom the field's error describes, as fields.html says it: the group and its text parts,
  // or the one input, select or textarea of a simple field
  function described(wrap, fid) {
    const found = Array.prototype.slice.call(
      wrap.querySelectorAll("fieldset.forms-group, .forms-part input"));
    const own = document.getElementById(fid);
    if (own && wrap.contains(own) && !own.closest("fieldset") &&
        own.type !== "checkbox" && own.type !== "radio") found.push(own);
    return found;
  }

  function setDescribed(el, id, on) {
    const ids = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (x) {
      return x && x !== id;
    });
    if (on) ids.push(id);
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" "));
    else el.removeAttribute("aria-describedby");
  }

  // the input an error is about; a whole split date: its text parts
  function invalidTargets(wrap, input) {
    const el = document.getElementById(input);
    if (el && wrap.contains(el)) return [el];
    return Array.prototype.slice.call(wrap.querySelectorAll(".forms-part input"));
  }

  function messageOf(p) {
    const last = p.lastChild;
    return last && last.nodeType === Node.TEXT_NODE ? last.nodeValue.trim() : "";
  }

  function show(wrap, fid, err) {
    const id = fid + "-error";
    let p = document.getElementById(id);
    const changed = !p || messageOf(p) !== err.message;
    if (!p) {
      p = document.createElement("p");
      p.className = "error-message";
      p.id = id;
      const tag = document.createElement("span");
      tag.className = "forms-error-label";
      tag.textContent = label;
      p.appendChild(tag);
      p.appendChild(document.createTextNode(" " + err.message));
      const group = wrap.querySelector("fieldset.forms-group") || wrap;
      const anchor = document.getElementById(fid + "-hint") ||
        document.getElementById(fid + "-format") ||
        group.querySelector("legend, .forms-label");
      if (anchor && group.contains(anchor)) anchor.parentNode.insertBefore(p, anchor.nextSibling);
      else group.insertBefore(p, group.firstChild);
    } else if (changed) {
      p.lastChild.nodeValue = " " + err.message;
    }
    p.setAttribute("data-inline", err.code);
    wrap.classList.add("field--error");
    controls(wrap).forEach(function (c) { c.removeAttribute("aria-invalid"); });
    invalidTargets(wrap, err.input).forEach(function (c) { c.setAttribute("aria-invalid", "true"); });
    described(wrap, fid).forEach(function (el) { setDescribed(el, id, true); });
    return changed ? label + " " + err.message : "";
  }

  function clear(wrap, fid) {
    const id = fid + "-error";
    const p = document.getElementById(id);
    if (!p) return;
    p.parentNode.removeChild(p);
    wrap.classList.remove("field--error");
    controls(wrap).forEach(function (c) { c.removeAttribute("aria-invalid"); });
    described(wrap, fid).forEach(function (el) { setDescribed(el, id, false); });
  }

  // shown: an error about one input once it was left changed; an error about the whole field
  // (a split date) once the focus has left the field
  function due(wrap, err) {
    if (named(wrap, err.input)) return touched.has(err.input);
    return anyTouched(wrap) && !wrap.contains(document.activeElement);
  }

  function apply(errors) {
    const first = {};
    errors.forEach(function (e) { if (!(e.field in first)) first[e.field] = e; });
    const said = [];
    form.querySelectorAll("[data-field]").forEach(function (wrap) {
      if (!checkable(wrap)) return;
      const fid = wrap.getAttribute("data-field");
      const err = first[fid];
      if (err && typeof err.message === "string" && due(wrap, err)) {
        const text = show(wrap, fid, err);
        if (text) said.push(text);
      } else if (anyTouched(wrap)) {
        clear(wrap, fid);
      }
    });
    if (live && said.length) live.textContent = said.join(" ");
  }

  async function check() {
    const mine = ++seq;
    if (controller) controller.abort();
    controller = window.AbortController ? new AbortController() : null;
    let data = null;
    try {
      const response = await fetch(url, {
        method: "POST", body: body(), credentials: "same-origin", cache: "no-store",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrfField ? csrfField.value : "" },
        signal: controller ? controller.signal : undefined,
      });
      if (!response.ok) return;
      data = await response.json();
    } catch (_e) {
      return;  // offline, aborted, not JSON: the server checks on "next"
    }
    if (mine !== seq || leaving || !data || !Array.isArray(data.errors)) return;
    apply(data.errors);
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, WAIT_MS);
  }

  form.addEventListener("input", function (ev) {
    const el = ev.target;
    if (!el.name || el.type === "file") return;
    edited.add(el.name);
    dirty = true;
  });
  form.addEventListener("change", function (ev) {
    const el = ev.target;
    if (!el.name || el.type === "file" || !checkable(wrapperOf(el))) return;
    dirty = true;
    edited.delete(el.name);
    touched.add(el.name);
    later();
  });
  form.addEventListener("focusout", function (ev) {
    const el = ev.target;
    const wrap = el.name ? wrapperOf(el) : null;
    if (!checkable(wrap)) return;
    if (edited.has(el.name)) {
      edited.delete(el.name);
      touched.add(el.name);
      later();
    } else if (anyTouched(wrap) && !(ev.relatedTarget && wrap.contains(ev.relatedTarget))) {
      later();  // leaving a field whose message waited for the focus to go
    }
  });
  form.addEventListener("submit", function () {
    leaving = true;
    window.clearTimeout(timer);
    if (controller) controller.abort();
  });
  window.addEventListener("beforeunload", function (ev) {
    if (!dirty || leaving) return;
    ev.preventDefault();
    ev.returnValue = "";
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) leaving = false;  // back from the next page (bfcache)
  });
})();
