"""Conventions and their perimeters, held as reviewable, dated files.

A convention folder ``perimeters/<slug>/`` holds ``convention.toml`` (metadata, edited by
hand) and one geometry file per version (the initial convention, then each avenant). The
format is documented in ``perimeters/README.md``.

>>> from geo import embedded
>>> conv = read_convention(embedded.convention_dir("demo"))
>>> conv.version_at("2024-01-01").id, conv.version_at("2024-08-01").id
('initiale', 'avenant-1')
>>> sorted(conv.perimeters("2024-08-01")["perimeter_id"])
['centre-ville', 'faubourg', 'gare', 'opah-ru-centre', 'ort']
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import geopandas as gpd
import pandas as pd
import shapely
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from pyproj import CRS

from geo import fmt, projection, schema
from geo.errors import (
    CRSError,
    InputError,
    MissingFileError,
    PerimeterError,
    ValidationFailed,
    ValidationReport,
    one_line,
)

PROGRAMMES = ("ACV", "PVD", "autre")
#: Perimeter types of a geometry file; ``ort`` is the union of the secteurs, made on load.
#: ``dpu_renforce`` and ``preemption_commerciale``: perimeters set by a local deliberation
#: (droit de préemption urbain renforcé; pre-emption of fonds and baux commerciaux).
PERIMETER_TYPES = ("secteur", "opah_ru", "dpu_renforce", "preemption_commerciale", "autre")
ORT_ID = "ort"
ORT_NAME = "ORT (ensemble des secteurs)"
METADATA_FILE = "convention.toml"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

#: Columns of a perimeters GeoDataFrame, in order.
PERIMETER_COLUMNS = [
    "perimeter_id",
    "type",
    "nom",
    "centre_ville",
    "commune",
    "date_debut",
    "date_fin",
    "en_vigueur",
    "version",
    "version_date",
    "geometry",
]


#: A date as typed in France: jj/mm/aaaa (also with "." or "-").
_FRENCH_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def as_date(value: object, *, what: str = "date", source: str = "") -> dt.date:
    """The one parser of dates given by people and programs: a date, a datetime, ``2024-06-01``
    (ISO) or ``01/06/2024`` (as typed in France, also ``1.6.2024``).

    >>> as_date("01/06/2024") == as_date("2024-06-01") == dt.date(2024, 6, 1)
    True

    Raises
    ------
    PerimeterError
        (an :class:`~geo.errors.InputError`) naming ``what`` and the two accepted forms.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        french = _FRENCH_DATE.fullmatch(text)
        try:
            if french:
                day, month, year = (int(g) for g in french.groups())
                return dt.date(year, month, day)
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise PerimeterError(
        f"{what} {one_line(repr(value))} n'est pas une date",
        source=source or None,
        fix="écrivez-la AAAA-MM-JJ (2024-06-01) ou JJ/MM/AAAA (01/06/2024)",
    )


def parse_date(when: object = None, *, what: str = "--date") -> dt.date:
    """A date of evaluation: ``None`` is today, anything else goes through :func:`as_date`."""
    return dt.date.today() if when is None else as_date(when, what=what)


class Version(schema.Model):
    """One version of a convention's perimeters: the initial convention or an avenant."""

    id: str = Field(min_length=1, examples=["avenant-1"])
    libelle: str = Field(examples=["Avenant n°1"])
    date_effet: dt.date = Field(examples=[dt.date(2024, 7, 1)])
    fichier: str = Field(min_length=1, examples=["perimetres-avenant-1.geojson"])
    date_fin: dt.date | None = Field(None, examples=[dt.date(2028, 1, 18)])

    @model_validator(mode="before")
    @classmethod
    def _libelle_defaults_to_id(cls, data: object) -> object:
        if isinstance(data, dict) and "libelle" not in data and isinstance(data.get("id"), str):
            return {**data, "libelle": data["id"]}
        return data

    @field_validator("fichier")
    @classmethod
    def _inside_folder(cls, fichier: str) -> str:
        if Path(fichier).is_absolute() or ".." in Path(fichier).parts:
            raise schema.problem(
                "bad-path",
                f"{schema.shown(fichier)} sort du dossier de la convention",
                'donnez un nom de fichier de ce dossier, p. ex. fichier = "perimetres-initiale.geojson"',
            )
        return fichier


