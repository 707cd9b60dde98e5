"""The Command Center's forms, read with bounded memory: url-encoded fields (at most
FIELDS_BYTES), and the package upload, multipart/form-data with one file (at most the API's
upload limit), refused with 413 as soon as the body passes its limit, before it is all read.

Parsed here rather than by Starlette's form parser, which needs the python-multipart package
(not a dependency of this project; the `multipart` module installed is another one)."""

from email.message import Message
from urllib.parse import parse_qsl

from fastapi import Request

from deployments import api_upload
from deployments.command_center.session import PageError

FIELDS_BYTES = 64 * 1024
FORM_ALLOWANCE = 64 * 1024  # an upload's boundaries and small fields beside the file
URLENCODED = "application/x-www-form-urlencoded"


def too_large(what: str, limit: int) -> PageError:
    size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
    return PageError(413, f"{what} over {size}")


async def read_body(request: Request, limit: int, what: str) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(what, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def form_fields(request: Request) -> dict[str, str]:
    """A dependency: the url-encoded form's fields (the last of a repeated name), else {}."""
    if request.method != "POST":
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request, FIELDS_BYTES, "form")
    if kind != URLENCODED:
        return {}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(400, "form: not url-encoded UTF-8") from exc


def boundary_of(content_type: str) -> bytes:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) \
            or not 0 < len(boundary) <= 200:
        raise PageError(400, "package: send the form as multipart/form-data with the file")
    return boundary.encode("latin-1")


def part_name(headers: bytes) -> tuple[str, str | None]:
    """(the field's name, its file name or None) from a part's Content-Disposition."""
    message = Message()
    for line in headers.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            message["content-disposition"] = value.strip()
    field = message.get_param("name", header="content-disposition")
    filename = message.get_param("filename", header="content-disposition")
    return (field if isinstance(field, str) else "",
            filename if isinstance(filename, str) else None)


def multipart_parts(body: bytes, boundary: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Each part by field name: (its file name, its bytes). Binary safe: only the boundary
    lines split the body."""
    delimiter = b"--" + boundary
    found: dict[str, tuple[str | None, bytes]] = {}
    for chunk in body.split(b"\r\n" + delimiter)[:10]:
        chunk = chunk.removeprefix(delimiter)
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        headers, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if sep:
            name, filename = part_name(headers)
            found.setdefault(name, (filename, content))
    return found


async def upload_form(request: Request) -> tuple[str, bytes]:
    """The upload form's csrf field and the package's bytes."""
    boundary = boundary_of(request.headers.get("content-type", ""))
    body = await read_body(request, api_upload.MAX_UPLOAD_BYTES + FORM_ALLOWANCE,
                           "package upload")
    parts = multipart_parts(body, boundary)
    filename, package = parts.get("package", (None, b""))
    if not filename or not package:
        raise PageError(400, "package: choose a .tar.gz file (as `mlc submit` packs a package "
                             "folder)")
    return parts.get("csrf", (None, b""))[1].decode("utf-8", "replace"), package
