"""What the browser tests share: finding Chromium, a gateway process, page instruments."""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.configs import CONDUCTIVITY, PH, TEMPERATURE, WATER_LEVEL, bus, gateway_toml, table
from tests.processes import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: Debian's chromium package (installed by .ci/run); Playwright's own download is not used.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
#: The docs' screenshots are rewritten only by ``make screenshots`` (which sets this), so
#: that a test run leaves the work tree as it found it.
SCREENSHOTS = os.environ.get("GATEWAY_SCREENSHOTS") == "1"


def screenshot_path(name: str, scratch: Path) -> Path:
    """Where a test saves the screenshot ``name``: docs/img/ under ``make screenshots``,
    else ``scratch`` (the test's own temporary directory)."""
    folder = REPO / "docs" / "img" if SCREENSHOTS else scratch
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


VIEWPORT = {"width": 1280, "height": 800}


def require_browser() -> None:
    """Skip the calling test module, with the reason, where Chromium or Playwright is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
            ".ci/run installs it)",
            allow_module_level=True,
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        pytest.skip(
            f"browser tests need Playwright for Python ({exc}): pip install -e '.[test]'",
            allow_module_level=True,
        )


def config_text(data_dir: Path, auth: str) -> str:
    """The four buses of gateway/default.toml, polled faster; ``auth`` is raw TOML."""
    return gateway_toml(
        data_dir,
        table("server", sensor_interval=0.5, heartbeat_interval=5.0),
        table("storage", readings_every=1.0),
        auth,
        bus("ph-probe", "sim://ezo-ph", "ezo", PH, poll_interval=0.2),
        bus("ec-probe", "sim://ezo-ec", "ezo", CONDUCTIVITY, poll_interval=0.5),
        bus(
            "temperature-probe",
            "sim://ezo-rtd",
            "ezo",
            TEMPERATURE,
            timeout=0.5,
            retries=0,
            poll_interval=0.5,
        ),
        bus("rs485-1", "sim://modbus", "modbus-rtu", WATER_LEVEL, poll_interval=0.5),
        table("thresholds.ph", warning_high=8.5, critical_high=9.0, hysteresis=0.1, delay=1),
        # a silent probe shows as offline quickly
        table("thresholds.temperature", stale_after=3.0),
        reservoir_id="EMBALSE_01",
    )


class GatewayProcess:
    """``sensor-gateway run --simulate`` as a subprocess, on a port that survives restarts."""

    def __init__(
        self, directory: Path, *, port: int = 0, jwt_secret: str = "", fast: bool = False
    ) -> None:
        """``fast``: the simulated devices answer at once (``run --simulate --fast``)."""
        self.directory = directory
        self.fast = fast
        self.port = port or free_port()
        self.config = directory / "gateway.toml"
        auth = f'[auth]\njwt_secret = "{jwt_secret}"' if jwt_secret else ""
        self.config.write_text(config_text(directory / "data", auth))
        self.log = directory / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    #: What the error says did not start; a subclass running another command names it.
    kind = "gateway"

    def arguments(self) -> list[str]:
        """The ``sensor-gateway`` command line (a subclass runs another command)."""
        fast = ["--fast"] if self.fast else []
        return ["run", "-c", str(self.config), "--simulate", *fast, "--port", str(self.port)]

    def start(self, timeout: float = 10.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *self.arguments()],
                cwd=self.directory, env=env, stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
        line = self._first_line(timeout)
        if " on " not in line:
            self.stop()
            raise RuntimeError(f"the {self.kind} did not start: {line!r}\n{self.log_tail()}")
        self.url = line.split(" on ")[1].split()[0]

    def _first_line(self, timeout: float) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        fd, data, deadline = self.process.stdout.fileno(), b"", time.monotonic() + timeout
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace").strip()

    def stop(self) -> None:
        """SIGTERM, as systemd would; kill if it has not stopped in 10 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def request(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"null")

    def simulate(self, measurement: str, **command: Any) -> None:
        """``PUT /api/simulator/<measurement>``: a value, or a fault (None clears it)."""
        self.request("PUT", f"/api/simulator/{measurement}", command)


