// Keyboard of the operator panel: single-key shortcuts, and a keyboard-wedge scanner (it types
// its text very fast and ends with Enter) told apart from a person by the gap between keys.
//
// - A shortcut key waits SCAN_GAP_MS before it acts: if another key follows sooner, the keys
//   are a scan and no shortcut fires (a token may start with h, a, f, n, r or t).
// - A fast burst ended by Enter is handed to onScan(text); once started, a burst tolerates a
//   slower key now and then (BURST_GAP_MS), so a busy PC does not cut a scan in two.
// - A digit typed at a person's pace goes to the number field (onDigit), so "12 Enter" works
//   wherever the focus is.
// - Nothing happens while a text field or a select has the focus (its own keys rule there),
//   nor with Ctrl/Alt/Meta held; Space and Enter keep their meaning on a focused button.

export const SCAN_GAP_MS = 100;  // a second key sooner than this starts a scan
const BURST_GAP_MS = 400;  // once a scan has started, a slower key (a busy PC) still belongs
const MIN_SCAN_CHARS = 2;

function editable(el) {
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

function control(el) {
  return !!el && (el.tagName === "BUTTON" || el.tagName === "A" || el.tagName === "SUMMARY");
}

export function installKeys({ shortcuts, onScan, onDigit, blocked = () => false }) {
  let buffer = "";
  let last = -Infinity;
  let pending = null;
  const cancel = () => { if (pending !== null) { clearTimeout(pending); pending = null; } };

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || e.isComposing) return;
    if (editable(e.target) || blocked()) { buffer = ""; cancel(); return; }
    // when the key was pressed (not when this busy page got round to it)
    const now = e.timeStamp || performance.now();
    const gap = now - last;
    const burst = buffer !== "" && (gap < SCAN_GAP_MS || (buffer.length >= 2 && gap < BURST_GAP_MS));
    if (e.key === "Enter") {
      if (burst && buffer.length >= MIN_SCAN_CHARS) {
        e.preventDefault();
        cancel();
        const text = buffer;
        buffer = "";
        onScan(text);
      } else {
        buffer = "";
      }
      return;
    }
    if (e.key === "Shift") { if (burst) last = now; return; }  // capitals inside a scan
    if (e.key.length !== 1) { buffer = ""; cancel(); return; }
    if (burst) {
      e.preventDefault();
      cancel();
      buffer += e.key;
      last = now;
      return;
    }
    cancel();
    buffer = e.key;
    last = now;
    if (e.repeat) return;
    if (e.key === " " && control(document.activeElement)) return;  // Space presses the button
    if (/^[0-9０-９]$/.test(e.key)) {
      e.preventDefault();
      buffer = "";  // the rest of a fast number or token now types into the field itself
      onDigit(e.key);
      return;
    }
    const action = shortcuts[e.key === " " ? "space" : e.key.toLowerCase()];
    if (!action) return;
    e.preventDefault();
    pending = setTimeout(() => { pending = null; action(); }, SCAN_GAP_MS);
  });
}
