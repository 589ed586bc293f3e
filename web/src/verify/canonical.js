// Canonical JSON exactly as the evidence service signs intake receipts (sorted keys, no
// insignificant white space, UTF-8; strings, integers, booleans and null only), so that a
// receipt's Ed25519 signature can be checked here without the service.

export function canonicalJson(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error("only integers are allowed in signed records");
    return String(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (typeof value === "object") {
    // Python sorts keys by code point; for the ASCII keys of receipts that is the same order.
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }
  throw new Error("unsupported value in a signed record");
}
