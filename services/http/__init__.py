"""The HTTP API (FastAPI): routes translate, use cases decide."""
