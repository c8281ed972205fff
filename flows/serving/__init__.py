"""The REST service (`sentinel serve`), one room per question.

`app.py` routes, `champion.py` follows `models:/NAME@champion`, `bodies.py` request and response layouts,
`streams.py` stream states, `metrics.py` Prometheus metrics.
"""
