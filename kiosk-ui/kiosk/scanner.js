// Keyboard-wedge scanner: a QR reader "types" the ticket URL very fast and ends with Enter.
// We listen on the document (no input field needed), keep the characters that arrive less than
// GAP_MS apart, and on Enter after at least MIN_LEN of them report the text as one scan.
// A person typing is far slower, so keyboard use (Tab/Enter on buttons) is left alone.
// Gaps are measured with the events' own time stamps (when the key arrived from the device),
// not when this page got round to handling them, so a busy page does not split a scan.

const GAP_MS = 120;  // scanners send a character every few ms; people type far slower
const MIN_LEN = 8;   // a token alone is at least 8 characters

// "https://host/t/<token>", "/t/<token>?x", a reservation's "https://host/r/done/<token>",
// or a bare token -> token; else null.
export function extractToken(text) {
  const s = String(text || "").trim();
  const m = s.match(/\/(?:t|r\/done)\/([A-Za-z0-9_-]{8,64})(?:[/?#]|$)/);
  if (m) return m[1];
  return /^[A-Za-z0-9_-]{8,64}$/.test(s) ? s : null;
}

function typingIntoField(el) {
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

export function listenForScans(onScan) {
  let buffer = "";
  let last = 0;
  document.addEventListener("keydown", (e) => {
    if (typingIntoField(e.target) || e.ctrlKey || e.altKey || e.metaKey) return;
    const at = e.timeStamp || performance.now();
    const fast = at - last <= GAP_MS;
    if (e.key === "Enter") {
      const text = buffer;
      buffer = "";
      if (fast && text.length >= MIN_LEN) {
        // the scan's Enter must not also press the focused button
        e.preventDefault();
        e.stopImmediatePropagation();
        onScan(text);
      }
      last = 0;
      return;
    }
    if (e.key.length !== 1) return;  // Shift, Tab, arrows…: not part of a scan
    if (!fast) buffer = "";
    buffer += e.key;
    last = at;
    if (buffer.length > 1) e.preventDefault();  // a fast burst: keep keys off the buttons
  }, true);
}
