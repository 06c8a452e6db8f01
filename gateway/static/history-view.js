/**
 * The readings history of one measurement over 24 h, 7 d or 30 d, drawn from the
 * buckets of `GET /api/sensors/history?bucket=` as an SVG band (min to max) with
 * the average as a line. No chart library: plain SVG.
 *
 * @module history-view
 */

import { element } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
/** Each range and its bucket: a few hundred points whatever the range. */
export const RANGES = {
  "24h": { seconds: 86400, bucket: 300 },
  "7d": { seconds: 7 * 86400, bucket: 1800 },
  "30d": { seconds: 30 * 86400, bucket: 7200 },
};
const WIDTH = 800;
const HEIGHT = 280;
const PAD = { left: 64, right: 12, top: 12, bottom: 28 };

/** `since` and `until` (epoch seconds) of a range ending now. */
export function rangeSpan(range, nowMs = Date.now()) {
  const until = Math.floor(nowMs / 1000);
  return { since: until - RANGES[range].seconds, until };
}

/** The bucket points as runs without a missing bucket: a gap breaks the band and the line. */
export function segments(points, bucketMs) {
  const runs = [];
  let run = [];
  for (const point of points) {
    if (point.min === null) continue; // a bucket of failed reads only
    if (run.length && point.t - run[run.length - 1].t > bucketMs * 1.5) {
      runs.push(run);
      run = [];
    }
    run.push(point);
  }
  if (run.length) runs.push(run);
  return runs;
}

function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draw `points` (`{t: ms, min, avg, max}`) between `from` and `to` (ms) into `svg`.
 * @param {SVGSVGElement} svg
 * @param {{from: number, to: number, bucketMs: number, label: (v: number) => string,
 *          time: (ms: number) => string, title: string}} options
 */
export function drawHistory(svg, points, { from, to, bucketMs, label, time, title }) {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren(svgNode("title", {}, title));
  const runs = segments(points, bucketMs);
  const good = runs.flat();
  svg.dataset.points = String(good.length);
  if (!good.length) return;
  let low = Math.min(...good.map((p) => p.min));
  let high = Math.max(...good.map((p) => p.max));
  if (high - low < 1e-9) [low, high] = [low - 1, high + 1];
  const margin = (high - low) * 0.05;
  [low, high] = [low - margin, high + margin];
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t) => (PAD.left + ((t + bucketMs / 2 - from) / (to - from)) * plotW).toFixed(1);
  const y = (v) => (PAD.top + (1 - (v - low) / (high - low)) * plotH).toFixed(1);
  drawAxes(svg, { low, high, from, to, y, label, time });
  for (const run of runs) {
    const upper = run.map((p) => `${x(p.t)},${y(p.max)}`);
    const lower = run.map((p) => `${x(p.t)},${y(p.min)}`).reverse();
    svg.append(svgNode("polygon", { class: "history-band", points: [...upper, ...lower].join(" ") }));
    if (run.length === 1) {
      svg.append(svgNode("circle", { class: "history-dot", cx: x(run[0].t), cy: y(run[0].avg), r: 3 }));
    } else {
      const line = run.map((p) => `${x(p.t)},${y(p.avg)}`).join(" ");
      svg.append(svgNode("polyline", { class: "history-avg", points: line }));
    }
  }
}

function drawAxes(svg, { low, high, from, to, y, label, time }) {
  for (const value of [low, (low + high) / 2, high]) {
    svg.append(svgNode("line", { class: "history-grid", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value) }));
    svg.append(svgNode("text", { class: "history-tick", x: PAD.left - 6, y: y(value), "text-anchor": "end", "dominant-baseline": "middle" }, label(value)));
  }
  const bottom = HEIGHT - 8;
  for (const [at, anchor] of [[from, "start"], [(from + to) / 2, "middle"], [to, "end"]]) {
    const left = PAD.left + ((at - from) / (to - from)) * (WIDTH - PAD.left - PAD.right);
    svg.append(svgNode("text", { class: "history-tick", x: left.toFixed(1), y: bottom, "text-anchor": anchor }, time(at)));
  }
}

