"""A package folder uploaded as a tar.gz: packed by `mlc submit`, unpacked by the API into a
private temporary folder. Only regular files and folders under the archive's root are taken:
an absolute name, a '..', a link, a device or a fifo is refused naming the member, as are more
files or bytes than a package may have; nothing is written before every member is checked.

A small body can decompress to a lot, and tarfile reads a pax or GNU long-name header whole
into memory before any member is checked: the body is first decompressed into a temporary file
that stops at the unpacked limit (plus room for tar's own headers), then read as plain tar with
every extended header bounded (MAX_HEADER_BYTES) and GNU sparse members refused."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from mlc_tasks.errors import InvalidPackageError, TransientError
from mlc_tasks.registry import VersionRecord
from mlc_tasks.resources import Resources

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # the compressed body
MAX_FILES = 2_000
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
HEADER_ALLOWANCE = 64 * 1024 * 1024  # tar's headers and padding beside the files' bytes
MAX_HEADER_BYTES = 64 * 1024  # one pax / GNU long-name header
EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK)


class BoundedTarInfo(tarfile.TarInfo):
    """A tar header whose extended headers are checked before tarfile reads them whole."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise InvalidPackageError(f"package member '{self.name}': a sparse file")
        if self.type in EXTENDED and self.size > MAX_HEADER_BYTES:
            raise InvalidPackageError(
                f"package: an extended (pax or GNU long-name) header of {self.size} bytes; at "
                f"most {MAX_HEADER_BYTES >> 10} KiB")
        return super()._proc_member(tarfile_)

    def _proc_gnusparse_10(self, next_: tarfile.TarInfo, *_: object) -> None:
        # a pax-announced sparse map, which tarfile would read with no bound
        raise InvalidPackageError(f"package member '{next_.name}': a sparse file")


def pack(folder: Path) -> bytes:
    """The folder's regular files and sub-folders, named relative to it; a data location
    given relative to the folder is made absolute (it lies outside what is uploaded)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise InvalidPackageError(f"{path}: a package holds only regular files and "
                                          "folders (no links)")
            spec = located_spec(path) if relative == "model.yaml" else None
            if spec is None:
                archive.add(path, arcname=relative, recursive=False)
                continue
            info = archive.gettarinfo(path, arcname=relative)
            info.size = len(spec)
            archive.addfile(info, io.BytesIO(spec))
    return buffer.getvalue()


def located_spec(model_yaml: Path) -> bytes | None:
    """model.yaml with its relative data_location made absolute; None when there is none."""
    import yaml

    try:
        spec = yaml.safe_load(model_yaml.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # the installation says what is wrong with it
    given = spec.get("data_location") if isinstance(spec, dict) else None
    if not isinstance(given, str) or "://" in given or os.path.isabs(given):
        return None
    spec["data_location"] = os.path.normpath(model_yaml.parent.absolute() / given)
    return yaml.safe_dump(spec, sort_keys=False).encode()


def checked_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members, total = [], 0
    for member in archive:
        name = member.name
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (
                parts and ":" in parts[0]):
            raise InvalidPackageError(f"package member '{name}': an absolute path")
        if ".." in parts or "\\" in name:
            raise InvalidPackageError(f"package member '{name}': a path out of the package")
        if not (member.isfile() or member.isdir()):
            raise InvalidPackageError(f"package member '{name}': not a regular file or folder "
                                      "(links, devices and fifos are refused)")
        total += member.size
        members.append(member)
        if len(members) > MAX_FILES or total > MAX_UNPACKED_BYTES:
            raise InvalidPackageError(f"package: more than {MAX_FILES} members or "
                                      f"{MAX_UNPACKED_BYTES >> 20} MB unpacked")
    return members


def unpack(body: bytes, target: Path) -> Path:
    """Unpack an uploaded package into `target` (not there yet; its parent a private folder,
    which also holds the decompressed archive while it is read); returns it."""
    with tempfile.TemporaryFile(dir=target.parent) as plain:
        decompress(body, plain)
        try:
            with tarfile.open(fileobj=plain, mode="r:", tarinfo=BoundedTarInfo) as archive:
                members = checked_members(archive)
                for member in members:
                    write_member(archive, member, target)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidPackageError(f"package: not a readable tar.gz archive ({exc})") from exc
    if not (target / "model.yaml").is_file():
        raise InvalidPackageError("package: no model.yaml at the archive's root")
    return target


def decompress(body: bytes, plain: IO[bytes]) -> None:
    """The gzip body into `plain` (left at its start), refused once it grows past the limit."""
    limit, written = MAX_UNPACKED_BYTES + HEADER_ALLOWANCE, 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as source:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise InvalidPackageError(
                        f"package: over {limit >> 20} MB once decompressed (at most "
                        f"{MAX_UNPACKED_BYTES >> 20} MB of files, with their tar headers)")
                plain.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidPackageError(f"package: not a readable tar.gz archive ({exc})") from exc
    plain.seek(0)


def write_member(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    path = target.joinpath(*PurePosixPath(member.name).parts)
    if member.isdir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = archive.extractfile(member)
    assert source is not None  # a regular file always has content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        while chunk := source.read(1 << 20):
            file.write(chunk)


def submit_upload(ctx: Resources, body: bytes, submitter: str
                  ) -> tuple[VersionRecord, bool, str | None]:
    """Register an uploaded package as the submitter's and mark it ready (its process starts
    from that event): the API's POST /v1/packages and the Command Center's upload. Returns
    the version, whether it is new, and a warning when the event could not be sent."""
    from mlc_tasks import events
    from mlc_tasks.submission import submit_package

    with tempfile.TemporaryDirectory(prefix="mlc-upload-") as temp:
        folder = unpack(body, Path(temp) / "package")
        version, created = submit_package(folder, ctx.registry, ctx.store(),
                                          ctx.settings.trusted_types, submitter)
    try:
        events.emit(events.model_ready_event(version, submitter), ctx.prefect_api_url())
    except TransientError as exc:
        return version, created, str(exc)
    return version, created, None
