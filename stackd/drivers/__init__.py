"""Drivers: the only code with side effects on the host (one Protocol per concern, a real
implementation and an in-memory fake). Used only by execute, observe, reconcile and the daemon."""
