"""A raw source whose files live on object storage: ``location: s3://bucket/prefix/`` in its ``source.yaml``.

The source directory ``data/raw/<source>/`` then holds only its ``source.yaml``; the files are listed under the
location through fsspec (s3fs) and read, streaming, by the same readers as files on disk. Any S3-compatible server
(MinIO, Ceph, R2, a local moto server) is reached by its ``endpoint_url``::

    location: s3://corpora/papers/2026-05/
    storage_options:
      endpoint_url: https://minio.internal:9000   # omit for AWS S3
      region: eu-west-1
      addressing_style: path                      # auto, virtual or path (path for most self-hosted servers)
      profile: corpora-reader                     # a named profile of ~/.aws/config (a name, not a secret)
      anon: false                                 # true: a public bucket, read without credentials
      requester_pays: false

Credentials are never read from ``source.yaml`` (a key such as ``key`` or ``secret`` is refused): they come from
the environment as for any AWS client, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``),
``AWS_PROFILE``, or an instance or pod role.

What a local file's ``stat`` gives, an object's listing gives: its size, its last-modified time and its ETag (the
content identity the raw-data watch uses instead of hashing the bytes). An object is read in blocks by s3fs, its
ranges fetched as the readers ask for them: nothing is downloaded whole. What is read is what was listed: every range
is asked for under the ETag the listing gave (``If-Match``), so the ETags an ingestion report records are the
contents its rows came from.

A failure to list the location, to reach the server while reading, or an object replaced meanwhile raises
``ObjectStoreError`` (never an ``OSError``: the readers would take that for a damaged file and quarantine it,
silently dropping a shard that a retry would read); an object that vanished or is forbidden is reported like an
unreadable file on disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMES = ("s3",)
# Names a credential would be given under; refused with a pointer to the environment instead of "unknown key".
CREDENTIAL_KEYS = frozenset({
    "key", "secret", "token", "password", "credentials", "access_key", "secret_key", "session_token",
    "access_key_id", "secret_access_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
})
CREDENTIALS_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment, or "
                    "storage_options: {anon: true} for a public bucket")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
READ_BUFFER_BYTES = 1 << 16
__all__ = ["CREDENTIAL_KEYS", "ObjectInfo", "ObjectPath", "ObjectStore", "ObjectStoreError", "StorageOptions",
           "check_remote", "normalized_location"]


class ObjectStoreError(Exception):
    """The location cannot be listed, or the server cannot be reached: nothing from it can be trusted to be whole."""


class StorageOptions(BaseModel):
    """How to reach the location's server; ``storage_options`` in ``source.yaml``. No credentials here."""

    model_config = ConfigDict(extra="forbid")
    endpoint_url: str | None = Field(None, description="An S3-compatible server, http(s)://host[:port]; none: AWS.")
    region: str | None = Field(None, min_length=1, description="The bucket's region (e.g. eu-west-1).")
    profile: str | None = Field(None, min_length=1, description="A named profile of the AWS config files.")
    anon: bool = Field(False, description="Read without credentials (a public bucket).")
    requester_pays: bool = Field(False, description="The bucket bills its reader for the requests.")
    addressing_style: Literal["auto", "virtual", "path"] | None = Field(
        None, description="How the bucket is named in a request: path for most self-hosted servers.")

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.fullmatch(r"(https?)://([^/?#]+)/?", value)
        if not match:
            raise ValueError("must be an http:// or https:// URL of the server, such as https://minio.example:9000 "
                             "(no path)")
        if "@" in match.group(2):
            raise ValueError(f"must not hold credentials (user:password@); {CREDENTIALS_HINT}")
        return value.rstrip("/")

    @field_validator("region")
    @classmethod
    def _region_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
            raise ValueError("must be a region name such as us-east-1 or eu-west-1")
        return value

    def filesystem_kwargs(self) -> dict[str, Any]:
        """The s3fs arguments: a filesystem of tuneforge's own (not fsspec's instance cache, shared with other code),
        without a listings cache: every look sees the bucket as it is."""
        kwargs: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.region:
            kwargs["client_kwargs"] = {"region_name": self.region}
        if self.profile:
            kwargs["profile"] = self.profile
        if self.anon:
            kwargs["anon"] = True
        if self.requester_pays:
            kwargs["requester_pays"] = True
        if self.addressing_style:
            kwargs["config_kwargs"] = {"s3": {"addressing_style": self.addressing_style}}
        return kwargs


