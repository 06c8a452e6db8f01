/**
 * The overview of every site (a relay's `/`, a gateway's `/overview`): one card per
 * reservoir, worst first, live over one WebSocket (`/ws`: the `sites` channel and
 * each site's `sensors:<reservoir_id>`), and the active alerts of every site.
 *
 * Query parameters: `lang` (`es`, `en`). A token comes in `#token=...` as for the
 * dashboard. The sound on a new critical is a setting kept in localStorage.
 *
 * @module overview
 */

import { element } from "./dom.js";
import { formatters } from "./format.js";
import { GatewayClient, Status } from "./gateway-client.js";
import { overviewText } from "./overview-text.js";
import { kindOf } from "./site-context.js";

const MEASUREMENTS = ["temperature", "ph", "conductivity", "water_level"];
const UNITS = { temperature: "°C", ph: "", conductivity: "µS/cm", water_level: "m" };
const SEVERITIES = ["critical", "warning", "info"];
const TOKEN_KEY = "sensor-gateway.token";
export const SOUND_KEY = "sensor-gateway.overview.sound";
const ALERTS_RELOAD_MS = 30000;
/** A last reading older than this shows as old (several sensor intervals). */
const OLD_READING_MS = 60000;
const IDLE_TIMEOUT_MS = 65000;

/** Where a site sorts: critical, then warning, then offline, then the rest. */
export function rankOf(site) {
  if ((site.summary?.critical ?? 0) > 0) return "critical";
  if ((site.summary?.warning ?? 0) > 0) return "warning";
  if (site.status === "offline") return "offline";
  return "ok";
}

const ORDER = { critical: 0, warning: 1, offline: 2, ok: 3 };

/** `[[id, site], ...]` worst first; within a rank, more criticals/warnings first, then by id. */
export function sortSites(entries) {
  return [...entries].sort(([a, x], [b, y]) => (
    ORDER[rankOf(x)] - ORDER[rankOf(y)]
    || (y.summary?.critical ?? 0) - (x.summary?.critical ?? 0)
    || (y.summary?.warning ?? 0) - (x.summary?.warning ?? 0)
    || a.localeCompare(b)
  ));
}

/** `75000` -> `1 min 15 s`; `3 h 2 min` past an hour. */
export function formatAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** The alerts of `site` ("" for all) and `severity` ("" for all), newest first. */
export function filterAlerts(alerts, { site = "", severity = "" } = {}) {
  return alerts
    .filter((a) => (!site || a.reservoir_id === site) && (!severity || a.severity === severity))
    .sort((a, b) => String(b.raised_at).localeCompare(String(a.raised_at)));
}

/** A short two-tone beep through WebAudio (no sound file needed). */
export function beep(AudioContextClass = globalThis.AudioContext ?? globalThis.webkitAudioContext) {
  if (!AudioContextClass) return false;
  const context = new AudioContextClass();
  const gain = context.createGain();
  gain.gain.value = 0.2;
  gain.connect(context.destination);
  [880, 660].forEach((frequency, index) => {
    const tone = context.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start(context.currentTime + index * 0.25);
    tone.stop(context.currentTime + index * 0.25 + 0.2);
  });
  setTimeout(() => context.close(), 1000);
  return true;
}

function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  try {
    if (fragment.has("token")) {
      sessionStorage.setItem(TOKEN_KEY, fragment.get("token") ?? "");
      history.replaceState(history.state, "", `${location.pathname}${location.search}`);
    }
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return fragment.get("token") ?? "";
  }
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function byId(id) {
  return document.getElementById(id);
}

/** The page: the cards, the alert list, the client. */
class Overview {
  constructor(text, lang, token) {
    this.text = text;
    this.lang = lang;
    this.token = token;
    this.format = formatters(text.locale);
    /** id -> {status, offline_since, summary, last_reading_at, readings, readingAt} */
    this.sites = new Map();
    /** Sites whose critical count went up since the page opened (until clicked). */
    this.fresh = new Set();
    this.heard = false; // the first sites message: its criticals are not "new"
    this.alerts = [];
    this.client = new GatewayClient({
      url: new URL("ws", document.baseURI),
      channels: ["sites"],
      token,
      idleTimeout: IDLE_TIMEOUT_MS,
      poll: false,
      onMessage: (message) => this.onMessage(message),
      onStatus: (change) => this.onStatus(change),
    });
  }

