// The candidate's portal: reads the agreement, proves the contact with a one-time code, creates
// a passkey (or connects a wallet), and signs the EIP-712 digest it computes itself from the
// terms shown (never a digest taken from the server), then follows the progress and records the
// arrival. Every call goes to this origin with the link's token.

import catalog from "catalogue:portal";
import { TypedDataEncoder } from "ethers/hash";
import { AbiCoder } from "ethers/abi";
import { keccak256 } from "ethers/crypto";
import { getAddress } from "ethers/address";
import { toUtf8Bytes } from "ethers/utils";
import { canonicalJson } from "../verify/canonical.js";

const LANGUAGES = Object.keys(catalog);
const KIND_NAMES = {
  1: "expected_resignation_date",
  2: "resignation_submitted",
  3: "resignation_accepted",
  4: "handover_started",
  5: "handover_halfway",
  6: "last_working_day_fixed",
  7: "social_insurance_stop",
};

const lang = LANGUAGES.includes(document.documentElement.lang) ? document.documentElement.lang : "zh-CN";
const root = document.getElementById("portal");
const agreementId = root.dataset.agreement;
const amendmentId = root.dataset.amendment || null;
const mode = root.dataset.mode || "";
const token = new URLSearchParams(window.location.search).get("token") || "";
const $ = (id) => document.getElementById(id);

