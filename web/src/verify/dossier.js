// The agreement dossier (offerseal-dossier-1, a ZIP) checked in the browser, as
// `offerseal-verify dossier` checks it: safe entry names, unique once extracted (case and Unicode
// form folded), no entries sharing stored bytes, nothing encrypted, the manifest's shape, every
// listed file's sha256 (WebCrypto) and size with nothing unlisted, the manifest's own proof
// bundle and each file's proof bundle through the same checks as a single proof. The ZIP is
// opened with fflate and never leaves the browser.

import { unzipSync } from "fflate";
import { keccak_256 } from "@noble/hashes/sha3.js";

import { canonicalJson } from "./canonical.js";

import {
  chainChecks,
  depositChecks,
  isValid,
  mergeEndpoints,
  sha256Hex,
  unreachable,
  verifyOffline,
} from "./checks.js";
import { sm3Hex } from "./sm3.js";
import { client } from "./rpc.js";
import { timestampChecks } from "./timestamps.js";

export const DOSSIER_FORMAT = "offerseal-dossier-1";
const MANIFEST = "manifest.json";
const MANIFEST_PROOF = "manifest.proof.json";
const COVER = "cover.pdf";
const SIGNING_RECORD = "signatures/signing-record.json";
// IntentAgreements.ceremonyOf(bytes32): keccak256("ceremonyOf(bytes32)")[:4]
const CEREMONY_OF = "0x" + hexOf(keccak_256(new TextEncoder().encode("ceremonyOf(bytes32)"))).slice(0, 8);
const OUTSIDE_MANIFEST = [MANIFEST, MANIFEST_PROOF, COVER];
const MAX_ENTRIES = 10000;
const MAX_TOTAL_BYTES = 1024 * 1024 * 1024;
const MAX_BUNDLE_BYTES = 64 * 1024;
const MAX_SHOWN = 5;
const SHA256 = /^[0-9a-f]{64}$/;
const HEX32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$/;

function hexOf(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The signing record's ceremony, recomputed here, against ceremonyOf() at every endpoint. */
async function ceremonyCheck(bytes, agreement, endpoints) {
  let record;
  try {
    record = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    return check("ceremony", false, "ceremony.fail", { detail: `${SIGNING_RECORD}: ${error.message || error}` });
  }
  if (!record || typeof record !== "object" || !("ceremony" in record)) {
    return record && record.state === "offered"
      ? check("ceremony", true, "ceremony.unsigned")
      : check("ceremony", null, "ceremony.absent");
  }
  let hash;
  try {
    hash = "0x" + hexOf(keccak_256(new TextEncoder().encode(canonicalJson(record.ceremony))));
  } catch (error) {
    return check("ceremony", false, "ceremony.fail", { detail: String(error.message || error) });
  }
  if (record.ceremony_hash && String(record.ceremony_hash).toLowerCase() !== hash) {
    return check("ceremony", false, "ceremony.fail", {
      detail: `the record states ${record.ceremony_hash}, its ceremony hashes to ${hash}`,
    });
  }
  const answers = [];
  for (const url of endpoints || []) {
    try {
      const data = CEREMONY_OF + agreement.onchain_id.slice(2);
      answers.push(String(await client(url)("eth_call", [{ to: agreement.registry, data }, "latest"])).toLowerCase());
    } catch {
      // an endpoint that does not answer is not a verdict
    }
  }
  if (!answers.length) return check("ceremony", null, "ceremony.offline", { hash });
  const wrong = answers.find((a) => a !== hash);
  if (wrong !== undefined) {
    return check("ceremony", false, "ceremony.fail", {
      detail: `the chain holds ceremony hash ${wrong}, the record hashes to ${hash}: not the record the candidate signed`,
    });
  }
  return check("ceremony", true, "ceremony.pass", { hash });
}

function check(name, ok, key, params = {}, parts = null) {
  return parts ? { name, ok, key, params, parts } : { name, ok, key, params };
}

/** True when the bytes start like a ZIP (a local file header, or an empty archive). */
export function looksLikeZip(bytes) {
  return (
    bytes.length >= 4 &&
    bytes[0] === 0x50 &&
    bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6))
  );
}

