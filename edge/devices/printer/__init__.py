"""Ticket printers: layout (``ticket.py``), pure codecs to bytes, status, and the service."""
