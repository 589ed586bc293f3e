// The checks of an offerseal-proof/1, /2 or /3 bundle (the chain witness, the document's SM3 where
// the bundle states it, judicial-chain deposits checked off line; RFC 3161 stamps are in
// timestamps.js), the same as the `offerseal verify` command runs,
// computed in the browser: nothing here trusts OfferSeal's servers. Each check is
// {name, ok: true | false | null, key, params}; `key` names the message that explains it.

import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { SimpleMerkleTree } from "@openzeppelin/merkle-tree";
import { keccak256, standardLeafHash } from "@openzeppelin/merkle-tree/dist/hashes.js";

import { canonicalJson } from "./canonical.js";
import { sm3 } from "./sm3.js";

export const PROOF_FORMATS = ["offerseal-proof/3", "offerseal-proof/2", "offerseal-proof/1"];
export const PROOF_FORMAT = PROOF_FORMATS[0];
export const MAX_PROOF_LENGTH = 32;
const RECEIPT_FORMATS = ["offerseal-intake-receipt/2", "offerseal-intake-receipt/1"];
const BATCH_FORMATS = ["offerseal-intake-batch/2", "offerseal-intake-batch/1"];
const HEX32 = /^0x[0-9a-f]{64}$/;
const CHAIN_CHECKS = ["chain_id", "root_anchored", "anchor_transaction", "block_timestamp"];

const utf8 = new TextEncoder();

export function toHex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const raw = atob(b64);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function fromHex(text) {
  const hex = text.startsWith("0x") ? text.slice(2) : text;
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error("not hex");
  return Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
}

/** sha256 of the file's bytes: WebCrypto where the page is a secure context, else @noble. */
export async function sha256Hex(bytes) {
  if (globalThis.crypto && globalThis.crypto.subtle) {
    return toHex(new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes)));
  }
  return toHex(nobleSha256(new Uint8Array(bytes)));
}

function keyIdOf(raw) {
  return "ed25519:" + toHex(nobleSha256(raw)).slice(2, 18);
}

/** A pinned receipt key (from GET /v1/keys: base64url or hex of the 32 raw bytes), or null. */
export function parseTrustedKey(text) {
  const value = (text || "").trim();
  if (!value) return null;
  let raw;
  try {
    raw = value.replace(/^0x/, "").length === 64 ? fromHex(value) : fromB64url(value);
  } catch {
    raw = new Uint8Array();
  }
  if (raw.length !== 32) throw new Error("bad key");
  return { keyId: keyIdOf(raw), raw };
}

function check(name, ok, key, params = {}) {
  return { name, ok, key, params };
}

function verifyReceipt(receipt, trusted) {
  try {
    const payload = receipt.payload;
    if (receipt.alg !== "Ed25519" || ![...RECEIPT_FORMATS, ...BATCH_FORMATS].includes(payload.format)) {
      return { ok: false, key: "receipt.format" };
    }
    const keyId = payload.key_id;
    const embedded = fromB64url(receipt.public_key);
    if (keyIdOf(embedded) !== keyId) return { ok: false, key: "receipt.key_mismatch" };
    if (trusted && trusted.keyId !== keyId) {
      return { ok: false, key: "receipt.untrusted", params: { key_id: keyId } };
    }
    const publicRaw = trusted ? trusted.raw : embedded;
    const message = utf8.encode(canonicalJson(payload));
    if (!ed25519.verify(fromB64url(receipt.signature), message, publicRaw)) {
      return { ok: false, key: "receipt.bad_signature" };
    }
    let statement = payload;
    if (BATCH_FORMATS.includes(payload.format)) {
      statement = receipt.item;
      const leaf = toHex(keccak_256(utf8.encode(canonicalJson(statement))));
      if (!SimpleMerkleTree.verify(payload.items_root, leaf, receipt.item_proof)) {
        return { ok: false, key: "receipt.not_in_batch" };
      }
    }
    return {
      ok: true,
      key: trusted ? "receipt.trusted" : "receipt.embedded",
      params: { key_id: keyId },
      statement,
    };
  } catch (error) {
    return { ok: false, key: "receipt.malformed", params: { error: String(error.message || error) } };
  }
}

