"""The fictional demo commune Ormeval-sur-Mer (INSEE 62999), embedded in the package.

- ``commune``  its cadastre and convention, generated deterministically
- ``places``   its fictional action register and social housing list
- ``addresses`` its addresses, a Base Adresse Locale (BAL 1.4) linked to the parcels
- ``files``    shipped files copied out for a planner (``ort demo --fichiers``, ``ort carnets --copier``)

Regenerate it (developers): ``python -m geo.demo data/demo perimeters/demo --force``.
"""
