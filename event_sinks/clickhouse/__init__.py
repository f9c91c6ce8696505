"""Engine access: the connection to ClickHouse (embedded chDB or a server), DDL, column encoding.

The only layer that talks to clickhouse-connect; everything above speaks in schema objects,
column batches and the library's own errors.
"""

from .connection import Capabilities, Connection, close_connections, get_connection
from .ddl import Renderer

__all__ = ["Capabilities", "Connection", "Renderer", "close_connections", "get_connection"]
