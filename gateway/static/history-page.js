/**
 * The history page (static/history.html): the readings history of one
 * measurement (history-view.js) and the alert log (alert-log.js), in the
 * language of `?lang=` (es by default, like the dashboard). The token is the
 * one the dashboard kept in this tab (sessionStorage), or `#token=...`.
 * `?measurement=ph&range=7d` choose what the history shows first.
 *
 * @module history-page
 */

import { AlertLog } from "./alert-log.js";
import { formatters } from "./format.js";
import { HistoryView } from "./history-view.js";
import pageText from "./i18n/history.js";

const TOKEN_KEY = "sensor-gateway.token";

function language(search) {
  const lang = new URLSearchParams(search).get("lang") ?? "";
  return /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/.test(lang) ? lang : "es";
}

async function loadLanguage(lang) {
  try {
    return (await import(`./i18n/${lang}.js`)).default;
  } catch {
    return (await import("./i18n/es.js")).default;
  }
}

function takeToken() {
  let storage = null;
  try {
    storage = window.sessionStorage;
  } catch {
    // storage disabled: a #token= lives as long as the page
  }
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token") ?? storage?.getItem(TOKEN_KEY) ?? "";
  if (fragment.has("token")) {
    if (token) storage?.setItem(TOKEN_KEY, token);
    history.replaceState(history.state, "", `${location.pathname}${location.search}`);
  }
  return token;
}

function client(token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const api = async (path) => {
    const response = await fetch(new URL(path, document.baseURI), {
      headers: { Accept: "application/json", ...headers }, cache: "no-store",
    });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  };
  /** A CSV link: with a token, fetched with it and saved from memory (a link cannot send it). */
  const download = async (link, event) => {
    if (!token) return;
    event.preventDefault();
    const response = await fetch(link.href, { headers: { Accept: "text/csv", ...headers } });
    if (!response.ok) return;
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1];
    const saver = document.createElement("a");
    saver.href = URL.createObjectURL(await response.blob());
    saver.download = name ?? "history.csv";
    saver.click();
    setTimeout(() => URL.revokeObjectURL(saver.href), 1000);
  };
  return { api, download };
}

async function main() {
  const lang = language(location.search);
  const text = await loadLanguage(lang);
  const ui = pageText[lang] ?? pageText[text.locale.split("-")[0]] ?? pageText.es;
  document.documentElement.lang = text.locale.split("-")[0];
  document.title = ui.title;
  document.getElementById("title").textContent = ui.title;
  const back = document.getElementById("back");
  back.textContent = ui.back;
  back.href = `./?lang=${lang}`; // from <base href="../">: the dashboard
  const deps = { text, ui, format: formatters(text.locale), ...client(takeToken()) };
  const view = new HistoryView(document.getElementById("history"), deps);
  const log = new AlertLog(document.getElementById("alert-log"), deps);
  log.load();
  for (;;) {
    try {
      const info = await deps.api("api/info");
      document.getElementById("reservoir").textContent = text.reservoir(info.reservoir_id);
      const labels = Object.fromEntries(info.measurements.map(
        (m) => [m, info.labels?.[m] ?? text.measurements[m] ?? m],
      ));
      const query = new URLSearchParams(location.search);
      view.setMeasurements(labels, query.get("measurement"), query.get("range"));
      log.setMeasurements(labels);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }
}

main();
