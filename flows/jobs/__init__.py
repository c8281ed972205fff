"""The Prefect flows: `retrain`, `monitor`, `score`, `backtest` and their deployments (`deployments.py`).

`common.py` holds what they share (task options, loading the champion); `candidate.py` what a retraining
candidate is made of; `plots.py` the figures logged with runs.
"""
