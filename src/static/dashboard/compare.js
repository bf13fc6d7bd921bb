// Two runs (or any two sides /compare takes) side by side, test by test: regressions first and
// in red, improvements in green, as the server orders and judges them.

import { get } from "./api.js";
import { add, h, megabytes, percent, runLink, seconds, short, table, testCell } from "./dom.js";

/** Rows drawn at first; the rest on request, so a comparison of thousands of tests stays quick. */
const FIRST_ROWS = 500;

/** `#/compare?baseline=SPEC&candidate=SPEC`. */
export async function compareView(view, params, { go }) {
  const baseline = params.get("baseline") || "";
  const candidate = params.get("candidate") || "";
  add(view, h("h1", {}, "Compare runs"),
    h("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      go("/compare", new URLSearchParams({ baseline: e.target.baseline.value.trim(), candidate: e.target.candidate.value.trim() }));
    } },
    h("label", { class: "filter grow" }, "Baseline ",
      h("input", { name: "baseline", value: baseline, placeholder: "session:<hash>, build:main/41, last:main/5…" })),
    h("label", { class: "filter grow" }, "Candidate ",
      h("input", { name: "candidate", value: candidate, placeholder: "session:<hash>, build:main/42…" })),
    h("button", { type: "submit", class: "primary" }, "Compare")));
  if (!baseline || !candidate) {
    add(view, h("p", { class: "muted" }, "Tick two runs in the ", h("a", { href: "#/runs" }, "runs list"), ", or give two sides above."));
    return;
  }
  const answer = await get("/compare", { baseline, candidate });
  const counts = answer.summary;
  add(view,
    h("div", { class: "sides" },
      side("Baseline", answer.baseline), h("span", { class: "arrow" }, "→"), side("Candidate", answer.candidate)),
    h("p", { class: "verdicts" }, ["regressed", "improved", "missing", "new", "unchanged"].map((verdict) =>
      h("span", { class: `badge verdict-${verdict}`, "data-count": verdict }, `${counts[verdict]} ${verdict}`))),
    answer.notes.map((note) => h("p", { class: "note" }, note)));
  if (!answer.tests.length) {
    add(view, h("p", { class: "empty" }, "No test on either side."));
    return;
  }
  const columns = [
    { label: "Verdict", class: "verdict", cell: (t) => t.verdict },
    { label: "Test", class: "test", cell: (t) => testCell(t.item_path, t.item_variant, t.context_h) },
    { label: "Machine", class: "mono", cell: (t) => short(t.context_h) },
    { label: "Wall time", class: "num", sort: "total_time", cell: (t) => change(t.total_time, seconds) },
    { label: "CPU time", class: "num", sort: "cpu_time", cell: (t) => change(t.cpu_time, seconds) },
    { label: "Memory", class: "num", sort: "mem_usage", cell: (t) => change(t.mem_usage, megabytes) },
    { label: "Why", class: "why", cell: (t) => (t.reasons || []).join("; ") },
  ];
  // The server's order (verdicts, then the largest change first) until a column is chosen;
  // then by that column's relative change, here in the page: the answer is already whole.
  let sorted = null;
  let limit = FIRST_ROWS;
  const shown = h("div", {});
  const more = h("button", { type: "button", onclick: () => { limit = Infinity; draw(); } }, `Show all ${answer.tests.length} tests`);
  const draw = () => {
    const tests = sorted ? byChange(answer.tests, sorted) : answer.tests;
    shown.replaceChildren(table(columns, tests.slice(0, limit), {
      sorted,
      onSort: (column) => {
        const order = sorted && sorted.sort === column && sorted.order === "desc" ? "asc" : "desc";
        sorted = { sort: column, order };
        draw();
      },
      rowAttrs: (t) => ({ class: `verdict-${t.verdict}`, "data-variant": t.item_variant }),
    }));
    if (answer.tests.length <= limit) more.remove();
  };
  draw();
  add(view, shown, answer.tests.length > limit ? more : null);
}

/** The tests ordered by the relative change of one metric; those without one (new, missing) last. */
function byChange(tests, { sort, order }) {
  const sign = order === "asc" ? 1 : -1;
  const key = (t) => (t[sort] ? t[sort].change_percent : null);
  return [...tests].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return sign * (x - y);
  });
}

function side(label, info) {
  const sessions = info.sessions || [];
  return h("div", { class: "side" }, h("div", { class: "muted" }, label), h("div", { class: "mono" }, info.spec),
    h("div", { class: "muted" }, `${info.runs} run${info.runs === 1 ? "" : "s"}, `,
      sessions.length === 1 ? h("a", { href: runLink(sessions[0]) }, `session ${short(sessions[0])}`) : `${sessions.length} sessions`));
}

/** `before → after (+x %)`, or the one side a new or missing test has. */
function change(values, format) {
  if (!values) return "–";
  const { baseline, candidate } = values;
  if (baseline === null || baseline === undefined) return format(candidate);
  if (candidate === null || candidate === undefined) return format(baseline);
  return h("span", { class: values.verdict ? `judged ${values.verdict}` : null },
    `${format(baseline)} → ${format(candidate)}`, h("span", { class: "pct" }, ` ${percent(values.change_percent)}`));
}
