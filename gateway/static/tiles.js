/**
 * The reading tiles: value, unit, quality, level, and the last hour's trend.
 *
 * A measurement without a fresh good reading (`null` in a sensor_update), or any
 * reading while the dashboard has lost the gateway for too long, shows as no
 * data: a number on this screen is always a current one.
 *
 * @module tiles
 */

import { element } from "./dom.js";
import { boundLines, levelOf } from "./format.js";
import { Trend } from "./trend.js";

const SVG = "http://www.w3.org/2000/svg";

/** One tile per measurement, inside `container`: the seed's four until `/api/info`
 * says what this site reads, then one per configured measurement, in its order. */
export class Tiles {
  /**
   * @param {HTMLElement} container
   * @param {object} text the language table
   * @param {ReturnType<import("./format.js").formatters>} format
   * @param {{measurements: string[], units: Record<string, string>}} layout
   */
  constructor(container, text, format, { measurements, units }) {
    this.container = container;
    this.text = text;
    this.format = format;
    this.units = units;
    this.labels = {};
    this.circuits = {};
    this.thresholds = {};
    this.stale = false;
    /** Called with (measurement, circuit, name) when a tile's calibrate button is pressed. */
    this.onCalibrate = null;
    /** @type {Map<string, {el: HTMLElement, value?: number | null, quality?: string, trend: Trend}>} */
    this.tiles = new Map();
    for (const measurement of measurements) this._add(measurement);
  }

  /** The name shown for a measurement: the language's for the seed's four, else its label. */
  name(measurement) {
    return this.text.measurements[measurement] || this.labels[measurement] || measurement;
  }

  /** What `/api/info` says: which measurements this site reads, their labels, units,
   * EZO circuits (a calibrate button), and bounds. */
  setInfo({ measurements, units, labels, circuits, thresholds }) {
    this.units = { ...this.units, ...units };
    this.labels = labels ?? {};
    this.circuits = circuits ?? {};
    this.thresholds = thresholds ?? {};
    for (const measurement of measurements ?? []) {
      if (!this.tiles.has(measurement)) this._add(measurement);
      this.container.append(this.tiles.get(measurement).el); // in the order given
    }
    for (const [measurement, tile] of this.tiles) {
      tile.el.hidden = Boolean(measurements) && !measurements.includes(measurement);
      tile.el.querySelector(".tile-name").textContent = this.name(measurement);
      tile.el.querySelector(".tile-unit").textContent = this.units[measurement] ?? "";
      tile.el.querySelector(".tile-calibrate").hidden = !this.circuits[measurement];
      tile.trend.bounds = boundLines(this.thresholds[measurement]);
      this._render(measurement);
    }
  }

  _add(measurement) {
    const el = this._build(measurement);
    this.container.append(el);
    this.tiles.set(measurement, { el, trend: new Trend(el.querySelector("svg")) });
  }

  /**
   * A sensor_update's `data`, received at `t` (ms).
   * @returns {boolean} whether a measurement went offline or came back
   */
  update(data, t) {
    let turned = false;
    for (const [measurement, tile] of this.tiles) {
      if (!(measurement in data)) continue;
      const value = typeof data[measurement] === "number" ? data[measurement] : null;
      if ((value === null) !== (tile.value === null)) {
        turned = true;
        tile.quality = undefined; // what /healthz said no longer holds
      }
      tile.value = value;
      tile.trend.add(t, value);
    }
    this.stale = false;
    this.renderAll();
    return turned;
  }

  /** The driver-level quality of each measurement's last reading (`/healthz` sensors). */
  setQualities(sensors) {
    for (const [measurement, tile] of this.tiles) tile.quality = sensors[measurement]?.quality ?? undefined;
    this.renderAll();
  }

  /** No news from the gateway for too long: every number goes. */
  setStale(stale) {
    if (stale === this.stale) return;
    this.stale = stale;
    this.renderAll();
  }

  /** Rows of `/api/sensors/history` for one measurement. */
  loadHistory(measurement, rows) {
    const tile = this.tiles.get(measurement);
    if (!tile) return;
    tile.trend.load(rows.map((row) => ({ t: Date.parse(row.timestamp), v: row.quality === "good" ? row.value : null })));
    this._render(measurement);
  }

  renderAll() {
    for (const measurement of this.tiles.keys()) this._render(measurement);
  }

  _render(measurement) {
    const { el, value, quality, trend } = this.tiles.get(measurement);
    const state = this._state(value, quality);
    const shown = state === "good" || state === "degraded";
    el.dataset.quality = state;
    el.dataset.level = shown ? levelOf(value, this.thresholds[measurement]) : "none";
    el.querySelector(".tile-value").textContent = shown ? this.format.number(value, measurement) : this.text.noData;
    el.querySelector(".tile-level").textContent = shown ? this.text.level[el.dataset.level] : "";
    el.querySelector(".tile-quality-text").textContent = this._qualityText(state, quality);
    const range = trend.draw();
    el.querySelector(".tile-range").textContent = range
      ? this.text.trendRange(this.format.number(range.min, measurement), this.format.number(range.max, measurement))
      : this.text.trendEmpty;
  }

  _state(value, quality) {
    if (value === undefined) return "waiting";
    if (this.stale) return "stale";
    if (value === null) return "offline";
    return quality && quality !== "good" ? "degraded" : "good";
  }

  _qualityText(state, quality) {
    const q = this.text.quality;
    if (state === "degraded") return q.degraded(this.text.qualityCodes[quality] ?? quality);
    return q[state];
  }

  _build(measurement) {
    const name = this.name(measurement);
    const el = element("article", "tile");
    el.dataset.measurement = measurement;
    const head = element("header", "tile-head");
    const calibrate = element("button", "tile-calibrate", this.text.calibrate);
    calibrate.type = "button";
    calibrate.hidden = true;
    calibrate.addEventListener("click", () => {
      this.onCalibrate?.(measurement, this.circuits[measurement], this.name(measurement));
    });
    head.append(element("h3", "tile-name", name), element("span", "tile-level"), calibrate);
    const reading = element("p", "tile-reading");
    reading.append(element("span", "tile-value", "—"), " ", element("span", "tile-unit", this.units[measurement] ?? ""));
    const quality = element("p", "tile-quality");
    quality.append(element("span", "tile-dot"), element("span", "tile-quality-text"));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "trend");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", this.text.trend(name));
    el.append(head, reading, quality, svg, element("p", "tile-range"));
    return el;
  }
}
