"""Maps of a convention.

- ``page``    the interactive offline map (a ``folium.Map``) and its saving as one HTML file
- ``layers``  each layer of that map, built from GeoDataFrames
- ``assets``  Leaflet and the map's runtime, inlined so the page works offline
- ``drawing`` the drawing pieces the note and the annex share (scale bar, north arrow, inset, labels)
- ``plotting`` polygons and lines drawn as ``GeoSeries.plot`` draws them, without pyplot
- ``style``   the colours of statuses and perimeters every map uses, and the cadastre's mention
- ``streets`` street names placed along their address points (web map and note)
- ``annex``   the printed annex (PNG/PDF pages and parcel lists, matplotlib)
- ``safe``    the page builder that writes data as text, never as template source (no Jinja pass)
- ``text``    names from the data made printable: bidi and control characters out, long names cut
- ``tiles``   background presets (Plan IGN, IGN orthophoto, OpenStreetMap), tiles cached for the annex
"""
