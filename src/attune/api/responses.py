"""A JSON response rendered with orjson (fast, handles numpy scalars)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


class JSONResponse(StarletteJSONResponse):
    """``application/json`` rendered with orjson.

    A subclass of Starlette's ``JSONResponse`` on purpose: FastAPI documents a route's
    ``response_model`` only for JSON response classes, and would otherwise publish every
    success body in the OpenAPI schema as ``{"type": "string"}``.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
