"""Reference systems measured next to iznet (optional extras; nothing here is imported by the main package).

- :mod:`iznet.reference.dlib_ref`: dlib's HOG face detector, 5-point landmarks and ResNet face descriptor
  (``pip install 'iznet[dlib]'``), behind iznet's own :class:`~iznet.recognize.pipeline.Pipeline`, gallery and
  matcher.
"""