function t(key, params = {}) {
  const text = (catalog[lang] && catalog[lang][key]) ?? catalog.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// ---- talking to the APIs --------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body, retryAfter = null) {
    super(body.detail || body.title || String(status));
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

async function api(path, options = {}) {
  const url = path.startsWith("/v1/")
    ? path + (options.withToken ? `${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : "")
    : `/v1/agreements/${agreementId}${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
  // The enrolment session is an HttpOnly cookie of this origin: sent, never read, by this script.
  const init = { method: options.method || "GET", headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (options.form !== undefined) {
    init.body = options.form;
  } else if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new Problem(0, { title: "offline" });
  }
  const type = response.headers.get("Content-Type") || "";
  if (!response.ok) {
    const body = type.includes("json") ? await response.json().catch(() => ({})) : {};
    throw new Problem(response.status, body, response.headers.get("Retry-After"));
  }
  if (response.status === 204) return null;
  return type.includes("json") ? response.json() : response.text();
}

/** Words a candidate understands for what went wrong. */
function explain(error) {
  if (error && error.name === "NotAllowedError") return t("portal.error.cancelled");
  if (error && error.name === "InvalidStateError") return t("portal.error.passkey_exists");
  if (error && error.name === "SecurityError") return t("portal.error.insecure");
  if (error && error.name === "NoPasskeys") return t("portal.error.no_passkeys");
  if (!(error instanceof Problem)) return t("portal.error.generic");
  const { status, body } = error;
  const field = body.field || (Array.isArray(body.errors) && body.errors[0] && body.errors[0].field);
  if (status === 0) return t("portal.error.offline");
  if (status === 410 && (body.title || "").startsWith("Code")) return t("portal.error.code_expired");
  if (status === 410 || status === 401) return t("portal.error.link");
  if (status === 422 && field === "code") {
    const left = /(\d+) attempts left/.exec(body.detail || "");
    return t("portal.error.code_wrong", { left: left ? left[1] : "?" });
  }
  if (status === 429 && /most it allows/.test(body.detail || "")) return t("portal.error.no_more_codes");
  if (status === 429) {
    const seconds = Number((error.retryAfter || "60"));
    return t("portal.error.too_many", { wait: seconds >= 120 ? `${Math.ceil(seconds / 60)} min` : `${seconds} s` });
  }
  if (status === 403) return t("portal.error.not_proven");
  if (status === 409 && body.error === "RebindingPending") {
    const until = /,\s*(\d+)\)/.exec(body.detail || "");
    return t("portal.error.rebinding", { when: until ? new Date(Number(until[1]) * 1000).toLocaleString(lang) : "" });
  }
  if (status === 409 && /already bound a signer/.test(body.detail || "")) return t("portal.error.key_bound");
  if (status === 409 && /already used/.test(body.detail || "")) return t("portal.error.code_used");
  if (status === 409 && /is (committed|fulfilled|breached|cancelled|expired|employer_breached)/.test(body.detail || ""))
    return t("portal.error.ended");
  if (status === 409 && body.error === "InvalidState") return t("portal.error.ended");
  if (status === 422 && field === "signature" && /signing record changed/.test(body.detail || ""))
    return t("portal.error.record_changed");
  if (status === 422 && field === "signature") return t("portal.error.signature");
  if (status >= 500) return t("portal.error.server");
  return t("portal.error.generic");
}

function showError(error) {
  $("error-text").textContent = explain(error);
  $("error-summary").hidden = false;
  $("error-summary").focus();
}

function clearError() {
  $("error-summary").hidden = true;
}

async function busy(button, work) {
  button.disabled = true;
  clearError();
  try {
    await work();
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

// ---- bytes ----------------------------------------------------------------------------------

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64url = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const hexToBytes = (hex) => Uint8Array.from(hex.slice(2).match(/../g).map((b) => parseInt(b, 16)));
const toHex = (bytes) => "0x" + [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

async function sha256Hex(text) {
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** IntentAgreements.passkeyAddress(x, y), from the SubjectPublicKeyInfo of a P-256 key (whose
 * last 65 bytes are the uncompressed point 04 || x || y). */
function passkeyAddress(spki) {
  const point = new Uint8Array(spki).slice(-65);
  if (point[0] !== 4) throw new Error("not an uncompressed P-256 point");
  const encoded = AbiCoder.defaultAbiCoder().encode(["bytes32", "bytes32"], [point.slice(1, 33), point.slice(33)]);
  return getAddress("0x" + keccak256(encoded).slice(-40));
}

/** keccak256 of the ceremony's canonical JSON: the Commitment's ceremonyHash, computed here. */
function ceremonyHashOf(ceremony) {
  return keccak256(toUtf8Bytes(canonicalJson(ceremony)));
}

/** The EIP-712 digest of a typed-data payload, computed here. */
function digestOf(typed) {
  const types = { ...typed.types };
  delete types.EIP712Domain;
  return TypedDataEncoder.hash(typed.domain, types, typed.message);
}

// ---- what the page shows --------------------------------------------------------------------

const state = { employer: "", status: null, text: "", textHash: "", readSince: Date.now() };

function money(minor, currency) {
  const value = BigInt(minor);
  const major = value / 100n;
  const cents = (value % 100n).toString().padStart(2, "0");
  return `${currency} ${major.toLocaleString(lang)}.${cents}`;
}

function date(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleDateString(lang, { year: "numeric", month: "long", day: "numeric" });
}

function row(list, label, value) {
  const div = document.createElement("div");
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = label;
  dd.textContent = value;
  div.append(dt, dd);
  list.append(div);
}

/** The summary of what is signed, read from the typed data itself: what you see is what you sign. */
function showSummary(typed, agreement) {
  const m = typed.message;
  const list = $("summary");
  list.replaceChildren();
  row(list, t("portal.terms.employer"), `${agreement.employer_name} · ${agreement.position}`);
  if (m.startDate !== undefined) row(list, t("portal.terms.start"), date(m.startDate));
  if (m.graceSeconds !== undefined) row(list, t("portal.terms.grace"), t("portal.terms.days", { n: Math.round(Number(m.graceSeconds) / 86400) }));
  if (m.monthlySalary !== undefined) row(list, t("portal.terms.salary"), money(m.monthlySalary, agreement.currency));
  if (m.liquidatedDamages !== undefined) row(list, t("portal.terms.damages"), money(m.liquidatedDamages, agreement.currency));
  const kinds = m.milestoneKinds || [];
  const dues = m.milestoneDues || m.dues || [];
  dues.forEach((due, i) => {
    const kind = kinds[i] !== undefined ? KIND_NAMES[kinds[i]] : agreement.milestones[i] && agreement.milestones[i].kind;
    const label = kind ? t(`portal.milestone.${kind}`) : t("portal.terms.milestone", { n: i + 1 });
    row(list, label, t("portal.terms.by", { date: date(due) }));
  });
  if (m.deadline !== undefined) row(list, t("portal.terms.deadline"), date(m.deadline));
}

/** The agreement's terms in the typed data's shape (before the signer is bound). */
function termsOf(agreement) {
  const seconds = (iso) => Math.floor(Date.parse(iso) / 1000);
  return {
    message: {
      startDate: seconds(agreement.start_at),
      graceSeconds: agreement.grace_days * 86400,
      monthlySalary: String(agreement.monthly_salary),
      liquidatedDamages: String(agreement.liquidated_damages),
      milestoneDues: agreement.milestones.map((m) => seconds(m.due_at)),
      deadline: seconds(agreement.offer_expires_at),
    },
  };
}

function showText(text, hash, expected) {
  $("agreement-text").textContent = text;
  $("terms-hash").textContent = hash;
  $("hash-check").textContent = hash === expected ? t("portal.text.matches") : t("portal.text.mismatch");
  $("terms-section").hidden = false;
}

/** The consent opens once the end of the text has been on screen (the whole text opened). */
function watchReading(onRead) {
  const end = $("text-end");
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    onRead(Math.round((Date.now() - state.readSince) / 1000));
  };
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        observer.disconnect();
        finish();
      }
    });
    observer.observe(end);
  } else {
    window.addEventListener("scroll", () => {
      if (end.getBoundingClientRect().top < window.innerHeight) finish();
    });
  }
}

function showDone(title, text) {
  $("done-title").textContent = title;
  $("done-text").textContent = text;
  $("done").hidden = false;
  $("done").focus();
}

function download(link, name, content, type) {
  link.href = URL.createObjectURL(new Blob([content], { type }));
  link.download = name;
}

async function showAfter(status) {
  const tx = status.transactions.commit;
  $("tx").textContent = tx ? t("portal.after.tx", { tx }) : t("portal.after.no_tx");
  download($("download-text"), `agreement-${agreementId}.txt`, state.text, "text/plain;charset=utf-8");
  const record = await api("/signing-record");
  download($("download-record"), `signing-record-${agreementId}.json`, JSON.stringify(record, null, 2), "application/json");
  $("after-section").hidden = false;
}

function showProgress(status) {
  const list = $("milestones");
  list.replaceChildren();
  const now = Date.now();
  for (const m of status.agreement.milestones) {
    const item = document.createElement("li");
    const due = Date.parse(m.due_at);
    const kind = m.confirmed_at ? "confirmed" : due < now ? "overdue" : "waiting";
    item.className = `check milestone--${kind}`;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = t(`portal.status.${kind}`);
    const name = document.createElement("span");
    name.textContent = ` ${t(`portal.milestone.${m.kind}`)} · ${t("portal.terms.by", { date: date(due / 1000) })}`;
    item.append(tag, name);
    list.append(item);
  }
  for (const amendment of status.amendments) {
    const item = document.createElement("li");
    item.className = "check";
    const link = document.createElement("a");
    link.href = new URL(amendment.link, window.location.href).pathname + new URL(amendment.link, window.location.href).search;
    link.textContent = t("portal.amendment.waiting", { date: date(Date.parse(amendment.start_at) / 1000) });
    item.append(link);
    list.append(item);
  }
  const arrival = status.agreement.arrival;
  if (arrival.arrived_at) {
    $("arrived").hidden = false;
    $("arrival").hidden = true;
  } else {
    $("arrival").hidden = !status.arrival_open;
  }
  $("progress-section").hidden = false;
}

// ---- passkeys -------------------------------------------------------------------------------

function storedKey() {
  try {
    return JSON.parse(localStorage.getItem(`offerseal.passkey.${agreementId}`) || "null");
  } catch {
    return null;
  }
}

async function createPasskey(status) {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    const error = new Error("no WebAuthn");
    error.name = "NoPasskeys";
    throw error;
  }
  const userId = crypto.getRandomValues(new Uint8Array(16));
  const credential = await navigator.credentials.create({
    publicKey: {
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      rp: { name: "OfferSeal", id: window.location.hostname },
      user: { id: userId, name: `${state.employer} · ${agreementId.slice(0, 8)}`, displayName: t("portal.key.user", { employer: state.employer }) },
      pubKeyCredParams: [{ type: "public-key", alg: -7 }],
      authenticatorSelection: { userVerification: "required", residentKey: "preferred" },
      attestation: "none",
      timeout: 120000,
    },
  });
  const spki = credential.response.getPublicKey();
  if (!spki) throw new Error("no public key");
  const address = passkeyAddress(spki);
  const credentialId = b64url(credential.rawId);
  const bound = await api("/enrolment/signer", {
    method: "POST",
    body: { kind: "passkey", credential_id: credentialId, public_key: b64url(spki) },
  });
  if (bound.address !== address) throw new Error("the server bound another key");
  localStorage.setItem(`offerseal.passkey.${agreementId}`, JSON.stringify({ credentialId, address }));
  return bound;
}

