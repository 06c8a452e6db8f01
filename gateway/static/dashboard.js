/**
 * The control-room dashboard served at `/`: readings, trends, alert counts, active
 * alerts, and the connection's state. One WebSocket on `/ws` (channels `alerts`
 * and `sensors`) through {@link GatewayClient}, which falls back to polling.
 *
 * Query parameters (docs/dashboard.md): `reconnect` (base interval, ms),
 * `attempts` (reconnect attempts before polling), `probe` (ms between WebSocket
 * probes while polling), `wait` (long-poll seconds), `lang` (language file; the
 * history page, static/history.html, is linked in the same language).
 * A token comes in the fragment, `#token=...`, and is kept in sessionStorage.
 *
 * @module dashboard
 */

import { AlertsPanel } from "./alerts-view.js";
import { mountCalibration } from "./calibration-view.js";
import { DECIMALS, formatters } from "./format.js";
import { GatewayClient, Status } from "./gateway-client.js";
import { mountNotifyView } from "./notify-view.js";
import { mountShelveView } from "./shelve-view.js";
import { kindOf, mountBackLink, siteOf, withSite } from "./site-context.js";
import { Tiles } from "./tiles.js";

const MEASUREMENTS = ["temperature", "ph", "conductivity", "water_level"];
const UNITS = { temperature: "°C", ph: "pH", conductivity: "µS/cm", water_level: "m" };
const TOKEN_KEY = "sensor-gateway.token";
const HOUR_S = 3600;
const INFO_RETRY_MS = 5000;
const ALERTS_RELOAD_MS = 30000;
const QUALITY_EVERY_MS = 5000;
/** A socket silent this long is dead (a half-open TCP link): above the 30 s heartbeat. */
const IDLE_TIMEOUT_MS = 65000;
/** `/site?reservoir=<id>`: one of a relay's sites (docs/dashboard.md); "" on a gateway. */
const SITE = siteOf(window.location.search);

/**
 * The dashboard's settings from the page's query string.
 * @param {string} search `location.search`
 */
export function readSettings(search) {
  const query = new URLSearchParams(search);
  const number = (name, min, max) => {
    const raw = query.get(name);
    const value = raw === null || raw === "" ? NaN : Number(raw);
    return Number.isFinite(value) && value >= min && value <= max ? value : undefined;
  };
  const lang = query.get("lang") ?? "";
  return {
    reconnectInterval: number("reconnect", 10, 600000) ?? 3000,
    maxReconnectAttempts: number("attempts", 0, 1000) ?? 10,
    probeInterval: number("probe", 10, 3600000) ?? null,
    pollWait: number("wait", 0, 60) ?? 25,
    lang: /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/.test(lang) ? lang : "es",
  };
}

/**
 * The token: from `#token=...` (then kept in sessionStorage and taken out of the
 * address bar), else the one kept earlier in this tab; "" without one.
 */
export function takeToken(location = window.location, storage = safeStorage()) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("token")) {
    const token = fragment.get("token") ?? "";
    if (token) storage?.setItem(TOKEN_KEY, token);
    else storage?.removeItem(TOKEN_KEY);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
    return token;
  }
  return storage?.getItem(TOKEN_KEY) ?? "";
}

function safeStorage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the token lives as long as the page
  }
}

async function loadLanguage(lang) {
  try {
    return (await import(`./i18n/${lang}.js`)).default;
  } catch {
    return (await import("./i18n/es.js")).default;
  }
}

/** The page: its views, its client, and the REST calls around them. */
class Dashboard {
  constructor(text, settings, token) {
    this.text = text;
    this.settings = settings;
    this.token = token;
    this.format = formatters(text.locale);
    this.sensorIntervalMs = 10000;
    this.lastSensorAt = 0;
    this.qualityAt = 0;
    this.reservoir = "";
    this.authFailed = false;
    this.tiles = new Tiles(byId("tiles"), text, this.format, { measurements: MEASUREMENTS, units: UNITS });
    this.alerts = new AlertsPanel(
      { counts: byId("counts"), list: byId("alerts"), empty: byId("no-alerts") },
      text, this.format, (id) => this.dismiss(id),
    );
    this.alerts.units = { ...UNITS };
    this.client = new GatewayClient({
      url: withSite(new URL("ws", document.baseURI), SITE),
      channels: ["alerts", "sensors"],
      token,
      reconnectInterval: settings.reconnectInterval,
      maxReconnectAttempts: settings.maxReconnectAttempts,
      probeInterval: settings.probeInterval,
      pollWait: settings.pollWait,
      idleTimeout: IDLE_TIMEOUT_MS,
      onMessage: (message) => this.onMessage(message),
      onStatus: (change) => this.onStatus(change),
      onError: (error) => this.onError(error),
    });
  }

  start() {
    this.showStaticText();
    mountBackLink(document.querySelector(".titles"), this.settings.lang);
    this.onStatus({ status: Status.CONNECTING, reconnectAttempts: 0 });
    this.client.connect();
    this.loadInfo();
    this.loadAlerts();
    setInterval(() => this.loadAlerts(), ALERTS_RELOAD_MS);
    setInterval(() => this.checkFreshness(), 1000);
  }

  showStaticText() {
    document.documentElement.lang = this.text.locale.split("-")[0];
    for (const el of document.querySelectorAll("[data-text]")) el.textContent = this.text[el.dataset.text];
    document.title = this.text.title;
    byId("history-link").href = `static/history.html?lang=${this.settings.lang}`;
  }

