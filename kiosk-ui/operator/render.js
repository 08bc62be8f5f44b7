// Drawing the operator panel from the live state. Every function here reads the view model
// `v` built by operator.js and touches only its own part of the page.

import { t, pick } from "../lib/i18n.js";
import { secondsBetween } from "./model.js";

const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, val] of Object.entries(attrs)) {
    if (val === null || val === undefined || val === false) continue;
    if (k === "class") node.className = val;
    else if (k === "text") node.textContent = val;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), val);
    else node.setAttribute(k, val === true ? "" : String(val));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c);
  }
  return node;
}

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return m > 0 ? t("op.dur.min", { m, s: s % 60 }) : t("op.dur.sec", { s });
}

export function stageText(stage) {
  return stage >= 2 ? t("op.stage", { n: stage }) : "";
}

export function serviceName(v, code) {
  const svc = v.services.get(code);
  return svc ? `${code} ${pick(svc.name)}` : code;
}

export function counterName(v, id) {
  const c = v.counters.get(id);
  return c ? pick(c.name) : t("op.counterN", { id });
}

// The seconds since the current ticket was last called here (its call or latest recall).
export function sinceCalled(v) {
  const cur = v.row && v.row.current;
  if (!cur || !v.state) return null;
  const base = cur.last_called_at || v.lastCall.get(cur.number) || cur.called_at;
  const at = secondsBetween(base, v.state.at);
  if (at === null) return null;
  return at + (Date.now() - v.receivedAt) / 1000;
}

export function renderNow(v) {
  const cur = v.row && v.row.current;
  $("current-number").textContent = cur ? String(cur.number) : "—";
  $("current-number").classList.toggle("op-empty", !cur);
  $("current-service").textContent = cur ? serviceName(v, cur.service) : t("op.none");
  const stage = $("current-stage");
  stage.hidden = !cur || cur.stage < 2;
  stage.textContent = cur ? stageText(cur.stage) : "";
  $("current-calls").textContent = cur ? t("op.calls", { n: cur.calls }) : "";
  renderSince(v);
}

export function renderSince(v) {
  const s = sinceCalled(v);
  $("current-since").textContent = s === null ? "" : t("op.since", { t: duration(s) });
}

// Each list is redrawn only when what it shows changed; focus stays on the same number.
function redraw(list, signature, build) {
  if (list.dataset.sig === signature) return;
  list.dataset.sig = signature;
  const active = document.activeElement;
  const focused = list.contains(active) ? active.dataset.number : null;
  list.replaceChildren(...build());
  if (focused) {
    const again = list.querySelector(`[data-number="${focused}"]`);
    (again || list).focus();
  }
}

// A list entry is a button whose name is its visible text after a hidden verb ("call:"), so
// a screen reader says what a press does and the name still contains what is seen.
function entry(testid, number, verb, disabled, onclick, ...parts) {
  return el("li", {},
    el("button", { type: "button", class: "op-entry", "data-testid": testid,
                   "data-number": number, disabled, onclick },
       el("span", { class: "visually-hidden", text: `${verb} ` }),
       el("span", { class: "op-entry-number", text: String(number) }), ...parts));
}

const QUEUE_SHOWN = 100;

