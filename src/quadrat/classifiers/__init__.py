"""Per-source point classifiers (CoralNet's "robot"): train, evaluate, decide, store.

Modules: ``estimators`` (calibrated LR and CoralNet's MLP), ``budgets`` (their training
budget by source size, early stopping's rule), ``arrays`` (the float32 working copy),
``training`` (the split and evaluation), ``metrics`` (accuracy tables, top-k, the
alleviate curve), ``policy`` (when to train and accept), ``serialize`` (bytes for the
database), ``synthetic`` (test data).
Nothing is imported here so that ``quadrat.classifiers.policy`` stays light for the CLI.
"""
