"""One MySQL client session's state, owned by its connection's command task.

What MySQL keeps per connection and a client can observe: the database, autocommit and
the open transaction (the status flags of every OK/EOF), FOUND_ROWS, the read
consistency, the last insert id (``LAST_INSERT_ID()``), the last write's timestamp (for
read-your-writes), the warnings of the last statement (``SHOW WARNINGS``) and the
prepared statements.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..mysqlproto import constants as c
from ..mysqlproto.binary import StatementParams
from ..mysqlproto.columns import ColumnDefinition
from .statements import Local, Sql


@dataclass
class PreparedStatement:
    id: int
    sql: str
    parsed: Local | Sql
    params: list[ColumnDefinition]
    columns: list[ColumnDefinition]
    qmarks: list[int]  # where the ? markers are in ``sql``
    state: StatementParams


@dataclass
class Session:
    id: int
    user: str
    host: str
    database: str
    capabilities: int
    charset: int
    consistency: str
    autocommit: bool = True
    in_trans: bool = False
    read_only_trans: bool = False
    last_insert_id: int = 0
    last_write_ts: int = 0
    warnings: list[tuple[str, int, str]] = field(default_factory=list)
    prepared: dict[int, PreparedStatement] = field(default_factory=dict)
    next_statement_id: int = 1
    connected_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    queries: int = 0
    command: str = "Sleep"  # what it is doing now (admin session list)
    txn: Any = None  # the open transaction (txn.Txn), if any

    @property
    def found_rows(self) -> bool:
        return bool(self.capabilities & c.CLIENT_FOUND_ROWS)

    @property
    def deprecate_eof(self) -> bool:
        return bool(self.capabilities & c.CLIENT_DEPRECATE_EOF)

    @property
    def multi_statements(self) -> bool:
        return bool(self.capabilities & c.CLIENT_MULTI_STATEMENTS)

    def status(self, more: bool = False) -> int:
        s = c.SERVER_STATUS_AUTOCOMMIT if self.autocommit else 0
        if self.in_trans:
            s |= c.SERVER_STATUS_IN_TRANS
            if self.read_only_trans:
                s |= c.SERVER_STATUS_IN_TRANS_READONLY
        if more:
            s |= c.SERVER_MORE_RESULTS_EXISTS
        return s

    def reset(self, default_consistency: str) -> None:
        """COM_RESET_CONNECTION: back to a fresh session on the same login."""
        self.autocommit, self.in_trans, self.read_only_trans = True, False, False
        self.last_insert_id = 0
        self.warnings = []
        self.prepared.clear()
        self.consistency = default_consistency

    def info(self) -> dict[str, object]:
        return {"id": self.id, "user": self.user, "host": self.host, "db": self.database, "command": self.command,
                "time_s": round(time.time() - self.last_active, 1), "connected_s": round(time.time() -
                                                                                       self.connected_at, 1),
                "queries": self.queries, "autocommit": self.autocommit, "in_transaction": self.in_trans,
                "transaction_statements": self.txn.statements if self.txn is not None else 0,
                "consistency": self.consistency, "prepared": len(self.prepared)}