  start() {
    document.documentElement.lang = this.lang;
    for (const el of document.querySelectorAll("[data-text]")) el.textContent = this.text[el.dataset.text];
    this.setUpSound();
    this.setUpFilters();
    this.render();
    this.client.connect();
    this.loadAlerts();
    setInterval(() => this.loadAlerts(), ALERTS_RELOAD_MS);
    setInterval(() => this.showAges(), 1000);
  }

  // messages ----------------------------------------------------------------------------

  onMessage(message) {
    const kind = kindOf(message.channel);
    if (kind === "sites" && (message.type === "sites" || message.type === "refresh")) {
      this.onSites(message.data ?? {});
    } else if (kind === "sensors" && (message.type === "sensor_update" || message.type === "refresh")) {
      const id = message.data?.reservoir_id ?? message.channel.split(":")[1];
      const site = this.sites.get(id);
      if (!site) return;
      site.readings = message.data;
      site.readingAt = message.timestamp;
      this.render();
    }
  }

  onSites(data) {
    let countsChanged = false;
    for (const [id, news] of Object.entries(data)) {
      const site = this.sites.get(id) ?? { readings: null, readingAt: null };
      const before = site.summary;
      if (this.heard && (news.summary?.critical ?? 0) > (before?.critical ?? 0)) this.newCritical(id);
      if (JSON.stringify(before) !== JSON.stringify(news.summary)) countsChanged = true;
      Object.assign(site, news);
      if (!this.sites.has(id)) {
        this.sites.set(id, site);
        this.client.subscribe(`sensors:${id}`);
      }
    }
    this.heard = true;
    this.render();
    if (countsChanged) this.loadAlerts();
  }

  newCritical(id) {
    this.fresh.add(id);
    byId("notice").textContent = this.text.newCritical(id);
    if (byId("sound").checked) beep();
  }

  onStatus({ status }) {
    const el = byId("connection");
    el.dataset.state = status;
    const states = this.text.connection;
    el.textContent = status === Status.CONNECTED ? states.connected
      : status === Status.RECONNECTING || status === Status.CONNECTING ? states.reconnecting
        : states.offline;
  }

  // the cards ---------------------------------------------------------------------------

  render() {
    const list = byId("sites");
    const cards = sortSites(this.sites.entries()).map(([id, site]) => this.card(id, site));
    list.replaceChildren(...cards);
    byId("no-sites").hidden = cards.length > 0;
    const critical = [...this.sites.values()].reduce((n, s) => n + (s.summary?.critical ?? 0), 0);
    document.title = this.text.pageTitle(critical);
    this.fillSiteFilter();
  }

  card(id, site) {
    const card = element("li", "site-card");
    card.dataset.site = id;
    card.dataset.rank = rankOf(site);
    card.classList.toggle("new-critical", this.fresh.has(id) && rankOf(site) === "critical");
    card.addEventListener("click", () => {
      this.fresh.delete(id); // acknowledged: it stops flashing
      card.classList.remove("new-critical");
    });
    const head = element("div", "site-head");
    const name = element("a", "site-name", id);
    name.href = `site?reservoir=${encodeURIComponent(id)}${this.lang === "es" ? "" : `&lang=${this.lang}`}`;
    name.title = this.text.open(id);
    const status = element("span", "site-status", this.statusText(site));
    status.dataset.status = site.status ?? "unknown";
    head.append(name, status);
    const counts = element("div", "site-counts");
    for (const severity of SEVERITIES) {
      const value = site.summary?.[severity] ?? 0;
      const count = element("span", "site-count", `${value} ${this.text.counts[severity]}`);
      count.dataset.severity = severity;
      count.classList.toggle("nonzero", value > 0);
      counts.append(count);
    }
    const values = element("dl", "site-values");
    for (const measurement of MEASUREMENTS) {
      const value = site.readings?.[measurement];
      const shown = typeof value === "number"
        ? `${this.format.number(value, measurement)}${UNITS[measurement] ? ` ${UNITS[measurement]}` : ""}`
        : "—";
      const pair = element("div", "site-value");
      pair.dataset.measurement = measurement;
      pair.append(element("dt", "", this.text.measurements[measurement]), element("dd", "", shown));
      values.append(pair);
    }
    const age = element("p", "site-age");
    card.append(head, counts, values, age);
    this.showAge(card, site);
    return card;
  }

  statusText(site) {
    if (site.status === "offline" && site.offline_since) {
      return this.text.offlineSince(this.format.time(site.offline_since));
    }
    return this.text.status[site.status] ?? site.status;
  }