def _duration(years: float) -> float:
    if not 0 < years <= 100:  # also refuses nan and inf
        raise schema.problem(
            "bad-duration",
            f"{schema.shown(years)} n'est pas une durée en années dans ]0, 100]",
            "écrivez duree_ans = 5 (la durée de la convention, en années)",
        )
    return years


def _crs_text(text: str) -> str:
    try:
        return CRS.from_user_input(text).to_string()
    except Exception:  # pyproj raises its own CRSError with a long English text
        raise schema.problem(
            "bad-crs",
            f"{schema.shown(text)} n'est pas un système de coordonnées connu",
            'écrivez crs = "EPSG:4326"',
        ) from None


Programme = schema.choice(PROGRAMMES, code="bad-programme")
PerimeterType = schema.choice(PERIMETER_TYPES, code="bad-type")
Duration = Annotated[float, AfterValidator(_duration)]
CrsText = Annotated[str, AfterValidator(_crs_text)]


class Edition(schema.Model):
    """What the printed documents say of who issues them (``[edition]`` of ``convention.toml``,
    all optional): the note's reference, service, contact and signature block, the annex's
    default number and its signature boxes."""

    reference: str = Field("", examples=["ORT-2023-014"])  # printed on notes and annexes
    service: str = Field("", examples=["Service urbanisme — mairie de Libercourt"])
    contact: str = Field("", examples=["urbanisme@mairie-libercourt.fr — 03 21 00 00 00"])
    signataire: str = Field("", examples=["Pour le maire, l'adjoint à l'urbanisme"])
    annexe: str = Field("", examples=["2"])  # number of the perimeters' annex of the convention
    visas: list[str] = Field([], examples=[["Le maire", "Le président de l'EPCI", "Le préfet"]])


class ConventionFile(schema.Model):
    """The typed content of ``convention.toml`` (format: ``perimeters/README.md``)."""

    nom: str = Field(min_length=1, examples=["ORT de Libercourt"])
    programme: Programme = Field(examples=["PVD"])
    communes: list[schema.InseeCode] = Field(examples=[["62907"]])  # not empty: see read_convention
    date_signature: dt.date = Field(examples=[dt.date(2023, 1, 18)])
    duree_ans: Duration = Field(examples=[5])
    fictif: bool = Field(False, examples=[False])
    crs: CrsText = Field(projection.WGS84, examples=["EPSG:4326"])
    source: str = Field("", examples=["Convention cadre ORT signée le 18/01/2023"])
    cadastre_dir: str | None = Field(None, examples=["cadastre"])
    divergences: list[str] = Field([], examples=[["la délibération et la convention diffèrent sur …"]])
    #: Names of the communes as printed (when the national lists do not know them, e.g. the demo).
    communes_noms: dict[schema.InseeCode, str] = Field({}, examples=[{"62907": "Libercourt"}])
    edition: Edition = Field(Edition(), examples=[{"reference": "ORT-2023-014"}])
    versions: list[Version] = Field(examples=[[]])


