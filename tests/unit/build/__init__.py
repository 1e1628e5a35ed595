"""Unit tests of the pure build logic (stackd.build) and of Debian bootstrap commands."""
