"""The image writer (scripts/oci-image.py) and the Containerfile agree on the layout, and
the writer is reproducible: same inputs, same digest; another input, another digest."""

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "scripts" / "oci-image.py"


def build(tmp, name, payload, epoch="1700000000"):
    binary = tmp / "prog"
    binary.write_bytes(payload)
    binary.chmod(0o755)
    out = tmp / f"{name}.tar"
    env = dict(os.environ, SOURCE_DATE_EPOCH=epoch)
    line = subprocess.run(
        [sys.executable, str(WRITER), "--name", f"{name}:1", "--out", str(out),
         "--file", f"{binary}=/usr/local/bin/prog:0755", "--entrypoint", "/usr/local/bin/prog"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()
    ref, digest, size, _ = line.split("\t")
    return out, ref, digest, int(size)


def test_the_same_inputs_give_the_same_digest_and_another_input_another(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, first, _ = build(tmp_path / "a", "img", b"\x7fELF same")
    _, _, second, _ = build(tmp_path / "b", "img", b"\x7fELF same")
    _, _, changed, _ = build(tmp_path / "b", "img", b"\x7fELF other")
    _, _, later, _ = build(tmp_path / "b", "img", b"\x7fELF same", epoch="1700000001")
    assert first == second
    assert len({first, changed, later}) == 3


def test_the_archive_is_an_oci_layout_that_names_the_image_for_containerd(tmp_path):
    out, ref, digest, _ = build(tmp_path, "tekton-spire", b"\x7fELF")
    assert ref == "docker.io/library/tekton-spire:1"
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert "oci-layout" in names
        index = json.load(tar.extractfile("index.json"))
        [manifest_desc] = index["manifests"]
        assert manifest_desc["digest"] == digest
        assert manifest_desc["annotations"]["io.containerd.image.name"] == ref
        for name in names:
            if name.startswith("blobs/sha256/"):
                data = tar.extractfile(name).read()
                assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1], f"{name} does not match its digest"
        manifest = json.load(tar.extractfile("blobs/sha256/" + digest.split(":")[1]))
        config = json.load(tar.extractfile("blobs/sha256/" + manifest["config"]["digest"].split(":")[1]))
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/prog"]


def test_a_missing_file_is_a_clear_error_and_writes_nothing(tmp_path):
    out = tmp_path / "x.tar"
    run = subprocess.run(
        [sys.executable, str(WRITER), "--name", "x:1", "--out", str(out), "--file", f"{tmp_path}/nope=/nope"],
        capture_output=True, text=True,
    )
    assert run.returncode == 1
    assert "cannot read" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_containerfile_builds_the_layout_images_sh_builds():
    containerfile = (ROOT / "Containerfile").read_text()
    images_sh = (ROOT / "scripts" / "images.sh").read_text()
    for name in ("tekton-spire", "tekton-spire-sign"):
        stage = containerfile.split(f"FROM scratch AS {name}\n", 1)[1].split("\nFROM ", 1)[0]
        entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", stage, re.M).group(1))
        assert "USER 65532:65532" in stage
        script_line = re.search(rf'image "{name}:\$tag" (.*?)--label', images_sh, re.S).group(1)
        assert f"--entrypoint {entrypoint[0]}" in script_line, f"{name}: entrypoint differs"
        copies = re.findall(r"^COPY --from=build \S+ (\S+)$", stage, re.M)
        files = re.findall(r"=(/[^:\"]+):0", script_line)
        assert sorted(files) == sorted(c for c in copies if c != "/"), f"{name}: files differ"
    # The common files both write.
    writer = WRITER.read_text()
    for line in ("root:x:0:0:root:/root:/sbin/nologin", "nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin"):
        assert line in writer
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" in containerfile
