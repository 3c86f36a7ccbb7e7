//! Helpers for root tests in network namespaces.
