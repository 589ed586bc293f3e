// The console's small enhancements; every page works without them:
// - the board polls its JSON and replaces its rows when something changed (risk moves, a
//   checkpoint is confirmed), saying so to screen readers through a polite live region;
// - the offer form shows the 30% cap as the salary is typed and flags damages above it;
// - an error summary or a confirmation panel takes the focus when the page opens.

const POLL_MS = 15000;

function pollBoard(table) {
  const url = table.dataset.poll;
  const status = document.getElementById("board-status");
  const rows = document.getElementById("board-rows");
  if (!url || !rows) return;
  let fingerprint = "";
  async function refresh() {
    try {
      const response = await fetch(url + window.location.search, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        window.location.reload(); // the session ended: the page sends the person to sign in
        return;
      }
      if (!response.ok) return;
      const data = await response.json();
      if (fingerprint && data.fingerprint !== fingerprint) {
        rows.innerHTML = data.html;
        if (status) {
          const time = new Date().toLocaleTimeString();
          status.textContent = (status.dataset.updatedText || "{time}").replace("{time}", time);
        }
      }
      fingerprint = data.fingerprint;
      table.dataset.fingerprint = fingerprint;
    } catch (_error) {
      // offline for a moment: the next poll tries again
    }
  }
  refresh();
  window.setInterval(refresh, POLL_MS);
}

function minorUnits(text) {
  const cleaned = String(text).replace(/,/g, "").trim();
  if (!/^\d+(\.\d{1,2})?$/.test(cleaned)) return null;
  const [whole, fraction = ""] = cleaned.split(".");
  return BigInt(whole) * 100n + BigInt((fraction + "00").slice(0, 2));
}

function formatMinor(minor, currency) {
  const whole = (minor / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const cents = (minor % 100n).toString().padStart(2, "0");
  return `${whole}.${cents} ${currency}`.trim();
}

function capForm(form) {
  const salary = form.querySelector("[data-salary]");
  const damages = form.querySelector("[data-damages]");
  const currency = form.querySelector("#currency");
  const cap = document.getElementById("cap");
  const error = document.getElementById("cap-error");
  if (!salary || !damages || !cap || !error) return;
  function update() {
    const s = minorUnits(salary.value);
    const d = minorUnits(damages.value);
    const code = currency ? currency.value : "";
    if (s === null || s <= 0n) {
      cap.textContent = cap.dataset.capEmpty;
      error.hidden = true;
      damages.removeAttribute("aria-invalid");
      return;
    }
    const limit = (s * 3000n) / 10000n; // the contract's rule, in integers
    const shown = formatMinor(limit, code);
    cap.textContent = cap.dataset.capText.replace("{cap}", shown);
    const over = d !== null && d * 10000n > s * 3000n;
    error.hidden = !over;
    error.textContent = over ? cap.dataset.overText.replace("{cap}", shown) : "";
    damages.classList.toggle("input--error", over);
    if (over) damages.setAttribute("aria-invalid", "true");
    else damages.removeAttribute("aria-invalid");
  }
  for (const input of [salary, damages, currency]) {
    if (input) input.addEventListener("input", update);
  }
  form.addEventListener("submit", (event) => {
    update();
    if (!error.hidden) {
      event.preventDefault();
      damages.focus();
    }
  });
  update();
}

function focusFirst() {
  const target = document.querySelector("[data-autofocus]");
  if (target) target.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  focusFirst();
  const table = document.getElementById("board");
  if (table) pollBoard(table);
  const offer = document.getElementById("offer-form");
  if (offer) capForm(offer);
});
