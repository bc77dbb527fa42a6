//! dpipe: bidirectional pipes between commands.
