"""The ONNX file of every evaluated trial, kept in Optuna's artifact store (a folder every worker can reach),
from which the Pareto models are exported and re-measured."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact

from hwnas.errors import ConfigError


class Artifacts:
    """Upload a trial's file (and remove the local copy), or download a stored one."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._store: FileSystemArtifactStore | None = None

    @property
    def store(self) -> FileSystemArtifactStore:
        if self._store is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._store = FileSystemArtifactStore(str(self.folder))
        return self._store

    def upload(self, trial: optuna.Trial, path: Path) -> str:
        """Store ``path`` as an artifact of ``trial`` and delete it; the artifact id."""
        artifact_id = upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=trial,
                                      mimetype="application/octet-stream")
        path.unlink()
        return artifact_id

    def download(self, artifact_id: str, dest: Path) -> Path:
        if not self.folder.is_dir():
            raise ConfigError(f"artifact folder {self.folder} not found (pass --artifacts DIR)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        download_artifact(artifact_store=self.store, file_path=str(dest), artifact_id=artifact_id)
        return dest
