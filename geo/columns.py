"""The tables people open: French column names, order, units and XLSX headers.

Every table ``ort`` writes for people (``check``, ``parcels``, the annex parcel lists,
eligibility batches, ``communes``, ``actions``, ``logements``, ``friches``) goes through a
:class:`Layout` here: the library keeps its own column names (``status``, ``share``...,
the machine schema of ``ort classify``), and the layout turns them into the documented
French schema just before writing (``docs/tableaux.md`` lists every column).

Shares become percentages with one decimal (``part_incluse_pct`` 15.0 for a share of 0.15),
areas are rounded to the tenth of a m², statuses become their French label.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geo.classify import STATUS_LABELS


@dataclass(frozen=True)
class Column:
    """One column of a user-facing table.

    ``name`` is the column in CSV, GeoPackage, Parquet and JSON; ``label`` the header of the
    XLSX annex; ``source`` the library's column it comes from (default ``name``); ``kind`` one
    of ``text``, ``int``, ``area`` (m²), ``percent`` (0–100, one decimal), ``metres``,
    ``euros``, ``date``, ``bool``, or a parcel's parts as the annex writes them: ``reference``
    (``A 238`` from the IDU), ``section`` (``A``), ``numero`` (``238``), all text.
    """

    name: str
    label: str
    kind: str = "text"
    source: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class Layout:
    """A user-facing table: its title, XLSX sheet name and columns in order."""

    title: str
    sheet: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def labels(self) -> dict[str, str]:
        return {c.name: c.label for c in self.columns}

    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.columns}

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the layout's columns first (renamed, converted), other columns after.

        Columns of the layout missing from ``df`` are left out; columns of ``df`` the layout
        does not know (a planner's own comments, a geometry) are kept, in their order, after.
        """
        out = {}
        used = set()
        for col in self.columns:
            src = col.source or col.name
            if src not in df.columns:
                continue
            used.add(src)
            out[col.name] = _convert(df[src], col.kind, src)
        # Library columns already converted (a French ``statut`` beside ``status``) are dropped.
        rest = [c for c in df.columns if c not in used and c not in out]
        frame = pd.DataFrame(out, index=df.index)
        for c in rest:
            frame[c] = df[c]
        if hasattr(df, "geometry") and "geometry" in frame.columns:
            import geopandas as gpd

            frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=df.crs)
        frame.attrs = {}
        return frame.reset_index(drop=True)


def section_label(value: object) -> object:
    """A section as the annex, the CLI and the cadastre's plans write it: ``"0A"`` → ``"A"``."""
    if not isinstance(value, str) or not value:
        return value
    return value.lstrip("0") or "0"


