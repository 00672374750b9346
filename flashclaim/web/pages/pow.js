// A Web Worker that solves a campaign's proof-of-work challenge off the page's thread:
// the first decimal nonce such that SHA-256(token + ":" + nonce) starts with `bits` zero
// bits (the service checks it with one hash). Hashes go to Web Crypto a batch at a time:
// each digest is a promise, and many in flight keep the worker busy.
"use strict";

const BATCH = 256;
const encoder = new TextEncoder();

function zeroBits(bytes) {
  let n = 0;
  for (const byte of bytes) {
    if (byte === 0) { n += 8; continue; }
    return n + Math.clz32(byte) - 24;
  }
  return n;
}

self.onmessage = async (event) => {
  const { token, bits } = event.data;
  const started = performance.now();
  for (let base = 0; ; base += BATCH) {
    const digests = await Promise.all(Array.from({ length: BATCH }, (_, i) =>
      crypto.subtle.digest("SHA-256", encoder.encode(`${token}:${base + i}`))));
    for (let i = 0; i < BATCH; i++) {
      if (zeroBits(new Uint8Array(digests[i])) >= bits) {
        self.postMessage({ nonce: String(base + i), hashes: base + i + 1,
                           ms: performance.now() - started });
        return;
      }
    }
  }
};
