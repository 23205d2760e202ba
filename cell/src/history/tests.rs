//! Tests of recording, flushing, compaction, purge and holds on a real store.
