"""A pure codec for the MySQL/MariaDB client/server protocol, server side.

No sockets, no asyncio: bytes in, Python objects out, and back. A front end feeds what it
reads into ``PacketReader``, dispatches each payload on its command byte, and frames the
payloads these modules build with ``PacketWriter``. Modules:

* ``constants``  capability/status flags, command bytes, column types/flags, charsets, errors
* ``wire``       length-encoded integers and strings, NUL strings, fixed ints, ``Reader``
* ``framing``    ``PacketReader`` (incremental, >= 16 MiB reassembly), ``frame``, ``PacketWriter``
* ``handshake``  HandshakeV10, HandshakeResponse41, SSLRequest, AuthSwitch, mysql_native_password
* ``commands``   COM_QUERY / INIT_DB / FIELD_LIST / SET_OPTION / CHANGE_USER … parsing
* ``columns``    Column Definition 41, defaults for computed columns, inference from values
* ``results``    OK / ERR / EOF packets, text rows and text result sets, COM_FIELD_LIST answer
* ``values``     Python values <-> MySQL text (cells, temporal literals)
* ``binvalues``  binary-protocol values
* ``binary``     COM_STMT_* parsing, prepare answer, binary rows and result sets
* ``client``     the client side of the handshake (the front end's own server connections)

Import the modules themselves (``from coordinator.mysqlproto import results``): the package
re-exports nothing, so importing one module never drags in the others (and no cycle).
"""