/** A WebAuthn assertion over `digest` (0x hex) by the enrolled passkey. */
async function assert(digest, credentialId) {
  const credential = await navigator.credentials.get({
    publicKey: {
      challenge: hexToBytes(digest),
      allowCredentials: [{ type: "public-key", id: unb64url(credentialId) }],
      userVerification: "required",
      timeout: 120000,
    },
  });
  return {
    credential_id: b64url(credential.rawId),
    authenticator_data: b64url(credential.response.authenticatorData),
    client_data_json: b64url(credential.response.clientDataJSON),
    signature: b64url(credential.response.signature),
  };
}

async function walletSign(typed, address) {
  const signature = await window.ethereum.request({
    method: "eth_signTypedData_v4",
    params: [address, JSON.stringify(typed)],
  });
  return signature;
}

/** Sign `typed` with the enrolled signer after checking it is what the page showed. */
async function signTyped(typed, signer) {
  if (getAddress(typed.message.candidate || signer.address) !== getAddress(signer.address)) {
    throw new Error("the typed data names another signer");
  }
  const digest = digestOf(typed);
  if (signer.kind === "wallet") return { signature: await walletSign(typed, signer.address) };
  return { passkey: await assert(digest, signer.credential_id) };
}

/** The ceremony the signature will cover, from the server, checked and shown; its hash. */
async function showCeremony() {
  const answer = await api("/ceremony");
  const c = answer.ceremony;
  const computed = ceremonyHashOf(c);
  if (computed !== answer.ceremony_hash) throw new Problem(422, { field: "signature" });
  const list = $("ceremony");
  list.replaceChildren();
  const when = (iso) => (iso ? new Date(iso).toLocaleString(lang) : t("portal.ceremony.none"));
  row(list, t("portal.ceremony.read"), c.text.read_at
    ? t("portal.ceremony.read_value", { when: when(c.text.read_at), seconds: c.text.read_seconds_reported_by_browser })
    : t("portal.ceremony.none"));
  row(list, t("portal.ceremony.consent"), when(c.consent.given_at));
  if (c.code) {
    row(list, t("portal.ceremony.code"), t("portal.ceremony.code_value", {
      destination: c.code.destination, channel: t(`portal.ceremony.channel.${c.code.channel}`), when: when(c.code.verified_at),
    }));
  }
  row(list, t("portal.ceremony.key"), t("portal.ceremony.key_value", { kind: t(`portal.ceremony.kind.${c.signer.kind}`), address: c.signer.address }));
  $("ceremony-hash").textContent = computed;
  $("ceremony-section").hidden = false;
  return computed;
}

