"""Evaluation of reward models on the MHP test split and public benchmarks.

`protocols` (the published metrics) and `readers` (annotation and score files) are pure Python:
no torch, no Django, so any scorer's output can be checked on a CPU box. `run` holds the scoring
loop (MPS or any `training.baselines` scorer) and imports torch only inside its functions; `jobs`
creates and executes EvaluationRun rows for every door (commands, the gpu task, the results page).
"""
