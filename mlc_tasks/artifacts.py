"""A content-addressed artifact store on any fsspec URL (a local folder by default)."""

from __future__ import annotations

import hashlib
import uuid

import fsspec

from mlc_tasks.errors import UnsafeArtifactError


class ArtifactStore:
    """Stores bytes under sha256/<aa>/<digest>[.ext]; the same bytes are stored once. The
    extension carries the media type for what a browser opens (a report as `.html`)."""

    def __init__(self, root_url: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root_url)
        protocol = self.fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else protocol[0]

    def put(self, data: bytes, suffix: str = "") -> tuple[str, str]:
        """Store the bytes; return (uri, sha256). Written to a temporary name, then moved, so a
        reader never sees half a file."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest, suffix)
        if not self.fs.exists(path):
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            temp = f"{path}.{uuid.uuid4().hex}.tmp"
            with self.fs.open(temp, "wb") as file:
                file.write(data)
            self.fs.mv(temp, path)
        return self.uri(digest, suffix), digest

    def uri(self, digest: str, suffix: str = "") -> str:
        path = self._path(digest, suffix)
        return path if self.protocol in ("file", "local") else f"{self.protocol}://{path}"

    def read(self, digest: str, suffix: str = "") -> bytes:
        """The stored bytes (FileNotFoundError if there are none)."""
        with self.fs.open(self._path(digest, suffix), "rb") as file:
            return bytes(file.read())

    def _path(self, digest: str, suffix: str = "") -> str:
        return f"{self.root.rstrip('/')}/sha256/{digest[:2]}/{digest}{suffix}"


def fetch_verified(uri: str, expected_sha256: str) -> bytes:
    """Read an artifact from any fsspec URL and refuse it if its bytes changed."""
    with fsspec.open(uri, "rb") as file:
        data = file.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise UnsafeArtifactError(
            f"{uri}: sha256 is {actual}, registered {expected_sha256}; the artifact was "
            "altered after registration and will not be deployed"
        )
    return data
