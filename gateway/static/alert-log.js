/**
 * The alert log: every alert event of `GET /api/alerts/history` (raised,
 * escalated, dismissed, cleared, shelved...) with who did it (`by`), filtered by
 * measurement, severity, event and period, newest first, with a CSV link for
 * the same filters.
 *
 * @module alert-log
 */

import { element } from "./dom.js";
import { RANGES, rangeSpan } from "./history-view.js";

const SEVERITIES = ["critical", "warning", "info"];
const EVENTS = ["raised", "escalated", "deescalated", "dismissed", "cleared", "shelved", "unshelved"];
/** The most events one load shows (the API's limit). */
const LIMIT = 10000;

export class AlertLog {
  /**
   * @param {HTMLElement} container
   * @param {{text: object, ui: object, format: object, api: (path: string) => Promise<any>,
   *          download: (link: HTMLAnchorElement, event: Event) => void}} deps
   */
  constructor(container, { text, ui, format, api, download }) {
    Object.assign(this, { text, ui, format, api });
    this.container = container;
    this.filters = { measurement: "", severity: "", event: "", range: "7d" };
    container.replaceChildren(element("h2", "log-heading", ui.log));
    const controls = element("div", "log-controls");
    this.selects = {
      measurement: this.select("measurement", ui.measurement, []),
      severity: this.select("severity", ui.severity, SEVERITIES.map((s) => [s, text.severity[s]])),
      event: this.select("event", ui.event, EVENTS.map((e) => [e, ui.events[e]])),
      range: this.select("range", ui.range, Object.keys(RANGES).map((r) => [r, ui.ranges[r]]), false),
    };
    this.selects.range.value = this.filters.range;
    this.csv = element("a", "csv-link", ui.csv);
    this.csv.setAttribute("download", "");
    this.csv.addEventListener("click", (event) => download(this.csv, event));
    controls.append(...Object.values(this.selects).map((s) => s.parentElement), this.csv);
    this.count = element("p", "log-count");
    this.table = element("table", "log-table");
    container.append(controls, this.count, this.table);
  }

  select(name, label, options, withAll = true) {
    const wrapper = element("label", `log-filter log-${name}`);
    wrapper.append(element("span", "log-filter-label", label));
    const select = element("select", "");
    select.name = name;
    this.fill(select, options, withAll);
    select.addEventListener("change", () => {
      this.filters[name] = select.value;
      this.load();
    });
    wrapper.append(select);
    return select;
  }

  fill(select, options, withAll = true) {
    const all = withAll ? [["", this.ui.all]] : [];
    select.replaceChildren(...[...all, ...options].map(([value, label]) => {
      const option = element("option", "", label);
      option.value = value;
      return option;
    }));
  }

  /** The measurements to offer: `{name: label}`. */
  setMeasurements(labels) {
    this.labels = labels;
    this.fill(this.selects.measurement, Object.entries(labels));
    this.selects.measurement.value = this.filters.measurement;
    if (this.events) this.render(this.events); // with the labels now
  }

  path() {
    const { since, until } = rangeSpan(this.filters.range);
    const query = new URLSearchParams({ since, until, limit: LIMIT });
    for (const key of ["measurement", "severity", "event"]) {
      if (this.filters[key]) query.set(key, this.filters[key]);
    }
    return `api/alerts/history?${query}`;
  }

  async load() {
    const path = this.path();
    const load = (this.loads = (this.loads ?? 0) + 1);
    this.csv.href = `${path}&format=csv`;
    this.container.dataset.state = "loading";
    try {
      const events = await this.api(path);
      if (load !== this.loads) return; // the filters changed while it loaded: a newer load
      this.render(events.reverse());
      this.container.dataset.state = "ready";
    } catch {
      if (load !== this.loads) return;
      this.count.textContent = this.ui.failed;
      this.container.dataset.state = "failed";
    }
  }

  render(events) {
    this.events = events;
    const c = this.ui.columns;
    const head = element("tr", "");
    for (const name of [c.at, c.event, c.measurement, c.severity, c.value, c.by, c.alert]) {
      head.append(element("th", "", name));
    }
    const when = new Intl.DateTimeFormat(this.text.locale, { dateStyle: "short", timeStyle: "medium" });
    const rows = events.map((e) => {
      const row = element("tr", "log-row");
      row.dataset.event = e.event;
      row.dataset.severity = e.severity;
      row.append(
        element("td", "log-at", when.format(Date.parse(e.at))),
        element("td", "log-event", this.ui.events[e.event] ?? e.event),
        element("td", "log-measurement", this.labels?.[e.measurement] ?? e.measurement),
        element("td", "log-severity", this.text.severity[e.severity] ?? e.severity),
        element("td", "log-value", typeof e.value === "number" ? this.format.number(e.value, e.measurement) : ""),
        element("td", "log-by", e.by ?? ""),
        element("td", "log-alert", e.alert_id),
      );
      return row;
    });
    this.table.replaceChildren(element("thead", ""), element("tbody", ""));
    this.table.tHead.append(head);
    this.table.tBodies[0].append(...rows);
    this.count.textContent = events.length ? this.ui.shown(events.length) : this.ui.noEvents;
  }
}
