"""What a notification says, in Spanish (the default) or English: every title and body.

Call :func:`render` when a notification is queued: the text is stored as it was
then, so a message sent after an outage still tells of the moment it happened.
Times are UTC (ISO 8601, ``Z``), never the gateway's local time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from drivers.model import UNITS
from gateway.alerts.model import Alert
from gateway.config import Config
from gateway.timestamps import utc_timestamp

Language = Literal["es", "en"]
#: apprise's notify types: they pick the icon or colour where the service has one.
KINDS = {"critical": "failure", "warning": "warning", "info": "info"}

TITLES: Mapping[Language, Mapping[str, str]] = {
    "es": {
        "raised": "[{severity_word}] {reservoir}: {label} {value_text}",
        "escalated": "[{severity_word}] {reservoir}: {label} empeora, {value_text}",
        "deescalated": "[{severity_word}] {reservoir}: {label} mejora, {value_text}",
        "offline": "[{severity_word}] {reservoir}: {label} sin lecturas",
        "cleared": "[RESUELTA] {reservoir}: {label} {back}",
        "dismissed": "[DESCARTADA] {reservoir}: {label}",
        "reminder": "[RECORDATORIO] {reservoir}: {label} sigue en alerta {severity_lower}",
        "test": "Prueba de notificación de {reservoir}",
    },
    "en": {
        "raised": "[{severity_word}] {reservoir}: {label} {value_text}",
        "escalated": "[{severity_word}] {reservoir}: {label} worse, {value_text}",
        "deescalated": "[{severity_word}] {reservoir}: {label} better, {value_text}",
        "offline": "[{severity_word}] {reservoir}: {label} not reporting",
        "cleared": "[CLEARED] {reservoir}: {label} {back}",
        "dismissed": "[DISMISSED] {reservoir}: {label}",
        "reminder": "[REMINDER] {reservoir}: {label} still in {severity_lower} alert",
        "test": "Notification test from {reservoir}",
    },
}
WORDS: Mapping[Language, Mapping[str, str]] = {
    "es": {
        "critical": "CRÍTICA", "warning": "AVISO", "info": "INFO",
        "low": "por debajo de", "high": "por encima de",
        "back": "vuelve a la normalidad", "back_offline": "vuelve a informar",
        "no_value": "sin lectura",
        "severity": "Severidad", "value": "Valor", "bound": "Límite",
        "since": "Desde", "alert": "Alerta", "by": "Descartada por", "open": "Panel",
        "offline_detail": "No llega ninguna lectura válida de la sonda.",
        "test_body": "Si lee esto, {reservoir} puede avisarle por este medio.",
    },
    "en": {
        "critical": "CRITICAL", "warning": "WARNING", "info": "INFO",
        "low": "below", "high": "above",
        "back": "back to normal", "back_offline": "reporting again",
        "no_value": "no reading",
        "severity": "Severity", "value": "Value", "bound": "Bound",
        "since": "Since", "alert": "Alert", "by": "Dismissed by", "open": "Dashboard",
        "offline_detail": "No good reading arrives from the probe.",
        "test_body": "If you read this, {reservoir} can reach you this way.",
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Site:
    """What every message of one gateway shares."""

    reservoir: str
    language: Language = "es"
    public_url: str = ""  # empty: no link
    labels: Mapping[str, str] | None = None  # measurement -> label ([measurements.<m>] label)
    units: Mapping[str, str] | None = None  # measurement -> unit

    def label(self, measurement: str) -> str:
        return (self.labels or {}).get(measurement) or measurement

    def unit(self, measurement: str) -> str:
        return (self.units or {}).get(measurement, "")


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:g} {unit}".strip()


def render(site: Site, alert: Alert, event: str) -> tuple[str, str, str]:
    """(title, body, apprise notify type) for ``event`` on ``alert``: an engine event,
    "offline" (the raise of an offline alert) or "reminder"."""
    words = WORDS[site.language]
    unit = site.unit(alert.measurement)
    value = _number(alert.value, unit)
    offline = alert.kind == "offline"
    direction = words[alert.direction] if alert.direction else ""
    bound = _number(alert.bound, unit)
    fields = {
        "reservoir": site.reservoir,
        "label": site.label(alert.measurement),
        "severity_word": words[alert.severity],
        "severity_lower": words[alert.severity].lower(),
        "value_text": f"{value} ({direction} {bound})" if value and bound else value,
        "back": words["back_offline" if offline else "back"],
    }
    title = TITLES[site.language][event].format(**fields)
    lines = [f"{words['severity']}: {words[alert.severity]}"]
    if offline and event != "cleared":
        lines.append(words["offline_detail"])
    else:
        lines.append(f"{words['value']}: {value or words['no_value']}")
    if bound:
        lines.append(f"{words['bound']}: {direction} {bound}")
    lines.append(f"{words['since']}: {utc_timestamp(alert.raised_at)}")
    if event == "dismissed" and alert.dismissed_by:
        lines.append(f"{words['by']}: {alert.dismissed_by}")
    lines.append(f"{words['alert']}: {alert.id}")
    if site.public_url:
        lines.append(f"{words['open']}: {site.public_url}")
    kind = "success" if event == "cleared" else KINDS[alert.severity]
    return title, "\n".join(lines), kind


def render_test(site: Site) -> tuple[str, str, str]:
    """The message ``sensor-gateway notify-test`` sends."""
    title = TITLES[site.language]["test"].format(reservoir=site.reservoir)
    body = WORDS[site.language]["test_body"].format(reservoir=site.reservoir)
    if site.public_url:
        body += f"\n{WORDS[site.language]['open']}: {site.public_url}"
    return title, body, "info"


def notify_site(config: Config) -> Site:
    """What every notification of this gateway shares. Labels and units come from
    ``[measurements.<name>]`` where the configuration has that table."""
    tables: dict[str, Any] = dict(getattr(config, "measurements", None) or {})
    labels = {m: str(t.label) for m, t in tables.items() if getattr(t, "label", None)}
    units = dict(UNITS) | {m: str(t.unit) for m, t in tables.items() if getattr(t, "unit", None)}
    return Site(
        config.reservoir_id,
        config.server.language,
        config.server.public_url,
        labels=labels,
        units=units,
    )