/** Why an entry name must not be used as a path, or null (the same rules as the CLI's). */
export function unsafeName(name) {
  if (!name) return "empty name";
  if (/[\u0000-\u001f\u007f]/.test(name)) return "control character";
  if (name.includes("\\")) return "backslash";
  if (name.startsWith("/")) return "absolute path";
  if (/^[A-Za-z]:/.test(name)) return "drive letter";
  const segments = (name.endsWith("/") ? name.slice(0, -1) : name).split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return "empty, . or .. segment";
  return null;
}

/**
 * The key under which two entry names are one file once extracted (the CLI's name_key): file
 * systems of Windows and macOS ignore case, and macOS the Unicode normalisation form. Upper then
 * lower case folds as Python's casefold does for what matters here ("ß" and "SS" too).
 */
export function nameKey(name) {
  return name.normalize("NFC").toUpperCase().toLowerCase().normalize("NFC");
}

/**
 * What the ZIP's own layout hides (the CLI's _overlapping and its encrypted-entry check),
 * read from the central directory and the local headers, before anything is decompressed:
 * entries whose stored bytes overlap another's or the central directory (one compressed kernel
 * counted many times: a zip bomb), and encrypted entries.
 */
export function zipLayoutProblems(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) return ["no end of central directory"];
  const count = view.getUint16(end + 10, true);
  const directory = view.getUint32(end + 16, true);
  const problems = [];
  const spans = [];
  let p = directory;
  for (let k = 0; k < count; k++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== 0x02014b50) {
      problems.push("the central directory is damaged");
      break;
    }
    const flags = view.getUint16(p + 8, true);
    const stored = view.getUint32(p + 20, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    const offset = view.getUint32(p + 42, true);
    const name = JSON.stringify(new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength)));
    p += 46 + nameLength + extraLength + commentLength;
    if (flags & 0x1) problems.push(`${name} is encrypted`);
    if (offset + 30 > bytes.length || view.getUint32(offset, true) !== 0x04034b50) {
      problems.push(`${name} has no local header where the directory says`);
      continue;
    }
    const headerEnd = offset + 30 + view.getUint16(offset + 26, true) + view.getUint16(offset + 28, true);
    spans.push([offset, headerEnd + stored, name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) problems.push(`${spans[i][2]} overlaps ${spans[i - 1][2]}`);
  }
  if (spans.some((span) => span[1] > directory)) problems.push("an entry overlaps the central directory");
  return problems;
}

function shown(list) {
  const head = list.slice(0, MAX_SHOWN).join("; ");
  return list.length > MAX_SHOWN ? `${head}; +${list.length - MAX_SHOWN}` : head;
}

/** What makes `manifest` not a well-formed offerseal-dossier-1 manifest (empty if none). */
export function manifestProblems(manifest) {
  if (!manifest || typeof manifest !== "object" || Array.isArray(manifest)) {
    return ["the manifest is not a JSON object"];
  }
  if (manifest.format !== DOSSIER_FORMAT) return [`format is ${JSON.stringify(manifest.format)}`];
  const problems = [];
  const a = manifest.agreement;
  if (!a || typeof a !== "object") {
    problems.push("agreement");
  } else {
    for (const key of ["id", "state"]) {
      if (typeof a[key] !== "string" || !a[key]) problems.push(`agreement.${key}`);
    }
    if (typeof a.onchain_id !== "string" || !HEX32.test(a.onchain_id)) problems.push("agreement.onchain_id");
    if (!Number.isSafeInteger(a.chain_id) || a.chain_id < 1) problems.push("agreement.chain_id");
    if (typeof a.registry !== "string" || !ADDRESS.test(a.registry)) problems.push("agreement.registry");
  }
  if (typeof manifest.as_of !== "string" || !UTC_TIME.test(manifest.as_of)) problems.push("as_of");
  const files = manifest.files;
  if (!Array.isArray(files) || files.length > MAX_ENTRIES) {
    problems.push("files");
    return problems;
  }
  const paths = [];
  files.forEach((entry, i) => {
    const where = `files[${i}]`;
    if (!entry || typeof entry !== "object") {
      problems.push(where);
      return;
    }
    const path = entry.path;
    if (typeof path !== "string" || unsafeName(path) || path.endsWith("/") || OUTSIDE_MANIFEST.includes(path)) {
      problems.push(`${where}.path`);
    } else {
      paths.push(path);
    }
    if (typeof entry.sha256 !== "string" || !SHA256.test(entry.sha256)) problems.push(`${where}.sha256`);
    if ("sm3" in entry && (typeof entry.sm3 !== "string" || !SHA256.test(entry.sm3))) problems.push(`${where}.sm3`);
    if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0) problems.push(`${where}.bytes`);
    if (typeof entry.title !== "string") problems.push(`${where}.title`);
    if ("proof" in entry && typeof entry.proof !== "string") problems.push(`${where}.proof`);
  });
  // Sorted by code point, as the producer sorts (and Python compares strings).
  const byCodePoint = (x, y) => {
    const a1 = Array.from(x, (c) => c.codePointAt(0));
    const b1 = Array.from(y, (c) => c.codePointAt(0));
    for (let i = 0; i < Math.min(a1.length, b1.length); i++) if (a1[i] !== b1[i]) return a1[i] - b1[i];
    return a1.length - b1.length;
  };
  if (new Set(paths).size !== paths.length) problems.push("files: paths must be unique");
  else if (paths.some((p, i) => i > 0 && byCodePoint(paths[i - 1], p) > 0)) problems.push("files: not sorted by path");
  if (!problems.length) {
    const listed = new Set(paths);
    for (const entry of files) {
      if ("proof" in entry && (!listed.has(entry.proof) || entry.proof === entry.path)) {
        problems.push(`${entry.path}: proof ${entry.proof} is not another listed file`);
      }
    }
  }
  return problems;
}

