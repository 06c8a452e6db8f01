"""The shipped systemd unit and udev rules: checked by the tools that will read them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "sensor-gateway.service"
RULES = DEPLOY / "99-sensor-gateway.rules"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze missing: apt-get install systemd (.ci/run does)"
)


def _installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's console script, which exists."""
    script = Path(sys.executable).with_name("sensor-gateway")
    assert script.exists(), "the project is not installed in this environment"
    text = UNIT.read_text().replace("/usr/local/bin/sensor-gateway", str(script))
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=30, check=False)


@needs_analyze
def test_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    result = _analyze("verify", "--man=no", str(_installed_copy(tmp_path)))
    # verify exits 0 on an unknown key or a bad value (it warns and ignores them), so
    # a clean run is one that says nothing at all.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@needs_analyze
def test_verify_would_catch_a_misspelt_key(tmp_path: Path) -> None:
    copy = _installed_copy(tmp_path)
    copy.write_text(copy.read_text().replace("WatchdogSec=", "WatchdogSek="))
    assert "Unknown key 'WatchdogSek'" in _analyze("verify", "--man=no", str(copy)).stderr


@needs_analyze
def test_unit_sandbox_exposure_stays_low(tmp_path: Path) -> None:
    # "OK" in systemd's words is below 3.0 (on its 0-10 scale; --threshold is in tenths).
    result = _analyze("security", "--offline=true", "--threshold=30", "--no-pager",
                      str(_installed_copy(tmp_path)))  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:]


def test_unit_keeps_what_the_contract_names() -> None:
    settings = [line for line in UNIT.read_text().splitlines() if re.match(r"\w+=", line)]
    keys = {line.split("=", 1)[0] for line in settings}
    for key in ("WatchdogSec", "StateDirectory", "EnvironmentFile", "ExecReload"):
        assert key in keys
    for line in ("Type=notify", "Restart=always", "SupplementaryGroups=dialout",
                 "ProtectSystem=strict", "DeviceAllow=char-ttyUSB rw",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):  # fmt: skip
        assert line in settings
    assert "PrivateDevices=yes" not in settings  # it would hide the serial ports


_PAIR = re.compile(r'\s*([A-Z_]+(?:\{[A-Za-z_]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*')


def test_udev_rules_are_well_formed_and_keep_modemmanager_off() -> None:
    rules = [
        line
        for line in RULES.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules
    symlinks = []
    for rule in rules:
        pairs = [_PAIR.fullmatch(part) for part in rule.split(",")]
        assert all(pairs), f"malformed rule: {rule}"
        found = {(m[1], m[2]): m[3] for m in pairs if m}
        assert found[("SUBSYSTEM", "==")] == "tty"
        assert found[("ENV{ID_MM_DEVICE_IGNORE}", "=")] == "1"
        if ("SYMLINK", "+=") in found:
            assert found[("GROUP", "=")] == "dialout"
            symlinks.append(found[("SYMLINK", "+=")])
    assert "reservoir/ph" in symlinks
