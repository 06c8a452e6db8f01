"""What /metrics and /healthz say about the disk, the database and the clocks."""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import Client, gateway_of
from tests.helpers import until


async def samples(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = await (await client.get("/metrics")).text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_storage_and_age_metrics(client: Client, tmp_path: Path) -> None:
    gateway = gateway_of(client)
    await until(lambda: gateway.readings.value("ph") is not None)
    await gateway.store_readings()  # something in the -wal file
    found = await samples(client)
    db = tmp_path / "data" / "gateway.sqlite3"
    on_disk = db.stat().st_size + db.with_name(db.name + "-wal").stat().st_size
    assert found[("gateway_storage_write_failures_total", ())] == 0.0
    assert found[("gateway_storage_db_bytes", ())] == on_disk
    free = shutil.disk_usage(db.parent).free
    assert abs(found[("gateway_storage_free_bytes", ())] - free) < 64 * 2**20
    age = found[("gateway_sensor_last_good_age_seconds", (("measurement", "ph"),))]
    assert 0.0 <= age < 5.0  # stale_after in the fast config
    health = await (await client.get("/healthz")).json()
    assert health["storage"] == {"state": "ok"}
