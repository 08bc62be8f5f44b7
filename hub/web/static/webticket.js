// Web ticket page (W4): solve the hub's proof of work, ask for a number, open its ticket page.
// sha256(challenge + ":" + nonce) must start with `difficulty` zero bits. crypto.subtle needs a
// secure context (https or localhost); elsewhere a small pure-JS SHA-256 does the same work.
"use strict";
(function () {
  const form = document.getElementById("take");
  if (!form) return;
  const button = document.getElementById("submit");
  const status = document.getElementById("status");
  const texts = JSON.parse(document.getElementById("webticket-texts").textContent);
  const lang = form.dataset.lang;
  if (!button.dataset.offline) button.disabled = false;

  const enc = new TextEncoder();

  function zeroBits(bytes) {
    let bits = 0;
    for (const b of bytes) {
      if (b === 0) { bits += 8; continue; }
      return bits + Math.clz32(b) - 24;
    }
    return bits;
  }

  // --- SHA-256 fallback (FIPS 180-4), only when crypto.subtle is unavailable -------------------
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  function sha256js(msg) {
    const len = msg.length, total = ((len + 9 + 63) >> 6) << 6;
    const buf = new Uint8Array(total);
    buf.set(msg); buf[len] = 0x80;
    const dv = new DataView(buf.buffer);
    dv.setUint32(total - 4, len * 8);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    const rot = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < total; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const s0 = rot(w[i - 15], 7) ^ rot(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rot(w[i - 2], 17) ^ rot(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        const t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    const odv = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) odv.setUint32(i * 4, h[i]);
    return out;
  }

  async function solve(challenge, difficulty) {
    const subtle = window.crypto && window.crypto.subtle;
    const batch = 64;
    for (let n = 0; ; n += batch) {
      const nonces = Array.from({ length: batch }, (_, i) => String(n + i));
      const digests = subtle
        ? await Promise.all(nonces.map((x) => subtle.digest("SHA-256", enc.encode(challenge + ":" + x))))
        : nonces.map((x) => sha256js(enc.encode(challenge + ":" + x)));
      for (let i = 0; i < batch; i++) {
        if (zeroBits(new Uint8Array(digests[i])) >= difficulty) return nonces[i];
      }
    }
  }

  function show(text) { status.textContent = text; }

  function errorText(body) {
    const err = (body && body.error) || {};
    if (texts.errors[err.code]) return texts.errors[err.code];
    if (lang === "ja" && err.message_ja) return err.message_ja;
    return err.message || texts.errors.generic;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      show(texts.working);
      const ch = await fetch("/api/web-tickets/challenge", { cache: "no-store" });
      const challenge = await ch.json();
      if (!ch.ok) { show(errorText(challenge)); return; }
      const nonce = await solve(challenge.challenge, challenge.difficulty);
      show(texts.sending);
      const body = { site: form.dataset.site, service: form.dataset.service, lang: lang,
        challenge: challenge.challenge, nonce: nonce };
      const contact = document.getElementById("contact").value.trim();
      if (contact) body.contact = contact;
      const resp = await fetch("/api/web-tickets", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const answer = await resp.json();
      if (resp.status === 201) {
        window.location.assign(answer.url + "?lang=" + encodeURIComponent(lang));
        return;
      }
      show(errorText(answer));
    } catch (err) {
      show(texts.errors.generic);
    } finally {
      button.disabled = false;
    }
  });
})();
