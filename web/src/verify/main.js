// The verify page: reads the document and the proof bundle (or an agreement dossier, a ZIP) in
// the browser, runs every check (see checks.js and dossier.js) against the RPC endpoints the user
// typed, and shows each one as PASS or FAIL with its reason, in the page's language. Nothing is
// sent anywhere but to those endpoints.

import catalog from "catalogue:site";
import { isValid, parseTrustedKey, sha256Hex } from "./checks.js";
import { checkBundle, looksLikeZip, verifyDossier } from "./dossier.js";
import { sm3Hex } from "./sm3.js";
import { parseEndpoints } from "./rpc.js";
import { parseCertificates } from "./timestamps.js";

const MAX_BUNDLE_BYTES = 64 * 1024;
const LANGUAGES = Object.keys(catalog);

function chooseLanguage() {
  const asked = new URLSearchParams(window.location.search).get("lang");
  if (asked && LANGUAGES.includes(asked)) return asked;
  const rendered = document.documentElement.lang;
  if (rendered && LANGUAGES.includes(rendered)) return rendered;
  return String(navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

let lang = chooseLanguage();

function t(key, params = {}) {
  const text = (catalog[lang] && catalog[lang][key]) ?? catalog.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** The saved verifier decides its language itself (`?lang=` or the browser's). */
function translatePage() {
  if (document.documentElement.lang === lang) return;
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const link of document.querySelectorAll("[data-lang]")) {
    if (link.dataset.lang === lang) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const FIELDS = ["document", "proof", "rpc", "key", "tsa"];

function clearErrors(form) {
  const summary = document.getElementById("error-summary");
  summary.hidden = true;
  summary.querySelector("ul").replaceChildren();
  for (const name of FIELDS) {
    const group = document.getElementById(`group-${name}`);
    group.classList.remove("form-group--error");
    const message = document.getElementById(`${name}-error`);
    message.hidden = true;
    message.replaceChildren();
    form.elements[name].classList.remove("input--error");
  }
}

/** GOV.UK pattern: a summary at the top linking to each field, the message again beside it. */
function showErrors(form, errors) {
  const summary = document.getElementById("error-summary");
  const list = summary.querySelector("ul");
  for (const [name, message] of errors) {
    const link = el("a", { href: `#${name}` }, message);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      form.elements[name].focus();
    });
    list.append(el("li", {}, link));
    document.getElementById(`group-${name}`).classList.add("form-group--error");
    const beside = document.getElementById(`${name}-error`);
    beside.append(el("span", { class: "visually-hidden" }, `${t("verify.fail")}: `), message);
    beside.hidden = false;
    form.elements[name].classList.add("input--error");
  }
  summary.hidden = false;
  summary.focus();
}

async function readInputs(form) {
  const errors = [];
  const documentFile = form.elements.document.files[0];
  const proofFile = form.elements.proof.files[0];
  let bundle = null;
  let dossier = null; // the ZIP's bytes when the file is an agreement dossier and no proof is given
  let endpoints = [];
  let trusted = null;
  if (!documentFile) errors.push(["document", t("verify.error.document")]);
  if (!proofFile) {
    const head = documentFile ? new Uint8Array(await documentFile.slice(0, 4).arrayBuffer()) : null;
    if (head && looksLikeZip(head)) dossier = new Uint8Array(await documentFile.arrayBuffer());
    else errors.push(["proof", t("verify.error.proof")]);
  } else if (proofFile.size > MAX_BUNDLE_BYTES) {
    errors.push(["proof", t("verify.error.proof_size")]);
  } else {
    try {
      bundle = JSON.parse(await proofFile.text());
    } catch (error) {
      errors.push(["proof", t("verify.error.proof_json", { error: error.message })]);
    }
  }
  try {
    endpoints = parseEndpoints(form.elements.rpc.value);
    if (endpoints.length === 0) errors.push(["rpc", t("verify.error.rpc")]);
  } catch (error) {
    errors.push(["rpc", t("verify.error.rpc_url", { url: error.url })]);
  }
  try {
    trusted = parseTrustedKey(form.elements.key.value);
  } catch {
    errors.push(["key", t("verify.error.key")]);
  }
  let tsaRoots = null; // null: the root each stamp's bundle names (and the result says so)
  const tsaFile = form.elements.tsa.files[0];
  if (tsaFile) {
    try {
      tsaRoots = parseCertificates(await tsaFile.text());
    } catch {
      errors.push(["tsa", t("verify.error.tsa")]);
    }
  }
  return { errors, documentFile, bundle, dossier, endpoints, trusted, tsaRoots };
}

async function runChecks({ documentFile, bundle, dossier, endpoints, trusted, tsaRoots }) {
  const options = { endpoints, trusted, tsaRoots };
  if (dossier) {
    const result = await verifyDossier(dossier, options);
    return { dossier: true, sha: result.manifestSha, checks: result.checks, disagree: !!result.disagree };
  }
  const bytes = await documentFile.arrayBuffer();
  const sha = await sha256Hex(bytes);
  const sm3 = sm3Hex(bytes);
  const result = await checkBundle(bundle, sha, options, sm3);
  return { dossier: false, sha, sm3, checks: result.checks, disagree: result.disagree };
}

function statusText(ok) {
  return ok === true ? t("verify.pass") : ok === false ? t("verify.fail") : t("verify.skip");
}

function renderCheck(check) {
  const state = check.ok === true ? "pass" : check.ok === false ? "fail" : "skip";
  const item = el(
    "li",
    { class: `check check--${state}`, "data-check": check.name, "data-status": state },
    el("span", { class: "tag" }, statusText(check.ok)),
    " ",
    el("strong", { class: "check__title" }, t(`check.${check.name}`)),
    " ",
    el("code", { class: "check__name" }, check.name)
  );
  if (check.perEndpoint) {
    const list = el("ul", { class: "check__endpoints" });
    for (const { url, check: answer } of check.perEndpoint) {
      list.append(
        el("li", {}, el("span", { class: "endpoint" }, `${url} — ${statusText(answer.ok)}: `),
          t(answer.key, answer.params))
      );
    }
    item.append(list);
  } else {
    item.append(el("p", { class: "check__detail" }, t(check.key, check.params)));
  }
  if (check.parts) {
    // A dossier's proof bundle: its own checks, listed under the check that sums them up.
    // Folded when they all passed, open when one did not.
    const details = el(
      "details",
      { class: "check__parts" },
      el("summary", {}, t("verify.parts", { count: check.parts.length })),
      el("ol", { class: "checks checks--nested" }, ...check.parts.map(renderCheck))
    );
    details.open = check.ok !== true;
    item.append(details);
  }
  return item;
}

function renderResults(result) {
  const section = document.getElementById("results");
  const valid = isValid(result.checks);
  const failed = result.checks.filter((c) => c.ok === false).length;
  const panel = document.getElementById("verdict");
  panel.className = `panel ${valid ? "panel--valid" : "panel--invalid"}`;
  panel.dataset.valid = String(valid);
  panel.replaceChildren(
    el("h3", { class: "panel__title" }, valid ? t("verify.valid") : t("verify.invalid", { count: failed })),
    el(
      "p",
      {},
      valid
        ? t(result.dossier ? "verify.dossier.valid.body" : "verify.valid.body")
        : t(result.dossier ? "verify.dossier.invalid.body" : "verify.invalid.body")
    )
  );
  document.getElementById("disagree").hidden = !result.disagree;
  document.getElementById("document-sha").textContent = result.sha
    ? t(result.dossier ? "verify.dossier.sha" : "verify.document.sha", { sha: result.sha })
    : "";
  document.getElementById("document-sm3").textContent = result.sm3
    ? t("verify.document.sm3", { sm3: result.sm3 })
    : "";
  document.getElementById("checks").replaceChildren(...result.checks.map(renderCheck));
  section.hidden = false;
  section.focus();
}

function start() {
  translatePage();
  const form = document.getElementById("verify-form");
  if (!form) return;
  form.hidden = false;
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    document.getElementById("results").hidden = true;
    const inputs = await readInputs(form);
    if (inputs.errors.length) {
      showErrors(form, inputs.errors);
      return;
    }
    button.disabled = true;
    button.textContent = t("verify.checking");
    try {
      renderResults(await runChecks(inputs));
    } finally {
      button.disabled = false;
      button.textContent = t("verify.submit");
    }
  });
}

start();
