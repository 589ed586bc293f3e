// SM3 (GB/T 32905-2016) for the verify page: the digest Chinese evidence platforms compare.
// WebCrypto has no SM3, so it is computed here (checked against the standard's vectors by
// tests/unit/test_sm3.py through node, and against Python's OpenSSL SM3 on random inputs).

const IV = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];

const rotl = (x, n) => ((x << (n % 32)) | (x >>> ((32 - (n % 32)) % 32))) >>> 0;
const p0 = (x) => (x ^ rotl(x, 9) ^ rotl(x, 17)) >>> 0;
const p1 = (x) => (x ^ rotl(x, 15) ^ rotl(x, 23)) >>> 0;
const T = Array.from({ length: 64 }, (_, j) => rotl(j < 16 ? 0x79cc4519 : 0x7a879d8a, j));

function compress(v, block, offset) {
  const w = new Uint32Array(68);
  for (let j = 0; j < 16; j++) {
    const i = offset + 4 * j;
    w[j] = ((block[i] << 24) | (block[i + 1] << 16) | (block[i + 2] << 8) | block[i + 3]) >>> 0;
  }
  for (let j = 16; j < 68; j++) {
    w[j] = (p1(w[j - 16] ^ w[j - 9] ^ rotl(w[j - 3], 15)) ^ rotl(w[j - 13], 7) ^ w[j - 6]) >>> 0;
  }
  let [a, b, c, d, e, f, g, h] = v;
  for (let j = 0; j < 64; j++) {
    const a12 = rotl(a, 12);
    const ss1 = rotl((a12 + e + T[j]) >>> 0, 7);
    const ss2 = (ss1 ^ a12) >>> 0;
    const ff = j < 16 ? a ^ b ^ c : (a & b) | (a & c) | (b & c);
    const gg = j < 16 ? e ^ f ^ g : (e & f) | (~e & g);
    const tt1 = (ff + d + ss2 + ((w[j] ^ w[j + 4]) >>> 0)) >>> 0;
    const tt2 = (gg + h + ss1 + w[j]) >>> 0;
    d = c;
    c = rotl(b, 9);
    b = a;
    a = tt1;
    h = g;
    g = rotl(f, 19);
    f = e;
    e = p0(tt2);
  }
  return [a, b, c, d, e, f, g, h].map((x, i) => (x ^ v[i]) >>> 0);
}

/** The 32-byte SM3 digest of `bytes` (a Uint8Array or an ArrayBuffer). */
export function sm3(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const total = Math.ceil((data.length + 9) / 64) * 64;
  const padded = new Uint8Array(total);
  padded.set(data);
  padded[data.length] = 0x80;
  const bits = data.length * 8;
  const view = new DataView(padded.buffer);
  view.setUint32(total - 8, Math.floor(bits / 0x100000000));
  view.setUint32(total - 4, bits >>> 0);
  let v = IV.slice();
  for (let offset = 0; offset < total; offset += 64) v = compress(v, padded, offset);
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  v.forEach((x, i) => outView.setUint32(4 * i, x));
  return out;
}

/** SM3 in the proofs' spelling: 0x + 64 lower-case hex digits. */
export function sm3Hex(bytes) {
  return "0x" + Array.from(sm3(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}
