"""A local MLflow store (SQLite + artifacts in one folder) that keeps working after it is copied or moved.

MLflow writes absolute artifact locations into the database (experiments, runs, registered model versions), so a
copied `mlruns/` would point at the old folder: runs, plots and model versions would not download, and serving
could not fetch a champion. The store remembers the folder it was last used from (`store-root.txt` beside the
database); when it is opened from another folder, every recorded location under the old folder is rewritten to
the new one, in one transaction. Training (training/tracking/store.py) and `make ui` open the store through
`relocate_if_moved`. Serving only reads a store (it may run as a user who must not write it, and several workers
would race to rewrite it): it maps a recorded location to the store's current folder in memory
(`moved_location`). Only `sqlite:///` stores are concerned; a tracking server owns its locations.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("bentoml.memoria")

MARKER = "store-root.txt"
# (table, column) pairs holding artifact locations in MLflow 3.17's schema
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def relocate_if_moved(tracking_uri: str) -> bool:
    """Rewrite the store's artifact locations if it was moved since it was last opened; True if it did."""
    if not tracking_uri.startswith("sqlite:///"):
        return False
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    if not database.is_file():
        return False
    root = database.parent.resolve()
    marker = root / MARKER
    old = marker.read_text().strip() if marker.is_file() else ""
    if old == str(root):
        return False
    if old:
        _rewrite(database, old, str(root))
        log.warning("MLflow store moved from %s to %s: artifact locations rewritten", old, root)
    marker.write_text(str(root) + "\n")
    return bool(old)


def moved_location(location: str, tracking_uri: str) -> str:
    """`location` as it is now if the store was copied or moved since training last opened it: the old folder (from
    `store-root.txt`) replaced by the current one. Reads only; the database and the marker are left as they are."""
    if not tracking_uri.startswith("sqlite:///"):
        return location
    root = Path(tracking_uri.removeprefix("sqlite:///")).parent.resolve()
    marker = root / MARKER
    try:
        old = marker.read_text().strip()
    except OSError:
        return location
    if not old or old == str(root):
        return location
    for prefix_old, prefix_new in ((f"file://{old}/", f"file://{root}/"), (f"{old}/", f"{root}/")):
        if location.startswith(prefix_old):
            return prefix_new + location.removeprefix(prefix_old)
    return location


def _rewrite(database: Path, old: str, new: str) -> None:
    with sqlite3.connect(database) as db:  # one transaction: all locations move, or none
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in LOCATION_COLUMNS:
            if table not in tables:
                continue
            for prefix_old, prefix_new in ((f"file://{old}/", f"file://{new}/"), (f"{old}/", f"{new}/")):
                db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                    (prefix_new, len(prefix_old) + 1, len(prefix_old), prefix_old),
                )
