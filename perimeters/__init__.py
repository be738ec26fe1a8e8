"""Conventions as reviewable files, shipped as ``geo.conventions``; read them through :mod:`geo.embedded`."""
