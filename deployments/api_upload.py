"""A package folder uploaded as a tar.gz: packed by `mlc submit`, unpacked by the API into a
private temporary folder. Only regular files and folders under the archive's root are taken:
an absolute name, a '..', a link, a device or a fifo is refused naming the member, as are more
files or bytes than a package may have; nothing is written before every member is checked."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path, PurePosixPath

from mlc_tasks.errors import InvalidPackageError

MAX_UPLOAD_BYTES = 512 * 1024 * 1024  # the compressed body
MAX_FILES = 2_000
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024


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
    """Unpack an uploaded package into `target` (an empty private folder); returns it."""
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            members = checked_members(archive)
            for member in members:
                write_member(archive, member, target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidPackageError(f"package: not a readable tar.gz archive ({exc})") from exc
    if not (target / "model.yaml").is_file():
        raise InvalidPackageError("package: no model.yaml at the archive's root")
    return target


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
