// The tests: the slowest and the hungriest (ranked by the server over the filtered runs), and
// one test's trend across runs.

import { get } from "./api.js";
import { changesOfTest, metricValue } from "./changes.js";
import { COLORS, lineChart } from "./chart.js";
import { filterBar, filtersOf } from "./filters.js";
import { add, h, megabytes, pager, runLink, seconds, short, table, testCell, testLink, timeOf, when } from "./dom.js";

const TESTS_PER_PAGE = 20;
/** The most points a line gets: the charts stay quick with this many. */
const TREND_LIMIT = 1000;

const RANKINGS = {
  slowest: {
    title: "Slowest tests",
    help: "Ranked by their longest wall time over the selected runs.",
    prefix: "total_time",
    format: seconds,
  },
  hungriest: {
    title: "Hungriest tests",
    help: "Ranked by the most memory they used over the selected runs.",
    prefix: "mem_usage",
    format: megabytes,
  },
};

/** `#/slowest` and `#/hungriest`. */
export async function rankingView(view, params, { go, path }) {
  const kind = path.slice(1);
  const ranking = RANKINGS[kind];
  const page = Number(params.get("page")) || 1;
  add(view, h("h1", {}, ranking.title), h("p", { class: "muted" }, ranking.help),
    filterBar(params, (next) => go(path, next)));
  const answer = await get("/tests", { sort: kind, ...filtersOf(params), page, per_page: TESTS_PER_PAGE });
  if (!answer || !answer.tests.length) {
    add(view, h("p", { class: "empty" }, "No test measured in the selected runs."));
    return;
  }
  const value = (test, which) => ranking.format(test[`${which}_${ranking.prefix}`]);
  const first = (page - 1) * TESTS_PER_PAGE;
  add(view,
    table([
      { label: "#", class: "num", cell: (test) => first + answer.tests.indexOf(test) + 1 },
      { label: "Test", class: "test", cell: (test) => testCell(test.item_path, test.item_variant, test.context_h) },
      { label: "Component", cell: (test) => test.component || "–" },
      { label: "Machine", class: "mono", cell: (test) => short(test.context_h) },
      { label: "Runs", class: "num", cell: (test) => test.runs },
      { label: "Max", class: "num strong", cell: (test) => value(test, "max") },
      { label: "Mean", class: "num", cell: (test) => value(test, "mean") },
      { label: "Last", class: "num", cell: (test) => value(test, "last") },
      { label: "Last run", cell: (test) => h("a", { href: runLink(test.last_session_h) }, when(test.last_run_date)) },
    ], answer.tests, { rowAttrs: (test) => ({ "data-variant": test.item_variant }) }),
    pager(answer, page, (n) => {
      const next = new URLSearchParams(params);
      next.set("page", n);
      go(path, next);
    }));
}

/**
 * `#/test?item_path=..&item_variant=..[&context_h=..][&pipeline=..]`: wall time, CPU time and
 * memory by run; with a pipeline, the changes detected in its history are marked.
 */
export async function testView(view, params) {
  const itemPath = params.get("item_path") || "";
  const itemVariant = params.get("item_variant") || "";
  const contextH = params.get("context_h") || undefined;
  const pipeline = params.get("pipeline");
  add(view, h("h1", {}, itemVariant), h("p", { class: "muted mono" }, itemPath));
  const trend = await get("/tests/trend", { item_path: itemPath, item_variant: itemVariant, context_h: contextH, limit: TREND_LIMIT });
  const names = await Promise.all(trend.series.map((one) => machineName(one.context_h)));
  const changes = pipeline === null ? {} : await changesOfTest(pipeline, itemPath, itemVariant);
  const series = (field, format, metric) => trend.series.map((one, i) => {
    const points = one.points.map((p) => ({
      x: timeOf(p.run_date),
      y: p[field],
      session: p.session_h,
      href: runLink(p.session_h),
      tip: `${when(p.run_date)} — ${format(p[field])} (run ${short(p.session_h)})`,
    }));
    return {
      key: one.context_h,
      color: COLORS[i % COLORS.length],
      label: names[i],
      points,
      ...marked(points, changes[`${one.context_h} ${metric}`] || [], metric),
    };
  });
  if (contextH) {
    add(view, h("p", {}, "One machine shown. ", h("a", { href: testLink(itemPath, itemVariant) }, "Show every machine")));
  }
  add(view,
    lineChart({ id: "chart-wall", title: "Wall time", yLabel: "Wall time (s)", series: series("total_time", seconds, "wall") }),
    lineChart({ id: "chart-cpu", title: "CPU time (user + kernel)", yLabel: "CPU time (s)", series: series("cpu_time", seconds, "cpu") }),
    lineChart({ id: "chart-memory", title: "Memory", yLabel: "Memory (MB)", series: series("mem_usage", megabytes, "memory") }),
    h("p", { class: "muted" },
      `Each point is one run; click it to open the run. A line holds at most the last ${TREND_LIMIT} runs.`,
      pipeline === null ? "" : ` Dashed lines: where pipeline ${pipeline || "(runs without a pipeline)"} changed this test; shaded bands: the median level between changes.`));
}

/**
 * Where `changes` (of one context and metric, oldest first) start among `points`, and the
 * median level of each segment between them, for the chart.
 */
function marked(points, changes, metric) {
  const starts = changes.map((change) => ({
    change,
    at: points.findIndex((p) => change.sessions.includes(p.session)),
  })).filter((c) => c.at >= 0);
  if (!starts.length || !points.length) return {};
  const levels = [];
  let from = 0;
  for (const { change, at } of starts) {
    levels.push({ x1: points[from].x, x2: points[Math.max(at - 1, from)].x, y: change.before });
    from = at;
  }
  levels.push({ x1: points[from].x, x2: points[points.length - 1].x, y: starts[starts.length - 1].change.after });
  return {
    levels,
    changes: starts.map(({ change, at }) => ({
      x: points[at].x,
      label: `${change.build ? `#${change.build} ` : ""}${metricValue(metric, change.before)} → ${metricValue(metric, change.after)}`,
    })),
  };
}

/** A context as people know it: its machine name and CPU, after its hash. */
async function machineName(contextH) {
  try {
    const answer = await get(`/contexts/${encodeURIComponent(contextH)}`);
    const context = answer && answer.contexts && answer.contexts.find((c) => c.h === contextH);
    if (context) return `${short(contextH)} · ${context.machine_node} (${context.cpu_count} × ${context.cpu_type})`;
  } catch {
    // The hash alone still tells the lines apart.
  }
  return short(contextH);
}
