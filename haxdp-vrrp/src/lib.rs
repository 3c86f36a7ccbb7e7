//! Sans-IO VRRP core.