/**
 * The checks that need no chain: format, document_hash, receipt_signature, leaf, merkle_path.
 * Returns {checks, facts}; `facts` (root, anchor) is null when the bundle is unusable.
 */
export function verifyOffline(bundle, documentSha256, trusted, documentSm3 = null) {
  const checks = [];
  if (!bundle || typeof bundle !== "object" || !PROOF_FORMATS.includes(bundle.format)) {
    return {
      checks: [check("format", false, "format.fail", { format: PROOF_FORMATS.join(" / ") })],
      facts: null,
    };
  }
  checks.push(check("format", true, "format.pass", { format: bundle.format }));
  let claimed, claimedSm3, values, leafHash, root, path, anchor, receipt;
  try {
    claimed = String(bundle.document.sha256).toLowerCase();
    claimedSm3 = bundle.document.sm3 == null ? null : String(bundle.document.sm3).toLowerCase();
    if (claimedSm3 !== null && !HEX32.test(claimedSm3)) {
      throw new Error("document.sm3 must be a 32-byte hex value");
    }
    values = bundle.leaf.values.map((v) => String(v).toLowerCase());
    leafHash = String(bundle.leaf.hash).toLowerCase();
    root = String(bundle.merkle.root).toLowerCase();
    path = bundle.merkle.proof.map((p) => String(p).toLowerCase());
    anchor = bundle.anchor;
    receipt = bundle.intake_receipt;
    if (values.length !== 2 || !values.every((v) => HEX32.test(v))) {
      throw new Error("leaf.values must be two 32-byte hex values");
    }
    if (![leafHash, root, ...path].every((v) => HEX32.test(v))) {
      throw new Error("leaf.hash, merkle.root and merkle.proof must be 32-byte hex values");
    }
    if (path.length > MAX_PROOF_LENGTH) {
      throw new Error(`a Merkle path has at most ${MAX_PROOF_LENGTH} siblings`);
    }
    if (!anchor || !receipt) throw new Error("anchor and intake_receipt are required");
  } catch (error) {
    checks.push(check("structure", false, "structure.fail", { error: String(error.message || error) }));
    return { checks, facts: null };
  }

  const actual = documentSha256.toLowerCase();
  checks.push(
    actual === claimed
      ? check("document_hash", true, "document_hash.pass", { actual })
      : check("document_hash", false, "document_hash.fail", { actual, claimed })
  );
  if (documentSm3 && claimedSm3 !== null) {
    const sm3Actual = documentSm3.toLowerCase();
    checks.push(
      sm3Actual === claimedSm3
        ? check("document_sm3", true, "document_sm3.pass", { actual: sm3Actual })
        : check("document_sm3", false, "document_sm3.fail", { actual: sm3Actual, claimed: claimedSm3 })
    );
  }

  const r = verifyReceipt(receipt, trusted);
  let receiptCheck = check("receipt_signature", r.ok, r.key, r.params || {});
  if (r.ok && String(r.statement.sha256 || "").toLowerCase() !== claimed) {
    receiptCheck = check("receipt_signature", false, "receipt.other_sha256");
  } else if (r.ok && r.statement.document_id !== (bundle.document || {}).id) {
    receiptCheck = check("receipt_signature", false, "receipt.other_document");
  } else if (r.ok && claimedSm3 !== null && String(r.statement.sm3 || "").toLowerCase() !== claimedSm3) {
    receiptCheck = check("receipt_signature", false, "receipt.other_sm3");
  }
  checks.push(receiptCheck);

  // The leaf is OpenZeppelin's StandardMerkleTree leaf of [sha256, salt] as two bytes32.
  const leafOk =
    values[0] === claimed && standardLeafHash(["bytes32", "bytes32"], values) === leafHash;
  checks.push(check("leaf", leafOk, leafOk ? "leaf.pass" : "leaf.fail"));
  const pathOk = SimpleMerkleTree.verify(root, leafHash, path);
  checks.push(
    check("merkle_path", pathOk, pathOk ? "merkle_path.pass" : "merkle_path.fail", {
      count: path.length,
    })
  );
  return { checks, facts: { root, anchor } };
}

