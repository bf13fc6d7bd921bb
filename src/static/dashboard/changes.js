// Which build changed which test: the level shifts the server detected in a pipeline's history
// (GET /changes), newest first, filtered by pipeline, component and metric; and what the trend
// charts and the runs view need to mark them.

import { get, menuItems } from "./api.js";
import { add, h, megabytes, pager, runLink, seconds, testCell } from "./dom.js";

const CHANGES_PER_PAGE = 50;
const METRICS = { wall: "Wall time", cpu: "CPU time", memory: "Memory" };

/** A value of `metric` with its unit. */
export function metricValue(metric, value) {
  return metric === "memory" ? megabytes(value) : seconds(value);
}

/** A change in percent, signed; "–" when the level before was 0. */
function signedPercent(value) {
  if (value === null || value === undefined) return "–";
  return `${value > 0 ? "+" : ""}${value.toFixed(1)} %`;
}

/** A test's link to its trend, with the pipeline whose changes the charts mark. */
function testWithPipeline(change, pipeline) {
  const cell = testCell(change.item_path, change.item_variant, change.context_h);
  const link = new URL(cell.getAttribute("href").slice(1), "http://x");
  link.searchParams.set("pipeline", pipeline);
  cell.setAttribute("href", `#${link.pathname}?${link.searchParams}`);
  return cell;
}

/** `#/changes?pipeline=..&component=..&metric=..`: the detected changes, newest first. */
export async function changesView(view, params, { go, path }) {
  const pipelines = await menuItems("/pipelines", "pipelines");
  // No `pipeline` in the address: the first pipeline; `pipeline=` (empty): the untagged runs.
  const pipeline = params.has("pipeline") ? params.get("pipeline") : pipelines[0] || "";
  const component = params.get("component") || "";
  const metric = params.get("metric") || "";
  const page = Number(params.get("page")) || 1;
  const set = (name, value) => {
    const next = new URLSearchParams(params);
    next.delete("page");
    next.set("pipeline", pipeline);
    if (name === "pipeline") next.set(name, value);
    else if (value) next.set(name, value);
    else next.delete(name);
    go(path, next);
  };
  const select = (name, label, options, value) => h("label", { class: "filter" },
    h("span", { class: "filter-name" }, label),
    h("select", { name, onchange: (e) => set(name, e.target.value) },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
  const components = await menuItems("/components", "components");
  add(view,
    h("h1", {}, "Changes"),
    h("p", { class: "muted" },
      "Where a test's wall time, CPU time or memory moved to a new level and stayed there, found in each test's values build after build (newest first). See docs/change-detection.md."),
    h("div", { class: "filter-bar" }, h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      select("pipeline", "Pipeline", [...pipelines.map((p) => [p, p]), ["", "runs without a pipeline"]], pipeline),
      select("component", "Component", [["", "All"], ...components.map((c) => [c, c])], component),
      select("metric", "Metric", [["", "All"], ...Object.entries(METRICS)], metric))));
  const answer = await get("/changes", { pipeline, component, metric, page, per_page: CHANGES_PER_PAGE });
  if (!answer || !answer.changes.length) {
    add(view, h("p", { class: "empty" }, "No change detected in this pipeline's history."));
    return;
  }
  add(view,
    tableOf(answer.changes, pipeline),
    pager(answer, page, (n) => {
      const next = new URLSearchParams(params);
      next.set("page", n);
      go(path, next);
    }));
}

function tableOf(changes, pipeline) {
  const head = ["Build", "Test", "Component", "Machine", "Metric", "Before → after", "Change", "Confidence", "Noise", "Drift"];
  return h("div", { class: "table-wrap" }, h("table", { class: "changes" },
    h("thead", {}, h("tr", {}, head.map((label) => h("th", {}, label)))),
    h("tbody", {}, changes.map((c) => h("tr", { "data-variant": c.item_variant, "data-metric": c.metric, "data-build": c.build ?? "" },
      h("td", {}, h("a", { href: runLink(c.sessions[0]), class: "run-link" }, c.build ?? c.run_date),
        h("div", { class: "muted mono" }, c.scm_ref || "")),
      h("td", { class: "test" }, testWithPipeline(c, pipeline)),
      h("td", {}, c.component || "–"),
      h("td", {}, c.machine_node || c.context_h.slice(0, 8)),
      h("td", {}, METRICS[c.metric]),
      h("td", { class: "num" }, `${metricValue(c.metric, c.before)} → ${metricValue(c.metric, c.after)}`),
      h("td", { class: `num strong ${c.after > c.before ? "worse" : "better"}` }, signedPercent(c.change_percent)),
      h("td", { class: "num" }, `${(c.confidence * 100).toFixed(1)} %`),
      h("td", {}, c.noise ? h("span", { class: `badge ${c.noise.label}` }, c.noise.label) : "–"),
      h("td", {}, c.trend && c.trend.drifting ? h("span", { class: "badge drifting" }, `drifting ${signedPercent(c.trend.percent_per_build)}/build`) : "–"))))));
}

/**
 * The detected changes of one test in `pipeline`, per context and metric, for the trend charts:
 * {`${context_h} ${metric}`: [change...]} (empty when the pipeline never ran it).
 */
export async function changesOfTest(pipeline, itemPath, itemVariant) {
  const answer = await get("/changes/tests", { pipeline, item_path: itemPath, item_variant: itemVariant });
  const found = {};
  for (const test of (answer && answer.tests) || []) found[`${test.context_h} ${test.metric}`] = test.changes;
  return found;
}

/** The builds of `pipeline` where changes start, with how many: for the runs view's badges. */
export async function changeStarts(pipeline) {
  const answer = await get("/changes", { pipeline, per_page: 500 });
  const starts = new Map();
  for (const change of (answer && answer.changes) || []) {
    starts.set(change.build, (starts.get(change.build) || 0) + 1);
  }
  return starts;
}
