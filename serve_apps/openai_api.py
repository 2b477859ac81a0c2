"""OpenAI-compatible inference routes: ``POST /v1/embeddings`` and ``GET /v1/models``.

The official ``openai`` client asks for ``encoding_format="base64"`` unless told otherwise:
base64 of the little-endian float32 vector, which it decodes itself. Both formats carry the
model's float32 values exactly.
"""

# No `from __future__ import annotations`: FastAPI resolves the local `Client` alias at runtime.

import base64
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hcp.auth.tokens import Principal
from hcp.errors import ServiceUnavailableError, UnknownModelError, ValidationError
from hcp.fields import SafeStr, StrictPositive
from hcp.inference.base import DEFAULT_MAX_TEXT_CHARS, DEFAULT_MAX_TEXTS, validate_texts
from serve_apps.access import Action, require
from serve_apps.schemas import error_responses
from serve_apps.services import ApiServices


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: SafeStr | list[SafeStr] = Field(
        description="One text or a list of texts (token arrays are not accepted)."
    )
    model: SafeStr = Field(min_length=1, max_length=200)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictPositive | None = Field(None, le=100_000)
    user: SafeStr | None = Field(None, max_length=200)


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingsUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "hcp"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def encode_vector(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def openai_router(
    services: ApiServices, client: Callable[..., Any], dimensions: int = 384
) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["inference (OpenAI-compatible)"])
    Client = Annotated[Principal, Depends(client)]

    @r.post(
        "/embeddings",
        response_model=EmbeddingsResponse,
        responses=error_responses(403, 404, 422, 503),
        summary="Create embeddings",
    )
    async def embeddings(body: EmbeddingsRequest, principal: Client) -> JSONResponse:
        require(principal, Action.SUBMIT_WORKLOAD)
        if body.model != services.model_name:
            raise UnknownModelError(
                f"model {body.model!r} is not served here; use {services.model_name!r}",
                model=body.model,
            )
        if body.dimensions is not None and body.dimensions != dimensions:
            raise ValidationError(
                f"{services.model_name} has {dimensions} dimensions, not {body.dimensions}",
                dimensions=body.dimensions,
            )
        texts = [body.input] if isinstance(body.input, str) else body.input
        texts = validate_texts(texts, max_texts=DEFAULT_MAX_TEXTS, max_chars=DEFAULT_MAX_TEXT_CHARS)
        if services.embedder is None:
            raise ServiceUnavailableError("no inference deployment is attached to this API")
        vectors, tokens = await services.embedder.embed(principal.subject, texts)
        # Built by hand: validating 384 floats per text through the response model costs more
        # than the embedding itself; the OpenAPI document still shows EmbeddingsResponse.
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": encode_vector(v, body.encoding_format),
                    }
                    for i, v in enumerate(vectors)
                ],
                "model": services.model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @r.get(
        "/models", response_model=ModelList, responses=error_responses(), summary="Served models"
    )
    async def models(principal: Client) -> dict[str, Any]:
        require(principal, Action.SUBMIT_WORKLOAD)
        return {"object": "list", "data": [{"id": services.model_name}]}

    return r
