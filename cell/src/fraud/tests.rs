//! Tests of the fraud scorer.