/** Every check of one proof bundle for a sha256: offline checks, stamps, chain at each endpoint. */
export async function checkBundle(bundle, sha, { endpoints, trusted, tsaRoots }, sm3 = null) {
  const { checks, facts } = verifyOffline(bundle, sha, trusted, sm3);
  if (!facts) return { checks, disagree: false };
  const stamps = (await timestampChecks(bundle, facts.root, tsaRoots)).concat(
    depositChecks(bundle, facts.root)
  );
  const perEndpoint = await Promise.all(
    endpoints.map(async (url) => {
      try {
        return { url, checks: await chainChecks(client(url), facts) };
      } catch (error) {
        return { url, checks: unreachable(url, error) };
      }
    })
  );
  const merged = mergeEndpoints(perEndpoint);
  return { checks: checks.concat(merged.checks, stamps), disagree: merged.disagree };
}

function summarise(name, params, result) {
  const failed = result.checks.filter((c) => c.ok !== true).map((c) => c.name);
  return isValid(result.checks)
    ? check(name, true, "bundle.pass", { ...params, count: result.checks.length }, result.checks)
    : check(name, false, "bundle.fail", { ...params, failed: failed.join(", ") }, result.checks);
}

function parseBundle(bytes) {
  if (bytes.length > MAX_BUNDLE_BYTES) throw new Error("larger than 64 KiB");
  return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
}

/**
 * Every check of a dossier, in the CLI's order. Returns {checks, disagree, manifestSha}; a
 * damaged or hostile ZIP gives failing checks, never an exception.
 */
