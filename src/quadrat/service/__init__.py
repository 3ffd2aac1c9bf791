"""``quadrat serve``: CoralNet's deploy API (and more) over a quadrat project.

Modules: :mod:`~quadrat.service.settings` (what a server is configured with),
:mod:`~quadrat.service.accounts` (passwords, tokens, roles), the FastAPI application, the job
queue and the workers that classify deployed images. Needs the ``serve`` extra.
"""
