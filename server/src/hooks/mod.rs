//! HTTP callbacks to the platform backend (SRS-compatible).