/** The history panel: measurement and range pickers, the chart, a summary, the CSV link. */
export class HistoryView {
  /**
   * @param {HTMLElement} container
   * @param {{text: object, ui: object, format: object, api: (path: string) => Promise<any>,
   *          download: (link: HTMLAnchorElement) => void}} deps
   */
  constructor(container, { text, ui, format, api, download }) {
    Object.assign(this, { text, ui, format, api });
    this.measurement = null;
    this.range = "24h";
    this.container = container;
    container.replaceChildren();
    container.append(element("h2", "history-heading", ui.history));
    const controls = element("div", "history-controls");
    this.picker = element("select", "history-measurement");
    this.picker.setAttribute("aria-label", ui.measurement);
    this.picker.addEventListener("change", () => this.show(this.picker.value, this.range));
    controls.append(this.picker);
    this.buttons = {};
    for (const range of Object.keys(RANGES)) {
      const button = element("button", "history-range", ui.ranges[range]);
      button.type = "button";
      button.dataset.range = range;
      button.addEventListener("click", () => this.show(this.measurement, range));
      this.buttons[range] = button;
      controls.append(button);
    }
    this.csv = element("a", "csv-link", ui.csv);
    this.csv.setAttribute("download", "");
    this.csv.addEventListener("click", (event) => download(this.csv, event));
    controls.append(this.csv);
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.setAttribute("class", "history-chart");
    this.svg.setAttribute("role", "img");
    this.summary = element("p", "history-summary");
    const legend = element("p", "history-legend");
    legend.append(element("span", "legend-band", ui.legendBand), element("span", "legend-avg", ui.legendAvg));
    container.append(controls, this.svg, legend, this.summary);
  }

  /**
   * The measurements to offer (`{name: label}`); shows `wanted` (else the first) over
   * `range` (else 24 h).
   */
  setMeasurements(labels, wanted = null, range = null) {
    this.picker.replaceChildren(...Object.entries(labels).map(([name, label]) => {
      const option = element("option", "", label);
      option.value = name;
      return option;
    }));
    this.labels = labels;
    const measurement = wanted in labels ? wanted : Object.keys(labels)[0];
    this.show(measurement, range in RANGES ? range : this.range);
  }

  async show(measurement, range) {
    if (!measurement) return;
    this.measurement = measurement;
    this.range = range;
    this.picker.value = measurement;
    for (const [name, button] of Object.entries(this.buttons)) button.setAttribute("aria-pressed", String(name === range));
    const { since, until } = rangeSpan(range);
    const { bucket } = RANGES[range];
    const path = `api/sensors/history?measurement=${measurement}&since=${since}&until=${until}&bucket=${bucket}`;
    this.csv.href = `${path}&format=csv`;
    this.container.dataset.state = "loading";
    try {
      const body = await this.api(path);
      if (this.measurement !== measurement || this.range !== range) return; // a newer choice won
      this.draw(body.points, since, until, bucket);
      this.container.dataset.state = "ready";
    } catch {
      this.summary.textContent = this.ui.failed;
      this.container.dataset.state = "failed";
    }
  }

  draw(rows, since, until, bucket) {
    const points = rows.map((p) => ({ ...p, t: Date.parse(p.t) }));
    const number = (v) => this.format.number(v, this.measurement);
    const day = new Intl.DateTimeFormat(this.text.locale, this.range === "24h"
      ? { hour: "2-digit", minute: "2-digit" }
      : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    const name = this.labels[this.measurement];
    drawHistory(this.svg, points, {
      from: since * 1000, to: until * 1000, bucketMs: bucket * 1000,
      label: number, time: (ms) => day.format(ms), title: this.ui.chart(name, this.ui.ranges[this.range]),
    });
    const good = points.filter((p) => p.min !== null);
    this.summary.textContent = good.length
      ? this.ui.summary(
        number(Math.min(...good.map((p) => p.min))),
        number(Math.max(...good.map((p) => p.max))),
        good.reduce((sum, p) => sum + p.n, 0),
      )
      : this.ui.empty;
  }
}
