//! Scenario tests at explicit milliseconds.
