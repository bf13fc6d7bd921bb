// The runs (sessions) newest first, and one run's page with its metrics.

import { get } from "./api.js";
import { changeStarts } from "./changes.js";
import { filterBar, filtersOf, filtering } from "./filters.js";
import { add, cpuShare, h, megabytes, pager, runLink, seconds, short, table, testCell, when } from "./dom.js";

const RUNS_PER_PAGE = 50;
const METRICS_PER_PAGE = 50;
/** Tags shown in a column of their own rather than among the others. */
const PIPELINE_TAGS = ["pipeline_branch", "pipeline_build_no"];

/** `#/runs`: the filter bar, the runs table with a checkbox per run, and Compare. */
export async function runsView(view, params, { go, summary }) {
  const page = Number(params.get("page")) || 1;
  add(view, h("h1", {}, "Runs"), filterBar(params, (next) => go("/runs", next)));
  const answer = await get("/runs", { ...filtersOf(params), page, per_page: RUNS_PER_PAGE });
  if (!answer || !answer.runs.length) {
    const total = await summary.catch(() => null);
    add(view, filtering(params) || (total && total.sessions > 0)
      ? h("p", { class: "empty" }, "No run matches these filters.")
      : welcome());
    return;
  }
  const chosen = new Set();
  const compare = h("button", { type: "button", class: "primary", id: "compare-button", disabled: true,
    onclick: () => {
      // The older of the two is the baseline.
      const [baseline, candidate] = answer.runs.filter((run) => chosen.has(run.session_h))
        .sort((a, b) => String(a.run_date).localeCompare(String(b.run_date)));
      go("/compare", new URLSearchParams({ baseline: `session:${baseline.session_h}`, candidate: `session:${candidate.session_h}` }));
    } }, "Compare two runs");
  const hint = h("span", { class: "muted" }, "Tick two runs to compare them.");
  const tick = (run) => h("input", { type: "checkbox", "aria-label": `select run ${short(run.session_h)}`, "data-session": run.session_h,
    onchange: (e) => {
      if (e.target.checked) chosen.add(run.session_h); else chosen.delete(run.session_h);
      compare.disabled = chosen.size !== 2;
      hint.textContent = chosen.size > 2 ? "Tick exactly two runs." : "Tick two runs to compare them.";
    } });
  add(view,
    h("div", { class: "actions" }, compare, hint),
    table([
      { label: "", class: "pick", cell: tick },
      { label: "Date", cell: (run) => h("a", { href: runLink(run.session_h), class: "run-link" }, when(run.run_date)) },
      { label: "SCM ref", class: "mono", cell: (run) => run.scm_ref || "–" },
      { label: "Pipeline / build", cell: pipelineCell },
      { label: "Tags", class: "tags", cell: (run) => tagChips(run.tags) },
      { label: "Tests", class: "num tests", cell: (run) => run.tests.toLocaleString("en") },
      { label: "Total wall time", class: "num", cell: (run) => seconds(run.total_time) },
      { label: "Machines", class: "num", cell: (run) => (run.contexts || []).length },
    ], answer.runs, { rowAttrs: (run) => ({ "data-session": run.session_h }) }),
    pager(answer, page, (n) => go("/runs", withPage(params, n))));
  // The badges come after the table: a pipeline's changes may take the server a while to
  // compute the first time, and the runs are worth showing meanwhile.
  badgeBuildsWithChanges(view, answer.runs);
}

