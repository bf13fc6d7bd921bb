// Building the page: elements from plain data (never from HTML strings, so a test named
// `<script>` stays text), and the formats every view shares.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element: `h("a", {href: "#/runs", class: "x"}, "text", child, ...)`. */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, like `h`. */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Seconds, with the precision a person reads: 0.0123 s, 1.23 s, 123 s. */
export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${number(value)} s`;
}

/** Megabytes (pytest-monitor's `mem_usage` is in MB, as memory_profiler reports it). */
export function megabytes(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${number(value)} MB`;
}

/** Three significant digits (0.300, 1.04, 532), so values of a column read alike. */
export function number(value) {
  const magnitude = Math.abs(value);
  if (magnitude === 0) return "0";
  if (magnitude >= 100) return value.toFixed(0);
  return value.toPrecision(3);
}

/** pytest-monitor's `cpu_usage`: CPU time over wall time, as a percentage (over 100 on several cores). */
export function cpuShare(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${Math.round(value * 100)} %`;
}

/** A signed percentage such as +72.7 %, or the empty string when there is none. */
export function percent(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  return `${value >= 0 ? "+" : ""}${value.toFixed(1)} %`;
}

/** A stored ISO 8601 time as shown: date and minutes, `T` turned into a space. */
export function when(iso) {
  if (!iso) return "–";
  return String(iso).replace("T", " ").slice(0, 16);
}

/**
 * Milliseconds since the epoch of a stored time. Times sent without an offset (pytest-monitor's,
 * in the clock of the machine that ran the tests) are taken as they are written, so the charts'
 * axes read the same clock as the tables.
 */
export function timeOf(iso) {
  const text = String(iso);
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(text);
  return Date.parse(zoned ? text : `${text}Z`);
}

/** The first characters of a hash, enough to tell runs and machines apart. */
export function short(hash) {
  return hash ? String(hash).slice(0, 8) : "–";
}

/** A test's place in the dashboard. */
export function testLink(itemPath, itemVariant, contextH) {
  const query = new URLSearchParams({ item_path: itemPath, item_variant: itemVariant });
  if (contextH) query.set("context_h", contextH);
  return `#/test?${query}`;
}

/** A table cell naming a test (its variant, then its module) and linking to its page. */
export function testCell(itemPath, itemVariant, contextH) {
  return h("a", { href: testLink(itemPath, itemVariant, contextH) }, itemVariant, h("div", { class: "muted" }, itemPath));
}

/** A run's place in the dashboard. */
export function runLink(sessionH) {
  return `#/runs/${encodeURIComponent(sessionH)}`;
}

/** Appends `children` to `element`, skipping the absent ones (null, undefined, false). */
export function add(element, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) element.append(child);
  }
  return element;
}

/** Replaces what `element` shows. */
export function show(element, ...children) {
  element.replaceChildren();
  return add(element, ...children);
}

/** What went wrong, as the API said it: the status, the message and each field's reason. */
export function errorBox(err) {
  const fields = Object.entries((err && err.errors) || {});
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, err && err.status ? `Error ${err.status}` : "Error"),
    ": ", (err && err.message) || String(err),
    err && err.url ? h("div", { class: "muted" }, `GET ${err.url}`) : null,
    fields.length ? h("ul", {}, fields.map(([field, reason]) => h("li", {}, h("code", {}, field), ` ${reason}`))) : null);
}

/** A table: `columns` are [{label, class?, sort?, cell(row) -> node|string}]. */
export function table(columns, rows, { rowAttrs = () => ({}), sorted, onSort } = {}) {
  const head = h("tr", {}, columns.map((column) => {
    if (!column.sort || !onSort) return h("th", { class: column.class }, column.label);
    const active = sorted && sorted.sort === column.sort;
    const arrow = active ? (sorted.order === "asc" ? " ▲" : " ▼") : "";
    const direction = sorted && sorted.order === "asc" ? "ascending" : "descending";
    return h("th", { class: `${column.class || ""} sortable${active ? " active" : ""}`, "aria-sort": active ? direction : null },
      h("button", { type: "button", "data-sort": column.sort, onclick: () => onSort(column.sort) }, column.label + arrow));
  }));
  const body = h("tbody", {}, rows.map((row) =>
    h("tr", rowAttrs(row), columns.map((column) => h("td", { class: column.class }, column.cell(row))))));
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), body));
}

/** Previous/next buttons for a page of a listing; `go(page)` shows another page. */
export function pager(answer, page, go) {
  const total = answer.total_page || 1;
  if (total <= 1) return null;
  return h("nav", { class: "pager", "aria-label": "pages" },
    h("button", { type: "button", disabled: !answer.prev_url, onclick: () => go(page - 1) }, "‹ Previous"),
    h("span", { class: "page-of" }, `Page ${page} of ${total}`),
    h("button", { type: "button", disabled: !answer.next_url, onclick: () => go(page + 1) }, "Next ›"));
}
