"""Places of a convention, located on parcels and sectors.

- ``friches``   Cartofriches and CNIG friches
- ``housing``   social housing sites (by coordinates, parcel ids or address)
- ``actions``   the convention's action register and its dashboard
- ``common``    what they share: labels of unlocated places, accent folding, summary order
"""
