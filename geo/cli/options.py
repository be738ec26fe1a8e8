"""Options shared by the ``ort`` commands: the command classes, the common options
(perimeters, date, cadastre, tolerances, --force) and their parsing. The jobs themselves are in
:mod:`geo.app`.

Every topic module of :mod:`geo.cli` builds its commands from these; nothing here imports a
command module, so there is no import loop.
"""

from __future__ import annotations

import datetime as dt
import sys
import warnings
from pathlib import Path

import click

from geo import settings
from geo.errors import OrtError, OrtWarning, ValidationFailed

EXIT_BAD_INPUT = 2


class Command(click.Command):
    """A command whose ``--help`` option is described in French, like the rest of its help, and
    whose run turns SIGTERM into an interrupt (partial files cleaned up, exit code 143)."""

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option

    def invoke(self, ctx: click.Context):
        # Imported here, once the options are parsed: `ort check --help` never loads geo.io's pandas.
        from geo.io import sigterm_as_interrupt

        with sigterm_as_interrupt():
            return super().invoke(ctx)


HELP_OPTION_TEXT = "Afficher cette aide et quitter."


class Group(click.Group):
    """Turn the project's errors into one clear line and an exit code."""

    command_class = Command

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option

    def invoke(self, ctx: click.Context):
        debug = bool(ctx.params.get("debug"))  # parsed already; ctx.obj is filled later
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            # Libraries' warnings (pyogrio, shapely, pandas) are English notes for developers:
            # shown with --debug only. The project's own warnings are one French line each.
            warnings.simplefilter("default" if debug else "ignore")
            warnings.simplefilter("always", OrtWarning)
            return self._invoke(ctx)

    def _invoke(self, ctx: click.Context):
        try:
            with _safe_terminal():  # SIGTERM is an interrupt while a command runs (Command.invoke)
                return super().invoke(ctx)
        except ValidationFailed as err:
            for problem in err.report.problems:
                click.echo(str(problem), err=True)
            click.echo(f"Erreur : {err}", err=True)
            ctx.exit(err.exit_code)
        except OrtError as err:
            click.echo(f"Erreur : {err}", err=True)
            ctx.exit(err.exit_code)
        except BrokenPipeError:  # output piped into `head` and the like: stop quietly
            import os

            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python from failing at exit
            ctx.exit(0)
        except KeyboardInterrupt as err:
            click.echo("Interrompu : aucun fichier partiel n'a été laissé.", err=True)
            io = sys.modules.get("geo.io")  # not imported: not a SIGTERM (see Command.invoke)
            ctx.exit(143 if io is not None and isinstance(err, io.Terminated) else 130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:  # noqa: BLE001 - last resort: no traceback for users
            if ctx.obj and ctx.obj.get("debug"):
                raise
            ctx.exit(_unexpected_error(err))


def _unexpected_error(err: Exception) -> int:
    """Print an error met outside the project's own (disk full, read-only, a bug): the exit code."""
    if not isinstance(err, OSError) or err.errno is None:
        _internal_error(err)
        return 3
    from geo.errors import one_line  # disk full, read-only, permissions... met outside geo.io's writers
    from geo.io import os_error_text

    reason, fix = os_error_text(err)
    where = f"{one_line(err.filename)} : " if err.filename else ""
    click.echo(f"Erreur : {where}{reason} — {fix}", err=True)
    return 1


# Control characters that make a terminal act (ESC sequences, C1 controls such as CSI 0x9B,
# BEL, backspace): removed from what the commands print. Tab, newline and carriage return
# (progress bars) stay.
_TERMINAL_CONTROLS = dict.fromkeys(
    [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + [0x7F] + list(range(0x80, 0xA0))
)


class _SafeStream:
    """A text stream that drops terminal control characters: names read from input files
    (a convention's nom, a perimeter's, a comment) cannot recolour, retitle or clear the
    user's terminal."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if isinstance(text, str):
            self._stream.write(text.translate(_TERMINAL_CONTROLS))
        else:
            self._stream.write(text)
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _safe_terminal:  # noqa: N801 - used as a context manager
    """Within the block, ``sys.stdout`` and ``sys.stderr`` drop terminal control characters."""

    def __enter__(self) -> None:
        self._saved = sys.stdout, sys.stderr
        if not isinstance(sys.stdout, _SafeStream):
            sys.stdout = _SafeStream(sys.stdout)
        if not isinstance(sys.stderr, _SafeStream):
            sys.stderr = _SafeStream(sys.stderr)

    def __exit__(self, *exc) -> None:
        sys.stdout, sys.stderr = self._saved


def _internal_error(err: BaseException) -> None:
    click.echo(
        f"Erreur interne : {type(err).__name__}: {err} (relancez avec --debug et signalez-la)",
        err=True,
    )


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the CLI's own line: ``Avertissement : …`` (never Python's source line)."""
    if issubclass(category, OrtWarning):
        click.echo(f"Avertissement : {message}", err=True)
    else:  # only with --debug
        click.echo(f"Avertissement (bibliothèque, {category.__name__}) : {message}", err=True)


# --- shared options ------------------------------------------------------------------------


def _csv_international(ctx: click.Context, _param, value: bool) -> bool:
    if value:  # for this command's run only (settings.use): nothing global changes
        ctx.with_resource(settings.use(csv_format="international"))
    return value


#: Added to every command that writes files (see :mod:`geo.cli`).
csv_international_option = click.Option(
    ["--csv-international"],
    is_flag=True,
    expose_value=False,
    callback=_csv_international,
    help="CSV au format international (séparateur « , », UTF-8 sans BOM, point décimal) "
    "au lieu du format d'Excel en français (« ; », UTF-8 avec BOM, virgule décimale).",
)


def _convention_folder(ctx, param, value: Path | None) -> Path | None:
    """A folder as given, or the name of a convention shipped with ort (``demo``, ``libercourt``)."""
    if value is None:
        return value
    from geo.app.load import convention_folder

    return convention_folder(value)


def perimeters_option(required: bool = True):
    return click.option(
        "--perimeters",
        "-p",
        "perimeters",
        required=required,
        type=click.Path(file_okay=False, path_type=Path),
        callback=_convention_folder,
        help="Dossier de la convention (ex. perimeters/demo), ou le nom d'une convention fournie "
        "avec ort : demo, libercourt, lens-lievin, haute-correze.",
    )


date_option = click.option(
    "--date",
    "when",
    default=None,
    help="Date d'évaluation, AAAA-MM-JJ ou JJ/MM/AAAA (défaut : aujourd'hui).",
)
cadastre_option = click.option(
    "--cadastre",
    type=click.Path(path_type=Path),
    default=None,
    help="Fichier ou dossier du cadastre (Etalab .json/.json.gz, .gpkg, shapefile zippé) ; "
    "défaut : le cadastre_dir de la convention, sinon téléchargement dans le cache.",
)
millesime_option = click.option(
    "--millesime", default=None, help="Millésime du cadastre à télécharger : latest ou AAAA-MM-JJ."
)
force_option = click.option("--force", is_flag=True, help="Remplacer une sortie existante.")
fix_option = click.option(
    "--fix", is_flag=True, help="Réparer les géométries invalides (make_valid) au chargement."
)


def _tolerance(ctx, param, value: float | None) -> float | None:
    """A finite tolerance, ≥ 0 (and below 50 % for a share): ``inf`` or ``nan`` would make every
    parcel inside or outside."""
    import math

    if value is None:
        return None
    top = 50 if param.name == "tolerance_pct" else math.inf
    if not math.isfinite(value) or not 0 <= value < top:
        unit = "en % (entre 0 et 50)" if param.name == "tolerance_pct" else "en m² (nombre ≥ 0)"
        raise click.BadParameter(f"{value!r} n'est pas une tolérance utilisable {unit}, ex. 1")
    return value


def tolerance_options(f):
    f = click.option(
        "--tolerance-pct",
        type=float,
        default=None,
        callback=_tolerance,
        help=f"Part de la parcelle ignorée comme bruit, en % (défaut {settings.tolerance_pct}).",
    )(f)
    return click.option(
        "--tolerance-m2",
        type=float,
        default=None,
        callback=_tolerance,
        help=f"Surface ignorée comme bruit de numérisation, en m² (défaut {settings.tolerance_m2}).",
    )(f)


def parse_date(when: str | None) -> dt.date:
    """``--date``: ``2024-06-01`` or ``01/06/2024`` (:func:`geo.perimeters.parse_date`), default today."""
    from geo.perimeters import parse_date as parse

    return parse(when, what="--date")


addresses_option = click.option(
    "--adresses",
    "address_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fichier d'adresses de la commune (BAN adresses-{dep}.csv.gz ou export BAL) pour trouver les "
    "adresses hors ligne ; sans lui, l'API Adresse (BAN) est interrogée (réponses gardées en cache).",
)


#: The job functions that lived here, now in :mod:`geo.app.load` (kept importable from here).
_MOVED = (
    "load_parcels",
    "load_communes",
    "provenance",
    "classify_with_progress",
    "with_parcel_columns",
    "split_addresses",
    "locate_addresses",
    "read_entries_file",
    "ADDRESS_COLUMNS",
)


def __getattr__(name: str):
    if name in _MOVED:
        from geo.app import load

        return getattr(load, name)
    raise AttributeError(f"module 'geo.cli.options' has no attribute {name!r}")
