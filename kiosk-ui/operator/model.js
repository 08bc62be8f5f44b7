// Pure helpers of the operator panel: what this counter's lists hold, how long since a call,
// what a scan or a typed number means. No DOM here (easy to reason about and to test).

// This counter's queue in the order "call next" takes it (edge/domain/commands.py):
// 1. tickets transferred to this counter by name, oldest transfer first, whatever the service;
// 2. then the counter's services in its priority order; within a service priority tickets
//    first, then the oldest arrival at the current stage (the edge sends each queue in FIFO
//    order, so a stable sort on "priority" keeps the rest).
// Tickets transferred by name to another counter are not called here and are left out.
export function counterQueue(state, counter) {
  const rows = new Map((state.services || []).map((s) => [s.code, s]));
  const named = [];
  const general = [];
  counter.services.forEach((code, rank) => {
    const svc = rows.get(code);
    if (!svc) return;
    const queue = (svc.queue || []).map((q, i) => ({ ...q, service: code, rank, i }));
    for (const q of queue) {
      if (q.target_counter === counter.id) named.push(q);
      else if (q.target_counter == null) general.push(q);
    }
  });
  named.sort((a, b) => (a.queued_at < b.queued_at ? -1 : a.queued_at > b.queued_at ? 1 : 0));
  general.sort((a, b) => a.rank - b.rank || Number(b.priority) - Number(a.priority) || a.i - b.i);
  return [...named, ...general];
}

export function heldHere(state, counterId) {
  return (state.held || []).filter((h) => h.counter === counterId)
    .sort((a, b) => a.number - b.number);
}

export function absentAll(state) {
  return [...(state.absent || [])].sort((a, b) => a.number - b.number);
}

export function counterRow(state, counterId) {
  return (state.counters || []).find((c) => c.id === counterId) || null;
}

export function devicesHere(state, counterId) {
  return (state.devices || []).filter((d) => d.bound_to === counterId);
}

// Seconds between two ISO times of the edge (both carry the edge's offset).
export function secondsBetween(fromIso, toIso) {
  const a = Date.parse(fromIso);
  const b = Date.parse(toIso);
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return Math.max(0, Math.round((b - a) / 1000));
}

// "１２３" (full-width, as a Japanese IME types it) -> "123"; other characters kept.
export function halfWidth(text) {
  return String(text).replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
}

// A typed ticket number 1-9999, or null.
export function parseNumber(text) {
  const s = halfWidth(text).trim();
  if (!/^\d{1,4}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 9999 ? n : null;
}

const TOKEN = /^[A-Za-z0-9_-]{8,64}$/;

// What a keyboard-wedge scan says: {token} from ".../t/<token>" or a bare token,
// {number} for a bare number, or null when it is neither.
export function parseScan(text) {
  const s = halfWidth(text).trim();
  const url = s.match(/\/t\/([A-Za-z0-9_-]{8,64})(?:[?#/].*)?$/);
  if (url) return { token: url[1] };
  const number = parseNumber(s);
  if (number !== null) return { number };
  if (TOKEN.test(s)) return { token: s };
  return null;
}
