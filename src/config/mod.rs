//! ZPL (ZeroMQ Property Language, RFC 4) configuration trees.
