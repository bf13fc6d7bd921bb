// The filter bar of the runs and the test rankings: component, pipeline, build, tag and SCM
// reference, kept in the address (#/runs?component=...), so a filtered view can be shared.
// Menus are filled from /components/, /pipelines/ and /tags, once per page load.

import { get, menuItems } from "./api.js";
import { h, errorBox } from "./dom.js";

/** The query parameters the filters set, as /runs and /tests take them. */
export const FILTERS = ["component", "pipeline", "build", "tag", "scm_ref"];

const menus = {};

function menu(name, load) {
  if (!menus[name]) menus[name] = load().catch((err) => { delete menus[name]; throw err; });
  return menus[name];
}

/** The filters present in `params`, ready to pass to the API. */
export function filtersOf(params) {
  const chosen = {};
  for (const name of FILTERS) {
    const values = params.getAll(name).filter((v) => v !== "");
    if (values.length) chosen[name] = name === "tag" ? values : values[0];
  }
  return chosen;
}

/** Whether any filter is set. */
export function filtering(params) {
  return Object.keys(filtersOf(params)).length > 0;
}

/**
 * The bar. `apply(params)` is called with the new parameters (page reset) when a menu changes.
 * Menus fill in as their lists arrive; a list that fails shows its error beside the bar.
 */
export function filterBar(params, apply) {
  const set = (name, value) => {
    const next = new URLSearchParams(params);
    next.delete("page");
    next.delete(name);
    if (name === "pipeline") next.delete("build");
    if (value) next.set(name, value);
    apply(next);
  };
  const problems = h("div", { class: "filter-errors" });
  const select = (name, label, options) => {
    const element = h("select", { name, onchange: (e) => set(name, e.target.value) },
      h("option", { value: "" }, "All"));
    options.then((list) => {
      for (const item of list) element.append(item instanceof Node ? item : h("option", { value: item }, item));
      element.value = params.get(name) || "";
    }).catch((err) => {
      // Without the token, the view itself asks for it; one request's refusal is enough.
      if (err.status !== 401) problems.append(errorBox(err));
    });
    return h("label", { class: "filter" }, h("span", { class: "filter-name" }, label), element);
  };

  const pipeline = params.get("pipeline");
  const bar = h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    select("component", "Component", menu("components", () => menuItems("/components", "components"))),
    select("pipeline", "Pipeline", menu("pipelines", () => menuItems("/pipelines", "pipelines"))),
    pipeline
      ? select("build", "Build", menuItems(`/pipelines/${encodeURIComponent(pipeline)}/builds`, "builds"))
      : null,
    select("tag", "Tag", menu("tags", loadTags)),
    h("label", { class: "filter" }, h("span", { class: "filter-name" }, "SCM ref"),
      h("input", { name: "scm_ref", placeholder: "exact commit", size: 12, value: params.get("scm_ref") || "",
        onchange: (e) => set("scm_ref", e.target.value.trim()) })),
    filtering(params) ? h("a", { class: "clear", href: `#${location.hash.slice(1).split("?")[0]}` }, "Clear filters") : null);
  return h("div", { class: "filter-bar" }, bar, problems);
}

/** Tag menu: one group per tag name, its values most used first. */
async function loadTags() {
  const answer = await get("/tags");
  return ((answer && answer.tags) || []).map((tag) =>
    h("optgroup", { label: tag.name }, tag.values.map((v) =>
      h("option", { value: `${tag.name}:${v.value}` }, `${tag.name} = ${v.value} (${v.sessions})`))));
}
