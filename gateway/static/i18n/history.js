/**
 * The strings of the history page (static/history.html) in each language; the
 * names of measurements, severities and the locale come from `<lang>.js`.
 * @module i18n/history
 */
export default {
  es: {
    title: "Historial",
    back: "Volver al panel",
    history: "Historial de lecturas",
    measurement: "Medida",
    range: "Periodo",
    ranges: { "24h": "24 h", "7d": "7 días", "30d": "30 días" },
    chart: (name, range) => `${name}: mínimo, media y máximo, ${range}`,
    summary: (min, max, n) => `mín. ${min} · máx. ${max} · ${n} lecturas`,
    empty: "Sin lecturas en este periodo",
    failed: "No se pudo cargar el historial",
    legendBand: "mín.–máx.",
    legendAvg: "media",
    csv: "Descargar CSV",
    log: "Registro de alertas",
    all: "Todas",
    severity: "Gravedad",
    event: "Evento",
    events: {
      raised: "activada", escalated: "agravada", deescalated: "atenuada", dismissed: "descartada",
      cleared: "resuelta", shelved: "archivada", unshelved: "desarchivada",
    },
    columns: {
      at: "Hora", event: "Evento", measurement: "Medida", severity: "Gravedad",
      value: "Valor", by: "Quién", alert: "Alerta",
    },
    noEvents: "Ningún evento con estos filtros",
    shown: (n) => `${n} eventos`,
  },
  en: {
    title: "History",
    back: "Back to the dashboard",
    history: "Readings history",
    measurement: "Measurement",
    range: "Period",
    ranges: { "24h": "24 h", "7d": "7 days", "30d": "30 days" },
    chart: (name, range) => `${name}: minimum, average and maximum, ${range}`,
    summary: (min, max, n) => `min ${min} · max ${max} · ${n} readings`,
    empty: "No readings in this period",
    failed: "The history could not be loaded",
    legendBand: "min–max",
    legendAvg: "average",
    csv: "Download CSV",
    log: "Alert log",
    all: "All",
    severity: "Severity",
    event: "Event",
    events: {
      raised: "raised", escalated: "escalated", deescalated: "de-escalated", dismissed: "dismissed",
      cleared: "cleared", shelved: "shelved", unshelved: "unshelved",
    },
    columns: {
      at: "Time", event: "Event", measurement: "Measurement", severity: "Severity",
      value: "Value", by: "By", alert: "Alert",
    },
    noEvents: "No events with these filters",
    shown: (n) => `${n} events`,
  },
};