def normalized_location(url: str) -> str:
    """``s3://bucket/prefix/`` (always ending with '/'); ``ValueError`` saying what is wrong with ``url``."""
    scheme, separator, rest = url.partition("://")
    if "@" in url:  # before anything echoes the URL: a secret key may hold '/', hiding the '@' from the bucket
        raise ValueError(f"must not hold credentials (user:password@); {CREDENTIALS_HINT}")
    if not separator:
        raise ValueError(f"must be a URL such as s3://bucket/prefix/, got {url!r}")
    if scheme.lower() not in SCHEMES:
        raise ValueError(f"unsupported scheme {scheme + '://'!r}; use s3:// (an S3-compatible server is reached "
                         "with storage_options.endpoint_url)")
    if any(char in rest for char in "?#\\") or any(ord(char) < 32 for char in rest):
        raise ValueError(f"must be a plain s3://bucket/prefix/ URL without query, fragment or control characters, "
                         f"got {url!r}")
    bucket, _, prefix = rest.partition("/")
    if not BUCKET.fullmatch(bucket):
        raise ValueError(f"bucket name {bucket!r} is not valid (3 to 63 lowercase letters, digits, '.' and '-')")
    parts = [part for part in prefix.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"the prefix of {url!r} must not contain '.' or '..' segments")
    return f"{scheme.lower()}://{'/'.join([bucket, *parts])}/"


def check_remote(url: str, endpoint_url: str = "", region: str = "") -> None:
    """A DVC remote's settings (``environment.dvc``): no credentials in either URL (they would be written to the
    DVC config), a valid ``s3://`` URL, and an endpoint and region only for one. ``ValueError`` never repeats a
    URL."""
    if ("://" in url and "@" in url) or "@" in endpoint_url:
        raise ValueError(f"remote_url and remote_endpoint_url must not hold credentials (user:password@); "
                         f"{CREDENTIALS_HINT}")
    if url.startswith("s3://"):
        try:
            normalized_location(url)
        except ValueError as error:
            raise ValueError(f"remote_url {error}") from None
    elif endpoint_url or region:
        raise ValueError("remote_endpoint_url and remote_region apply to an s3:// remote_url only")
    if endpoint_url and not re.fullmatch(r"https?://[^/?#]+/?", endpoint_url):
        raise ValueError("remote_endpoint_url must be an http:// or https:// URL of a server, such as "
                         "http://minio.internal:9000")


@dataclass(frozen=True)
class ObjectInfo:
    """One object as its listing describes it."""

    name: str  # relative to the location, '/'-separated
    size: int
    mtime_ns: int
    etag: str  # without quotes; a multipart upload's carries a '-<parts>' suffix

    @property
    def base(self) -> str:
        return self.name.rsplit("/", 1)[-1]