  // messages ----------------------------------------------------------------------------

  onMessage(message) {
    const channel = kindOf(message.channel);
    if (channel === "sensors" && (message.type === "sensor_update" || message.type === "refresh")) {
      this.onReadings(message);
    } else if (channel === "alerts") {
      this.onAlertNews(message);
    }
  }

  onReadings(message) {
    this.lastSensorAt = Date.now();
    const at = Date.parse(message.timestamp);
    const turned = this.tiles.update(message.data, Number.isFinite(at) ? at : this.lastSensorAt);
    byId("updated").textContent = this.text.updatedAt(this.format.time(this.lastSensorAt));
    if (turned || this.lastSensorAt - this.qualityAt >= QUALITY_EVERY_MS) this.loadQualities();
  }

  onAlertNews(message) {
    if (message.type === "dismissed") {
      this.alerts.remove(message.alert_id);
    } else if (message.type === "shelved" || message.type === "unshelved") {
      this.shelves?.refresh();
    } else if (["initial", "update", "refresh"].includes(message.type)) {
      this.alerts.setCounts(message.data);
      this.updateTitle();
      if (message.type !== "refresh") this.loadAlerts();
    }
  }

  onStatus({ status, reconnectAttempts }) {
    const el = byId("connection");
    el.dataset.state = status;
    el.textContent = status === Status.RECONNECTING
      ? this.text.reconnecting(reconnectAttempts)
      : this.text[status] ?? status;
    if (status === Status.CONNECTED || status === Status.POLLING) {
      this.loadHistories(); // fill the trend over the time we were away
    }
  }

  onError(error) {
    if (error.kind === "auth") this.showAuthFailed();
  }

  showAuthFailed() {
    this.authFailed = true;
    byId("notice").textContent = this.text.authFailed;
  }

  /** Numbers older than a few sensor intervals are not shown as current. */
  checkFreshness() {
    const limit = Math.max(3 * this.sensorIntervalMs, 10000);
    this.tiles.setStale(this.lastSensorAt > 0 && Date.now() - this.lastSensorAt > limit);
  }

  updateTitle() {
    if (this.reservoir) document.title = this.text.pageTitle(this.alerts.counts.total, this.reservoir);
  }

  // REST ----------------------------------------------------------------------------------

  async loadInfo() {
    try {
      const info = await this.api("api/info");
      this.reservoir = info.reservoir_id;
      this.sensorIntervalMs = (info.sensor_interval ?? 10) * 1000;
      byId("reservoir").textContent = this.text.reservoir(info.reservoir_id);
      Object.assign(DECIMALS, info.decimals ?? {});
      this.tiles.setInfo(info);
      this.alerts.units = { ...UNITS, ...info.units };
      this.updateTitle();
    } catch {
      setTimeout(() => this.loadInfo(), INFO_RETRY_MS);
    }
  }

  async loadAlerts() {
    if (this.loadingAlerts) {
      this.alertsAgain = true; // news came while a load was under way: load once more
      return;
    }
    this.loadingAlerts = true;
    try {
      this.alerts.setAlerts(await this.api("api/alerts"));
    } catch {
      // the next update, or the periodic reload, tries again
    } finally {
      this.loadingAlerts = false;
      if (this.alertsAgain) {
        this.alertsAgain = false;
        this.loadAlerts();
      }
    }
  }

  async loadHistories() {
    const since = Math.floor(Date.now() / 1000) - HOUR_S;
    await Promise.all(MEASUREMENTS.map(async (measurement) => {
      try {
        const rows = await this.api(`api/sensors/history?measurement=${measurement}&since=${since}&limit=10000`);
        this.tiles.loadHistory(measurement, rows);
      } catch {
        // no trend until the next (re)connection; the live readings still draw
      }
    }));
  }

  async loadQualities() {
    this.qualityAt = Date.now();
    try {
      const health = await this.api("healthz");
      if (health.sensors) this.tiles.setQualities(health.sensors);
    } catch {
      // quality details are a bonus: values and offline states come with the readings
    }
  }

  async dismiss(alertId) {
    try {
      await this.api("alerts/dismiss", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ alert_id: alertId }),
      });
      this.alerts.remove(alertId);
      byId("notice").textContent = "";
    } catch (error) {
      if (error.status !== 404) byId("notice").textContent = this.text.dismissFailed(alertId);
      this.loadAlerts();
    }
  }

  /** A JSON call to the gateway, with the token; throws on any status but 2xx. */
  async api(path, init = {}) {
    const headers = { Accept: "application/json", ...init.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const url = withSite(new URL(path, document.baseURI), SITE);
    const response = await fetch(url, { ...init, headers, cache: "no-store" });
    if (response.status === 401) this.showAuthFailed();
    if (!response.ok) throw Object.assign(new Error(`${path}: HTTP ${response.status}`), { status: response.status });
    return response.json();
  }
}

function byId(id) {
  return document.getElementById(id);
}

async function main() {
  const settings = readSettings(window.location.search);
  const token = takeToken();
  const text = await loadLanguage(settings.lang);
  const dashboard = new Dashboard(text, settings, token);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  dashboard.tiles.onCalibrate = mountCalibration(document.body, { text, headers });
  dashboard.start();
  mountNotifyView(byId("notify"), { lang: text.locale.split("-")[0], headers });
  dashboard.shelves = mountShelveView(byId("shelves"), {
    lang: text.locale.split("-")[0], headers, watch: [byId("alerts"), byId("tiles")],
  });
}

main();
