"""Where the local data and the MLflow store live: built once by the CLI (or a test) and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serving.contract.names import default_tracking_uri


@dataclass(frozen=True)
class Workspace:
    """Locations of the local data and MLflow store. Built once by the CLI (or a test) and passed down."""

    root: Path
    tracking_uri: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def artifact_cache(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    def prepared(self, task: str, source: str) -> Path:
        return self.data_dir / task / source

    @classmethod
    def from_env(cls, root: Path | None = None) -> Workspace:
        """Root = $MEMORIA_HOME or the current directory; MLflow store = $MLFLOW_TRACKING_URI or SQLite in
        <root>/mlruns (MLflow 3.17 refuses its file store, see README)."""
        root = Path(root or os.environ.get("MEMORIA_HOME") or Path.cwd()).resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(root)
        return cls(root=root, tracking_uri=uri)
