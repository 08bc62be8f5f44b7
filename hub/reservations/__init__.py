"""Reservations (R1-R10): time slots, reservation IDs, the booking window. See README.md."""
