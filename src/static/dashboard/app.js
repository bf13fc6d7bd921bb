// The dashboard's entry point: reads the address (#/runs, #/runs/<h>, #/test?..., #/slowest,
// #/hungriest, #/changes?..., #/compare?...), shows that view, and keeps the summary line up to date.
// `document.body.dataset.state` says "loading", "ready" or "error", for people and tests alike.

import { get, setToken, token } from "./api.js";
import { changesView } from "./changes.js";
import { compareView } from "./compare.js";
import { errorBox, h, show, when } from "./dom.js";
import { runView, runsView } from "./runs.js";
import { rankingView, testView } from "./tests.js";

const ROUTES = [
  { match: /^\/runs\/[^/]+$/, view: runView, nav: "/runs" },
  { match: /^\/runs$/, view: runsView, nav: "/runs" },
  { match: /^\/test$/, view: testView, nav: null },
  { match: /^\/(slowest|hungriest)$/, view: rankingView, nav: null },
  { match: /^\/changes$/, view: changesView, nav: "/changes" },
  { match: /^\/compare$/, view: compareView, nav: "/compare" },
];

const main = document.getElementById("view");
const summaryLine = document.getElementById("summary");
let rendering = 0;

/** Shows the view `path` with `params` by changing the address (so Back works). */
function go(path, params) {
  const query = params && params.toString();
  location.hash = `#${path}${query ? `?${query}` : ""}`;
}

async function render() {
  const current = ++rendering;
  const started = performance.now();
  const [rawPath, rawQuery = ""] = location.hash.replace(/^#/, "").split("?");
  const path = rawPath || "/runs";
  const params = new URLSearchParams(rawQuery);
  const route = ROUTES.find((r) => r.match.test(path));
  document.body.dataset.state = "loading";
  document.body.dataset.hash = location.hash;
  document.body.dataset.view = path.split("/")[1] || "runs";
  for (const link of document.querySelectorAll("nav.main a")) {
    link.classList.toggle("active", link.getAttribute("href") === `#${route && route.nav ? route.nav : path}`);
  }
  // Each view draws into its own section: a slow answer for a view already left lands in a
  // section no longer on the page.
  const view = h("section", { class: "view", "aria-busy": "true" });
  show(main, view);
  const summary = loadSummary();
  summary.catch(() => {}); // shown in the header already
  try {
    if (!route) throw new Error(`There is no view ${path}.`);
    await route.view(view, params, { go, path, summary });
    await summary.catch(() => {});
    if (current !== rendering) return;
    view.removeAttribute("aria-busy");
    document.body.dataset.state = "ready";
  } catch (err) {
    if (current !== rendering) return;
    view.removeAttribute("aria-busy");
    if (err && err.status === 401) show(view, tokenForm(err));
    else view.append(errorBox(err));
    document.body.dataset.state = "error";
  }
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  // Since the page started loading: what a person waits for on opening the dashboard.
  document.body.dataset.readyAt = String(Math.round(performance.now()));
}

/** The numbers in the header: how much the store holds. */
async function loadSummary() {
  try {
    const s = await get("/summary");
    const count = (n, one, many) => `${Number(n).toLocaleString("en")} ${n === 1 ? one : many}`;
    show(summaryLine,
      h("span", { "data-summary": "sessions" }, count(s.sessions, "run", "runs")),
      h("span", { "data-summary": "tests" }, count(s.tests, "test", "tests")),
      h("span", { "data-summary": "metrics" }, count(s.metrics, "metric", "metrics")),
      h("span", {}, count(s.contexts, "machine", "machines")),
      h("span", {}, count(s.components, "component", "components")),
      s.first_run_date ? h("span", {}, `${when(s.first_run_date)} → ${when(s.last_run_date)}`) : null);
    return s;
  } catch (err) {
    show(summaryLine, err.status === 401
      ? h("span", {}, "Reading this server needs its token.")
      : h("span", { class: "summary-error" }, `Summary unavailable: ${err.message}`));
    throw err;
  }
}

/** Asked for when the server wants a token for reading (it was started with --read-token). */
function tokenForm(err) {
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", "aria-label": "Token", required: true });
  return h("form", { class: "token-form", onsubmit: (e) => { e.preventDefault(); setToken(input.value.trim()); drawToken(); render(); } },
    h("h2", {}, "This server needs a token"),
    h("p", {}, token() ? "The token given was refused: " : "", err.message),
    h("p", { class: "muted" }, "It is kept for this browser tab only (sessionStorage) and sent as Authorization: Bearer."),
    h("label", {}, "Token ", input), " ", h("button", { type: "submit", class: "primary" }, "Use this token"));
}

function drawToken() {
  const slot = document.getElementById("token-slot");
  show(slot, token()
    ? h("button", { type: "button", class: "link", onclick: () => { setToken(""); drawToken(); render(); } }, "Forget token")
    : null);
}

window.addEventListener("hashchange", render);
drawToken();
render();
