"""Regenerate the embedded demo (developers): ``python -m geo.demo data/demo perimeters/demo [--force]``."""

import sys

from geo.demo.commune import build_demo

args = [a for a in sys.argv[1:] if a != "--force"]
if len(args) != 2:
    sys.exit("usage : python -m geo.demo DOSSIER_DONNEES DOSSIER_CONVENTION [--force]")
paths = build_demo(data_dir=args[0], perimeters_dir=args[1], force="--force" in sys.argv)
print(f"Démo écrite : {paths.data_dir}, {paths.perimeters_dir}")
