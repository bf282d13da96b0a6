"""What production taught: the drift report over the inference log (`make drift`) and the corrections a retrain
learns from (`make retrain FEEDBACK=1`). Both read what serving kept (serving/contract/production.py)."""
