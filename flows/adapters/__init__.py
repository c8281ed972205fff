"""Every piece of I/O, each in a small named adapter.

The lake (`lake.py`), the MLflow registry (`registry.py`), the registered model's own code
(`model_code.py`, logged with the pure core `vae/` beside it), what a run records about its code and
machine (`manifest.py`), and `connect.py`, which builds the lake and registry adapters from the settings.
"""
