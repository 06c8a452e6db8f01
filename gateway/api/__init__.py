"""HTTP and WebSocket: the one application a gateway and a relay both serve.

``rest`` and ``websocket`` (over the sans-I/O ``session``) answer every
:class:`~gateway.api.websocket.Backend` the same way; ``hub`` fans news out to the
clients; ``auth``, ``params`` and ``metrics`` guard, parse and count; ``server`` adds
the gateway's own routes; ``listen`` binds the sockets.
"""
