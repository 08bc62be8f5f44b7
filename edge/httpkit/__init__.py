"""The HTTP kit shared by the edge and the hub: JSON errors, JSON bodies read into pydantic
models, route declarations and the OpenAPI document made from them.

It lives in ``edge`` because the hub imports from the edge, never the other way round; nothing
here knows either side's storage, access levels or routes.
"""

from edge.httpkit.body import read_json
from edge.httpkit.errors import (
    FORMS,
    HTTP_ERRORS,
    ApiError,
    Handler,
    decode_form,
    error_response,
    errors_as_json,
    json_response,
    route_pattern,
)
from edge.httpkit.openapi import ERROR_SCHEMA, openapi, operation_id, path_params
from edge.httpkit.routes import (
    BOOL,
    INT,
    OPT_INT,
    OPT_STR,
    STR,
    BodySpec,
    Param,
    RouteSpec,
    Schema,
    array,
    obj,
)

__all__ = [
    "BOOL", "ERROR_SCHEMA", "FORMS", "HTTP_ERRORS", "INT", "OPT_INT", "OPT_STR", "STR",
    "ApiError", "BodySpec", "Handler", "Param", "RouteSpec", "Schema", "array", "decode_form",
    "error_response", "errors_as_json", "json_response", "obj", "openapi", "operation_id",
    "path_params", "read_json", "route_pattern",
]
