//! Loads, attaches and pins the XDP advert tracker; reads its maps.
