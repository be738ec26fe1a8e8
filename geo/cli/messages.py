"""Click's own messages in French (usage errors, "Try ... for help", missing options...).

Click writes its messages through ``gettext`` (``_()`` and ``ngettext()`` in its modules) but
ships no French catalogue. :func:`install` gives those modules a translator that looks the
English text up in :data:`MESSAGES` (the English text passes through when a click upgrade
brings a message not listed here; the test of English words then fails and names it).
"""

from __future__ import annotations

import importlib

#: Click's English message → French. Placeholders are click's own.
MESSAGES = {
    "Error: {message}": "Erreur : {message}",
    "Try '{command} {option}' for help.": "Aide : '{command} {option}'.",
    "Usage:": "Utilisation :",
    "Invalid value: {message}": "Valeur invalide : {message}",
    "Invalid value for {param_hint}: {message}": "Valeur refusée pour {param_hint} : {message}",
    "Missing argument": "Argument manquant",
    "Missing option": "Option manquante",
    "Missing parameter": "Paramètre manquant",
    "Missing {param_type}": "{param_type} manquant(e)",
    "Missing parameter: {param_name}": "Paramètre manquant : {param_name}",
    "No such option {name!r}.": "Option {name!r} inconnue de cette commande.",
    "No such option: {name}": "Option {name} inconnue de cette commande.",
    "No such command {name!r}.": "Commande {name!r} inconnue.",
    "unknown error": "erreur inconnue",
    "Could not open file {filename!r}: {message}": "Impossible d'ouvrir le fichier {filename!r} : {message}",
    "Missing command.": "Commande manquante.",
    "Aborted!": "Interrompu.",
    "Options": "Options",
    "Commands": "Commandes",
    "Value must be an iterable.": "La valeur doit être une liste.",
    "default: {default}": "défaut : {default}",
    "env var: {var}": "variable d'environnement : {var}",
    "required": "obligatoire",
    "(dynamic)": "(dynamique)",
    "Invalid start character for option ({option})": "Caractère initial refusé pour l'option ({option})",
    "Argument {name!r} takes {nargs} values.": "L'argument {name!r} prend {nargs} valeurs.",
    "Option {name!r} does not take a value.": "L'option {name!r} ne prend pas de valeur.",
    "Choose from:\n\t{choices}": "Choisissez parmi :\n\t{choices}",
    "{value!r} is not a valid {number_type}.": "{value!r} n'est pas un {number_type} valable.",
    "integer": "entier",
    "float": "nombre décimal",
    "{value} is not in the range {range}.": "{value} est hors de l'intervalle {range}.",
    "{value!r} is not a valid boolean. Recognized values: {states}": (
        "{value!r} n'est pas un booléen reconnu. Valeurs acceptées : {states}"
    ),
    "{value!r} is not a valid UUID.": "{value!r} n'est pas un UUID valable.",
    "file": "le fichier",
    "directory": "le dossier",
    "path": "le chemin",
    "{name} {filename!r} does not exist.": "{name} {filename!r} n'existe pas.",
    "{name} {filename!r} is a file.": "{name} {filename!r} est un fichier, pas un dossier.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} est un dossier, pas un fichier.",
    "{name} {filename!r} is not readable.": "{name} {filename!r} n'est pas lisible.",
    "{name} {filename!r} is not writable.": "{name} {filename!r} n'est pas accessible en écriture.",
    "{name} {filename!r} is not executable.": "{name} {filename!r} n'est pas exécutable.",
    "Do you want to continue?": "Continuer ?",
    "Confirm the action without prompting.": "Confirmer sans poser la question.",
    "%(prog)s, version %(version)s": "%(prog)s, version %(version)s",
    "Show the version and exit.": "Afficher la version et quitter.",
    "Show this message and exit.": "Afficher cette aide et quitter.",
    "deprecated": "obsolète",
}

#: (singular, plural) → (French singular, French plural).
PLURALS = {
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"): (
        "Argument en trop : {args}",
        "Arguments en trop : {args}",
    ),
    ("Takes {nargs} values but 1 was given.", "Takes {nargs} values but {len} were given."): (
        "Attend {nargs} valeurs, 1 seule donnée.",
        "Attend {nargs} valeurs, {len} données.",
    ),
    ("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"): (
        "Vouliez-vous dire {possibility} ?",
        "(Vouliez-vous dire l'une de : {possibilities} ?)",
    ),
    ("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."): (
        "L'option {name!r} attend une valeur.",
        "L'option {name!r} attend {nargs} valeurs.",
    ),
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."): (
        "{value!r} n'est pas {choice}.",
        "{value!r} n'est pas l'une des valeurs {choices}.",
    ),
    ("{value!r} does not match the format {format}.", "{value!r} does not match the formats {formats}."): (
        "{value!r} ne suit pas le format {format}.",
        "{value!r} ne suit aucun des formats {formats}.",
    ),
}


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    fr = PLURALS.get((singular, plural))
    if fr is None:
        return singular if n == 1 else plural
    return fr[0] if n == 1 else fr[1]


_MODULES = (
    "click.core",
    "click.exceptions",
    "click.parser",
    "click.types",
    "click.decorators",
    "click.formatting",
    "click.termui",
)


def french_metavar(param) -> str | None:
    """The placeholder shown in help for an option's value, in French (click says FILE, TEXT...)."""
    import click

    kind = param.type
    if isinstance(kind, click.Path):
        if kind.file_okay and not kind.dir_okay:
            return "FICHIER"
        if kind.dir_okay and not kind.file_okay:
            return "DOSSIER"
        return "CHEMIN"
    if isinstance(kind, click.types.IntParamType):
        return "ENTIER"
    if isinstance(kind, click.types.FloatParamType):
        return "NOMBRE"
    if isinstance(kind, click.types.StringParamType):
        return "TEXTE"
    return None


def translate_metavars(command) -> None:
    """Give every option of ``command`` a French placeholder, unless it has its own."""
    import click

    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and param.metavar is None:
            param.metavar = french_metavar(param)


def install() -> None:
    """Make click's modules speak French (idempotent)."""
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - a module renamed by a click release
            continue
        if hasattr(module, "_"):
            module._ = gettext
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext
