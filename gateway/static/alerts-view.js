/**
 * The alert counts by severity and the list of active alerts, each with a
 * dismiss button.
 *
 * @module alerts-view
 */

import { element } from "./dom.js";

const COUNT_KEYS = ["total", "critical", "warning", "info"];
const RANK = { critical: 3, warning: 2, info: 1 };

/** The counts and the list. */
export class AlertsPanel {
  /**
   * @param {{counts: HTMLElement, list: HTMLElement, empty: HTMLElement}} elements
   * @param {object} text the language table
   * @param {ReturnType<import("./format.js").formatters>} format
   * @param {(alertId: string) => Promise<void>} onDismiss
   */
  constructor({ counts, list, empty }, text, format, onDismiss) {
    this.text = text;
    this.format = format;
    this.list = list;
    this.empty = empty;
    this.onDismiss = onDismiss;
    this.units = {};
    this.counts = { total: 0, critical: 0, warning: 0, info: 0 };
    this.pending = new Set();
    this.countEls = new Map();
    for (const key of COUNT_KEYS) {
      const el = element("div", "count");
      el.dataset.severity = key;
      el.append(element("span", "count-value", "0"), element("span", "count-label", text.counts[key]));
      counts.append(el);
      this.countEls.set(key, el);
    }
    this.setAlerts([]);
  }

  /** The `data` of an `initial`, `update` or `refresh` message. */
  setCounts(data) {
    this.counts = { ...this.counts, ...data };
    for (const [key, el] of this.countEls) {
      el.querySelector(".count-value").textContent = String(this.counts[key] ?? 0);
      el.classList.toggle("nonzero", (this.counts[key] ?? 0) > 0);
    }
  }

  /** `GET /api/alerts`: the active alerts; the most severe first, then the newest. */
  setAlerts(alerts) {
    const sorted = [...alerts].sort(
      (a, b) => (RANK[b.severity] ?? 0) - (RANK[a.severity] ?? 0) || b.raised_at.localeCompare(a.raised_at),
    );
    this.list.replaceChildren(...sorted.map((alert) => this._item(alert)));
    this.empty.hidden = sorted.length > 0;
  }

  /** Take one alert off the list (dismissed). */
  remove(alertId) {
    for (const item of this.list.querySelectorAll("li")) {
      if (item.dataset.alertId === alertId) item.remove();
    }
    this.empty.hidden = this.list.children.length > 0;
  }

  _item(alert) {
    const name = this.text.measurements[alert.measurement] ?? alert.measurement;
    const item = element("li", "alert");
    item.dataset.alertId = alert.id;
    item.dataset.severity = alert.severity;
    item.dataset.measurement = alert.measurement;
    const body = element("div", "alert-body");
    body.append(
      element("strong", "alert-measurement", name),
      element("span", "alert-text", this._describe(alert)),
      element("time", "alert-time", this.text.raisedAt(this.format.time(alert.raised_at))),
    );
    body.querySelector("time").dateTime = alert.raised_at;
    const button = element("button", "dismiss", this.text.dismiss);
    button.type = "button";
    button.setAttribute("aria-label", this.text.dismissLabel(alert.id, name));
    button.disabled = this.pending.has(alert.id);
    button.addEventListener("click", () => this._dismiss(alert.id, button));
    item.append(element("span", "alert-severity", this.text.severity[alert.severity] ?? alert.severity), body, button);
    return item;
  }

  _describe(alert) {
    if (alert.kind === "calibration") return this.text.calibrationDue;
    if (alert.kind === "offline" || alert.value === null) return this.text.sensorOffline;
    const unit = this.units[alert.measurement] ?? "";
    const number = (v) => `${this.format.number(v, alert.measurement)}${unit && unit !== "pH" ? ` ${unit}` : ""}`;
    const describe = alert.direction === "low" ? this.text.below : this.text.above;
    return describe(number(alert.value), alert.bound === null ? "?" : number(alert.bound));
  }

  async _dismiss(alertId, button) {
    this.pending.add(alertId);
    button.disabled = true;
    try {
      await this.onDismiss(alertId);
    } finally {
      this.pending.delete(alertId);
      button.disabled = false;
    }
  }
}
