"""The JSON API under ``/api``: a parcel, an address, a commune, a note, a batch of parcels.

Every route parses its parameters, calls one function of :mod:`geo.server.answers` over the
catalogue loaded at start, and returns its result; errors become problem details
(:mod:`geo.server.problems`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from geo.app import Adresse, Verification
from geo.eligibility.models import ResultatEligibilite
from geo.server import answers
from geo.server.limits import TooLarge
from geo.server.problems import Problem

router = APIRouter(prefix="/api", tags=["API"])

#: Bounds of an uploaded file of parcels (bytes, rows).
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000

DateQuery = Annotated[
    str | None,
    Query(
        alias="date",
        max_length=40,
        description="Date d'évaluation, AAAA-MM-JJ ou JJ/MM/AAAA (défaut : aujourd'hui).",
        examples=["2024-09-01"],
    ),
]
_PROBLEMS = {
    400: {"description": "Entrée incorrecte (problem+json, message et correction en français)"},
    404: {"description": "Parcelle ou ressource introuvable (problem+json)"},
}


class ReponseParcelle(BaseModel):
    """A parcel's answer: its check (``ort check --json``) and its eligibility."""

    idu: str = Field(examples=["62999000AB0012"])
    date: str = Field(examples=["2024-09-01"])
    convention_id: str | None = Field(None, description="la convention du serveur qui couvre la commune")
    verification: Verification | None = Field(None, description="None : aucun périmètre numérisé en vigueur")
    eligibilite: ResultatEligibilite
    remarque: str | None = None


class ReponseAdresse(BaseModel):
    """An address located, and its parcel's answer (None when ambiguous or not found)."""

    requete: str
    adresse: Adresse | None
    reponse: ReponseParcelle | None


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _catalogue(request: Request):
    return request.app.state.catalogue


@router.get(
    "/parcelles/{idu}",
    summary="Réponse pour une parcelle : périmètres en vigueur et éligibilité",
    responses={**_PROBLEMS, 200: {"model": ReponseParcelle, "description": "La réponse"}},
    response_class=Response,
)
def parcel(
    request: Request,
    idu: Annotated[
        str,
        PathParam(
            max_length=64,
            description="Identifiant tel qu'on le tape : 62999000AB0012, 62999 AB 12, AB 12 (avec commune)",
        ),
    ],
    when: DateQuery = None,
    commune: Annotated[
        str | None, Query(max_length=10, description="Code INSEE des identifiants courts")
    ] = None,
) -> dict:
    """Chaque périmètre en vigueur (statut, part, surfaces, version, validité) — ce que répond
    ``ort check --json`` — et chaque dispositif (verdict, motif, référence, dates, réserves) — ce
    que répond ``ort eligibility --json``."""
    return _json(answers.parcel_answer(_catalogue(request), idu, answers.parse_day(when), commune))


@router.get(
    "/adresses",
    summary="Réponse pour une adresse (ou les candidats si elle est ambiguë)",
    responses=_PROBLEMS,
)
def address(
    request: Request,
    q: Annotated[
        str, Query(min_length=3, max_length=200, description="Adresse, ex. 3 rue de la Gare, Ormeval")
    ],
    when: DateQuery = None,
) -> Response:
    """L'adresse est cherchée dans le fichier d'adresses donné au serveur (sinon la Base Adresse
    Nationale), placée sur la parcelle qui contient son point, puis la parcelle reçoit la même
    réponse que ``/api/parcelles/{id}``. Une adresse ambiguë rend ses candidats, sans réponse."""
    return _json(answers.address_answer(_catalogue(request), q, answers.parse_day(when)))


@router.get(
    "/communes/{insee}/eligibilite",
    summary="Éligibilité d'une commune",
    responses={**_PROBLEMS, 200: {"model": ResultatEligibilite, "description": "Les dispositifs"}},
    response_class=Response,
)
def commune(
    request: Request,
    insee: Annotated[str, PathParam(max_length=10, description="Code INSEE, ex. 62907 ou 2A004")],
    when: DateQuery = None,
) -> Response:
    """Chaque dispositif pour la commune, d'après les listes nationales et sa convention."""
    return _json(answers.commune_answer(_catalogue(request), insee, answers.parse_day(when)))


@router.get(
    "/parcelles/{idu}/note.pdf",
    summary="Note de renseignement ORT (PDF)",
    responses={**_PROBLEMS, 200: {"content": {"application/pdf": {}}, "description": "La note en PDF"}},
    response_class=Response,
)
def note(
    request: Request,
    idu: Annotated[str, PathParam(max_length=64)],
    when: DateQuery = None,
    commune: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """La note d'une page d'une parcelle, comme ``ort note``."""
    ident, pdf = answers.note_pdf(_catalogue(request), idu, answers.parse_day(when), commune)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="note-{ident}.pdf"'},
    )