  /** The newest of the `sites` message's reading time and the sensors channel's. */
  lastReading(site) {
    const times = [site.last_reading_at, site.readingAt].filter(Boolean).map(Date.parse);
    return times.length ? Math.max(...times) : null;
  }

  showAge(card, site) {
    const at = this.lastReading(site);
    const el = card.querySelector(".site-age");
    el.textContent = at === null ? this.text.noReading : this.text.lastReading(formatAge(Date.now() - at));
    el.classList.toggle("old", at !== null && Date.now() - at > OLD_READING_MS);
  }

  showAges() {
    for (const card of byId("sites").children) {
      const site = this.sites.get(card.dataset.site);
      if (site) this.showAge(card, site);
    }
  }

  // the alerts of every site ------------------------------------------------------------

  setUpFilters() {
    const severity = byId("filter-severity");
    severity.append(new Option(this.text.allSeverities, ""));
    for (const s of SEVERITIES) severity.append(new Option(this.text.severity[s], s));
    for (const select of [severity, byId("filter-site")]) {
      select.addEventListener("change", () => this.showAlerts());
    }
  }

  fillSiteFilter() {
    const select = byId("filter-site");
    const ids = [...this.sites.keys()].sort();
    if (select.options.length === ids.length + 1) return;
    const chosen = select.value;
    select.replaceChildren(new Option(this.text.allSites, ""), ...ids.map((id) => new Option(id, id)));
    select.value = ids.includes(chosen) ? chosen : "";
  }

  async loadAlerts() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      const alerts = await this.api("api/alerts");
      const only = this.sites.size === 1 ? [...this.sites.keys()][0] : "";
      this.alerts = alerts.map((a) => ({ reservoir_id: only, ...a })); // a gateway's: its own
      this.showAlerts();
    } catch {
      // the next change of counts, or the periodic reload, tries again
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        this.loadAlerts();
      }
    }
  }

  showAlerts() {
    const shown = filterAlerts(this.alerts, { site: byId("filter-site").value, severity: byId("filter-severity").value });
    byId("all-alerts").replaceChildren(...shown.map((alert) => this.alertItem(alert)));
    byId("no-all-alerts").hidden = shown.length > 0;
  }

  alertItem(alert) {
    const item = element("li", "alert");
    item.dataset.alertId = alert.id;
    item.dataset.severity = alert.severity;
    item.dataset.site = alert.reservoir_id;
    const body = element("div", "alert-body");
    const value = typeof alert.value === "number" ? this.format.number(alert.value, alert.measurement) : "—";
    const time = element("time", "alert-time", this.format.time(alert.raised_at));
    time.dateTime = alert.raised_at;
    body.append(
      element("span", "alert-site", alert.reservoir_id),
      element("strong", "alert-measurement", `${this.text.measurements[alert.measurement] ?? alert.measurement} ${value}`),
      time,
    );
    const button = element("button", "dismiss", this.text.dismiss);
    button.type = "button";
    button.addEventListener("click", () => this.dismiss(alert.id, button));
    item.append(element("span", "alert-severity", this.text.severity[alert.severity] ?? alert.severity), body, button);
    return item;
  }

  async dismiss(alertId, button) {
    button.disabled = true;
    try {
      await this.api("alerts/dismiss", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ alert_id: alertId }),
      });
      byId("notice").textContent = "";
    } catch (error) {
      if (error.status !== 404) byId("notice").textContent = this.text.dismissFailed(alertId);
    } finally {
      button.disabled = false;
      this.loadAlerts();
    }
  }

  // the sound setting -------------------------------------------------------------------

  setUpSound() {
    const box = byId("sound");
    box.checked = storage()?.getItem(SOUND_KEY) === "on";
    box.addEventListener("change", () => storage()?.setItem(SOUND_KEY, box.checked ? "on" : "off"));
  }

  async api(path, init = {}) {
    const headers = { Accept: "application/json", ...init.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(new URL(path, document.baseURI), { ...init, headers, cache: "no-store" });
    if (!response.ok) throw Object.assign(new Error(`${path}: HTTP ${response.status}`), { status: response.status });
    return response.json();
  }
}

function main() {
  const lang = new URLSearchParams(window.location.search).get("lang") === "en" ? "en" : "es";
  const overview = new Overview(overviewText(lang), lang, takeToken());
  overview.start();
}

if (typeof document !== "undefined" && document.getElementById("sites")) main();
