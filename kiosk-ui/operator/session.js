// Operator session of one counter, kept in sessionStorage (per browser tab; closing the tab or
// the browser ends it on this PC; the edge forgets all sessions when it restarts).
//
// Sites with access "staff" (the default): login ID and password (accounts pushed by the hub to
// the edge, so this works while the hub is down), or the counter's PIN where it has one ->
// POST /api/counters/{id}/login -> a bearer token sent with every command. Sites with access
// "open": counters without a PIN need no login and no header; a later 401 login_required brings
// the login form back.

import { api } from "../lib/live.js";

export class Session {
  constructor(site, counterId) {
    this.counterId = counterId;
    this.key = `madoguchi.operator.${site}.${counterId}`;
  }

  get token() {
    try { return sessionStorage.getItem(this.key); } catch (e) { return null; }
  }

  set token(value) {
    try {
      if (value) sessionStorage.setItem(this.key, value);
      else sessionStorage.removeItem(this.key);
    } catch (e) { /* storage disabled: the session lasts until the page is left */ }
  }

  headers() {
    const token = this.token;
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // credentials: { pin } or { login, password }
  async login(credentials) {
    const r = await api("POST", `/api/counters/${encodeURIComponent(this.counterId)}/login`,
                        credentials);
    if (r.ok) this.token = r.data.session;
    return r;
  }

  async logout() {
    const r = await api("POST", `/api/counters/${encodeURIComponent(this.counterId)}/logout`,
                        undefined, this.headers());
    this.token = null;
    return r;
  }

  // A counter command: POST /api/counters/{id}/{command} with the session header.
  command(command, body) {
    return api("POST", `/api/counters/${encodeURIComponent(this.counterId)}/${command}`, body,
               this.headers());
  }
}