export async function verifyDossier(bytes, options) {
  const checks = [];
  // 1. The ZIP's entries: names first (nothing is decompressed), then the files' bytes.
  const infos = [];
  try {
    unzipSync(bytes, {
      filter(info) {
        infos.push(info);
        return false;
      },
    });
  } catch (error) {
    return { checks: [check("zip", false, "zip.fail", { error: String(error.message || error) })] };
  }
  let problems = [];
  const folded = new Set();
  let total = 0;
  for (const info of infos) {
    const why = unsafeName(info.name);
    if (why) {
      problems.push(`${JSON.stringify(info.name)}: ${why}`);
    } else if (folded.has(nameKey(info.name))) {
      problems.push(`${JSON.stringify(info.name)} appears twice (ignoring case and Unicode form)`);
    }
    folded.add(nameKey(info.name));
    total += info.originalSize;
  }
  if (infos.length > MAX_ENTRIES) problems.push(`${infos.length} entries`);
  if (total > MAX_TOTAL_BYTES) problems.push(`${total} bytes uncompressed`);
  if (!problems.length) problems = zipLayoutProblems(bytes);
  if (problems.length) {
    return { checks: [check("zip", false, "zip.unsafe", { names: shown(problems) })] };
  }
  let files;
  try {
    files = unzipSync(bytes, { filter: (info) => !info.name.endsWith("/") });
  } catch (error) {
    return { checks: [check("zip", false, "zip.fail", { error: String(error.message || error) })] };
  }
  const names = Object.keys(files);
  checks.push(check("zip", true, "zip.pass", { count: names.length }));

  // 2. The manifest, hashed as the exact bytes that were anchored.
  if (!(MANIFEST in files)) {
    checks.push(check("manifest", false, "manifest.missing"));
    return { checks };
  }
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(files[MANIFEST]));
  } catch (error) {
    checks.push(check("manifest", false, "manifest.json", { error: String(error.message || error) }));
    return { checks };
  }
  const wrong = manifestProblems(manifest);
  if (wrong.length) {
    checks.push(check("manifest", false, "manifest.problems", { problems: shown(wrong) }));
    return { checks };
  }
  checks.push(
    check("manifest", true, "manifest.pass", {
      format: DOSSIER_FORMAT,
      id: manifest.agreement.id,
      state: manifest.agreement.state,
      as_of: manifest.as_of,
      count: manifest.files.length,
    })
  );

  // 3. Every listed file with its sha256 and size; nothing unlisted.
  const actual = {};
  const actualSm3 = {};
  const missing = [];
  const changed = [];
  for (const entry of manifest.files) {
    const data = files[entry.path];
    if (!data) {
      missing.push(entry.path);
      continue;
    }
    const sha = (await sha256Hex(data)).slice(2);
    const sm3 = sm3Hex(data).slice(2);
    if (data.length !== entry.bytes || sha !== entry.sha256) changed.push(entry.path);
    else if (entry.sm3 !== undefined && sm3 !== entry.sm3) changed.push(entry.path);
    else {
      actual[entry.path] = sha;
      actualSm3[entry.path] = sm3;
    }
  }
  const listed = new Set(manifest.files.map((e) => e.path));
  const unlisted = names.filter((n) => !listed.has(n) && !OUTSIDE_MANIFEST.includes(n)).sort();
  if (missing.length || changed.length || unlisted.length) {
    const none = "—";
    checks.push(
      check("files", false, "files.fail", {
        missing: missing.length ? shown(missing) : none,
        changed: changed.length ? shown(changed) : none,
        unlisted: unlisted.length ? shown(unlisted) : none,
      })
    );
  } else {
    checks.push(check("files", true, "files.pass", { count: manifest.files.length }));
  }

  // 4. The manifest's proof; 5. each file's own proof.
  let disagree = false;
  const manifestSha = await sha256Hex(files[MANIFEST]);
  async function bundleCheck(name, bundlePath, what, sha, sm3) {
    if (!files[bundlePath]) return check(name, false, "bundle.missing", { what, bundle: bundlePath });
    let bundle;
    try {
      bundle = parseBundle(files[bundlePath]);
    } catch (error) {
      return check(name, false, "bundle.json", { what, bundle: bundlePath, error: String(error.message || error) });
    }
    const result = await checkBundle(bundle, sha, options, sm3);
    disagree = disagree || result.disagree;
    return summarise(name, { what, bundle: bundlePath }, result);
  }
  checks.push(
    await bundleCheck("manifest_anchored", MANIFEST_PROOF, MANIFEST, manifestSha, sm3Hex(files[MANIFEST]))
  );
  for (const entry of manifest.files) {
    if (!("proof" in entry)) continue;
    if (!(entry.path in actual) || !(entry.proof in actual)) {
      checks.push(check("file_proof", false, "file_proof.mismatch", { path: entry.path, proof: entry.proof }));
      continue;
    }
    checks.push(
      await bundleCheck(
        "file_proof",
        entry.proof,
        entry.path,
        "0x" + actual[entry.path],
        "0x" + actualSm3[entry.path]
      )
    );
  }

  // 6. The ceremony the candidate's signature covered, against the chain.
  if (SIGNING_RECORD in actual) {
    checks.push(await ceremonyCheck(files[SIGNING_RECORD], manifest.agreement, options.endpoints));
  }

  // 7. The cover report: present (its signature is for a PDF reader to show).
  checks.push(
    files[COVER]
      ? check("cover", true, "cover.pass", { bytes: files[COVER].length })
      : check("cover", false, "cover.missing")
  );
  return { checks, disagree, manifestSha };
}