// ---- the journeys ---------------------------------------------------------------------------

async function signingJourney(status) {
  const agreement = status.agreement;
  const text = await api("/terms");
  state.text = text;
  const hash = await sha256Hex(text);
  let typed = null;
  try {
    typed = await api("/typed-data");
  } catch (error) {
    // Before the candidate enrolled, the commitment names no signer yet: the terms come from the
    // agreement, and the typed data is fetched (and shown) again just before signing.
    if (!(error instanceof Problem && error.status === 409)) throw error;
  }
  showSummary(typed || termsOf(agreement), agreement);
  showText(text, hash, typed ? typed.message.termsHash : agreement.terms_hash);
  api("/enrolment/events", { method: "POST", body: { kind: "text_opened", seconds: 0 } }).catch(() => {});
  if (agreement.state !== "offered") {
    $("lead").textContent = t(`portal.lead.${agreement.state}`, { employer: agreement.employer_name });
    if (agreement.state === "committed" || agreement.state === "fulfilled") {
      await showAfter(status);
      showProgress(status);
    }
    return;
  }
  $("lead").textContent = t("portal.lead.offered", { employer: agreement.employer_name, position: agreement.position });
  $("sign-section").hidden = false;
  let signer = status.signer;
  const consent = $("consent");

  // 1. the code
  const codeStep = () => {
    $("code-ok").hidden = false;
    $("group-code").hidden = true;
    $("code-channels").hidden = true;
    $("code-lead").hidden = true;
    $("step-key").hidden = false;
    $("key-wallet").hidden = !window.ethereum;
  };
  for (const channel of status.channels) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--secondary";
    button.id = `send-${channel}`;
    button.textContent = t(`portal.code.send_${channel}`);
    button.addEventListener("click", () =>
      busy(button, async () => {
        const sent = await api("/enrolment/code", { method: "POST", body: { channel } });
        $("code-hint").textContent = t("portal.code.hint", { destination: sent.destination });
        $("group-code").hidden = false;
        $("code").focus();
      }),
    );
    $("code-channels").append(button);
  }
  $("code-check").addEventListener("click", () =>
    busy($("code-check"), async () => {
      const code = $("code").value.replace(/\s/g, "");
      $("code-error").hidden = true;
      $("group-code").classList.remove("form-group--error");
      if (!/^\d{6}$/.test(code)) {
        $("code-error").textContent = t("portal.code.format");
        $("code-error").hidden = false;
        $("group-code").classList.add("form-group--error");
        return;
      }
      await api("/enrolment/verify", { method: "POST", body: { code } });
      codeStep();
      // This browser now holds the proof: it may see (and bind) the signer.
      const proven = await api("/enrolment");
      if (proven.signer) keyDone(proven.signer);
      else $("key-create").focus();
    }),
  );
  if (status.code_verified || signer) codeStep();

  // 2. the passkey (or a wallet)
  const keyDone = (bound) => {
    signer = bound;
    $("key-ok").textContent = bound.kind === "wallet" ? t("portal.key.wallet_ok", { address: bound.address }) : t("portal.key.ok");
    $("key-ok").hidden = false;
    $("key-create").hidden = true;
    $("key-wallet").hidden = true;
    $("step-sign").hidden = false;
  };
  $("key-create").addEventListener("click", () =>
    busy($("key-create"), async () => {
      const bound = await createPasskey(status);
      keyDone({ ...bound, kind: "passkey" });
      consent.focus();
    }),
  );
  $("key-wallet").addEventListener("click", () =>
    busy($("key-wallet"), async () => {
      const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
      keyDone({ ...(await api("/enrolment/signer", { method: "POST", body: { kind: "wallet", address: getAddress(address) } })), kind: "wallet" });
    }),
  );
  if (signer) keyDone(signer);

  // 3. consent once the whole text was opened; then the record of the ceremony, which the
  // signature covers too, shown before anything is signed (check your answers)
  let readSeconds = null;
  let shown = null; // the ceremony on screen, and its hash computed here
  watchReading((seconds) => {
    readSeconds = seconds;
    consent.disabled = false;
    $("consent-hint").textContent = t("portal.consent.ready");
    api("/enrolment/events", { method: "POST", body: { kind: "text_read", seconds } }).catch(() => {});
  });
  consent.addEventListener("change", () => {
    $("sign").disabled = true;
    $("ceremony-section").hidden = true;
    shown = null;
    if (!consent.checked) return;
    busy($("sign"), async () => {
      // Recorded again from this browser, which proved the code: these enter the ceremony.
      if (readSeconds !== null) await api("/enrolment/events", { method: "POST", body: { kind: "text_read", seconds: readSeconds } });
      await api("/enrolment/events", { method: "POST", body: { kind: "consent", seconds: 0 } });
      shown = await showCeremony();
      $("sign").disabled = !consent.checked;
    });
  });
  $("sign").addEventListener("click", () =>
    busy($("sign"), async () => {
      if (!consent.checked) {
        $("consent-error").textContent = t("portal.consent.required");
        $("consent-error").hidden = false;
        return;
      }
      // Fetched again now that the signer is bound: the candidate is part of what is signed.
      const fresh = await api("/typed-data");
      if (fresh.message.termsHash !== hash) throw new Problem(422, { field: "signature" });
      // The ceremony hash signed is the one of the record shown, recomputed here.
      if (!shown || fresh.message.ceremonyHash !== shown) {
        shown = await showCeremony();
        throw new Problem(422, { field: "signature", detail: "the signing record changed" });
      }
      showSummary(fresh, agreement);
      const signed = await signTyped(fresh, signer);
      await api("/signature", { method: "POST", body: signed });
      const after = await api("/enrolment");
      $("sign-section").hidden = true;
      showDone(t("portal.done.title"), t("portal.done.text", { employer: agreement.employer_name }));
      $("lead").textContent = t("portal.lead.committed", { employer: agreement.employer_name });
      await showAfter(after);
      showProgress(after);
    }),
  );
}