@router.post(
    "/verifications",
    summary="Vérifier un fichier de parcelles (CSV ou XLSX) → tableau CSV ou XLSX",
    responses={
        **_PROBLEMS,
        413: {"description": "Fichier trop volumineux"},
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
            "description": "Le tableau : une ligne par parcelle et périmètre",
        },
    },
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["fichier"],
                        "properties": {
                            "fichier": {
                                "type": "string",
                                "format": "binary",
                                "description": "CSV ou XLSX avec une colonne idu (commune facultative)",
                            }
                        },
                    }
                }
            },
        }
    },
)
async def batch(
    request: Request,
    when: DateQuery = None,
    format: Annotated[Literal["csv", "xlsx"], Query(description="csv (Excel en français) ou xlsx")] = "csv",
) -> Response:
    """Un fichier d'identifiants (colonne ``idu``, ``commune`` facultative), au plus 2 Mo et
    5 000 lignes : le tableau de ``ort check --file … -o``, en CSV pour Excel en français
    (« ; », virgule décimale) ou en XLSX."""
    day = answers.parse_day(when)
    try:
        form = await request.form(max_files=1, max_fields=4)
    except TooLarge:
        raise
    except Exception as err:  # noqa: BLE001 - a body that is not multipart
        raise Problem(
            400,
            f"corps de requête illisible ({type(err).__name__})",
            fix="envoyez le fichier en multipart/form-data dans le champ « fichier »",
        ) from None
    upload = form.get("fichier")
    if upload is None or isinstance(upload, str):
        raise Problem(400, "champ « fichier » absent", fix="envoyez le fichier dans le champ « fichier »")
    name = Path(upload.filename or "fichier.csv").name
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".txt", ".xlsx"):
        raise Problem(
            415, f"type de fichier {suffix or '(aucun)'} non pris en charge", fix="un .csv ou un .xlsx"
        )
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise Problem(413, "fichier de plus de 2 Mo", fix="découpez-le en fichiers de 5 000 lignes au plus")
    body, media = await run_in_threadpool(
        _batch_locked, request.app.state.catalogue, data, suffix, day, format
    )
    stem = Path(name).stem[:40] or "parcelles"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{safe}-verifie.{format}"'},
    )


def _batch_locked(*args) -> tuple[bytes, str]:
    """:func:`_batch_table` holding :data:`geo.prepared.GEOMETRY_LOCK`: the engine classifies the
    file's parcels against the perimeters' prepared geometries, shared with the other requests."""
    from geo.prepared import GEOMETRY_LOCK

    with GEOMETRY_LOCK:
        return _batch_table(*args)


def _batch_table(cat, data: bytes, suffix: str, day, fmt: str) -> tuple[bytes, str]:
    """The uploaded file checked by :func:`geo.app.check_file` against the convention covering
    most of its communes, as the bytes of a CSV (French Excel) or XLSX file."""
    from collections import Counter

    from geo.app import check_file, verification_bytes
    from geo.app.load import read_entries_file

    with tempfile.TemporaryDirectory(prefix="ort-serve-") as tmp:
        src = Path(tmp) / f"entree{suffix}"
        src.write_bytes(data)
        ids, addresses = read_entries_file(src)
        if len(ids) + len(addresses) > MAX_ROWS:
            raise Problem(
                413, f"{len(ids) + len(addresses)} lignes : au plus {MAX_ROWS}", fix="découpez le fichier"
            )
        items = [i for i in cat.conventions.values() if i.territoire is not None]
        if not items:
            raise Problem(422, "aucun cadastre chargé sur ce serveur : pas de vérification de fichier")
        default = cat.default_commune()
        votes = Counter()
        for text, code in ids:
            code = (code or "").strip() or (text.strip()[:5] if text.strip()[:5].isdigit() else default)
            item = cat.for_commune(code) if code else None
            if item is not None and item.territoire is not None:
                votes[item.name] += 1
        item = cat.conventions[votes.most_common(1)[0][0]] if votes else items[0]
        result = check_file(src, territoire=item.territoire, date=day, settings=answers._settings())
        if not result.parcelles:
            first = result.rejetes[0].erreur if result.rejetes else "aucune parcelle reconnue"
            raise Problem(
                422, f"aucune parcelle du fichier trouvée : {first}", fix="colonne idu, ex. 62999000AB0012"
            )
        body = verification_bytes(result, format=fmt, settings=answers._settings())
    media = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return body, media