#: Installed before any page script: records every WebSocket (URL, subprotocols, frames
#: in and out) and can refuse new ones (``__ws.refuse = true``: they go to a closed
#: port and fail, as behind a proxy that drops upgrades) or cut the open ones.
WS_INSTRUMENT = """
(() => {
  const Native = window.WebSocket;
  const log = { opened: [], frames: [], sent: [], refuse: false, sockets: new Set() };
  class Instrumented extends Native {
    constructor(url, protocols) {
      const refused = log.refuse;
      super(refused ? "ws://127.0.0.1:1/refused" : url, protocols);
      const offered = [].concat(protocols ?? []);
      log.opened.push({ url: String(url), protocols: offered, refused, at: performance.now() });
      log.sockets.add(this);
      this.addEventListener("message", (event) => log.frames.push(event.data));
      this.addEventListener("close", () => log.sockets.delete(this));
    }
    send(data) {
      log.sent.push(String(data));
      super.send(data);
    }
  }
  window.WebSocket = Instrumented;
  window.__ws = log;
  window.__cutSockets = () => { for (const socket of log.sockets) socket.close(); };
  // How many frames of one message type have come in.
  log.count = (type) => log.frames.filter((f) => JSON.parse(f).type === type).length;
})();
"""

#: Records every text the connection status shows, in order.
STATUS_RECORDER = """
window.__statusLog = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("connection");
  if (!el) return;
  new MutationObserver(() => window.__statusLog.push(el.textContent)).observe(
    el, { childList: true, characterData: true, subtree: true });
});
"""

#: Keeps the ids of the timers that are pending: ``__timers.size`` is what is left.
TIMER_TRACKER = """
(() => {
  const live = new Set();
  const { setTimeout: set, clearTimeout: clear, setInterval: every, clearInterval: stop } = window;
  window.setTimeout = (fn, ms, ...args) => {
    const run = (...a) => { live.delete(id); if (typeof fn === "function") fn(...a); };
    const id = set(run, ms, ...args);
    live.add(id);
    return id;
  };
  window.clearTimeout = (id) => { live.delete(id); clear(id); };
  window.setInterval = (fn, ms, ...args) => {
    const id = every(fn, ms, ...args);
    live.add(id);
    return id;
  };
  window.clearInterval = (id) => { live.delete(id); stop(id); };
  window.__timers = live;
})();
"""


def sensor_seqs(frames: list[str]) -> list[int]:
    """The seq of every sensor_update among raw WebSocket frames, in arrival order."""
    seqs = []
    for frame in frames:
        message = json.loads(frame)
        if (
            message.get("type") == "sensor_update"
            and message.get("channel", "sensors") == "sensors"
        ):
            seqs.append(message["seq"])
    return seqs


def runs(seqs: list[int]) -> list[list[int]]:
    """Split seqs where they go back (a gateway restart starts counting again)."""
    out: list[list[int]] = []
    for seq in seqs:
        if not out or seq <= out[-1][-1]:
            out.append([seq])
        else:
            out[-1].append(seq)
    return out


def gaps(seqs: list[int]) -> list[tuple[int, int]]:
    """Pairs of consecutive seqs, within one run, that skip a number."""
    return [(a, b) for run in runs(seqs) for a, b in itertools.pairwise(run) if b != a + 1]


def new_page(browser: Browser, *init_scripts: str, viewport: dict[str, int] = VIEWPORT) -> Page:
    """A page in a fresh context (its own storage), with the WebSocket and status recorders."""
    context = browser.new_context(viewport=viewport, locale="es-ES")
    for script in (WS_INSTRUMENT, STATUS_RECORDER, *init_scripts):
        context.add_init_script(script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.page_errors = errors  # type: ignore[attr-defined]
    return page