/** `#/runs/<h>`: what the run was, and its metrics, sorted and filtered by the server. */
export async function runView(view, params, { go, path }) {
  const sessionH = decodeURIComponent(path.split("/")[2] || "");
  const run = await get(`/runs/${encodeURIComponent(sessionH)}`);
  add(view,
    h("h1", {}, "Run ", h("span", { class: "mono" }, short(run.session_h)), ` · ${when(run.run_date)}`),
    h("dl", { class: "facts" },
      fact("Run", h("span", { class: "mono" }, run.session_h)),
      fact("Date", run.run_date),
      fact("SCM ref", h("span", { class: "mono" }, run.scm_ref || "–")),
      fact("Pipeline / build", run.pipeline ? `${run.pipeline} / ${run.build ?? "–"}` : "–"),
      fact("Tests", run.tests.toLocaleString("en")),
      fact("Total wall time", seconds(run.total_time)),
      fact("Machines", (run.contexts || []).map(short).join(", ") || "–"),
      fact("Tags", tagChips(run.tags))),
    h("p", {}, h("a", { id: "compare-this-run", href: `#/compare?${compareWith(run)}` }, "Compare this run with another…")));

  const here = `/runs/${encodeURIComponent(sessionH)}`;
  const sort = params.get("sort") || "";
  const order = params.get("order") || "desc";
  const text = params.get("q") || "";
  const page = Number(params.get("page")) || 1;
  const update = (changes) => {
    const next = new URLSearchParams(params);
    next.delete("page");
    for (const [name, value] of Object.entries(changes)) {
      if (value) next.set(name, value); else next.delete(name);
    }
    go(here, next);
  };
  const search = (e) => {
    e.preventDefault();
    update({ q: e.target.q.value.trim() });
  };
  const kinds = ["", "function", "class", "module", "package"].map((kind) =>
    h("option", { value: kind, selected: kind === (params.get("kind") || "") }, kind || "Kind: all"));
  add(view, h("h2", {}, "Metrics"), h("form", { class: "filters", onsubmit: search },
    h("label", { class: "filter grow" },
      h("input", { name: "q", type: "search", placeholder: "Test name contains…", "aria-label": "Test name contains", value: text })),
    h("label", { class: "filter" },
      h("select", { name: "kind", "aria-label": "Kind", onchange: (e) => update({ kind: e.target.value }) }, kinds)),
    h("button", { type: "submit" }, "Filter")));

  const query = { session_h: text ? sessionH : undefined, kind: params.get("kind"), page, per_page: METRICS_PER_PAGE };
  if (sort) Object.assign(query, { sort, order });
  // A name filter goes through the substring route, restricted to this run by `session_h`.
  const source = text ? `/variants/like/${encodeURIComponent(text)}/metrics` : `/sessions/${encodeURIComponent(sessionH)}/metrics`;
  const answer = await get(source, query);
  if (!answer || !answer.metrics.length) {
    const filtered = text || params.get("kind");
    add(view, h("p", { class: "empty" }, filtered ? "No metric of this run matches." : "This run holds no metric."));
    return;
  }
  const onSort = (column) => update({ sort: column, order: column === sort && order === "desc" ? "asc" : "desc" });
  add(view,
    table([
      { label: "Test", class: "test", cell: (m) => testCell(m.item_path, m.item_variant) },
      { label: "Component", cell: (m) => m.component || "–" },
      { label: "Kind", cell: (m) => m.kind },
      { label: "Wall time", class: "num", sort: "total_time", cell: (m) => seconds(m.total_time) },
      { label: "User", class: "num", sort: "user_time", cell: (m) => seconds(m.user_time) },
      { label: "Kernel", class: "num", sort: "kernel_time", cell: (m) => seconds(m.kernel_time) },
      { label: "CPU usage", class: "num", sort: "cpu_usage", cell: (m) => cpuShare(m.cpu_usage) },
      { label: "Memory", class: "num", sort: "mem_usage", cell: (m) => megabytes(m.mem_usage) },
      { label: "Started", sort: "item_start_time", cell: (m) => when(m.item_start_time) },
    ], answer.metrics, { sorted: sort ? { sort, order } : null, onSort, rowAttrs: (m) => ({ "data-variant": m.item_variant }) }),
    pager(answer, page, (n) => go(here, withPage(params, n))));
}

/** The comparison's address with this run as the candidate and the baseline left to choose. */
function compareWith(run) {
  return new URLSearchParams({ baseline: "", candidate: `session:${run.session_h}` });
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

/** A session's tags, as chips linking to the runs that carry the same tag. */
export function tagChips(tags) {
  const pairs = Array.isArray(tags) ? tags.map((t) => [t.name, t.value]) : Object.entries(tags || {});
  const shown = pairs.filter(([name]) => !PIPELINE_TAGS.includes(name));
  if (!shown.length) return "–";
  return shown.map(([name, value]) => {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    const href = `#/runs?${new URLSearchParams({ tag: `${name}:${text}` })}`;
    return h("a", { class: "chip", href, title: `${name} = ${text}` }, `${name}=${text}`);
  });
}

function withPage(params, page) {
  const next = new URLSearchParams(params);
  next.set("page", page);
  return next;
}

/** The empty store: how to send a first run. */
function welcome() {
  const url = `${location.origin}/api/v1`;
  return h("div", { class: "welcome" },
    h("h2", {}, "No runs yet"),
    h("p", {}, "Point pytest at this server and the runs appear here:"),
    h("pre", {}, `pip install "pytest<8" pytest-monitor==1.6.6\npytest --remote-server ${url}`),
    h("p", { class: "muted" }, "Each pytest run becomes a run; each test a row with its wall time, CPU time and memory."));
}

/** A run's pipeline and build; [`badgeBuildsWithChanges`] adds a badge where changes start. */
function pipelineCell(run) {
  if (!run.pipeline) return "–";
  return h("span", { class: "pipeline-build", "data-pipeline": run.pipeline, "data-build": run.build ?? "" },
    `${run.pipeline} / ${run.build ?? "–"} `);
}

/**
 * Adds to the runs of `view` a badge on each build where detected changes start, once each
 * pipeline's changes arrive (a pipeline whose changes cannot be read gets no badge).
 */
async function badgeBuildsWithChanges(view, runs) {
  const pipelines = [...new Set(runs.map((run) => run.pipeline).filter((p) => p))];
  await Promise.all(pipelines.map(async (pipeline) => {
    const starts = await changeStarts(pipeline).catch(() => new Map());
    for (const cell of view.querySelectorAll(".pipeline-build")) {
      const count = cell.dataset.pipeline === pipeline && starts.get(cell.dataset.build);
      if (!count) continue;
      cell.append(h("a", { class: "badge change-badge", title: "Tests whose level changed from this build on",
        href: `#/changes?${new URLSearchParams({ pipeline })}` }, `${count} change${count === 1 ? "" : "s"}`));
    }
  }));
  view.dataset.badges = "done";
}
