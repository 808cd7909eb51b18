"""The REST API's routers: one per resource, mounted under /api/v1/ by portfolio/api.py."""
