"""Counter hardware, in three layers after python-escpos.

- ``transport/``: async byte pipes (usb, serial, tcp, file, ``sim://``) that fail loudly;
- codecs (``printer/``, ``display/``, ``input/``, ``voice/``): pure, command -> bytes or
  bytes/events -> command, tested byte for byte;
- device services: a queue, health, and reconnect with backoff, so a broken device never
  stalls the queue engine (``manager.py`` wires them to the writer's committed events).
"""