// ---- messages, check-in, uploads (notify's side, through the same link) -----------------------

function when(iso) {
  return iso ? new Date(iso).toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" }) : "";
}

async function inboxJourney() {
  let inbox;
  try {
    inbox = await api("/v1/inbox", { withToken: true });
  } catch {
    return; // the agreement itself is shown; messages are a convenience
  }
  const list = $("message-list");
  list.replaceChildren();
  for (const m of inbox.messages.slice().reverse()) {
    const item = document.createElement("li");
    item.className = "check";
    const stamp = m.state === "sent" ? m.sent_at : m.due_at;
    item.textContent = `${t(`portal.messages.kind.${m.kind}`)} · ${t(`portal.messages.state.${m.state}`, { date: when(stamp) })}`;
    list.append(item);
  }
  const optional = $("optional-mail");
  optional.checked = !inbox.opted_out;
  optional.addEventListener("change", () =>
    api("/v1/inbox/preferences", { withToken: true, method: "PUT", body: { opted_out: !optional.checked } }).catch(showError),
  );
  $("messages-section").hidden = false;

  if (inbox.checkin) inboxCheckin(inbox.checkin, null);
  if (inbox.uploads.length) inboxUploads(inbox.uploads);
}

// The candidate's authorisation for the former employer's confirmation (PIPL): the text shown is
// the one the service keeps with the authorisation; it can be withdrawn before a request goes.
async function employerConsents() {
  let view;
  try {
    view = await api(`/v1/inbox/employer-consents?lang=${encodeURIComponent(lang)}`, { withToken: true });
  } catch {
    return;
  }
  const input = $("employer-domain");
  const statement = () => view.statement.replaceAll("{employer_domain}", input.value.trim() || "…");
  $("employer-statement").textContent = statement();
  input.addEventListener("input", () => ($("employer-statement").textContent = statement()));
  const list = $("employer-consents");
  const render = () => {
    list.replaceChildren();
    for (const consent of view.consents) {
      const item = document.createElement("li");
      item.className = "check";
      const text = document.createElement("span");
      text.textContent = consent.withdrawn_at
        ? t("portal.employer.withdrawn", { domain: consent.employer_domain, date: when(consent.withdrawn_at) })
        : t("portal.employer.given", { domain: consent.employer_domain, date: when(consent.given_at) });
      item.append(text);
      if (!consent.withdrawn_at) {
        const withdraw = document.createElement("button");
        withdraw.type = "button";
        withdraw.className = "button button--secondary";
        withdraw.textContent = t("portal.employer.withdraw");
        withdraw.addEventListener("click", () =>
          busy(withdraw, async () => {
            const done = await api(`/v1/inbox/employer-consents/${encodeURIComponent(consent.id)}`, { withToken: true, method: "DELETE" });
            consent.withdrawn_at = done.withdrawn_at;
            render();
          }),
        );
        item.append(" ", withdraw);
      }
      list.append(item);
    }
    for (const sent of view.requests) {
      const item = document.createElement("li");
      item.className = "check";
      item.textContent = t("portal.employer.sent", { domain: sent.employer_domain, date: when(sent.requested_at) });
      list.append(item);
    }
  };
  render();
  $("employer-consent").addEventListener("click", () =>
    busy($("employer-consent"), async () => {
      $("employer-domain-error").hidden = true;
      try {
        const given = await api("/v1/inbox/employer-consents", {
          withToken: true,
          method: "POST",
          body: { employer_domain: input.value.trim(), lang },
        });
        view.consents.push(given);
        input.value = "";
        $("employer-statement").textContent = statement();
        render();
      } catch (error) {
        if (error.status === 422) {
          $("employer-domain-error").textContent = error.body.errors?.[0]?.message || error.message;
          $("employer-domain-error").hidden = false;
          return;
        }
        throw error;
      }
    }),
  );
  $("employer-section").hidden = false;
}

