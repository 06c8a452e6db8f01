/**
 * Every string the dashboard shows, in Spanish. A language is one file like this
 * one (same keys), chosen with `?lang=<code>`; see docs/dashboard.md.
 */
export default {
  /** BCP 47 tag for numbers, times, and the page's `lang`. */
  locale: "es-ES",
  title: "Panel del embalse",
  reservoir: (id) => `Embalse ${id}`,

  // connection (the seed's texts)
  connecting: "Conectando...",
  connected: "Conectado",
  reconnecting: (attempt) => `Reconectando... (intento ${attempt})`,
  polling: "Conectado por consulta periódica (sin WebSocket)",
  offline: "Sin conexión con la pasarela",
  closed: "Desconectado",
  authFailed: "Acceso denegado: el token no es válido o ha caducado. Abra el panel con un enlace nuevo (#token=...).",
  updatedAt: (time) => `Última lectura: ${time}`,

  // readings
  readings: "Lecturas",
  measurements: {
    temperature: "Temperatura",
    ph: "pH",
    conductivity: "Conductividad",
    water_level: "Nivel del agua",
  },
  noData: "Sin datos",
  quality: {
    good: "En línea",
    offline: "Fuera de línea: sin lecturas válidas",
    stale: "Sin conexión: dato no actualizado",
    degraded: (quality) => `Última lectura fallida: ${quality}`,
    waiting: "Esperando la primera lectura",
  },
  qualityCodes: {
    timeout: "sin respuesta",
    crc: "error de CRC",
    garbage: "respuesta ilegible",
    exception: "excepción del equipo",
    device_error: "error del equipo",
    disconnected: "puerto desconectado",
  },
  level: {
    normal: "Normal",
    info: "Aviso",
    warning: "Advertencia",
    critical: "Crítico",
  },
  trend: (name) => `Tendencia de la última hora: ${name}`,
  trendRange: (min, max) => `Última hora: mín. ${min} · máx. ${max}`,
  trendEmpty: "Sin historial en la última hora",

  // alerts
  alertCounts: "Alertas por gravedad",
  counts: {
    total: "Total",
    critical: "Críticas",
    warning: "Advertencias",
    info: "Avisos",
  },
  severity: {
    critical: "Crítica",
    warning: "Advertencia",
    info: "Aviso",
  },
  activeAlerts: "Alertas activas",
  noAlerts: "No hay alertas activas",
  above: (value, bound) => `${value} por encima del límite ${bound}`,
  below: (value, bound) => `${value} por debajo del límite ${bound}`,
  sensorOffline: "El sensor no envía lecturas válidas",
  raisedAt: (time) => `desde las ${time}`,
  dismiss: "Descartar",
  dismissLabel: (id, name) => `Descartar la alerta ${id} (${name})`,
  dismissFailed: (id) => `No se pudo descartar la alerta ${id}. Inténtelo de nuevo.`,
  calibrationDue: "Calibración pendiente: la sonda debe calibrarse",

  // calibration (calibration-view.js)
  calibrate: "Calibrar",
  calibration: {
    title: (name) => `Calibración: ${name}`,
    loading: "Consultando el circuito...",
    unknown: "Estado de calibración desconocido",
    run: "Calibrar",
    close: "Cerrar",
    points: {
      mid: "Punto medio (pH 7)",
      low: "Punto bajo",
      high: "Punto alto",
      dry: "En seco",
      single: "Un punto",
      atm: "Al aire",
      zero: "Solución de cero",
      clear: "Borrar calibración",
    },
    valueOf: (point) => `Valor del patrón: ${point}`,
    pointCount: (n) => `${n} ${n === 1 ? "punto" : "puntos"}`,
    slope: (acid, base, offset) => `pendiente ácida ${acid} %, básica ${base} %, desplazamiento ${offset} mV`,
    done: (command, state) => `${command}: hecho. ${state}`,
    refused: (detail) => `El circuito rechazó la calibración: ${detail}`,
  },
  pageTitle: (active, reservoir) => `${active ? `(${active}) ` : ""}Embalse ${reservoir}`,
  historyLink: "Historial y registro de alertas",
};
