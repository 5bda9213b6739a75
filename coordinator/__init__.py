"""Quorum coordinator for MySQL/MariaDB.

One asyncio process in front of several servers: it orders every write with a
timestamp, replicates it through a log to every replica, commits on a Cabinet
weighted quorum, routes reads, and fails over by itself.
"""

__version__ = "0.1.0"
