"""MQTT: the gateway's ``uplink`` to a broker, the ``relay`` that serves what it hears,
the ``messages`` parsed from the broker, and Home Assistant ``discovery``.
"""