function inboxCheckin(checkin, preselected) {
  $("checkin").hidden = false;
  $("progress-section").hidden = false;
  for (const radio of document.querySelectorAll('input[name="answer"]')) {
    radio.addEventListener("change", () => ($("group-new-date").hidden = radio.value !== "delayed" || !radio.checked));
    if (radio.value === preselected) {
      radio.checked = true;
      $("group-new-date").hidden = radio.value !== "delayed";
    }
  }
  $("checkin-send").addEventListener("click", () =>
    busy($("checkin-send"), async () => {
      const chosen = document.querySelector('input[name="answer"]:checked');
      if (!chosen) {
        $("error-text").textContent = t("portal.checkin.choose");
        $("error-summary").hidden = false;
        $("error-summary").focus();
        return;
      }
      const body = { answer: chosen.value };
      if (chosen.value === "delayed" && $("new-date").value) body.new_date = $("new-date").value;
      await api(checkin.reply, { method: "POST", body });
      $("checkin").hidden = true;
      $("checkin-done").hidden = false;
    }),
  );
}

function inboxUploads(requests) {
  const uploads = $("upload-list");
  uploads.replaceChildren();
  requests.forEach((request, i) => {
    const item = document.createElement("li");
    item.className = "check upload";
    const label = document.createElement("label");
    label.className = "label";
    label.htmlFor = `upload-${i}`;
    const what = request.milestone ? t(`portal.milestone.${request.milestone}`) : t("portal.uploads.title");
    label.textContent = request.due_at ? t("portal.uploads.by", { milestone: what, date: date(Date.parse(request.due_at) / 1000) }) : what;
    const input = document.createElement("input");
    input.type = "file";
    input.id = `upload-${i}`;
    input.className = "file-upload";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.id = `upload-send-${i}`;
    button.textContent = t("portal.uploads.button");
    const done = document.createElement("p");
    done.className = "body tick";
    done.hidden = true;
    done.id = `upload-done-${i}`;
    done.textContent = t("portal.uploads.done");
    button.addEventListener("click", () =>
      busy(button, async () => {
        if (!input.files.length) {
          $("error-text").textContent = t("portal.uploads.choose");
          $("error-summary").hidden = false;
          return;
        }
        const form = new FormData();
        form.append("file", input.files[0]);
        await api(request.upload, { method: "POST", form });
        done.hidden = false;
        button.hidden = true;
        input.hidden = true;
      }),
    );
    item.append(label, input, button, done);
    uploads.append(item);
  });
  $("uploads").hidden = false;
  $("progress-section").hidden = false;
}

