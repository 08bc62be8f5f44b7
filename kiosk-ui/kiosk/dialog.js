// One modal panel at a time over the menu: ticket result, check-in result, explanations.
// The menu behind is inert while it is open; focus moves into the panel and comes back after.
import { t } from "../lib/i18n.js";
import { esc } from "./texts.js";

let current = null;  // {el, timer, returnTo, onClose}

export function isOpen() { return current !== null; }

export function closeDialog() {
  if (!current) return;
  const { el, timer, returnTo, onClose } = current;
  current = null;
  clearTimeout(timer);
  el.remove();
  const app = document.getElementById("app");
  app.inert = false;
  if (returnTo && document.contains(returnTo)) returnTo.focus();
  if (onClose) onClose();
}

// testid: data-testid of the panel; tone: ok | warn | stop | info; html: the body.
// closeAfterMs: auto close; tapAnywhere: a tap on the panel closes it (else only the button).
export function openDialog({ testid, tone = "info", title, html, closeAfterMs = 10000,
                             tapAnywhere = true, returnTo = null, onClose = null }) {
  closeDialog();
  const el = document.createElement("div");
  el.className = `dialog tone-${tone}`;
  el.setAttribute("role", "dialog");
  el.setAttribute("aria-modal", "true");
  el.setAttribute("aria-labelledby", "dialog-title");
  el.setAttribute("aria-describedby", "dialog-body");  // read out when focus moves in; the
  // page's polite live region (#announce) also says the outcome
  el.dataset.testid = testid;
  el.innerHTML = `
    <div class="dialog-box">
      <h2 id="dialog-title" class="dialog-title">${esc(title)}</h2>
      <div class="dialog-body" id="dialog-body">${html}</div>
      <div class="dialog-foot">
        ${tapAnywhere ? `<p class="dialog-hint">${esc(t("kiosk.tap_to_close"))}</p>` : ""}
        <button type="button" class="dialog-close" data-testid="dialog-close">${
          esc(t("kiosk.close"))}</button>
      </div>
    </div>`;
  el.querySelector(".dialog-close").addEventListener("click", (e) => {
    e.stopPropagation();
    closeDialog();
  });
  if (tapAnywhere) el.addEventListener("click", () => closeDialog());
  el.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeDialog();
  });
  const app = document.getElementById("app");
  app.inert = true;  // also hides the menu from screen readers while the panel is up
  document.body.appendChild(el);
  current = {
    el, returnTo, onClose,
    timer: closeAfterMs ? setTimeout(closeDialog, closeAfterMs) : null,
  };
  el.querySelector(".dialog-close").focus({ preventScroll: true });
  return el;
}
