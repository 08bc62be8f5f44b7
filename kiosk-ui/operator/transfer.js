// The transfer (送り) form: send the visitor at the counter to another service (all services,
// second-stage ones included) and/or to a named counter, keeping the number (Q11).

import { t, pick } from "../lib/i18n.js";
import { el, serviceName, counterName } from "./render.js";

const $ = (id) => document.getElementById(id);
const q = (testid) => document.querySelector(`[data-testid="${testid}"]`);

export class TransferForm {
  // v: the page's view model; send(body, done): runs POST .../transfer and shows the outcome
  constructor(v, send) {
    this.v = v;
    this.send = send;
  }

  isOpen() { return !$("transfer-form").hidden; }

  fill() {
    const { v } = this;
    const services = (v.state && v.state.services) || [];
    const none = (key) => el("option", { value: "" }, t(key));
    $("transfer-service").replaceChildren(none("op.tr.anyService"), ...services.map((s) =>
      el("option", { value: s.code },
         `${s.code} ${pick(s.name)}${s.kiosk ? "" : ` (${t("op.tr.second")})`}`)));
    const counters = ((v.state && v.state.counters) || []).filter((c) => c.id !== v.counterId);
    $("transfer-counter").replaceChildren(none("op.tr.anyCounter"), ...counters.map((c) =>
      el("option", { value: c.id }, `${pick(c.name)} (${c.services.join("・")})`)));
    this.ready();
  }

  // after a language switch: the same choices in the new language
  refill() {
    if (!this.isOpen()) return;
    const service = $("transfer-service").value;
    const counter = $("transfer-counter").value;
    this.fill();
    $("transfer-service").value = service;
    $("transfer-counter").value = counter;
    this.ready();
  }

  ready() {
    const ok = $("transfer-service").value || $("transfer-counter").value;
    const confirm = q("transfer-confirm");
    confirm.disabled = !ok;
    confirm.title = ok ? "" : t("op.tr.need");
  }

  open() {
    const { v } = this;
    if (!v.row || !v.row.current) return;
    if (!this.isOpen()) this.fill();
    $("transfer-form").hidden = false;
    q("transfer").setAttribute("aria-expanded", "true");
    $("transfer-service").focus();
  }

  close(refocus = true) {
    if (!this.isOpen()) return;
    $("transfer-form").hidden = true;
    const button = q("transfer");
    button.setAttribute("aria-expanded", "false");
    if (refocus && !button.disabled) button.focus();
  }

  async confirm(e) {
    e.preventDefault();
    const service = $("transfer-service").value;
    const counter = $("transfer-counter").value;
    if (!service && !counter) return;
    const body = {};
    if (service) body.service = service;
    if (counter) body.counter = counter;
    const where = [service && serviceName(this.v, service), counter && counterName(this.v, counter)]
      .filter(Boolean).join(" / ");
    const r = await this.send(body, (tk) => t("op.done.transfer", { number: tk.number, where }));
    if (r && r.ok) this.close();
  }

  wire() {
    const form = $("transfer-form");
    form.addEventListener("submit", (e) => this.confirm(e));
    $("transfer-close").addEventListener("click", () => this.close());
    $("transfer-service").addEventListener("change", () => this.ready());
    $("transfer-counter").addEventListener("change", () => this.ready());
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); this.close(); }
      if (e.key === "Enter" && e.target.tagName === "SELECT") {  // pick, then Enter to send
        e.preventDefault();
        if (!q("transfer-confirm").disabled) form.requestSubmit();
      }
    });
  }
}