@dataclass
class Convention:
    """A convention (ORT, with its OPAH-RU perimeters) read from ``perimeters/<slug>/``.

    Geometries are returned in the territory's metric CRS (:attr:`metric_crs`).
    """

    path: Path
    slug: str
    nom: str
    programme: str
    communes: tuple[str, ...]
    date_signature: dt.date
    duree_ans: float
    versions: list[Version]
    fictif: bool = False
    crs: str = projection.WGS84
    source: str = ""
    #: Disagreements between the sources of the convention, recorded rather than hidden
    #: (quoted in every eligibility answer for its communes).
    divergences: tuple[str, ...] = ()
    cadastre_dir: Path | None = None
    #: Names of the communes given by ``convention.toml`` (``communes_noms``), by INSEE code.
    communes_noms: dict[str, str] = field(default_factory=dict)
    #: Mentions of the printed documents (``[edition]``).
    edition: Edition = field(default_factory=Edition)
    _cache: dict[str, gpd.GeoDataFrame] = field(default_factory=dict, repr=False)

    @property
    def metric_crs(self) -> str:
        """Metric CRS of the convention's territory (EPSG:2154 in metropolitan France)."""
        return projection.metric_crs_for(self.communes)

    @property
    def date_fin(self) -> dt.date:
        """End of the convention: signature date plus its duration."""
        years = int(self.duree_ans)
        end = _add_years(self.date_signature, years)
        return end + dt.timedelta(days=round((self.duree_ans - years) * 365.25))

    def version_at(self, when: dt.date | str) -> Version:
        """The version of the perimeters in force on ``when``.

        Raises
        ------
        PerimeterError
            If no version is in force that day (before the first one, or after an end date).
        """
        day = as_date(when, what="--date")
        if not self.versions:
            raise PerimeterError(
                "cette convention n'a pas encore de périmètre numérisé (versions = [])",
                source=str(self.path / METADATA_FILE),
                fix="dessinez les secteurs (`ort perimeter-from-parcels`) et ajoutez une entrée [[versions]]",
            )
        current = None
        for i, v in enumerate(self.versions):
            end = v.date_fin or (self.versions[i + 1].date_effet if i + 1 < len(self.versions) else None)
            if v.date_effet <= day and (end is None or day < end):
                current = v
        if current is None:
            first = self.versions[0].date_effet
            raise PerimeterError(
                f"aucune version des périmètres n'est en vigueur le {fmt.date_fr(day)} "
                f"(la première prend effet le {fmt.date_fr(first)})",
                source=str(self.path / METADATA_FILE),
                fix="choisissez une --date plus tardive, ou ajoutez une version à convention.toml",
            )
        return current

    def version(self, version_id: str) -> Version:
        for v in self.versions:
            if v.id == version_id:
                return v
        raise PerimeterError(
            f"version '{version_id}' inconnue",
            source=str(self.path / METADATA_FILE),
            fix=f"choisissez parmi {', '.join(v.id for v in self.versions)}",
        )

    def perimeters(
        self,
        when: dt.date | str | None = None,
        *,
        version: str | None = None,
        include_ort: bool = True,
        in_force_only: bool = False,
    ) -> gpd.GeoDataFrame:
        """The perimeters in force on ``when`` (default: today), in the metric CRS.

        Parameters
        ----------
        when : date or str, optional
            Date of evaluation; the version in force that day is used.
        version : str, optional
            A version id instead of a date.
        include_ort : bool
            Add a row ``ort`` for the whole ORT (union of the secteurs).
        in_force_only : bool
            Drop OPAH-RU perimeters whose own period does not cover ``when``.

        Returns
        -------
        GeoDataFrame
            Columns :data:`PERIMETER_COLUMNS`; geometry in :attr:`metric_crs` (metres).
        """
        day = as_date(when, what="--date") if when is not None else dt.date.today()
        ver = self.version(version) if version else self.version_at(day)
        gdf = self._load_version(ver).copy()
        start = pd.to_datetime(gdf["date_debut"]).dt.date
        end = pd.to_datetime(gdf["date_fin"]).dt.date
        gdf["en_vigueur"] = [
            (s is None or pd.isna(s) or s <= day) and (e is None or pd.isna(e) or day <= e)
            for s, e in zip(start, end, strict=True)
        ]
        if in_force_only:
            gdf = gdf[gdf["en_vigueur"]]
        gdf = gdf[PERIMETER_COLUMNS]
        if include_ort:
            gdf = add_ort_union(gdf)
        gdf.attrs.update(self.describe_version(ver))
        return gdf.reset_index(drop=True)

    def describe_version(self, ver: Version) -> dict[str, str]:
        """Provenance of a version, attached to results (``attrs``) and printed by the CLI."""
        return {
            "convention": self.nom,
            "convention_slug": self.slug,
            "version": ver.id,
            "version_libelle": ver.libelle,
            "version_date": ver.date_effet.isoformat(),
            "fictif": str(self.fictif).lower(),
        }

    def _load_version(self, ver: Version) -> gpd.GeoDataFrame:
        if ver.id not in self._cache:
            report = ValidationReport(str(self.path / ver.fichier))
            gdf = read_perimeter_file(
                self.path / ver.fichier,
                declared_crs=self.crs,
                metric_crs=self.metric_crs,
                report=report,
            )
            if not report.ok:
                raise ValidationFailed(report)
            gdf["version"] = ver.id
            gdf["version_date"] = ver.date_effet.isoformat()
            self._cache[ver.id] = gdf[[c for c in PERIMETER_COLUMNS if c != "en_vigueur"]]
        return self._cache[ver.id]


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def add_ort_union(perimeters: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Append one row ``ort``: the union of the ``secteur`` rows (the ORT as a whole)."""
    secteurs = perimeters[perimeters["type"] == "secteur"]
    if secteurs.empty or (perimeters["perimeter_id"] == ORT_ID).any():
        return perimeters
    union = shapely.union_all(secteurs.geometry.to_numpy())
    first = secteurs.iloc[0]
    row = {c: None for c in perimeters.columns}
    row.update(
        perimeter_id=ORT_ID,
        type="ort",
        nom=ORT_NAME,
        centre_ville=bool(secteurs["centre_ville"].any()),
        en_vigueur=True,
        version=first.get("version"),
        version_date=first.get("version_date"),
        geometry=union,
    )
    extra = gpd.GeoDataFrame([row], columns=perimeters.columns, geometry="geometry", crs=perimeters.crs)
    out = pd.concat([perimeters, extra], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=perimeters.crs)


# --------------------------------------------------------------------------------------------
# Reading


def read_convention(path: str | Path, *, report: ValidationReport | None = None) -> Convention:
    """Read ``perimeters/<slug>/convention.toml``.

    Parameters
    ----------
    path : str or Path
        The convention folder (or its ``convention.toml``).
    report : ValidationReport, optional
        Collect problems here instead of raising on the first error (used by validation).

    Raises
    ------
    PerimeterError, ValidationFailed
        Missing folder or file, unreadable TOML, missing or malformed fields.
    """
    path = Path(path)
    folder = path.parent if path.name == METADATA_FILE else path
    meta = folder / METADATA_FILE
    slug = folder.resolve().name
    if not folder.is_dir():
        raise MissingFileError(
            "dossier de convention introuvable",
            source=str(folder),
            fix=(
                "donnez le nom d'une convention livrée (demo, libercourt…) ou un dossier contenant "
                "convention.toml (ort demo --fichiers . copie celui de la démonstration et son README)"
            ),
        )
    if not meta.is_file():
        raise MissingFileError(
            f"pas de {METADATA_FILE} dans le dossier",
            source=str(folder),
            fix="créez-le comme celui de la démo (ort demo --fichiers . le copie dans perimeters/demo/)",
        )
    data = schema.read_toml(meta, what=METADATA_FILE, fix="corrigez la syntaxe")

    own_report = report is None
    report = report if report is not None else ValidationReport(str(meta))
    src = str(meta)
    if not _SLUG.match(slug):
        report.add(
            "error",
            "bad-slug",
            f"le nom du dossier '{slug}' n'est pas un slug — renommez-le avec a-z, 0-9 et -",
            source=src,
        )
    fallback = {
        "nom": slug,
        "programme": "autre",
        "communes": [],
        "date_signature": dt.date(1900, 1, 1),
        "duree_ans": 5.0,
        "versions": [],
    }
    meta_ok = schema.validate(ConventionFile, data, report=report, source=src, fallback=fallback)
    if meta_ok is None:  # not even a table at the top: nothing else can be read
        meta_ok = ConventionFile.model_validate(fallback)
    if data.get("communes") == []:
        report.add(
            "error",
            "no-commune",
            'la convention ne liste aucune commune — écrivez communes = ["62907"] (codes INSEE)',
            source=src,
        )
    if meta_ok.versions == [] and data.get("versions") == []:
        report.add(
            "warning",
            "no-version",
            "versions = [] : les périmètres ne sont pas encore numérisés ; "
            "seules les réponses à l'échelle de la commune sont possibles",
            source=src,
        )
    _check_version_dates(meta_ok.versions, meta_ok.date_signature, report, src)
    cadastre_dir = meta_ok.cadastre_dir
    conv = Convention(
        path=folder,
        slug=slug,
        nom=meta_ok.nom,
        programme=meta_ok.programme,
        communes=tuple(meta_ok.communes),
        date_signature=meta_ok.date_signature,
        duree_ans=meta_ok.duree_ans,
        versions=sorted(meta_ok.versions, key=lambda v: v.date_effet),
        fictif=meta_ok.fictif,
        crs=meta_ok.crs,
        source=meta_ok.source,
        divergences=tuple(meta_ok.divergences),
        cadastre_dir=(folder / cadastre_dir).resolve() if cadastre_dir else None,
        communes_noms=dict(meta_ok.communes_noms),
        edition=meta_ok.edition,
    )
    if conv.communes:
        try:
            conv.metric_crs  # noqa: B018 - refuse mixed overseas/metropolitan communes early
        except CRSError as err:
            report.add("error", "mixed-crs", str(err), source=src)
    if own_report and not report.ok:
        raise ValidationFailed(report)
    return conv


def _check_version_dates(
    versions: list[Version], signature: dt.date | None, report: ValidationReport, src: str
) -> None:
    counts = Counter(v.id for v in versions)  # linear: a convention.toml may list 100 000 versions
    for dup in sorted(i for i, n in counts.items() if n > 1):
        report.add(
            "error",
            "duplicate-version",
            f"l'identifiant de version '{dup}' est utilisé deux fois — donnez un id unique à chaque version",
            source=src,
        )
    for prev, nxt in zip(versions, versions[1:], strict=False):
        if nxt.date_effet <= prev.date_effet:
            report.add(
                "error",
                "version-dates",
                f"la version '{nxt.id}' prend effet le {nxt.date_effet} mais vient après '{prev.id}' "
                f"({prev.date_effet}) — listez les versions par date d'effet, sans date en double",
                source=src,
                feature=nxt.id,
            )
    for v in versions:
        if v.date_fin and v.date_fin <= v.date_effet:
            report.add(
                "error",
                "version-dates",
                f"date_fin {v.date_fin} n'est pas après date_effet {v.date_effet} — corrigez l'une des deux",
                source=src,
                feature=v.id,
            )
        if signature and v.date_effet < signature:
            report.add(
                "error",
                "version-dates",
                f"date_effet {v.date_effet} est avant la signature ({signature}) — corrigez la date",
                source=src,
                feature=v.id,
            )
    ordered = sorted(versions, key=lambda v: v.date_effet)
    for prev, nxt in zip(ordered, ordered[1:], strict=False):
        if prev.date_fin and prev.date_fin > nxt.date_effet:
            report.add(
                "error",
                "version-dates",
                f"la version '{prev.id}' finit le {prev.date_fin}, après le début de '{nxt.id}' "
                f"({nxt.date_effet}) : deux versions seraient en vigueur à la fois — corrigez date_fin",
                source=src,
                feature=prev.id,
            )


def read_perimeter_file(
    path: str | Path,
    *,
    declared_crs: str | None = None,
    metric_crs: str = projection.LAMBERT93,
    report: ValidationReport,
    code_insee: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one perimeter geometry file into the metric CRS, recording problems in ``report``.

    GeoJSON without a ``crs`` member is read in ``declared_crs`` (WGS84 by default, as RFC
    7946 says); a ``crs`` member that contradicts ``declared_crs`` is a mismatch. GeoPackage
    layers must carry their own CRS.

    Returns
    -------
    GeoDataFrame
        Columns :data:`PERIMETER_COLUMNS` minus version fields, metric CRS; features with
        unusable geometry are dropped (and reported).
    """
    path = Path(path)
    src = str(path)
    empty = gpd.GeoDataFrame(columns=PERIMETER_COLUMNS[:-1], geometry=gpd.GeoSeries(crs=metric_crs))
    if not path.is_file():
        report.add(
            "error",
            "missing-file",
            "fichier de géométrie introuvable — vérifiez le nom donné par fichier = … dans convention.toml",
            source=src,
        )
        return empty
    if path.suffix.lower() in (".geojson", ".json"):
        got = _read_geojson(path, declared_crs, report)
    elif path.suffix.lower() == ".gpkg":
        got = _read_gpkg(path, report)
    else:
        report.add("error", "bad-format", f"unsupported file type '{path.suffix}'", source=src)
        return empty
    if got is None:
        return empty
    rows, geoms, crs = got
    if not rows:
        report.add("error", "empty-layer", "the file has no features: an empty perimeter", source=src)
        return empty

    gdf = _normalise_properties(rows, geoms, crs, report, src)
    labels = [f"id={i}" for i in gdf["perimeter_id"]]
    keep = []
    for label, geom in zip(labels, gdf.geometry, strict=True):
        ok = True
        if geom is None or geom.is_empty:
            report.add("error", "empty-geometry", "the geometry is empty", source=src, feature=label)
            ok = False
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            report.add(
                "error",
                "geometry-type",
                f"geometry is {geom.geom_type}; a perimeter must be a Polygon or MultiPolygon",
                source=src,
                feature=label,
            )
            ok = False
        elif not shapely.is_valid(geom):
            report.add(
                "error",
                "invalid-geometry",
                f"invalid geometry: {shapely.is_valid_reason(geom)}",
                source=src,
                feature=label,
            )
            ok = False
        keep.append(ok)
    gdf = gdf[keep]
    if gdf.empty:
        return empty
    try:
        gdf = projection.to_metric(gdf, metric_crs, source=src, code_insee=code_insee)
    except Exception as err:  # CRSError: one line with the fix
        report.add("error", "crs", getattr(err, "message", str(err)) + _fix_suffix(err), source=src)
        return empty
    return gdf


def _fix_suffix(err: Exception) -> str:
    fix = getattr(err, "fix", None)
    return f" — {fix}" if fix else ""


#: Properties and geometries of a layer's features, with the layer's CRS.
_Layer = tuple[list[dict], list, str]


def _read_geojson(path: Path, declared_crs: str | None, report: ValidationReport) -> _Layer | None:
    src = str(path)
    try:
        data = schema.read_json(path, what="fichier de périmètres")
    except InputError as err:  # too large, too deep, not UTF-8, not JSON
        report.add("error", "invalid-json", err.message + (f" — {err.fix}" if err.fix else ""), source=src)
        return None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        report.add("error", "not-geojson", "not a GeoJSON FeatureCollection", source=src)
        return None
    features = data.get("features")
    if not isinstance(features, list):
        report.add("error", "not-geojson", "GeoJSON without a 'features' list", source=src)
        return None
    crs = declared_crs or projection.WGS84
    member = data.get("crs")
    if member is not None:
        name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
        try:
            file_crs = CRS.from_user_input(name)
        except Exception:
            report.add("error", "crs", f"unreadable crs member {member!r}", source=src)
            return None
        if (
            declared_crs
            and declared_crs != projection.WGS84
            and not file_crs.equals(CRS.from_user_input(declared_crs))
        ):
            report.add(
                "error",
                "crs-mismatch",
                f"the file declares {file_crs.to_string()} but convention.toml says {declared_crs}",
                source=src,
            )
            return None
        crs = file_crs.to_string()
    rows, geoms = [], []
    for i, feat in enumerate(features):
        if not isinstance(feat, dict) or not isinstance(feat.get("properties") or {}, dict):
            report.add(
                "error",
                "invalid-json",
                f"feature {i} is not a GeoJSON Feature object with a properties object",
                source=src,
                feature=f"feature {i}",
            )
            continue
        props = feat.get("properties") or {}
        label = f"id={props.get('id', i)}"
        try:
            geom = shapely.geometry.shape(feat["geometry"]) if feat.get("geometry") else None
        except Exception as err:  # malformed coordinates
            report.add("error", "bad-geometry", f"unreadable geometry ({err})", source=src, feature=label)
            geom = None
        rows.append(props)
        geoms.append(geom)
    return rows, geoms, crs


def _read_gpkg(path: Path, report: ValidationReport) -> _Layer | None:
    src = str(path)
    try:
        gdf = gpd.read_file(path)
    except Exception as err:
        report.add("error", "unreadable", f"cannot read the GeoPackage ({err})", source=src)
        return None
    if projection.crs_is_missing(gdf.crs):
        report.add(
            "error",
            "missing-crs",
            "the GeoPackage layer has no CRS — assign it in QGIS "
            "(Layer ▸ Set CRS) or with ogr2ogr -a_srs EPSG:2154",
            source=src,
        )
        return None
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]
    return rows, list(gdf.geometry), gdf.crs.to_string()


