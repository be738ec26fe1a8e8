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

from geo.server import answers
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


def _catalogue(request: Request):
    return request.app.state.catalogue


@router.get(
    "/parcelles/{idu}",
    summary="Réponse pour une parcelle : périmètres en vigueur et éligibilité",
    responses=_PROBLEMS,
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
    return answers.parcel_answer(_catalogue(request), idu, answers.parse_day(when), commune)


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
) -> dict:
    """L'adresse est cherchée dans le fichier d'adresses donné au serveur (sinon la Base Adresse
    Nationale), placée sur la parcelle qui contient son point, puis la parcelle reçoit la même
    réponse que ``/api/parcelles/{id}``. Une adresse ambiguë rend ses candidats, sans réponse."""
    return answers.address_answer(_catalogue(request), q, answers.parse_day(when))


@router.get("/communes/{insee}/eligibilite", summary="Éligibilité d'une commune", responses=_PROBLEMS)
def commune(
    request: Request,
    insee: Annotated[str, PathParam(max_length=10, description="Code INSEE, ex. 62907 ou 2A004")],
    when: DateQuery = None,
) -> dict:
    """Chaque dispositif pour la commune, d'après les listes nationales et sa convention."""
    return answers.commune_answer(_catalogue(request), insee, answers.parse_day(when))


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
        _batch_table, request.app.state.catalogue, data, suffix, day, format
    )
    stem = Path(name).stem[:40] or "parcelles"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{safe}-verifie.{format}"'},
    )


def _batch_table(cat, data: bytes, suffix: str, day, fmt: str) -> tuple[bytes, str]:
    import pandas as pd

    from geo.check import read_id_table
    from geo.columns import PARCELS
    from geo.io import write_table

    with tempfile.TemporaryDirectory(prefix="ort-serve-") as tmp:
        src = Path(tmp) / f"entree{suffix}"
        src.write_bytes(data)
        entries = read_id_table(src)
        if len(entries) > MAX_ROWS:
            raise Problem(413, f"{len(entries)} lignes : au plus {MAX_ROWS}", fix="découpez le fichier")
        default = cat.default_commune()
        groups: dict = {}
        rejected: list[tuple[str, str]] = []
        from geo.idu import parse_idu

        for text, code in entries:
            try:
                p = parse_idu(text, code_insee=code or default)
            except ValueError as err:
                rejected.append((text, getattr(err, "message", str(err))))
                continue
            item = cat.for_commune(p.code_insee)
            if item is None or item.parcels is None:
                rejected.append((text, f"commune {p.code_insee} sans convention numérisée sur ce serveur"))
                continue
            groups.setdefault(item.name, []).append(p.idu)
        from geo.check import check_parcels

        tables, sources = [], []
        for name, ids in groups.items():
            item = cat.conventions[name]
            result = check_parcels(ids, item.convention, item.parcels, when=day)
            tables.append(result.table)
            sources.append(result.source())
            rejected += result.rejected
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["idu"])
        if rejected:
            extra = pd.DataFrame({"idu": [t for t, _ in rejected], "erreur": [m for _, m in rejected]})
            table = pd.concat([table, extra], ignore_index=True)
        out = Path(tmp) / f"resultat.{fmt}"
        write_table(table, out, layout=PARCELS, source=" ; ".join(sources) or None)
        media = (
            "text/csv; charset=utf-8"
            if fmt == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        return out.read_bytes(), media
