"""The contract between training/ and serving/, in one place, imported by both sides and importing neither.

bundle.py         the bundle format: manifest, checksums, verification (`write_manifest`, `load_bundle`)
signing.py        bundle signatures (Ed25519 over the manifest) and their settings: who made a bundle
files.py          file hashing and the one atomic writer
text.py           text -> token ids, the special tokens (training fits tokenizers, serving loads them)
input_profile.py  the input length of a text split, counted as serving counts it live
drift_signals.py  the drift signals of a text (novelty, language, ...), their bins, the Jensen-Shannon distance
drift_profile.py  the bundle's drift profile: training vocabulary and each signal's reference distribution
production.py     where the inference log and the feedback store lie, and how both sides read them
names.py          task names, the registry alias and tags, the MLflow tag and experiment names, the store default
store_location.py a local MLflow store that keeps working after it is copied or moved

Training may import this package and serving's predictors (serving/sentiment.py, serving/translation.py: the gate
and export score exactly what will be served), nothing else of serving; `make lint` checks it (import-linter).
"""
