/**
 * The last hour of one measurement as an inline SVG line (no chart library).
 *
 * Points are `{t, v}` (t: ms since the epoch, v: a number or null for a gap).
 * They are averaged into one value per column, so an hour of 0.5 s readings
 * draws as fast as a few dozen.
 *
 * @module trend
 */

const SVG = "http://www.w3.org/2000/svg";
export const WINDOW_MS = 3600 * 1000;
const WIDTH = 300;
const HEIGHT = 80;
const COLUMNS = 150;
const PAD = 6;

/** A trend of one measurement: keeps its points, draws them into an `<svg>`. */
export class Trend {
  /**
   * @param {SVGSVGElement} svg an empty `<svg>` to draw into
   * @param {{bounds?: {severity: string, value: number}[]}} [options] threshold lines
   */
  constructor(svg, { bounds = [] } = {}) {
    this.svg = svg;
    this.bounds = bounds;
    /** @type {{t: number, v: number | null}[]} oldest first */
    this.points = [];
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute("preserveAspectRatio", "none");
  }

  /** Replace every point (a history load), keeping live points newer than the history. */
  load(points) {
    const newest = points.length ? points[points.length - 1].t : -Infinity;
    this.points = [...points, ...this.points.filter((p) => p.t > newest)];
  }

  /** Add one live reading. */
  add(t, v) {
    const last = this.points[this.points.length - 1];
    if (last && t < last.t) return;
    this.points.push({ t, v });
  }

  /** Drop what fell out of the window, and draw. Returns the min and max drawn, or null. */
  draw(now = Date.now()) {
    const from = now - WINDOW_MS;
    const firstKept = this.points.findIndex((p) => p.t >= from);
    this.points = firstKept < 0 ? [] : this.points.slice(firstKept);
    const good = this.points.filter((p) => p.v !== null && Number.isFinite(p.v));
    this.svg.replaceChildren();
    if (!good.length) return null;
    const values = good.map((p) => p.v);
    const columns = toColumns(good, from, now);
    const last = this.points[this.points.length - 1];
    // Columns are averages; the newest reading is drawn as it is, so a jump shows at once.
    if (last.v !== null) columns[columnOf(last.t, from, now)] = last.v;
    const scale = yScale(columns.filter((v) => v !== null), this.bounds.map((b) => b.value));
    for (const bound of this.bounds) this._boundLine(bound, scale);
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("class", "trend-line");
    path.setAttribute("d", linePath(columns, scale));
    this.svg.append(path);
    return { min: values.reduce((a, b) => Math.min(a, b)), max: values.reduce((a, b) => Math.max(a, b)) };
  }

  _boundLine(bound, scale) {
    if (bound.value < scale.low || bound.value > scale.high) return;
    const y = scale.y(bound.value).toFixed(1);
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("class", `trend-bound bound-${bound.severity}`);
    for (const [name, value] of [["x1", 0], ["x2", WIDTH], ["y1", y], ["y2", y]]) {
      line.setAttribute(name, String(value));
    }
    this.svg.append(line);
  }
}

/** One average (or null: no good reading in it) per column of the window. */
function toColumns(points, from, to) {
  const sums = new Array(COLUMNS).fill(0);
  const counts = new Array(COLUMNS).fill(0);
  for (const { t, v } of points) {
    const column = columnOf(t, from, to);
    sums[column] += v;
    counts[column] += 1;
  }
  return sums.map((sum, i) => (counts[i] ? sum / counts[i] : null));
}

function columnOf(t, from, to) {
  return Math.max(0, Math.min(COLUMNS - 1, Math.floor(((t - from) / (to - from)) * COLUMNS)));
}

/**
 * The vertical scale: the values' range, widened a little, and to a bound that lies
 * close to it (so a line drifting toward a threshold shows the threshold).
 */
function yScale(values, bounds) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  const span = Math.max(high - low, Math.abs(high) * 0.01, 0.01);
  for (const bound of bounds) {
    if (bound >= low - span && bound <= high + span) {
      low = Math.min(low, bound);
      high = Math.max(high, bound);
    }
  }
  const margin = Math.max(high - low, span) * 0.1;
  low -= margin;
  high += margin;
  const y = (v) => HEIGHT - PAD - ((v - low) / (high - low)) * (HEIGHT - 2 * PAD);
  return { low, high, y };
}

/** An SVG path through the columns; a null column breaks the line. */
function linePath(columns, scale) {
  const step = WIDTH / COLUMNS;
  const parts = [];
  let drawing = false;
  columns.forEach((v, i) => {
    if (v === null) {
      drawing = false;
      return;
    }
    const x = (i + 0.5) * step;
    parts.push(`${drawing ? "L" : "M"}${x.toFixed(1)} ${scale.y(v).toFixed(1)}`);
    drawing = true;
  });
  // A lone column would be an invisible point: give it a short horizontal stroke.
  return parts.join(" ").replace(/M([\d.]+) ([\d.]+)(?= M|$)/g, (_, x, y) => `M${x} ${y} h${step.toFixed(1)}`);
}
