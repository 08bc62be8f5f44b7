// Live state from the edge: one websocket, reconnect with backoff, never a reload (no F5).
// Usage: import { live, api } from "./lib/live.js";
//   live((state, events) => render(state), (online) => showBanner(!online));
//   const r = await api("POST", "/api/counters/1/call-next"); if (!r.ok) show(r.error);

const BACKOFF_MIN_MS = 250;
let skewMs = 0; // the edge's clock minus this browser's, from the newest state's `at`

// The edge's "now" in ms: screens show the site's time (and durations against the edge's
// timestamps) even when this PC's clock drifts, or when the demo runs on a simulated clock.
export function siteNow() { return Date.now() + skewMs; }
const BACKOFF_MAX_MS = 5000;

export function live(onState, onConnection = () => {}) {
  let delay = BACKOFF_MIN_MS;
  let ws = null;
  let closedByUs = false;
  const open = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/api/ws`);
    ws.onopen = () => { delay = BACKOFF_MIN_MS; onConnection(true); };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type !== "state") return;
      const at = Date.parse((data.state && data.state.at) || "");
      if (!Number.isNaN(at)) skewMs = at - Date.now();
      onState(data.state, data.events || []);
    };
    ws.onclose = () => {
      onConnection(false);
      if (closedByUs) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    };
  };
  open();
  return { close() { closedByUs = true; if (ws) ws.close(); } };
}

// JSON API call; never throws: {ok, status, data, error: {code, message, message_ja}}.
export async function api(method, path, body, headers = {}) {
  try {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const data = await resp.json().catch(() => null);
    if (resp.ok) return { ok: true, status: resp.status, data, error: null };
    const error = (data && data.error) || { code: "http_" + resp.status, message: resp.statusText,
                                            message_ja: "エラーが発生しました" };
    return { ok: false, status: resp.status, data, error };
  } catch (e) {
    return { ok: false, status: 0, data: null,
             error: { code: "offline", message: "The edge cannot be reached",
                      message_ja: "サーバーに接続できません" } };
  }
}

export function param(name, fallback = null) {
  return new URLSearchParams(location.search).get(name) ?? fallback;
}
