#!/usr/bin/env python3
"""Writes one OCI image archive (an image layout in a tar file) from files on this machine,
without a container daemon, byte for byte reproducibly.

    scripts/oci-image.py --name tekton-spire:0.1.0 --out out/tekton-spire.tar \\
        --file target/.../tekton-spire=/usr/local/bin/tekton-spire:0755 \\
        --user 65532:65532 --entrypoint /usr/local/bin/tekton-spire

Reproducible: the layer is a tar whose entries are sorted, owned by numeric ids, dated
SOURCE_DATE_EPOCH (default 0) and compressed with a fixed gzip header; the config carries no
build time or host name. The same inputs give the same manifest digest, which is printed
with the image's size. The archive names the image for containerd's `ctr images import`
(annotation io.containerd.image.name) and for OCI tools (org.opencontainers.image.ref.name).

Every image gets /etc/passwd and /etc/group naming root and the non-root user (65532,
"nonroot"), so that tools that look the user up by name work, and /tmp (mode 1777).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

NONROOT = 65532


def fail(msg):
    print(f"oci-image.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def normalize(name):
    """The reference containerd stores for a short name (`x:1` is `docker.io/library/x:1`)."""
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


class Layer:
    """A layer's entries, keyed by path, written sorted so that order never depends on input."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.entries = {}

    def _info(self, path, kind, mode, uid=0, gid=0):
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = self.epoch
        return info

    def directory(self, path, mode=0o755, owner=(0, 0)):
        path = path.rstrip("/")
        parent = os.path.dirname(path)
        if parent and parent != "/" and parent not in self.entries:
            self.directory(parent)
        if path not in self.entries:
            self.entries[path] = (self._info(path, tarfile.DIRTYPE, mode, *owner), None)

    def file(self, path, data, mode=0o644, owner=(0, 0)):
        self.directory(os.path.dirname(path))
        info = self._info(path, tarfile.REGTYPE, mode, *owner)
        info.size = len(data)
        self.entries[path] = (info, data)

    def symlink(self, path, target):
        self.directory(os.path.dirname(path))
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.entries[path] = (info, None)

    def tar(self):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                info, data = self.entries[path]
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return out.getvalue()


def gzip_fixed(data):
    out = io.BytesIO()
    # mtime=0 and no file name: the gzip header is the same on every run.
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(data)
    return out.getvalue()


def blob(blobs, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def parse_file_spec(spec):
    """SRC=DEST[:MODE] (MODE octal, default: the source's executable bit decides)."""
    src, sep, rest = spec.partition("=")
    if not sep or not src or not rest.startswith("/"):
        fail(f"--file {spec!r}: expected SRC=/absolute/dest[:MODE]")
    dest, _, mode = rest.partition(":")
    try:
        st = os.stat(src)
    except OSError as err:
        fail(f"--file {spec!r}: cannot read {src}: {err.strerror}")
    if not stat.S_ISREG(st.st_mode):
        fail(f"--file {spec!r}: {src} is not a regular file")
    if mode:
        try:
            mode = int(mode, 8)
        except ValueError:
            fail(f"--file {spec!r}: mode {mode!r} is not octal")
    else:
        mode = 0o755 if st.st_mode & 0o111 else 0o644
    return src, dest, mode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="image reference, e.g. tekton-spire:0.1.0")
    parser.add_argument("--out", required=True, help="the OCI archive to write (replaced atomically)")
    parser.add_argument("--file", action="append", default=[], help="SRC=/dest[:MODE], repeatable")
    parser.add_argument("--symlink", action="append", default=[], help="/path=TARGET, repeatable")
    parser.add_argument("--dir", action="append", default=[], help="/path[:MODE[:UID]] an empty directory")
    parser.add_argument("--user", default=f"{NONROOT}:{NONROOT}", help="the user the image runs as")
    parser.add_argument("--entrypoint", action="append", default=[], help="entrypoint words, repeatable")
    parser.add_argument("--cmd", action="append", default=[], help="default arguments, repeatable")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE, repeatable")
    parser.add_argument("--workdir", default="/")
    parser.add_argument("--label", action="append", default=[], help="NAME=VALUE, repeatable")
    args = parser.parse_args()

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    layer = Layer(epoch)
    layer.directory("/tmp", 0o1777)
    layer.file("/etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n".encode())
    layer.file("/etc/group", f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode())
    layer.directory("/home/nonroot", 0o700, (NONROOT, NONROOT))
    for spec in args.file:
        src, dest, mode = parse_file_spec(spec)
        with open(src, "rb") as f:
            layer.file(dest, f.read(), mode)
    for spec in args.symlink:
        path, sep, target = spec.partition("=")
        if not sep or not path.startswith("/"):
            fail(f"--symlink {spec!r}: expected /path=TARGET")
        layer.symlink(path, target)
    for spec in args.dir:
        path, _, rest = spec.partition(":")
        mode, _, uid = rest.partition(":")
        owner = (int(uid), int(uid)) if uid else (0, 0)
        layer.directory(path, int(mode, 8) if mode else 0o755, owner)

    tar = layer.tar()
    blobs = {}
    layer_desc = blob(blobs, gzip_fixed(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z" if epoch == 0 else None,
        "config": {
            "User": args.user,
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + args.env,
            "Entrypoint": args.entrypoint or None,
            "Cmd": args.cmd or None,
            "WorkingDir": args.workdir,
            "Labels": dict(label.split("=", 1) for label in args.label) or None,
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
    }
    if epoch:
        import datetime

        config["created"] = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config["config"] = {k: v for k, v in config["config"].items() if v is not None}
    config_desc = blob(blobs, json.dumps(config, sort_keys=True, separators=(",", ":")).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(blobs, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(), "application/vnd.oci.image.manifest.v1+json")
    full = normalize(args.name)
    manifest_desc["annotations"] = {
        "io.containerd.image.name": full,
        "org.opencontainers.image.ref.name": full.rsplit(":", 1)[1] if ":" in full.rsplit("/", 1)[-1] else "latest",
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}

    archive = Layer(0)
    archive.file("/oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    archive.file("/index.json", json.dumps(index, sort_keys=True, separators=(",", ":")).encode())
    for digest, data in blobs.items():
        archive.file("/blobs/sha256/" + digest.split(":", 1)[1], data)
    staging = f"{args.out}.{os.getpid()}.partial"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(staging, "wb") as f:
        f.write(archive.tar())
    os.replace(staging, args.out)
    size = layer_desc["size"] + config_desc["size"] + manifest_desc["size"]
    print(f"{full}\t{manifest_desc['digest']}\t{size}\t{len(tar)}")


if __name__ == "__main__":
    main()
