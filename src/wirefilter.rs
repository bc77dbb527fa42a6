//! wirefilter: the sans-IO channel model (loss, delay, bandwidth, ...).
