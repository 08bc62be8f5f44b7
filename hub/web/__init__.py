"""Hub web: JSON API (OpenAPI), staff pages; reads the store only (stateless, scale-out)."""

from hub.web.app import create_app

__all__ = ["create_app"]
