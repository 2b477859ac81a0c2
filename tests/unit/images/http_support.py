"""An image node app over a store in a temp dir, and tokens for its roles."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from hcp.auth.tokens import Role, TokenService
from hcp.config import Settings
from hcp.images.catalog import ImageCatalog
from hcp.images.service import ImageService
from hcp.images.store.embedded import EmbeddedStore
from serve_apps.images.app import create_app
from serve_apps.images.routes import ImagesDeps

SECRET = "s" * 40


def node(tmp: Path, store: EmbeddedStore, **images: object) -> tuple[TestClient, TokenService]:
    settings = Settings(home=tmp, jwt_secret=SECRET, images={"upload_max_bytes": 8 << 20, **images})
    tokens = TokenService(SECRET)
    deps = ImagesDeps(store, ImageService(store, ImageCatalog(store.engine)), tokens)
    return TestClient(create_app(settings, deps)), tokens


def bearer(tokens: TokenService, role: Role, subject: str = "someone") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(subject, role)}"}
