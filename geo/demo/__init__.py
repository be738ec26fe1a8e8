"""The fictional demo commune Ormeval-sur-Mer (INSEE 62999), embedded in the package.

- ``commune``  its cadastre and convention, generated deterministically
- ``places``   its fictional action register and social housing list

Regenerate it (developers): ``python -m geo.demo data/demo perimeters/demo --force``.
"""
