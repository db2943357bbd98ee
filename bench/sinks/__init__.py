"""Consumer processes: one per SDK, each in its own interpreter (and venv).

``pye2_sink`` runs with our venv's Python, ``ratio1_sink`` with the ratio1
venv the bench creates; both speak the line protocol of ``_runtime``.
Nothing here may import more than the standard library at package level.
"""
