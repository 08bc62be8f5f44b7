"""madoguchi hub: the central service for all sites (MQTT ingest, store, JSON API, staff pages).

Start it in-process with ``hub.app.start_hub`` or from the CLI with ``madoguchi hub run``.
"""
