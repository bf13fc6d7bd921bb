// Trend charts drawn as SVG by hand: one line per execution context, time on the x axis, each
// point a link to its run. The drawing scales with the page (viewBox), so the numbers below are
// in the chart's own units, not pixels.

import { h, s } from "./dom.js";

const WIDTH = 880;
const HEIGHT = 260;
const MARGIN = { top: 14, right: 20, bottom: 46, left: 70 };

/** One colour per execution context, told apart also by people with red-green blindness. */
export const COLORS = ["#1f77b4", "#e8710a", "#7b3fb2", "#0f9d8a", "#c2185b", "#6d6d00", "#5d4037", "#455a64"];

/**
 * A chart of `series` ([{key, label, color, points: [{x: ms, y, href, tip}]}]) with `yLabel`
 * (the quantity and its unit) on the vertical axis and the run date on the horizontal one.
 * A series may carry detected `changes` ([{x, label}]: a dashed line where a new level starts)
 * and `levels` ([{x1, x2, y}]: each segment's median between changes).
 */
export function lineChart({ id, title, yLabel, series }) {
  const points = series.flatMap((one) => one.points);
  const figure = h("figure", { class: "chart", id }, h("figcaption", {}, title));
  if (!points.length) {
    figure.append(h("p", { class: "muted" }, "No measurement to draw."));
    return figure;
  }
  let [xMin, xMax] = extent(points.map((p) => p.x));
  if (xMin === xMax) [xMin, xMax] = [xMin - 3600e3, xMax + 3600e3];
  const yTicks = niceTicks(Math.max(...points.map((p) => p.y)));
  const yMax = yTicks[yTicks.length - 1];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value) => MARGIN.left + ((value - xMin) / (xMax - xMin)) * plotW;
  const y = (value) => MARGIN.top + plotH - (value / yMax) * plotH;

  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": `${title}: ${yLabel} by run date`,
    class: points.length > 200 ? "plot dense" : "plot",
  });
  const axes = s("g", { class: "axes" });
  for (const tick of yTicks) {
    axes.append(
      s("line", { class: "grid", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick) }),
      s("text", { class: "tick y-tick", x: MARGIN.left - 8, y: y(tick) + 4, "text-anchor": "end" }, tickText(tick, yTicks[1])),
    );
  }
  const span = xMax - xMin;
  for (let i = 0; i <= 5; i += 1) {
    const at = xMin + (span * i) / 5;
    axes.append(
      s("line", { class: "tick-mark", x1: x(at), x2: x(at), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 5 }),
      s("text", { class: "tick x-tick", x: x(at), y: MARGIN.top + plotH + 19, "text-anchor": anchorOf(i) }, dateTick(at, span)),
    );
  }
  axes.append(
    s("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH }),
    s("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotH }),
    s("text", { class: "axis-label x-label", x: MARGIN.left + plotW / 2, y: HEIGHT - 6, "text-anchor": "middle" }, "Run date"),
    s("text", {
      class: "axis-label y-label",
      transform: `translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)`,
      "text-anchor": "middle",
    }, yLabel),
  );
  svg.append(axes);

  // Small points once there are many, so a thousand stay distinct and cheap to draw.
  const radius = points.length > 200 ? 2 : 3.5;
  for (const one of series) {
    const group = s("g", { class: "series", "data-context": one.key, fill: one.color, stroke: one.color });
    group.append(s("polyline", {
      class: "line",
      fill: "none",
      points: one.points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" "),
    }));
    for (const p of one.points) {
      group.append(s("a", { href: p.href, class: "point" },
        s("circle", { cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: radius }, s("title", {}, p.tip))));
    }
    svg.append(group);
    // Drawn over the points: the segments' medians, then where each new level starts.
    const marks = s("g", { class: "changes", "data-context": one.key, stroke: one.color });
    for (const level of one.levels || []) {
      marks.append(s("line", { class: "level", x1: x(level.x1).toFixed(1), x2: x(level.x2).toFixed(1), y1: y(level.y).toFixed(1), y2: y(level.y).toFixed(1) }));
    }
    for (const change of one.changes || []) {
      marks.append(s("line", { class: "change-mark", x1: x(change.x).toFixed(1), x2: x(change.x).toFixed(1), y1: MARGIN.top, y2: MARGIN.top + plotH }),
        s("text", { class: "change-label", x: x(change.x) + 4, y: MARGIN.top + 12, fill: one.color, stroke: "none" }, change.label));
    }
    if (marks.childNodes.length) svg.append(marks);
  }
  figure.append(svg, legend(series));
  return figure;
}

function legend(series) {
  return h("ul", { class: "legend" }, series.map((one) =>
    h("li", { "data-context": one.key },
      s("svg", { viewBox: "0 0 14 14", class: "swatch", "aria-hidden": "true" },
        s("rect", { width: 14, height: 14, rx: 3, fill: one.color })),
      ` ${one.label} — ${one.points.length} run${one.points.length === 1 ? "" : "s"}`)));
}

function extent(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  return [low, high];
}

/** 0, then round steps (1, 2 or 5 times a power of ten) up to at least `max`. */
export function niceTicks(max) {
  const top = max > 0 ? max : 1;
  const raw = top / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((f) => f * power >= raw) * power;
  const ticks = [];
  for (let i = 0; i * step < top + step / 2 && ticks.length < 12; i += 1) ticks.push(i * step);
  if (ticks[ticks.length - 1] < top) ticks.push(ticks.length * step);
  return ticks.map((t) => Number(t.toPrecision(12)));
}

/** A tick's value with as many decimals as the step needs, the same for every tick of an axis. */
function tickText(value, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(Math.min(decimals, 6));
}

function anchorOf(i) {
  if (i === 0) return "start";
  return i === 5 ? "end" : "middle";
}

/** A date tick: the day for spans of days, minutes within a day or two. */
function dateTick(ms, span) {
  const iso = new Date(ms).toISOString();
  if (span > 4 * 86400e3) return iso.slice(0, 10);
  if (span > 600e3) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return iso.slice(11, 19);
}