const DEPOSIT_TYPES = ["tencent-btoe"];
const BTOE_HASH_TYPES = { sm3: 0, sha256: 1 };
const DEPOSIT_DIGESTS = { sm3: (bytes) => sm3(bytes), sha256: (bytes) => nobleSha256(bytes) };

function depositCheck(entry, root) {
  if (!entry || typeof entry !== "object") return check("judicial_deposit", false, "deposit.malformed");
  const type = String(entry.type);
  const algorithm = String(entry.hash_algorithm);
  if (!DEPOSIT_TYPES.includes(type)) return check("judicial_deposit", false, "deposit.type", { type });
  if (entry.subject !== "merkle_root" || !DEPOSIT_DIGESTS[algorithm]) {
    return check("judicial_deposit", false, "deposit.subject", { type });
  }
  const digest = toHex(DEPOSIT_DIGESTS[algorithm](fromHex(root))).slice(2);
  const request = entry.request || {};
  const response = entry.response || {};
  const ok =
    String(entry.hash || "").toLowerCase() === digest &&
    String(request.EvidenceHash || "").toLowerCase() === digest &&
    request.HashType === BTOE_HASH_TYPES[algorithm] &&
    !!entry.evidence_id &&
    entry.evidence_id === response.EvidenceId &&
    entry.tx_hash === response.EvidenceTxHash &&
    entry.evidence_time === response.EvidenceTime;
  const params = { id: String(entry.evidence_id), tx: String(entry.tx_hash), time: String(entry.evidence_time), algorithm };
  return check("judicial_deposit", ok, ok ? "deposit.pass" : "deposit.fail", params);
}

/**
 * Judicial-chain deposits (format 3), checked off line: each entry holds the digest of this root
 * and the ids of the provider's answer. Only the provider can confirm on line that it recorded
 * it; the messages say so.
 */
export function depositChecks(bundle, root) {
  if (bundle.format !== PROOF_FORMATS[0]) return [];
  const deposits = Array.isArray(bundle.deposits) ? bundle.deposits : [];
  const listed = (bundle.witnesses || []).filter((w) => w !== "ethereum" && w !== "rfc3161").sort();
  const present = [...new Set(deposits.map((d) => String((d || {}).type)))].sort();
  if (JSON.stringify(listed) !== JSON.stringify(present)) {
    return [check("judicial_deposit", false, "deposit.witnesses")];
  }
  return deposits.map((entry) => depositCheck(entry, root));
}

export const ANCHORED_AT_SELECTOR = keccak256(utf8.encode("anchoredAt(bytes32)")).slice(0, 10);
export const ANCHORED_TOPIC = keccak256(utf8.encode("Anchored(bytes32,uint64,address)"));

/** The endpoint's answer, or null when it refused the question (an unreachable one throws). */
async function answerOrNull(rpc, method, params) {
  try {
    return await rpc(method, params);
  } catch (error) {
    if (error.transport) throw error;
    return null;
  }
}

