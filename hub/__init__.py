"""madoguchi hub: central service for all sites (built in the sync/hub issue)."""
