"""The MySQL wire-protocol front end (port 6033): any MySQL client, ORM or benchmark talks
to the coordinator. ``server`` (listener, registry, shared resources), ``connection``
(framing, login, command loop), ``handler`` (what each command does), ``statements``
(session statements vs SQL), ``session`` (per-connection state), ``backend`` (raw
connections to the servers, for relayed reads and prepare metadata), ``relay`` (passing
server responses on), ``errors`` (errno and SQLSTATE of every error).
"""