def numero_label(value: object) -> object:
    """A numéro as planners write it: ``"0238"`` → ``"238"`` (text; any other form unchanged)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return value
    return str(int(value))


def reference_label(idu: object) -> object:
    """The planner's form of a parcel within its commune: ``"A 238"``, ``"AB 12"``, ``"123 AB 12"``.

    The prefixe of an absorbed former commune is written only when it is not ``000``, as on the
    annex; anything that is not a 14-character IDU is left as it is.

    >>> [reference_label(i) for i in ("62999000AB0012", "629990000A0238", "62999123AB0012")]
    ['AB 12', 'A 238', '123 AB 12']
    """
    if not isinstance(idu, str) or len(idu) != 14:
        return idu
    head = "" if idu[5:8] == "000" else f"{idu[5:8]} "
    return f"{head}{section_label(idu[8:10])} {numero_label(idu[10:])}"


def _convert(values: pd.Series, kind: str, source: str) -> pd.Series:
    if kind == "reference":
        return values.map(reference_label)
    if kind == "section":
        return values.map(section_label)
    if kind == "numero":
        return values.map(numero_label)
    if source == "status":
        return values.map(lambda s: STATUS_LABELS.get(s, s))
    if kind == "percent" and source in ("share", "part"):
        return (pd.to_numeric(values, errors="coerce") * 100).round(1)
    if kind in ("area", "metres"):
        return pd.to_numeric(values, errors="coerce").round(1)
    return values


def _c(name, label, kind="text", source=None, doc=""):
    return Column(name, label, kind, source, doc)


_PARCEL = (
    _c("idu", "Parcelle (IDU)", doc="identifiant de la parcelle, 14 caractères"),
    _c(
        "reference",
        "Référence cadastrale",
        "reference",
        "idu",
        "section et numéro comme sur l'annexe : A 238, AB 12 (préfixe devant s'il n'est pas 000)",
    ),
    _c("code_insee", "Commune (INSEE)", doc="code INSEE de la commune, 5 caractères"),
    _c("section", "Section", "section", doc="comme sur le plan cadastral : A, AB (sans zéro devant)"),
    _c("numero", "Numéro", "numero", doc="numéro de la parcelle dans la section, sans zéros devant : 238"),
    _c("contenance_m2", "Contenance (m²)", "area", "contenance", "surface cadastrale déclarée"),
)

#: One row per parcel × perimeter (``ort check -o``, ``ort parcels``, ``ort demo``, annex lists).
PARCELS = Layout(
    "Parcelles et périmètres",
    "Parcelles",
    (
        *_PARCEL,
        _c("perimetre_id", "Périmètre", source="perimeter_id"),
        _c("perimetre_nom", "Nom du périmètre", source="perimeter_nom"),
        _c("perimetre_type", "Type de périmètre", source="perimeter_type", doc="secteur, opah_ru, ort..."),
        _c("statut", "Statut", source="status", doc="incluse, à cheval ou hors périmètre"),
        _c(
            "part_incluse_pct", "Part incluse (%)", "percent", "share", "part de la surface dans le périmètre"
        ),
        _c("surface_incluse_m2", "Surface incluse (m²)", "area", "area_inside_m2"),
        _c("surface_parcelle_m2", "Surface calculée (m²)", "area", "parcel_area_m2", "surface du polygone"),
        _c("distance_m", "Distance (m)", "metres", "distance_m", "distance au périmètre, 0 si contact"),
    ),
)

#: One row per answer of ``ort eligibility -o``.
ELIGIBILITY = Layout(
    "Éligibilité aux effets de l'ORT",
    "Éligibilité",
    (
        _c("code_insee", "Commune (INSEE)"),
        _c("commune", "Commune"),
        _c("idu", "Parcelle (IDU)"),
        _c("regle", "Règle"),
        _c("dispositif", "Dispositif", doc="nom court : Denormandie, VIR, DIIF, OPAH-RU..."),
        _c("effet", "Effet"),
        _c("niveau", "Niveau", doc="commune, ORT, périmètre, secteur, hors secteurs, délibération"),
        _c("verdict", "Verdict", doc="oui, non, partiellement, inconnu"),
        _c("verdict_libelle", "Verdict (libellé)", doc="ex. oui (priorité de programmation, non opposable)"),
        _c("part_incluse_pct", "Part incluse (%)", "percent", "part"),
        _c("motif", "Motif"),
        _c(
            "voies",
            "Voies",
            doc="Denormandie : arrêté du 26 mars 2019, ORT conclue, copropriété en difficulté",
        ),
        _c("reference", "Référence"),
        _c("date_evaluee", "Date évaluée", "date"),
        _c("periode", "Période"),
        _c("donnees", "Données utilisées"),
        _c("mises_en_garde", "Mises en garde"),
        _c("a_verifier", "À vérifier", "bool", doc="oui exactement quand des points à vérifier suivent"),
        _c("points_a_verifier", "Points à vérifier"),
        _c("verifie_le", "Règles vérifiées le", "date"),
        _c("avertissement", "Avertissement", doc="information indicative, ni rescrit fiscal ni décision"),
    ),
)

#: One row per friche of ``ort friches -o`` (CNIG friches standard names where it has one).
FRICHES = Layout(
    "Friches",
    "Friches",
    (
        _c("site_id", "Identifiant du site"),
        _c("site_nom", "Nom du site"),
        _c("site_type", "Type de site"),
        _c("site_statut", "Statut (CNIG)", doc="friche sans projet, friche avec projet, reconvertie..."),
        _c("surface_m2", "Surface (m²)", "area", doc="surface déclarée par la source"),
        _c("surface_source", "Origine de la surface"),
        _c("code_insee", "Commune (INSEE)"),
        _c("comm_nom", "Commune"),
        _c("proprio_type", "Type de propriétaire"),
        _c("proprio_categorie", "Catégorie de propriétaire"),
        _c("proprio_personne", "Personne propriétaire"),
        _c("proprio_nom", "Propriétaire"),
        _c("parcelles", "Parcelles", doc="IDU séparés par « | »"),
        _c("n_parcelles", "Nombre de parcelles", "int"),
        _c("source_nom", "Source"),
        _c("source_format", "Format de la source"),
        _c(
            "origine_geometrie",
            "Origine de la géométrie",
            source="geometry_source",
            doc="point, parcelles, parcelles (k/n)",
        ),
        _c("perimetres", "Périmètres", doc="périmètres où la friche est incluse ou à cheval, « | »"),
        _c("lon", "Longitude (WGS84)", "decimal"),
        _c("lat", "Latitude (WGS84)", "decimal"),
    ),
)

#: One row per social housing site of ``ort logements -o``.
LOGEMENTS = Layout(
    "Logements sociaux",
    "Logements",
    (
        _c("site_id", "Identifiant du site"),
        _c("bailleur", "Bailleur"),
        _c("programme", "Programme"),
        _c("logements", "Logements", "int"),
        _c("annee", "Année", "year"),
        _c("code_insee", "Commune (INSEE)"),
        _c("commune", "Commune"),
        _c("adresse", "Adresse"),
        _c("parcelles", "Parcelles", doc="IDU séparés par « | »"),
        _c("localisation", "Localisation", doc="coordonnées, parcelles, adresse (BAN), adresse (BAL)"),
        _c("motif", "Motif (non localisé)"),
        _c("alerte", "Alerte"),
        _c("lignes", "Lignes du fichier"),
        _c("perimetres", "Périmètres", doc="périmètres où le site est inclus ou à cheval, « | »"),
        _c("lon", "Longitude (WGS84)", "decimal"),
        _c("lat", "Latitude (WGS84)", "decimal"),
    ),
)

#: One row per action of ``ort actions -o`` (CSV; the XLSX adds the dashboard's sheets).
ACTIONS = Layout(
    "Registre des actions",
    "Actions",
    (
        _c("id", "Action"),
        _c("axe", "Axe"),
        _c("axe_libelle", "Libellé de l'axe"),
        _c("titre", "Titre"),
        _c("statut", "Statut"),
        _c("fiche_action", "Fiche action"),
        _c("maitre_ouvrage", "Maître d'ouvrage"),
        _c("partenaires", "Partenaires"),
        _c("budget", "Budget (€)", "euros"),
        _c("financement_total", "Financements (€)", "euros"),
        _c("financeurs", "Financeurs"),
        _c("indicateurs", "Indicateurs"),
        _c("date_debut", "Début", "date"),
        _c("date_fin", "Fin", "date"),
        _c("avancement", "Avancement (%)", "percent"),
        _c("localisation", "Localisation"),
        _c("secteur", "Secteur"),
        _c("parcelles", "Parcelles"),
        _c("point", "Point"),
        _c("fichier", "Fichier"),
        _c("commentaire", "Commentaire"),
    ),
)

#: French names of the library's own columns that no layout above renames (tables shown as they
#: are, in the notebooks).
FRENCH_NAMES = {
    "perimeter_id": "perimetre_id",
    "perimeter_nom": "perimetre_nom",
    "perimeter_type": "perimetre_type",
    "area_outside_m2": "surface_hors_m2",
    "parcel_area_m2": "surface_parcelle_m2",
    "area_inside_m2": "surface_incluse_m2",
}


def french_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with French column names and values, to show to people as it is (a notebook).

    The columns of :data:`PARCELS` are renamed and converted as in the files ``ort`` writes
    (``statut`` in words, ``part_incluse_pct`` in %, ``reference`` as ``A 238``), then the
    library's other English names (:data:`FRENCH_NAMES`); the other columns are kept as they are.
    """
    out = PARCELS.apply(df) if {"idu", "status", "share"} & set(df.columns) else df.copy()
    out = out.rename(columns={k: v for k, v in FRENCH_NAMES.items() if v not in out.columns})
    for col in out.columns:
        if str(col).endswith("_m2") and pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(1)
    return out


#: Every user-facing layout, by the command that writes it (documentation, tests).
LAYOUTS = {
    "check": PARCELS,
    "eligibility": ELIGIBILITY,
    "friches": FRICHES,
    "logements": LOGEMENTS,
    "actions": ACTIONS,
}
