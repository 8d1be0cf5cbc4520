//! The HaloPSA simulator (not built yet).
