/**
 * The overview's strings, in Spanish (the default) and English (`?lang=en`). Kept
 * apart from static/i18n/ (the single-site dashboard's) so the two can change apart.
 *
 * @module overview-text
 */

const TEXT = {
  es: {
    locale: "es-ES",
    title: "Vista general de embalses",
    sites: "Embalses",
    alertsAcross: "Alertas activas de todos los embalses",
    allSites: "Todos los embalses",
    allSeverities: "Todas las severidades",
    noSites: "Aún no se ha oído ningún embalse.",
    noAlerts: "Sin alertas activas.",
    status: { online: "En línea", offline: "Fuera de línea", unknown: "Desconocido" },
    offlineSince: (time) => `Fuera de línea desde ${time}`,
    severity: { critical: "Crítica", warning: "Advertencia", info: "Aviso" },
    counts: { critical: "críticas", warning: "advertencias", info: "avisos" },
    lastReading: (age) => `Última lectura hace ${age}`,
    noReading: "Sin lecturas",
    measurements: { temperature: "Temp.", ph: "pH", conductivity: "Cond.", water_level: "Nivel" },
    open: (site) => `Abrir ${site}`,
    dismiss: "Descartar",
    dismissFailed: (id) => `No se pudo descartar ${id}; inténtelo de nuevo.`,
    sound: "Sonido ante una alerta crítica nueva",
    newCritical: (site) => `¡Nueva alerta crítica en ${site}!`,
    pageTitle: (critical) => (critical ? `(${critical}) ⚠ Vista general` : "Vista general"),
    backToOverview: "Vista general",
    connection: { connected: "Conectado", reconnecting: "Reconectando...", offline: "Sin conexión" },
  },
  en: {
    locale: "en-GB",
    title: "Reservoirs overview",
    sites: "Reservoirs",
    alertsAcross: "Active alerts across all reservoirs",
    allSites: "All reservoirs",
    allSeverities: "All severities",
    noSites: "No reservoir heard yet.",
    noAlerts: "No active alerts.",
    status: { online: "Online", offline: "Offline", unknown: "Unknown" },
    offlineSince: (time) => `Offline since ${time}`,
    severity: { critical: "Critical", warning: "Warning", info: "Info" },
    counts: { critical: "critical", warning: "warning", info: "info" },
    lastReading: (age) => `Last reading ${age} ago`,
    noReading: "No readings",
    measurements: { temperature: "Temp.", ph: "pH", conductivity: "Cond.", water_level: "Level" },
    open: (site) => `Open ${site}`,
    dismiss: "Dismiss",
    dismissFailed: (id) => `Could not dismiss ${id}; try again.`,
    sound: "Sound on a new critical alert",
    newCritical: (site) => `New critical alert at ${site}!`,
    pageTitle: (critical) => (critical ? `(${critical}) ⚠ Overview` : "Overview"),
    backToOverview: "Overview",
    connection: { connected: "Connected", reconnecting: "Reconnecting...", offline: "Offline" },
  },
};

/** The table for `lang` (`es` when there is none for it). */
export function overviewText(lang) {
  return TEXT[String(lang ?? "").split("-")[0]] ?? TEXT.es;
}