class PerimeterProperties(schema.Model):
    """The typed properties of one feature of a perimeter file (format: ``perimeters/README.md``).

    Other properties (a GIS export carries many) are kept out of the way, not refused.
    """

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, examples=["centre-ville"])
    type: PerimeterType = Field(examples=["secteur"])
    nom: str | None = Field(None, examples=["Centre-ville"])
    centre_ville: bool | None = Field(None, examples=[True])
    commune: schema.InseeCode | None = Field(None, examples=["62907"])
    date_debut: schema.IsoDate | None = Field(None, examples=["2024-01-01"])
    date_fin: schema.IsoDate | None = Field(None, examples=["2028-12-31"])


def _normalise_properties(
    rows: list[dict], geoms: list, crs: str, report: ValidationReport, src: str
) -> gpd.GeoDataFrame:
    records = []
    for i, props in enumerate(rows):
        raw_id = props.get("id")
        label = f"id={raw_id}" if isinstance(raw_id, str) and raw_id.strip() else f"feature {i}"
        clean = {k: v.strip() if isinstance(v, str) else v for k, v in props.items() if v is not None}
        # A feature with an unusable id or type is kept (as feature-N / autre) for the other checks.
        fallback = {"id": f"feature-{i}", "type": "autre"}
        got = schema.validate(
            PerimeterProperties,
            clean,
            report=report,
            source=src,
            feature=label,
            syntax="json",
            fallback=fallback,
        )
        records.append(got or PerimeterProperties.model_validate(fallback))
    ids = [p.id for p in records]
    for dup in sorted(i for i, n in Counter(ids).items() if n > 1):  # linear in the features
        report.add(
            "error",
            "duplicate-id",
            f"l'id '{dup}' est porté par plusieurs entités — donnez un id unique à chaque périmètre",
            source=src,
            feature=f"id={dup}",
        )
    for p in records:
        if p.date_debut and p.date_fin and p.date_fin < p.date_debut:
            report.add(
                "error",
                "bad-date",
                f"date_fin {p.date_fin} est avant date_debut {p.date_debut} — corrigez l'une des deux",
                source=src,
                feature=f"id={p.id}",
            )
    out = gpd.GeoDataFrame(geometry=geoms, crs=crs, index=range(len(records)))
    out["perimeter_id"] = ids
    out["type"] = [p.type for p in records]
    out["nom"] = [p.nom or p.id for p in records]
    out["centre_ville"] = [bool(p.centre_ville) for p in records]
    out["commune"] = [p.commune for p in records]
    out["date_debut"] = [p.date_debut.isoformat() if p.date_debut else None for p in records]
    out["date_fin"] = [p.date_fin.isoformat() if p.date_fin else None for p in records]
    return out


