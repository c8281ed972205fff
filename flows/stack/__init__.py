"""`sentinel stack`: the production topology on this machine, as processes (no containers).

`parts.py` says what runs (PostgreSQL, an S3 server, MLflow and Prefect servers on them, one worker per
pool) and `supervisor.py` starts, watches and stops it, with logs and pid files under HOME/stack.
"""
