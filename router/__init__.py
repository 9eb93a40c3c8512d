"""The router role: turns push requests into per-device decisions and hands them on."""