async function arrivalJourney() {
  $("arrive").addEventListener("click", () =>
    busy($("arrive"), async () => {
      const status = await api("/enrolment");
      const typed = await api("/arrival/typed-data");
      const signed = await signTyped(typed, status.signer);
      await api("/arrival", { method: "POST", body: { ...signed, deadline: Number(typed.message.deadline) } });
      showDone(t("portal.arrival.done_title"), t("portal.arrival.done"));
      showProgress(await api("/enrolment"));
    }),
  );
}

async function amendmentJourney() {
  const path = `/amendments/${amendmentId}`;
  const [amendment, typed, text] = await Promise.all([api(path), api(`${path}/typed-data`), api(`${path}/terms`)]);
  state.text = text;
  const hash = await sha256Hex(text);
  $("title").textContent = t("portal.amendment.title");
  $("lead").textContent = t("portal.amendment.lead", { reason: amendment.reason || t("portal.amendment.no_reason") });
  showSummary(typed, { currency: "", employer_name: "", position: "", milestones: [] });
  $("summary").firstChild.remove(); // no employer line: the amendment carries dates only
  showText(text, hash, typed.message.termsHash);
  if (amendment.state !== "awaiting_signature") {
    showDone(t("portal.amendment.done_title"), t(`portal.amendment.${amendment.state === "applied" ? "applied" : "closed"}`));
    return;
  }
  $("sign-section").hidden = false;
  $("step-code").hidden = true;
  $("step-sign").hidden = false;
  const consent = $("consent");
  watchReading(() => {
    consent.disabled = false;
    $("consent-hint").textContent = t("portal.consent.ready");
  });
  consent.addEventListener("change", () => ($("sign").disabled = !consent.checked));
  $("sign").addEventListener("click", () =>
    busy($("sign"), async () => {
      if (typed.message.termsHash !== hash) throw new Problem(422, { field: "signature" });
      const key = storedKey();
      const signer = amendment.signer || (key && { kind: "passkey", credential_id: key.credentialId, address: key.address });
      const signed = await signTyped(typed, signer);
      await api(`${path}/signature`, { method: "POST", body: signed });
      $("sign-section").hidden = true;
      showDone(t("portal.amendment.done_title"), t("portal.amendment.applied"));
    }),
  );
}

