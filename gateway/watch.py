"""How ``sensor-gateway watch`` prints what arrives: one readable line per item."""

from __future__ import annotations

from drivers.model import MEASUREMENTS, UNITS
from gateway.client import Item, Status
from gateway.messages import (
    Dismissed,
    Error,
    Initial,
    Refresh,
    SensorUpdate,
    Shelved,
    SiteInfo,
    Sites,
    SitesMap,
    Update,
)


def describe(item: Item, *, raw: bool = False) -> str:
    if isinstance(item, Status):
        attempt = f" (attempt {item.attempt})" if item.attempt else ""
        return f"-- {item.state}{attempt}{': ' + item.detail if item.detail else ''}"
    if raw:
        return item.model_dump_json(exclude_none=True)
    head = f"{item.timestamp[11:23] or '--:--:--.---'}  {item.channel or '':<7}"
    seq = getattr(item, "seq", None)
    head += f" #{seq:<5}" if isinstance(seq, int) else "       "
    return f"{head} {_body(item)}"


def _body(item: Item) -> str:
    if isinstance(item, Sites | Refresh) and isinstance(item.data, dict | SitesMap):
        sites = item.data if isinstance(item.data, dict) else item.data.root
        return f"{item.type}: " + "; ".join(_site(k, v) for k, v in sites.items())
    if isinstance(item, SensorUpdate) or (isinstance(item, Refresh) and _readings(item)):
        data = item.data.model_dump()
        parts = []
        for name in MEASUREMENTS:
            value = data.get(name)
            unit = "" if name == "ph" else f" {UNITS[name]}"  # "ph 7.1", not "ph 7.1 pH"
            shown = "offline" if value is None else f"{value:g}{unit}"
            parts.append(f"{name} {shown}")
        return f"{item.type}: " + ", ".join(parts)
    if isinstance(item, Initial | Update | Refresh):
        c = item.data.model_dump()
        return (
            f"{item.type}: {c.get('total')} active "
            f"(critical {c.get('critical')}, warning {c.get('warning')}, info {c.get('info')})"
        )
    if isinstance(item, Dismissed):
        return f"dismissed: {item.alert_id}" + (f" by {item.by}" if item.by else "")
    if isinstance(item, Shelved):
        who = f" by {item.by}" if item.by else " (expired)" if item.type == "unshelved" else ""
        return f"{item.type}: {item.measurement} until {item.until}{who}: {item.reason}"
    if isinstance(item, Error):
        return f"error {item.error}: {item.detail}"
    return str(getattr(item, "type", item))


def _site(reservoir: str, site: SiteInfo) -> str:
    """``EMBALSE_02 offline since 10:30:00 (critical 1, warning 0, info 0), read 10:29:58``"""
    status = site.status
    if site.offline_since:
        status += f" since {site.offline_since[11:19]}"
    c = site.summary
    read = f", read {site.last_reading_at[11:19]}" if site.last_reading_at else ""
    return f"{reservoir} {status} (critical {c.critical}, warning {c.warning}, info {c.info}){read}"


def _readings(item: Refresh) -> bool:
    return "total" not in item.data.model_dump()