/** The four chain checks against one RPC endpoint (`rpc(method, params)` answers or throws). */
export async function chainChecks(rpc, facts) {
  const { root, anchor } = facts;
  let registry, txHash, blockNumber, blockHash, statedTs, statedChain;
  try {
    registry = String(anchor.registry).toLowerCase();
    txHash = String(anchor.tx_hash).toLowerCase();
    blockNumber = Number(anchor.block_number);
    blockHash = String(anchor.block_hash).toLowerCase();
    statedTs = Number(anchor.block_timestamp);
    statedChain = Number(anchor.chain_id);
    if (![blockNumber, statedTs, statedChain].every(Number.isSafeInteger)) {
      throw new Error("block_number, block_timestamp and chain_id must be integers");
    }
  } catch (error) {
    return [check("anchor", false, "anchor.malformed", { error: String(error.message || error) })];
  }
  const out = [];
  const actualChain = Number(BigInt(await rpc("eth_chainId", [])));
  out.push(
    check("chain_id", actualChain === statedChain, "chain_id.result", {
      actual: actualChain,
      stated: statedChain,
    })
  );

  let anchoredAt = 0n;
  try {
    const answer = await rpc("eth_call", [
      { to: registry, data: ANCHORED_AT_SELECTOR + root.slice(2) },
      "latest",
    ]);
    anchoredAt = answer && answer !== "0x" ? BigInt(answer) : 0n;
  } catch (error) {
    if (error.transport) throw error; // unreachable endpoint: reported for the endpoint
    anchoredAt = 0n; // no contract there, or not a registry
  }
  out.push(
    anchoredAt !== 0n
      ? check("root_anchored", true, "root_anchored.pass", { at: String(anchoredAt), registry })
      : check("root_anchored", false, "root_anchored.fail", { registry })
  );

  const receipt = await answerOrNull(rpc, "eth_getTransactionReceipt", [txHash]);
  if (!receipt) {
    out.push(check("anchor_transaction", false, "anchor_transaction.missing", { tx: txHash }));
  } else {
    const roots = (receipt.logs || [])
      .filter(
        (log) =>
          String(log.address).toLowerCase() === registry &&
          (log.topics || []).length > 1 &&
          String(log.topics[0]).toLowerCase() === ANCHORED_TOPIC
      )
      .map((log) => String(log.topics[1]).toLowerCase());
    const txOk =
      BigInt(receipt.status) === 1n &&
      String(receipt.to || "").toLowerCase() === registry &&
      Number(BigInt(receipt.blockNumber)) === blockNumber &&
      String(receipt.blockHash).toLowerCase() === blockHash &&
      roots.includes(root);
    out.push(
      check(
        "anchor_transaction",
        txOk,
        txOk ? "anchor_transaction.pass" : "anchor_transaction.fail",
        { tx: txHash, block: blockNumber, block_hash: blockHash }
      )
    );
  }

  const block = await answerOrNull(rpc, "eth_getBlockByNumber", [
    "0x" + blockNumber.toString(16),
    false,
  ]);
  const tsOk =
    !!block &&
    String(block.hash).toLowerCase() === blockHash &&
    Number(BigInt(block.timestamp)) === statedTs &&
    anchoredAt === BigInt(statedTs);
  out.push(
    check("block_timestamp", tsOk, tsOk ? "block_timestamp.pass" : "block_timestamp.fail", {
      block: blockNumber,
      timestamp: statedTs,
    })
  );
  return out;
}

/** Chain checks that could not run because the endpoint did not answer. */
export function unreachable(endpoint, error) {
  return CHAIN_CHECKS.map((name) =>
    check(name, false, "rpc.unreachable", { url: endpoint, error: String(error.message || error) })
  );
}

/**
 * Merge the chain checks of several endpoints: a check passes only if it passes at every
 * endpoint; `disagree` is true when the endpoints did not all give the same answer.
 */
export function mergeEndpoints(perEndpoint) {
  const names = [];
  for (const { checks } of perEndpoint) {
    for (const c of checks) if (!names.includes(c.name)) names.push(c.name);
  }
  let disagree = false;
  const merged = names.map((name) => {
    const answers = perEndpoint.map(({ url, checks }) => ({
      url,
      check: checks.find((c) => c.name === name) || check(name, false, "rpc.no_answer", { url }),
    }));
    const first = JSON.stringify([answers[0].check.ok, answers[0].check.key, answers[0].check.params]);
    const same = answers.every(
      (a) => JSON.stringify([a.check.ok, a.check.key, a.check.params]) === first
    );
    if (!same) disagree = true;
    const ok = answers.every((a) => a.check.ok === true);
    return same
      ? { ...answers[0].check, ok }
      : { name, ok, key: null, params: {}, perEndpoint: answers };
  });
  return { checks: merged, disagree };
}

export function isValid(checks) {
  return checks.length > 0 && checks.every((c) => c.ok === true);
}
