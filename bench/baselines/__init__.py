"""The servers the gateway's fan-out is measured against, each run as its own process.

- :mod:`bench.baselines.floor`: one pre-encoded frame written to N raw transports in a loop;
- :mod:`bench.baselines.naive`: aiohttp, ``await ws.send_str(json.dumps(m))`` per client;
- :mod:`bench.baselines.seed`: the seed's design, FastAPI + uvicorn with the documented
  ``ConnectionManager`` awaiting ``send_json`` per client.

Each publishes the gateway's ``sensor_update`` every ``--interval`` seconds and
reports every broadcast on stdout (:mod:`bench.baselines.common`).
"""
