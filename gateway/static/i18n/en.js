/**
 * Every string the dashboard shows, in English: the same keys as es.js
 * (tests/browser/test_history_view.py checks that none is missing), chosen with
 * `?lang=en`; see docs/dashboard.md.
 */
export default {
  /** BCP 47 tag for numbers, times, and the page's `lang`. */
  locale: "en-GB",
  title: "Reservoir dashboard",
  reservoir: (id) => `Reservoir ${id}`,

  // connection (the seed's texts)
  connecting: "Connecting...",
  connected: "Connected",
  reconnecting: (attempt) => `Reconnecting... (attempt ${attempt})`,
  polling: "Connected by polling (no WebSocket)",
  offline: "No connection to the gateway",
  closed: "Disconnected",
  authFailed: "Access denied: the token is not valid or has expired. Open the dashboard with a new link (#token=...).",
  updatedAt: (time) => `Last reading: ${time}`,

  // readings
  readings: "Readings",
  measurements: {
    temperature: "Temperature",
    ph: "pH",
    conductivity: "Conductivity",
    water_level: "Water level",
  },
  noData: "No data",
  quality: {
    good: "Online",
    offline: "Offline: no valid readings",
    stale: "No connection: value not current",
    degraded: (quality) => `Last reading failed: ${quality}`,
    waiting: "Waiting for the first reading",
  },
  qualityCodes: {
    timeout: "no reply",
    crc: "CRC error",
    garbage: "unreadable reply",
    exception: "device exception",
    device_error: "device error",
    disconnected: "port disconnected",
  },
  level: {
    normal: "Normal",
    info: "Notice",
    warning: "Warning",
    critical: "Critical",
  },
  trend: (name) => `Trend over the last hour: ${name}`,
  trendRange: (min, max) => `Last hour: min ${min} · max ${max}`,
  trendEmpty: "No history in the last hour",

  // alerts
  alertCounts: "Alerts by severity",
  counts: {
    total: "Total",
    critical: "Critical",
    warning: "Warnings",
    info: "Notices",
  },
  severity: {
    critical: "Critical",
    warning: "Warning",
    info: "Notice",
  },
  activeAlerts: "Active alerts",
  noAlerts: "No active alerts",
  above: (value, bound) => `${value} above the limit ${bound}`,
  below: (value, bound) => `${value} below the limit ${bound}`,
  sensorOffline: "The sensor sends no valid readings",
  raisedAt: (time) => `since ${time}`,
  dismiss: "Dismiss",
  dismissLabel: (id, name) => `Dismiss alert ${id} (${name})`,
  dismissFailed: (id) => `Alert ${id} could not be dismissed. Please try again.`,
  calibrationDue: "Calibration due: the probe needs calibrating",

  // calibration (calibration-view.js)
  calibrate: "Calibrate",
  calibration: {
    title: (name) => `Calibration: ${name}`,
    loading: "Asking the circuit...",
    unknown: "Calibration state unknown",
    run: "Calibrate",
    close: "Close",
    points: {
      mid: "Mid point (pH 7)",
      low: "Low point",
      high: "High point",
      dry: "Dry",
      single: "Single point",
      atm: "In air",
      zero: "Zero solution",
      clear: "Clear calibration",
    },
    valueOf: (point) => `Standard's value: ${point}`,
    pointCount: (n) => `${n} ${n === 1 ? "point" : "points"}`,
    slope: (acid, base, offset) => `acid slope ${acid} %, base ${base} %, offset ${offset} mV`,
    done: (command, state) => `${command}: done. ${state}`,
    refused: (detail) => `The circuit refused the calibration: ${detail}`,
  },
  pageTitle: (active, reservoir) => `${active ? `(${active}) ` : ""}Reservoir ${reservoir}`,
  historyLink: "History and alert log",
};
