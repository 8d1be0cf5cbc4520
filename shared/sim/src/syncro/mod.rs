//! The Syncro simulator (not built yet).
