// The second witness in the browser: each RFC 3161 stamp of an offerseal-proof/2 or /3 bundle, checked
// with PKI.js over WebCrypto as `offerseal verify --tsa-ca` checks it: a granted response whose
// imprint is sha256 of the Merkle root, a CMS signature that verifies, a signing certificate for
// time-stamping only (critical extendedKeyUsage) that chains, at the stamped time, to a root the
// user gives (or, without one, to the self-signed root the bundle names, and the result says so).
// Certificates from the bundle are never taken as trusted intermediates.

import * as pkijs from "pkijs";

const TIME_STAMPING = "1.3.6.1.5.5.7.3.8";
const EXT_KEY_USAGE = "2.5.29.37";
const MAX_STAMPS = 8;

function check(name, ok, key, params = {}) {
  return { name, ok, key, params };
}

function base64ToBuffer(text) {
  const raw = atob(String(text).replace(/\s+/g, ""));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
}

function hexToBuffer(hex) {
  const clean = hex.replace(/^0x/, "");
  return Uint8Array.from(clean.match(/../g).map((b) => parseInt(b, 16))).buffer;
}

/** Every certificate of a PEM text (throws when there is none or one is malformed). */
export function parseCertificates(text) {
  const blocks = String(text || "").match(
    /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g
  );
  if (!blocks) throw new Error("no PEM certificate");
  return blocks.map((block) =>
    pkijs.Certificate.fromBER(
      base64ToBuffer(block.replace(/-----(BEGIN|END) CERTIFICATE-----/g, ""))
    )
  );
}

function selfSigned(cert) {
  return cert.subject.isEqual(cert.issuer);
}

function iso(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function commonName(cert) {
  const cn = cert.subject.typesAndValues.find((tv) => tv.type === "2.5.4.3");
  return cn ? String(cn.value.valueBlock.value) : "the TSA";
}

function forTimeStampingOnly(cert) {
  const ext = (cert.extensions || []).find((e) => e.extnID === EXT_KEY_USAGE);
  const purposes = ext && ext.parsedValue ? ext.parsedValue.keyPurposes : [];
  return Boolean(ext && ext.critical && purposes.includes(TIME_STAMPING));
}

async function verifyEntry(entry, rootHex, trustedRoots) {
  let tsa = "?";
  let response;
  let named;
  try {
    if (!entry || entry.type !== "rfc3161") throw new Error("not an RFC 3161 time-stamp");
    tsa = String(entry.tsa || "?");
    response = pkijs.TimeStampResp.fromBER(base64ToBuffer(entry.response));
    named = entry.certificates && entry.certificates.length
      ? parseCertificates(entry.certificates.join("\n"))
      : [];
  } catch (error) {
    return check("rfc3161_timestamp", false, "rfc3161.malformed", {
      error: String(error.message || error),
    });
  }
  const pinned = trustedRoots !== null;
  const roots = pinned ? trustedRoots : named.filter(selfSigned);
  if (!roots.length) return check("rfc3161_timestamp", false, "rfc3161.no_root", { tsa });
  const status = response.status.status;
  if (status !== 0 && status !== 1) {
    return check("rfc3161_timestamp", false, "rfc3161.refused", { tsa, status });
  }
  let result;
  try {
    result = await response.verify({
      signer: 0,
      trustedCerts: roots,
      data: hexToBuffer(rootHex),
      checkChain: true,
      extendedMode: true,
    });
  } catch (error) {
    return check("rfc3161_timestamp", false, "rfc3161.fail", {
      tsa,
      error: String(error.message || error),
    });
  }
  if (!result || result.signatureVerified !== true) {
    return check("rfc3161_timestamp", false, "rfc3161.fail", { tsa, error: "signature" });
  }
  if (!forTimeStampingOnly(result.signerCertificate)) {
    return check("rfc3161_timestamp", false, "rfc3161.eku", { tsa });
  }
  const signed = new pkijs.SignedData({ schema: response.timeStampToken.content });
  const info = pkijs.TSTInfo.fromBER(signed.encapContentInfo.eContent.getValue());
  const time = iso(info.genTime);
  if (entry.gen_time !== undefined && entry.gen_time !== time) {
    return check("rfc3161_timestamp", false, "rfc3161.time", { tsa, stated: entry.gen_time, time });
  }
  const name = commonName(result.signerCertificate);
  return check("rfc3161_timestamp", true, pinned ? "rfc3161.pass" : "rfc3161.pass_bundle", {
    tsa: name,
    time,
  });
}

/** One check per stamp of a format 2 or 3 bundle (none for format 1); a bundle that lists the
 * rfc3161 witness without a stamp, or a stamp without listing it, fails. */
export async function timestampChecks(bundle, rootHex, trustedRoots) {
  if (!bundle || !["offerseal-proof/2", "offerseal-proof/3"].includes(bundle.format)) return [];
  const stamps = Array.isArray(bundle.timestamps) ? bundle.timestamps.slice(0, MAX_STAMPS) : [];
  const listed = Array.isArray(bundle.witnesses) && bundle.witnesses.includes("rfc3161");
  if (listed !== stamps.length > 0) {
    return [check("rfc3161_timestamp", false, "rfc3161.witnesses")];
  }
  const out = [];
  for (const entry of stamps) out.push(await verifyEntry(entry, rootHex, trustedRoots));
  return out;
}
