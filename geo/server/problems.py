"""Errors as problem details (RFC 9457, ``application/problem+json``), in French, with the fix.

Every error the library raises for bad input (:class:`geo.errors.InputError` and its kin) is a
4xx whose ``detail`` is the library's French message and ``correction`` its fix; a request the
server cannot read (a missing parameter, a wrong type) is a 400 in the same form. An unexpected
failure is a 500 that says so without a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import InputError, OrtError, ParcelIdError, PerimeterError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("geo.server")

_TITLES = {
    400: "Requête incorrecte",
    404: "Introuvable",
    405: "Méthode non permise",
    406: "Format non disponible",
    413: "Envoi trop volumineux",
    415: "Type de fichier non pris en charge",
    422: "Données inutilisables",
    500: "Erreur interne",
    503: "Service indisponible",
}


class Problem(Exception):
    """An HTTP error with a French message (``detail``) and what to do (``fix``)."""

    def __init__(
        self, status: int, detail: str, *, fix: str | None = None, headers: dict | None = None, **extra
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.fix, self.extra = status, detail, fix, extra
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str,
    *,
    fix: str | None = None,
    instance: str = "",
    headers: dict | None = None,
    **extra,
):
    body = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Erreur"),
        "status": status,
        "detail": detail,
    }
    if fix:
        body["correction"] = fix
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _status_of(err: OrtError) -> int:
    if isinstance(err, ParcelIdError) and "absente" in str(err):
        return 404
    if isinstance(err, InputError | PerimeterError):
        return 400
    return 503  # a download or a file the server needs: not the request's fault


def _field(loc) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body")]
    return ".".join(parts) or "requête"


_TYPE_FR = {
    "missing": "paramètre manquant",
    "int_parsing": "nombre entier attendu",
    "float_parsing": "nombre attendu",
    "less_than_equal": "valeur trop grande",
    "greater_than_equal": "valeur trop petite",
    "greater_than": "valeur trop petite",
    "string_too_long": "texte trop long",
    "enum": "valeur non prévue",
    "literal_error": "valeur non prévue",
}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, err: Problem):
        return problem_response(
            err.status, err.detail, fix=err.fix, instance=request.url.path, headers=err.headers, **err.extra
        )

    @app.exception_handler(OrtError)
    async def _ort(request: Request, err: OrtError):
        message = getattr(err, "message", None) or str(err)
        fix = getattr(err, "fix", None)
        feature = getattr(err, "feature", None)
        detail = f"{message} ({feature})" if feature and feature not in message else message
        return problem_response(_status_of(err), detail, fix=fix, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError):
        errors = [
            {"champ": _field(e.get("loc", ())), "erreur": _TYPE_FR.get(e.get("type"), e.get("msg", ""))}
            for e in err.errors()
        ]
        detail = "; ".join(f"{e['champ']} : {e['erreur']}" for e in errors)
        return problem_response(
            400,
            f"paramètres incorrects — {detail}",
            fix="voir la documentation de l'API : /docs",
            instance=request.url.path,
            erreurs=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException):
        detail = err.detail if isinstance(err.detail, str) else str(err.detail)
        if err.status_code == 404 and detail in ("Not Found", ""):
            detail = f"aucune ressource à l'adresse {request.url.path}"
            return problem_response(404, detail, fix="voir /docs pour les adresses de l'API", instance="")
        if err.status_code == 405:
            detail = f"méthode {request.method} non permise sur {request.url.path}"
        return problem_response(err.status_code, detail, instance=request.url.path)

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception):  # pragma: no cover - last resort
        log.exception("erreur interne sur %s", request.url.path)
        return problem_response(
            500,
            f"erreur interne ({type(err).__name__}) : la requête n'a pas abouti",
            fix="réessayez ; si elle persiste, signalez-la avec l'adresse demandée",
            instance=request.url.path,
        )
