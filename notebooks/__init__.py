"""The notebooks shipped with ort (``ort carnets --copier DIR`` copies them out): data, not code."""
