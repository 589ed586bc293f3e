// A minimal JSON-RPC client over fetch for the endpoints the user chose. Errors carry
// `transport: true` when the endpoint could not be reached or did not answer JSON-RPC.

const TIMEOUT_MS = 10000;

export function parseEndpoints(text) {
  const urls = [];
  for (const line of (text || "").split(/[\s,]+/)) {
    const value = line.trim();
    if (!value) continue;
    let url;
    try {
      url = new URL(value);
    } catch {
      throw Object.assign(new Error("bad url"), { url: value });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw Object.assign(new Error("bad url"), { url: value });
    }
    if (!urls.includes(url.href)) urls.push(url.href);
  }
  return urls;
}

export function client(url) {
  let id = 0;
  return async function rpc(method, params) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let body;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
        signal: controller.signal,
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      body = await response.json();
    } catch (error) {
      const reason = error.name === "AbortError" ? `no answer within ${TIMEOUT_MS / 1000} s` : error.message;
      throw Object.assign(new Error(reason), { transport: true });
    } finally {
      clearTimeout(timer);
    }
    if (body && body.error) {
      throw new Error(`${method}: ${body.error.message || JSON.stringify(body.error)}`);
    }
    if (!body || !("result" in body)) {
      throw Object.assign(new Error(`${method}: not a JSON-RPC answer`), { transport: true });
    }
    return body.result;
  };
}
