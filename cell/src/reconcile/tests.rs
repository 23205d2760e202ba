//! Reconciliation tests.
