//! Tests of the health view against a seeded log.