export function renderLists(v, act) {
  const closed = v.reasons.closed;
  const tag = (cls, text) => el("span", { class: `op-tag ${cls}`, text });

  $("queue-h").textContent = t("op.queue", { n: v.queue.length });
  redraw($("queue-list"), JSON.stringify([v.lang, closed, v.queue.slice(0, QUEUE_SHOWN)]), () => {
    const items = v.queue.slice(0, QUEUE_SHOWN).map((q) => {
      const wait = secondsBetween(q.queued_at, v.state.at);
      return entry("queue-entry", q.number, t("op.entry.call"), !!closed, () => act.callNumber(q.number),
        el("span", { class: "op-entry-service", text: serviceName(v, q.service) }),
        q.stage >= 2 ? tag("op-stage", stageText(q.stage)) : null,
        q.target_counter ? tag("op-named", t("op.named")) : null,
        q.priority ? tag("op-priority", t("op.priority")) : null,
        wait === null ? null : el("span", { class: "op-entry-wait", text: t("op.waited", { t: duration(wait) }) }));
    });
    if (v.queue.length > QUEUE_SHOWN) {
      items.push(el("li", { class: "op-more", text: t("op.more", { n: v.queue.length - QUEUE_SHOWN }) }));
    }
    return items.length ? items : [el("li", { class: "op-none", text: t("op.empty") })];
  });

  $("held-h").textContent = t("op.held", { n: v.held.length });
  redraw($("held-list"), JSON.stringify([v.lang, closed, v.held]), () => {
    const items = v.held.map((h) => entry("held-entry", h.number, t("op.entry.held"), !!closed,
      () => act.callHeld(h.number),
      el("span", { class: "op-entry-service", text: serviceName(v, h.service) })));
    return items.length ? items : [el("li", { class: "op-none", text: t("op.empty") })];
  });

  $("absent-h").textContent = t("op.absent", { n: v.absent.length });
  redraw($("absent-list"), JSON.stringify([v.lang, closed, v.absent]), () => {
    const items = v.absent.map((a) => {
      const where = a.counter ? counterName(v, a.counter) : "";
      return entry("absent-entry", a.number, t("op.entry.absent"), !!closed,
        () => act.clearAbsence(a.number),
        el("span", { class: "op-entry-service", text: serviceName(v, a.service) }),
        where ? el("span", { class: "op-entry-where", text: t("op.markedAt", { counter: where }) })
          : null);
    });
    return items.length ? items : [el("li", { class: "op-none", text: t("op.empty") })];
  });
}

const DEVICE_LOOK = {
  ok: ["ok", "●"], degraded: ["warn", "▲"], offline: ["stop", "✕"], error: ["stop", "■"],
};

export function renderDevices(v) {
  const box = $("devices");
  box.hidden = v.devices.length === 0;
  const sig = JSON.stringify([v.lang, v.devices.map((d) => [d.id, d.state, d.reason])]);
  if (box.dataset.sig === sig) return;
  box.dataset.sig = sig;
  $("devices-list").replaceChildren(...v.devices.map((d) => {
    const [cls, icon] = DEVICE_LOOK[d.state] || DEVICE_LOOK.error;
    const reason = d.state !== "ok" && d.message ? (v.lang === "ja" ? d.message.ja : d.message.en)
      : "";
    return el("li", { "data-testid": "device", "data-device": d.id, "data-state": d.state },
      el("span", { class: "op-device-kind", text: t(`op.dev.${d.kind}`) }), " ",
      el("span", { class: `badge ${cls}` },
         el("span", { "aria-hidden": "true", text: icon }), " ", t(`op.dev.state.${d.state}`)),
      reason ? el("span", { class: "op-device-reason", text: ` ${reason}` }) : null);
  }));
}

// Buttons: enabled when the command can apply, otherwise disabled with the reason as a
// tooltip and in the visible line under the buttons.
export function renderButtons(v, numberValid) {
  const r = v.reasons;
  const set = (testid, reasonKey) => {
    document.querySelectorAll(`[data-testid="${testid}"]`).forEach((b) => {
      b.disabled = !!reasonKey;
      if (reasonKey) b.title = t(reasonKey);
      else b.removeAttribute("title");
    });
    return reasonKey;
  };
  const nobody = r.closed || (v.row && v.row.current ? null : "op.why.nobody");
  const shown = new Set();
  shown.add(set("call-next", r.closed || (v.queue.length ? null : "op.why.empty")));
  for (const id of ["recall", "hold", "absent", "finish", "transfer"]) shown.add(set(id, nobody));
  const needNumber = numberValid ? null : "op.why.noNumber";
  for (const id of ["call-number", "call-held", "clear-absence"]) set(id, r.closed || needNumber);
  set("cancel", needNumber);

  const open = !!(v.row && v.row.open);
  $("btn-open").hidden = open;
  $("btn-close").hidden = !open;
  set("open", null);
  set("close", v.row && v.row.current ? "op.why.busy" : null);

  const state = $("counter-state");
  state.className = `badge ${open ? "ok" : "stop"}`;
  state.replaceChildren(el("span", { "aria-hidden": "true", text: open ? "●" : "■" }), " ",
                        t(open ? "op.state.open" : "op.state.closed"));

  shown.delete(null);
  if (r.dayClosed) shown.add(r.dayClosed);
  const why = [...shown].map((k) => t(k));
  if (r.closed) why.push(t("op.why.openHint"));
  $("why").textContent = why.join(" ");
  $("why").hidden = why.length === 0;
}
