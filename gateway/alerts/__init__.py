"""Alerts: the pure threshold ``engine``, the ``pipeline`` that carries its changes to
the ``store`` (SQLite), the clients and the uplink, ``shelves`` and the ``history`` SQL.
"""
