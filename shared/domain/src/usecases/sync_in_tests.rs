//! Unit tests of sync in on in-process fakes.