class ObjectStore:
    """The objects under one location, listed level by level (like ``os.scandir``) and opened by name."""

    def __init__(self, location: str, options: StorageOptions | None = None, filesystem: Any = None, *,
                 strict: bool = False) -> None:
        self.location = normalized_location(location)
        self.options = options or StorageOptions()
        # strict: an object forbidden while read is an ObjectStoreError too, not an unreadable file (a search that
        # must see every object, such as an erasure's, cannot skip one it may not read).
        self.strict = strict
        self._shared = filesystem is None  # built here: a task's process may use its own instead
        if filesystem is None:
            import fsspec  # here: a source on disk never loads s3fs and its AWS SDK

            filesystem = fsspec.filesystem(self.location.split("://", 1)[0], **self.options.filesystem_kwargs())
        self._fs = filesystem
        self._root = self.location.split("://", 1)[1].rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        """Shipped to a task without its filesystem, which the task's process takes from its own (one per process,
        server, options and credentials, for a few minutes) rather than building one per task piece."""
        state = dict(self.__dict__)
        if self._shared:
            state["_fs"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._fs is None:
            self._fs = _shared_filesystem(self.location, self.options)

    def url(self, name: str = "") -> str:
        return self.location + name

    def list_dir(self, prefix: str = "") -> tuple[list[ObjectInfo], list[str]]:
        """The objects and the sub-prefixes ('directories') directly under ``prefix`` (``""`` or ``"a/b/"``);
        ``ObjectStoreError`` when it cannot be listed, or when the location itself names no prefix."""
        directory = f"{self._root}/{prefix}".rstrip("/")
        with self._translated(f"cannot list {self.url(prefix)}"):
            entries = self._fs.ls(directory, detail=True)
        files: list[ObjectInfo] = []
        directories: list[str] = []
        for entry in entries:
            full = str(entry["name"]).rstrip("/")
            if full == directory:
                if entry.get("type") == "file" and not str(entry["name"]).endswith("/"):
                    raise ObjectStoreError(f"{self.url(prefix).rstrip('/')} is an object, not a prefix holding "
                                           "objects; set the location to the prefix it lies under")
                continue  # a directory marker ('prefix/', 0 bytes) written by some tools
            if not full.startswith(directory + "/"):
                continue
            base = full[len(directory) + 1:]
            if entry.get("type") == "directory":
                directories.append(base)
            elif not str(entry["name"]).endswith("/"):
                files.append(_info(prefix + base, entry))
        return files, directories

    def walk(self, keep: Callable[[str], bool] = lambda base: True) -> Iterator[ObjectInfo]:
        """Every object under the location, depth first in sorted order; ``keep(base name)`` False prunes an object
        or a whole sub-prefix."""
        pending = [""]
        while pending:
            prefix = pending.pop()
            files, directories = self.list_dir(prefix)
            for info in sorted(files, key=lambda item: item.name):
                if keep(info.base):
                    yield info
            pending.extend(prefix + base + "/" for base in sorted(directories, reverse=True) if keep(base))

    def open(self, info: ObjectInfo) -> BinaryIO:
        """The object's bytes as a buffered, seekable stream, pinned to the content it was listed with: s3fs asks for
        every range under the ETag it finds on opening (``If-Match``), and that must be the listed one. An object
        replaced since its listing, or while it is read, and any transport failure raise ``ObjectStoreError``."""
        url = self.url(info.name)
        with self._translated(f"cannot read {url}", reading=True):
            handle = self._fs.open(f"{self._root}/{info.name}", "rb")
            etag = str(handle.details.get("ETag") or "").strip('"')
        if info.etag and etag and etag != info.etag:
            handle.close()
            raise ObjectStoreError(f"{url} was replaced after it was listed (ETag {info.etag} then {etag}); "
                                   "run again to read the source as it is now")
        return io.BufferedReader(_Guarded(handle, url, self._translated), READ_BUFFER_BYTES)

    @contextmanager
    def _translated(self, doing: str, reading: bool = False) -> Iterator[None]:
        """Failures of the transport (no server, no credentials, a listing refused) as ``ObjectStoreError``; while
        reading, an object that vanished or is forbidden stays an ``OSError``, as a file on disk would."""
        try:
            yield
        except ObjectStoreError:
            raise
        except (FileNotFoundError, PermissionError) as error:
            if reading and not (self.strict and isinstance(error, PermissionError)):
                raise
            raise ObjectStoreError(f"{doing}: {_why(error)}") from None
        except Exception as error:  # botocore's and aiohttp's own classes: no server, no credentials, throttled
            raise ObjectStoreError(f"{doing}: {_why(error)}") from None


# The AWS settings of the environment a filesystem is built under: a change (other credentials, another profile)
# gives another filesystem rather than one holding the former credentials.
CREDENTIAL_ENVIRONMENT = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                          "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE",
                          "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                          "AWS_EC2_METADATA_DISABLED", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
SHARED_FILESYSTEMS = 8
SHARED_FILESYSTEM_SECONDS = 300.0
_filesystems: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
_filesystems_lock = threading.Lock()


def _shared_filesystem(location: str, options: StorageOptions) -> Any:
    """A task process's filesystem for ``location``'s scheme and ``options`` under the environment's AWS settings,
    built on first use and kept ``SHARED_FILESYSTEM_SECONDS`` (s3fs makes its AWS client and connection pool once
    per process, not per task piece). Safe to share: listings are never cached (every look sees the bucket as it
    is), s3fs serves calls from several threads on its own event loop, the key holds the process id (a forked child
    builds its own, not the parent's loop and sockets) and a digest of the AWS settings in the environment (never
    the values), and an instance is not kept long enough to outlive credentials rotated in a file. The few most
    recent are kept."""
    import fsspec  # here: a source on disk never loads s3fs and its AWS SDK

    scheme = location.split("://", 1)[0]
    kwargs = options.filesystem_kwargs()
    environment = hashlib.sha256(repr([(name, os.environ.get(name)) for name in CREDENTIAL_ENVIRONMENT]).encode())
    key = (os.getpid(), scheme, repr(sorted(kwargs.items())), environment.hexdigest())
    now = time.monotonic()
    with _filesystems_lock:
        built, filesystem = _filesystems.get(key, (0.0, None))
        if filesystem is None or now - built > SHARED_FILESYSTEM_SECONDS:
            built, filesystem = now, fsspec.filesystem(scheme, **kwargs)
        _filesystems[key] = (built, filesystem)
        _filesystems.move_to_end(key)
        while len(_filesystems) > SHARED_FILESYSTEMS:
            _filesystems.popitem(last=False)
        return filesystem


def _info(name: str, entry: Mapping[str, Any]) -> ObjectInfo:
    modified = entry.get("LastModified")
    mtime_ns = int(modified.timestamp() * 1_000_000_000) if modified is not None else 0
    return ObjectInfo(name=name, size=int(entry.get("size") or 0), mtime_ns=mtime_ns,
                      etag=str(entry.get("ETag") or "").strip('"'))


def _why(error: Exception) -> str:
    """What went wrong, said for a person, with what to check."""
    kind, text = type(error).__name__, str(error).strip()
    if kind == "NoCredentialsError" or "locate credentials" in text:
        return f"no credentials were found; {CREDENTIALS_HINT}"
    if isinstance(error, PermissionError) or kind in ("InvalidAccessKeyId", "SignatureDoesNotMatch") or (
        "AccessDenied" in text
    ):
        return (f"access denied ({text}); check the credentials in the environment and their rights on the bucket "
                "(s3:ListBucket, s3:GetObject)")
    if isinstance(error, FileNotFoundError):
        if "bucket does not exist" in text.lower() or "nosuchbucket" in text.lower():
            return "the bucket does not exist; check the URL, and storage_options.endpoint_url for a non-AWS server"
        return "no object lies under this prefix; check the URL"
    if "connect" in kind.lower() or "connect" in text.lower() or "timeout" in kind.lower():
        return f"the server cannot be reached ({text}); check storage_options.endpoint_url and the network"
    return f"{kind}: {text}" if text else kind


class _Guarded(io.RawIOBase):
    """An s3fs file whose transport failures surface as ``ObjectStoreError`` (an ``OSError`` would be taken by the
    readers for a damaged file)."""

    def __init__(self, handle: Any, url: str, translated: Callable[..., Any]) -> None:
        self._handle, self._url, self._translated = handle, url, translated

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        with self._translated(f"cannot read {self._url}", reading=True):
            data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


@dataclass(frozen=True)
class ObjectStat:
    st_size: int
    st_mtime_ns: int

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9


class ObjectPath:
    """Just enough of a ``Path`` for the readers: an object of a listing, and the other objects beside it (a plain
    text document's summary is looked up among them, without another request)."""

    def __init__(self, store: ObjectStore, info: ObjectInfo | None, name: str,
                 siblings: Mapping[str, ObjectInfo]) -> None:
        self.store, self.info, self._name, self._siblings = store, info, name, siblings
        self._pure = PurePosixPath(name)

    @property
    def name(self) -> str:
        return self._pure.name

    @property
    def suffix(self) -> str:
        return self._pure.suffix

    @property
    def stem(self) -> str:
        return self._pure.stem

    def with_name(self, name: str) -> ObjectPath:
        return ObjectPath(self.store, self._siblings.get(name), str(self._pure.with_name(name)), self._siblings)

    def with_siblings(self, names: Iterable[str]) -> ObjectPath:
        """This object, knowing of the objects beside it only those named: what a task that reads it is shipped,
        rather than the whole listing."""
        return ObjectPath(self.store, self.info, self._name,
                          {name: self._siblings[name] for name in names if name in self._siblings})

    def is_file(self) -> bool:
        return self.info is not None

    exists = is_file

    def stat(self) -> ObjectStat:
        return ObjectStat(self._listed().size, self._listed().mtime_ns)

    def open(self, mode: str = "rb") -> BinaryIO:
        if mode != "rb":
            raise ValueError(f"objects are opened for reading in binary ('rb'), not {mode!r}")
        return self.store.open(self._listed())

    def read_bytes(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    def _listed(self) -> ObjectInfo:
        if self.info is None:
            raise FileNotFoundError(f"{self} is not in the listing")
        return self.info

    def __str__(self) -> str:
        return self.store.url(self._name)

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"
