"""Reads a GraftLab run's TensorBoard event files the way TensorBoard does, with Debian's python3-protobuf and
messages compiled from core/base/export/tensorboard.proto (TensorBoard's field numbers), and an independent CRC-32C.
Checks: every record's framing and CRCs, the file_version header, scalar steps unique and complete (1..LAST for
every tag given), PNG images for the probe kinds given, the recipe as text for TensorBoard's text plugin.
Usage: check_tensorboard.py RUN_DIR PROTO_FILE LAST_STEP TAG[,TAG...] [IMAGE_KIND,...]"""
import glob
import os
import struct
import subprocess
import sys
import tempfile

run, proto, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
tags = sys.argv[4].split(",")
kinds = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] else []

out = tempfile.mkdtemp()
subprocess.run(["protoc", f"--proto_path={os.path.dirname(proto)}", f"--python_out={out}", proto], check=True)
sys.path.insert(0, out)
import tensorboard_pb2 as tb  # noqa: E402


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "the checker's own CRC-32C is wrong"
files = sorted(glob.glob(os.path.join(run, "tensorboard", "events.out.tfevents.*")))
assert files, f"no event files in {run}/tensorboard"
events = []
for f in files:
    data = open(f, "rb").read()
    at = 0
    first = True
    while at < len(data):
        assert len(data) - at >= 16, f"{f}: torn record at byte {at}"
        (n,) = struct.unpack_from("<Q", data, at)
        (hcrc,) = struct.unpack_from("<I", data, at + 8)
        assert hcrc == masked(data[at:at + 8]), f"{f}: bad length CRC at byte {at}"
        payload = data[at + 12:at + 12 + n]
        (pcrc,) = struct.unpack_from("<I", data, at + 12 + n)
        assert pcrc == masked(payload), f"{f}: bad payload CRC at byte {at}"
        e = tb.Event()
        e.ParseFromString(payload)
        if first:
            assert e.file_version == "brain.Event:2", f"{f}: first event is not the file version: {e}"
            first = False
        events.append(e)
        at += 16 + n

scalars, images, texts = {}, {}, {}
for e in events:
    if not e.HasField("summary"):
        continue
    for v in e.summary.value:
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            scalars.setdefault(v.tag, []).append(e.step)
        elif kind == "image":
            assert v.image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n", f"image {v.tag} is not a PNG"
            assert v.image.width > 0 and v.image.height > 0
            images.setdefault(v.tag, []).append(e.step)
        elif kind == "tensor":
            assert v.metadata.plugin_data.plugin_name == "text", v.metadata
            texts[v.tag] = v.tensor.string_val[0].decode()

for t in tags:
    steps = scalars.get(t)
    assert steps, f"no scalar {t}; have {sorted(scalars)}"
    assert len(steps) == len(set(steps)), f"scalar {t}: duplicated steps {sorted(s for s in set(steps) if steps.count(s) > 1)}"
    assert sorted(steps) == list(range(1, last + 1)), f"scalar {t}: steps {sorted(steps)[:5]}..{sorted(steps)[-5:]}, expected 1..{last}"
for k in kinds:
    assert f"probes/{k}" in images, f"no probes/{k} image; have {sorted(images)}"
    steps = images[f"probes/{k}"]
    assert len(steps) == len(set(steps)), f"probes/{k}: duplicated steps {steps}"
assert "recipe" in texts and '"method"' in texts["recipe"], f"no recipe text; have {sorted(texts)}"
print(f"tensorboard check OK: {len(files)} file(s), {len(events)} events, {len(scalars)} scalar tags to step {last}, "
      f"images {sorted(images)}")
