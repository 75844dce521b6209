//! Simulator (work in progress).
