/**
 * Each [[notify]] target's state (ok / failing, queued, last success, last
 * error), from GET /api/notify, refreshed every `every` ms. Plain DOM, no
 * dependency: mount it anywhere.
 *
 *   import { mountNotifyView } from "./notify-view.js";
 *   mountNotifyView(document.querySelector("#notify"), { lang: "es" });
 *
 * @module notify-view
 */

const TEXT = {
  es: {
    title: "Notificaciones", none: "Sin destinos configurados", ok: "correcto",
    failing: "fallando", queued: "en cola", lastSuccess: "último envío", lastError: "último error",
    never: "nunca", unreachable: "estado no disponible",
  },
  en: {
    title: "Notifications", none: "No targets configured", ok: "ok",
    failing: "failing", queued: "queued", lastSuccess: "last sent", lastError: "last error",
    never: "never", unreachable: "state unavailable",
  },
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Render one answer of GET /api/notify into `container` (replacing what was there).
 * @param {HTMLElement} container
 * @param {{targets: Array<object>}|null} status null: the endpoint did not answer
 * @param {string} lang "es" or "en"
 */
export function renderNotify(container, status, lang = "es") {
  const t = TEXT[lang] || TEXT.es;
  const box = el("section", "notify-view");
  box.append(el("h2", "notify-title", t.title));
  if (status === null) {
    box.append(el("p", "notify-empty", t.unreachable));
  } else if (status.targets.length === 0) {
    box.append(el("p", "notify-empty", t.none));
  }
  const list = el("ul", "notify-targets");
  for (const target of status ? status.targets : []) {
    const item = el("li", "notify-target");
    item.dataset.state = target.state;
    item.append(
      el("span", "notify-name", target.name),
      el("span", "notify-state", t[target.state] || target.state),
      el("span", "notify-queued", `${t.queued}: ${target.queued}`),
      el("span", "notify-success", `${t.lastSuccess}: ${target.last_success || t.never}`),
    );
    if (target.last_error) {
      item.append(el("span", "notify-error", `${t.lastError}: ${target.last_error}`));
    }
    list.append(item);
  }
  box.append(list);
  container.replaceChildren(box);
}

/**
 * Poll GET /api/notify and keep `container` up to date. Returns a function that stops it.
 * @param {HTMLElement} container
 * @param {{lang?: string, every?: number, headers?: object, base?: string}} options
 *   `base`: the URL `api/notify` is resolved against (default: the page's).
 */
export function mountNotifyView(container, options = {}) {
  const { lang = "es", every = 30000, headers = {}, base = document.baseURI } = options;
  let timer = null;
  let stopped = false;
  async function refresh() {
    let status = null;
    try {
      // Relative to the page, so a dashboard served under a path prefix still finds it.
      const response = await fetch(new URL("api/notify", base), { headers, cache: "no-store" });
      if (response.ok) status = await response.json();
    } catch {
      status = null;
    }
    if (stopped) return;
    // No targets configured: nothing to watch, so the panel stays out of the way.
    container.hidden = status !== null && status.targets.length === 0;
    renderNotify(container, status, lang);
    timer = setTimeout(refresh, every);
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
