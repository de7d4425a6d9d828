//! Subcommands and settings.