# --------------------------------------------------------------------------------------------
# Building and writing perimeters


def perimeter_from_parcels(
    parcels: gpd.GeoDataFrame,
    idus: list[str],
    *,
    perimeter_id: str,
    nom: str,
    type: str = "secteur",
    centre_ville: bool = False,
) -> gpd.GeoDataFrame:
    """Build a perimeter as the union of the given parcels.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcels with an ``idu`` column, in a metric CRS.
    idus : list of str
        Normalised parcel ids (see :func:`geo.idu.parse_many`).

    Raises
    ------
    geo.errors.ParcelIdError
        Listing the ids that are not in the cadastre.
    """
    from geo.errors import ParcelIdError

    if type not in PERIMETER_TYPES:
        raise PerimeterError(f"type '{type}' is not one of {', '.join(PERIMETER_TYPES)}")
    projection.require_metric(parcels, source="parcels")
    wanted = list(dict.fromkeys(idus))
    found = parcels[parcels["idu"].isin(wanted)]
    missing = sorted(set(wanted) - set(found["idu"]))
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5})" if len(missing) > 5 else "")
        raise ParcelIdError(
            f"{len(missing)} parcelle(s) absente(s) du cadastre : {shown}",
            fix="vérifiez les identifiants et le millésime du cadastre",
        )
    if found.empty:
        raise PerimeterError("aucune parcelle donnée : le périmètre serait vide")
    # A tiny buffer closes the hairline gaps that shared boundaries leave after a union.
    geom = shapely.union_all(found.geometry.buffer(0.01, join_style="mitre").to_numpy()).buffer(
        -0.01, join_style="mitre"
    )
    return gpd.GeoDataFrame(
        [{"id": perimeter_id, "type": type, "nom": nom, "centre_ville": centre_ville}],
        geometry=[geom],
        crs=parcels.crs,
    )


def perimeters_to_geojson(gdf: gpd.GeoDataFrame, *, precision: int = 7) -> str:
    """Serialise perimeters as a reviewable GeoJSON text in WGS84 (one feature per line).

    Properties are written in a fixed order and coordinates rounded to ``precision``
    decimals (7 ≈ 1 cm), so the same perimeters always give the same text.
    """
    wgs = gdf.to_crs(projection.WGS84)
    geoms = shapely.set_precision(wgs.geometry.values, 10**-precision)
    lines = []
    keys = [
        k
        for k in ("id", "type", "nom", "centre_ville", "commune", "date_debut", "date_fin")
        if k in wgs.columns
    ]
    for (_, row), geom in zip(wgs.iterrows(), geoms, strict=True):
        props = {k: _plain(row[k]) for k in keys}
        props = {k: v for k, v in props.items() if v is not None}
        feat = {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}
        lines.append(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def _plain(value):
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value
