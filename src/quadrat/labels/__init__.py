"""CATAMI labels: one shared scheme for every source's class names (see docs/catami.md).

``catami`` (the tree, name rules, ``split_path``), ``catami_io`` (published forms,
``default_catami``), ``translate`` (proposing a node per source label), ``translate_io``
(reading sources, the reviewed mapping CSV), ``rollup`` (covers per level) and
``hierarchy`` (R matrix, max-constraint, multi-label targets). Importing this package
imports none of them, and none of them imports torch at import time.
"""