/** The portal at one e-mail action (check-in answer, document upload, unsubscribe), done with
 * that link's own token against the service that owns it. */
async function actionJourney() {
  const params = new URLSearchParams(window.location.search);
  $("lead").textContent = "";
  if (mode === "reply") {
    $("title").textContent = t("portal.checkin.title");
    inboxCheckin({ reply: `/v1/replies/${encodeURIComponent(token)}` }, params.get("answer"));
  } else if (mode === "upload") {
    $("title").textContent = t("portal.uploads.title");
    inboxUploads([{ milestone: params.get("milestone") || "", due_at: "", upload: `/v1/uploads/${encodeURIComponent(token)}` }]);
  } else if (mode === "unsubscribe") {
    $("title").textContent = t("portal.unsubscribe.title");
    $("unsubscribe-section").hidden = false;
    $("unsubscribe").addEventListener("click", () =>
      busy($("unsubscribe"), async () => {
        await api(`/v1/unsubscribe/${encodeURIComponent(token)}`, { method: "POST", body: {} });
        $("unsubscribe-section").hidden = true;
        showDone(t("portal.unsubscribe.title"), t("portal.unsubscribe.done"));
      }),
    );
  }
}

async function main() {
  try {
    if (mode) {
      await actionJourney();
      return;
    }
    if (amendmentId) {
      await amendmentJourney();
      return;
    }
    const status = await api("/enrolment");
    state.status = status;
    state.employer = status.agreement.employer_name;
    $("title").textContent = t("portal.title.for", { employer: state.employer });
    await signingJourney(status);
    await arrivalJourney();
    await inboxJourney();
    await employerConsents();
  } catch (error) {
    $("lead").textContent = "";
    showError(error);
  }
}

main();
