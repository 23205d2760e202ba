//! Tests of the authorization queue.
