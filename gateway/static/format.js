/**
 * Numbers and times in the language's locale, and the severity of a reading.
 * @module format
 */

/** Decimals shown per measurement: the probes' resolution, no more. */
export const DECIMALS = { temperature: 1, ph: 2, conductivity: 0, water_level: 2 };

const LEVELS = ["critical", "warning", "info"];

/**
 * Formatters for one locale.
 * @param {string} locale a BCP 47 tag, e.g. `es-ES`
 */
export function formatters(locale) {
  const numbers = new Map();
  const clock = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return {
    /** `7.384` as `7,38` for pH in Spanish. */
    number(value, measurement) {
      const digits = DECIMALS[measurement] ?? 2;
      if (!numbers.has(digits)) {
        numbers.set(digits, new Intl.NumberFormat(locale, {
          minimumFractionDigits: digits, maximumFractionDigits: digits,
        }));
      }
      return numbers.get(digits).format(value);
    },
    /** An ISO 8601 timestamp (or a Date, or ms) as the local wall-clock time. */
    time(when) {
      return clock.format(when instanceof Date ? when : new Date(when));
    },
  };
}

/**
 * How far beyond its bounds a value lies: `critical`, `warning`, `info` or `normal`.
 * @param {number} value
 * @param {Record<string, number>} [bounds] a `[thresholds.<measurement>]` table
 */
export function levelOf(value, bounds = {}) {
  for (const level of LEVELS) {
    const low = bounds[`${level}_low`];
    const high = bounds[`${level}_high`];
    if ((low !== undefined && value < low) || (high !== undefined && value > high)) return level;
  }
  return "normal";
}

/** The bounds of a thresholds table as trend lines: `[{severity, value}]`. */
export function boundLines(bounds = {}) {
  const lines = [];
  for (const level of LEVELS) {
    for (const side of ["low", "high"]) {
      const value = bounds[`${level}_${side}`];
      if (typeof value === "number") lines.push({ severity: level, value });
    }
  }
  return lines;
}
