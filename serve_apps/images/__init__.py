"""hcp's node on HTTP: the Kubo RPC subset (``/api/v0``), the trustless gateway (``/ipfs``),
and the image API (``/api/v1/images``). ``routes.router(settings, store=...)`` builds all three."""
