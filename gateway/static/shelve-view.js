/**
 * Shelving (ISA-18.2): silence a measurement's alerts for a bounded time, for a
 * reason, and see who shelved what and for how long. Plain DOM, no dependency.
 *
 *   import { mountShelveView } from "./shelve-view.js";
 *   const shelves = mountShelveView(document.querySelector("#shelves"), {
 *     lang: "es", headers, watch: [document.querySelector("#alerts"), tilesEl],
 *   });
 *   shelves.refresh();   // on a `shelved` / `unshelved` message
 *
 * Every `li.alert` and `.tile` with a `data-measurement` under a `watch` element
 * gets a "Shelve" button that opens the form for that measurement.
 * Calls: GET /api/info, GET /api/alerts/shelved, POST /api/alerts/shelve,
 * DELETE /api/alerts/shelve/{measurement}.
 *
 * @module shelve-view
 */

const PRESETS = [30, 60, 120, 480];
const TEXT = {
  es: {
    title: "Alarmas en espera", none: "Ninguna medida en espera", shelve: "Poner en espera",
    shelveOne: (name) => `Poner en espera las alarmas de ${name}`, unshelve: "Reactivar",
    measurement: "Medida", minutes: "Minutos", reason: "Motivo", cancel: "Cancelar",
    reasonHint: "p. ej. limpieza de la sonda", left: (t) => `quedan ${t}`,
    by: (who) => `por ${who}`, failed: (detail) => `No se pudo: ${detail}`,
    measurements: { temperature: "Temperatura", ph: "pH", conductivity: "Conductividad", water_level: "Nivel" },
  },
  en: {
    title: "Shelved alarms", none: "No measurement shelved", shelve: "Shelve",
    shelveOne: (name) => `Shelve the alarms of ${name}`, unshelve: "Unshelve",
    measurement: "Measurement", minutes: "Minutes", reason: "Reason", cancel: "Cancel",
    reasonHint: "e.g. cleaning the probe", left: (t) => `${t} left`,
    by: (who) => `by ${who}`, failed: (detail) => `Could not: ${detail}`,
    measurements: { temperature: "Temperature", ph: "pH", conductivity: "Conductivity", water_level: "Level" },
  },
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "1 h 05 min", "4 min 10 s", "12 s". */
export function timeLeft(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

class ShelveView {
  constructor(container, { lang = "es", headers = {}, base = document.baseURI, watch = [], every = 15000 }) {
    this.t = TEXT[lang] || TEXT.es;
    this.headers = headers;
    this.base = base;
    this.every = every;
    this.shelves = [];
    this.fetchedAt = 0;
    this.measurements = [];
    this.box = el("section", "shelve-view");
    this.box.append(el("h2", "shelve-title", this.t.title));
    this.form = this._form();
    this.error = el("p", "shelve-error");
    this.error.setAttribute("role", "alert");
    this.list = el("ul", "shelve-list");
    this.empty = el("p", "shelve-empty", this.t.none);
    this.box.append(this.form, this.error, this.list, this.empty);
    container.replaceChildren(this.box);
    for (const root of watch.filter(Boolean)) this._watch(root);
    this.ticker = setInterval(() => this._render(), 1000);
  }

  _name(measurement) {
    return this.t.measurements[measurement] ?? measurement;
  }

  _form() {
    const form = el("form", "shelve-form");
    form.hidden = true;
    this.select = el("select", "shelve-measurement");
    this.select.setAttribute("aria-label", this.t.measurement);
    this.minutes = el("select", "shelve-minutes");
    this.minutes.setAttribute("aria-label", this.t.minutes);
    for (const preset of PRESETS) {
      const option = el("option", "", timeLeft(preset * 60).replace(/ 0?0 s$/, ""));
      option.value = String(preset);
      this.minutes.append(option);
    }
    this.reason = el("input", "shelve-reason");
    Object.assign(this.reason, { type: "text", required: true, maxLength: 200, placeholder: this.t.reasonHint });
    this.reason.setAttribute("aria-label", this.t.reason);
    const submit = el("button", "shelve-submit", this.t.shelve);
    submit.type = "submit";
    const cancel = el("button", "shelve-cancel", this.t.cancel);
    cancel.type = "button";
    cancel.addEventListener("click", () => { form.hidden = true; });
    form.append(this.select, this.minutes, this.reason, submit, cancel);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.shelve(this.select.value, Number(this.minutes.value), this.reason.value);
    });
    return form;
  }

  /** Open the form, for `measurement` if given. */
  open(measurement) {
    const names = [...new Set([...this.measurements, ...(measurement ? [measurement] : [])])];
    this.select.replaceChildren(...names.map((m) => Object.assign(el("option", "", this._name(m)), { value: m })));
    if (measurement) this.select.value = measurement;
    this.form.hidden = false;
    this.reason.focus();
  }

  /** Add a "Shelve" button to each alert or tile under `root`, now and as they come. */
  _watch(root) {
    const decorate = () => {
      for (const item of root.querySelectorAll("li.alert[data-measurement], .tile[data-measurement]")) {
        if (item.querySelector(":scope > .shelve-open")) continue;
        const button = el("button", "shelve-open", this.t.shelve);
        button.type = "button";
        button.setAttribute("aria-label", this.t.shelveOne(this._name(item.dataset.measurement)));
        button.addEventListener("click", () => this.open(item.dataset.measurement));
        item.append(button);
      }
    };
    new MutationObserver(decorate).observe(root, { childList: true, subtree: true });
    decorate();
  }

  async _call(path, init = {}) {
    const headers = { Accept: "application/json", ...this.headers, ...init.headers };
    const response = await fetch(new URL(path, this.base), { ...init, headers, cache: "no-store" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail ?? `HTTP ${response.status}`);
    return body;
  }

  async loadInfo() {
    try {
      this.measurements = (await this._call("api/info")).measurements ?? [];
    } catch {
      this.measurements = [];
    }
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      this.shelves = await this._call("api/alerts/shelved");
      this.fetchedAt = Date.now();
      this._render();
    } catch {
      // the next refresh tries again
    }
    this.timer = setTimeout(() => this.refresh(), this.every);
  }

  async shelve(measurement, minutes, reason) {
    this.error.textContent = "";
    try {
      await this._call("api/alerts/shelve", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ measurement, minutes, reason }),
      });
      this.form.hidden = true;
      this.reason.value = "";
    } catch (error) {
      this.error.textContent = this.t.failed(error.message);
    }
    await this.refresh();
  }

  async unshelve(measurement) {
    this.error.textContent = "";
    try {
      await this._call(`api/alerts/shelve/${encodeURIComponent(measurement)}`, { method: "DELETE" });
    } catch (error) {
      this.error.textContent = this.t.failed(error.message);
    }
    await this.refresh();
  }

  _render() {
    const elapsed = (Date.now() - this.fetchedAt) / 1000;
    const items = this.shelves.map((shelf) => {
      const item = el("li", "shelve-item");
      item.dataset.measurement = shelf.measurement;
      const button = el("button", "shelve-unshelve", this.t.unshelve);
      button.type = "button";
      button.addEventListener("click", () => this.unshelve(shelf.measurement));
      item.append(
        el("strong", "shelve-name", this._name(shelf.measurement)),
        el("span", "shelve-left", this.t.left(timeLeft(shelf.seconds_left - elapsed))),
        el("span", "shelve-by", this.t.by(shelf.by)),
        el("span", "shelve-reason-text", shelf.reason),
        button,
      );
      return item;
    });
    this.list.replaceChildren(...items);
    this.empty.hidden = items.length > 0;
  }
}

/**
 * Mount the shelving view in `container`; returns it (`refresh()`, `open(measurement)`).
 * @param {HTMLElement} container
 * @param {{lang?: string, headers?: object, base?: string, watch?: HTMLElement[], every?: number}} options
 */
export function mountShelveView(container, options = {}) {
  const view = new ShelveView(container, options);
  view.loadInfo();
  view.refresh();
  return view;
}
