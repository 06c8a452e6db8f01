/**
 * One site's dashboard reached from the overview (`/site?reservoir=<id>`): which site,
 * how its socket and REST calls name it, and the way back.
 *
 * @module site-context
 */

import { overviewText } from "./overview-text.js";

const RESERVOIR = /^[A-Za-z0-9_-]{1,64}$/;

/** The `?reservoir=` of the page ("" without one, or a malformed one). */
export function siteOf(search) {
  const id = new URLSearchParams(search).get("reservoir") ?? "";
  return RESERVOIR.test(id) ? id : "";
}

/** `url` with `?reservoir=<site>` when there is a site. */
export function withSite(url, site) {
  const resolved = new URL(url);
  if (site) resolved.searchParams.set("reservoir", site);
  return resolved;
}

/** A channel's kind: a relay names `alerts` as `alerts:<reservoir_id>`. */
export function kindOf(channel) {
  return typeof channel === "string" ? channel.split(":")[0] : null;
}

/** On `/site`: a link back to the overview, first in `container`. */
export function mountBackLink(container, lang, location = window.location) {
  if (!/\/site\/?$/.test(location.pathname)) return null;
  const text = overviewText(lang);
  const link = document.createElement("a");
  link.className = "back-link";
  link.href = `overview${location.search.includes("lang=") ? `?lang=${new URLSearchParams(location.search).get("lang")}` : ""}`;
  link.textContent = `← ${text.backToOverview}`;
  link.id = "back-to-overview";
  container.prepend(link);
  return link;
}
