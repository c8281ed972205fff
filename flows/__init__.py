"""The orchestration shell: it wires the pure core (`vae/`, `validation/`) to stores, schedules and clients.

Where things are:

| question | one hop |
|---|---|
| where is the promotion decided? | `validation/gates.py` `promotion_decision`; `jobs/retrain.py` applies it |
| where is the threshold computed? | `vae/calibration.py` (split conformal), called by `VAEDetector.fit` |
| where does the service load the model? | `serving/champion.py` (follows `models:/NAME@champion`) |
| where is the data read and written? | `adapters/lake.py` (a folder or S3) |
| which rows does a candidate train on? | `jobs/window.py` (the window scanned file by file, sampled) |
| where are versions, aliases and the ledger? | `adapters/registry.py` (MLflow) |
| what keeps two champion moves apart? | `adapters/locks.py` (one lock per model, held from read to write) |
| what does each job do? | `jobs/`: `retrain`, `monitor`, `score`, `backtest`, `report`, `deployments` |
| how are alerts grouped into causes? | `vae/alert_groups.py`; `jobs/score.py` writes the groups |
| what is on the review page? | `jobs/report.py` gathers it, `jobs/review/` lays it out |
| what do the endpoints take and return? | `serving/`: `app.py` (routes), `bodies.py` (layouts) |
| what does a command print? | `console/views.py`; `cli.py` is the command line itself |
| where is an option defined? | `settings.py` (one typed `Settings`) |
| how does the production stack run here? | `stack/`: `parts.py` (what runs), `supervisor.py`, `client.py` |

Layering (enforced by `tests/test_architecture.py`): `vae` < `validation` < `flows`; inside `flows`,
`errors`, `settings`, `runtime` < `adapters` < `jobs`, `serving` < `console` < `cli`; `stack` < `cli`.
"""
