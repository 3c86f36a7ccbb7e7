//! keepalived.conf reader.
