"""Prediction service latency and throughput over HTTP, against the bare onnxruntime session and torch eager.

Builds a throwaway project (SQLite) whose active version is EfficientNet-Lite0 (timm `tf_efficientnet_lite0`,
10 classes, 128 px input: the product's default backbone and the issue's size), exports it through the product's
model export (`manage.py export_model` path: ONNX checked against PyTorch), makes an API key, starts
`manage.py serve_predictions` (gunicorn) on loopback, then measures with CIFAR-10 test JPEGs:

- p50/p95/p99 ms of one image per request (multipart, as curl -F sends it), one client, end to end;
- img/s of batches (--batch images per request, --clients concurrent clients);
- `ratio`: that img/s over the bare onnxruntime session's img/s on the same decoded, preprocessed inputs
  (same batch size, in this process: no HTTP, no decoding, no validation, no log);
- `speedup_vs_torch`: the service's img/s over the same checkpoint in torch eager (inference_mode, same inputs).

    .venv/bin/python bench/serving.py --data ../shared/datasets/cifar10            # full: 1000 singles, 40 batches
    .venv/bin/python bench/serving.py --data ../shared/datasets/cifar10 --singles 200 --batches 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCH = "tf_efficientnet_lite0"
SIZE = 128


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")  # fmt: skip
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def build(workdir: Path, images: list[Path]) -> tuple[str, str, Path, Path]:
    """Project, active Lite0 version exported to ONNX, API key -> (slug, token, checkpoint dir, onnx path)."""
    import timm
    import torch
    from django.conf import settings
    from django.core.management import call_command

    from labeling.models import LabelClass, Project
    from serving.services.keys import api_key_create
    from training.ml.checkpoint import save_checkpoint
    from training.models import ModelVersion

    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="Bench serving", slug="bench-serving")
    classes = [LabelClass.objects.create(project=project, name=n, order=i)
               for i, n in enumerate(sorted(p.name for p in images[0].parent.parent.iterdir()))]  # fmt: skip
    torch.manual_seed(0)
    model = timm.create_model(ARCH, num_classes=len(classes))
    relative = Path("projects") / str(project.pk) / "bench" / "v1"
    ckpt = save_checkpoint(
        Path(settings.LABELLOOP_DATA_ROOT) / relative,
        model.state_dict(),
        {"architecture": ARCH, "class_names": [c.name for c in classes],
         "preprocessing": {"image_size": SIZE, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic",
                           "crop_pct": 1.0, "flip_average": False}},
    )  # fmt: skip
    ModelVersion.objects.create(project=project, number=1, artifact_path=str(relative), architecture=ARCH,
                                class_ids=[c.pk for c in classes], active=True)  # fmt: skip
    out = workdir / "export"
    out.mkdir()
    call_command("export_model", project.slug, "--out", str(out), verbosity=0)
    import zipfile

    (zip_path,) = out.glob("*.zip")
    with zipfile.ZipFile(zip_path) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith("model.onnx")]
        onnx_path = out / "model.onnx"
        onnx_path.write_bytes(zf.read(member))
    _, token = api_key_create(project=project, user=None, name="bench")
    return project.slug, token, ckpt, onnx_path


def decoded_inputs(images: list[Path]):
    """The service's own decode + preprocessing of the bench images (what the bare session and torch get)."""
    import numpy as np

    from serving.runtime.preprocess import image_decode, serving_limits, to_input

    pre = {"image_size": SIZE, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic", "crop_pct": 1.0}
    limits = serving_limits()
    return np.stack([to_input(image_decode(p.read_bytes(), limits=limits).image, pre) for p in images])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    parser.add_argument("--singles", type=int, default=1000, help="one-image requests timed")
    parser.add_argument("--batches", type=int, default=40, help="batch requests timed (per client)")
    parser.add_argument("--batch", type=int, default=32, help="images per batch request")
    parser.add_argument("--workers", type=int, default=2, help="prediction service processes")
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients for the batch throughput")
    parser.add_argument("--ort-threads", type=int, default=1, help="onnxruntime threads per service process")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of service, bare session, torch")
    args = parser.parse_args()

    images = sorted((Path(args.data) / "test").rglob("*.jpg"))[::7][: max(args.batch * 4, 64)]
    if not images:
        raise SystemExit(f"no CIFAR-10 test JPEGs under {args.data}/test")
    workdir = Path(tempfile.mkdtemp(prefix="labelloop-bench-serving-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "LABELLOOP_DATA_ROOT": str(workdir / "data"),
        "LABELLOOP_MEDIA_ROOT": str(workdir / "media"),
        "LABELLOOP_SERVING_ORT_THREADS": str(args.ort_threads),
        "LABELLOOP_SERVING_AUTO_EXPORT": "false",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    slug, token, ckpt, onnx_path = build(workdir, images)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve_predictions", "--port", str(port), "--workers", str(args.workers)],
        cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=(workdir / "predict.log").open("w"),
    )  # fmt: skip
    path = f"/v1/projects/{slug}/predict"
    headers = {"Authorization": f"Bearer {token}"}

    def post(files: list[tuple[str, bytes]]) -> dict:
        body, ctype = multipart(files)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", path, body, {**headers, "Content-Type": ctype})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:300]!r}")
        return json.loads(data)

    try:
        files = [(p.name, p.read_bytes()) for p in images]
        deadline = time.monotonic() + 60
        while True:
            try:
                post(files[:1])
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((workdir / "predict.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        for i in range(20):  # warm every worker
            post(files[i % len(files) : i % len(files) + 1])

        latencies = []
        for i in range(args.singles):
            one = files[i % len(files)]
            start = time.perf_counter()
            post([one])
            latencies.append((time.perf_counter() - start) * 1000)

        batches = [files[i : i + args.batch] for i in range(0, len(files) - args.batch + 1, args.batch)]

        def service_round(per_client: int) -> tuple[int, float]:
            counts = [0] * args.clients

            def client(c: int) -> None:
                for i in range(per_client):
                    counts[c] += len(post(batches[(i + c) % len(batches)])["predictions"])

            threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(counts), time.perf_counter() - start

        # The same inputs, decoded and preprocessed once, through the bare session and torch eager (same batch
        # size). Other work on a shared machine comes and goes: the three are measured in alternating rounds and
        # each figure is its images over its seconds summed over the rounds.
        import onnxruntime as ort
        import torch

        from training.ml.checkpoint import load_checkpoint, serving_model

        inputs = decoded_inputs(images)
        arrays = [inputs[i : i + args.batch] for i in range(0, len(inputs) - args.batch + 1, args.batch)]
        options = ort.SessionOptions()
        # Idle onnxruntime threads spin for a while after each run: that would steal the cores from torch's turn.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        model, cfg = load_checkpoint(ckpt)
        model = serving_model(model.float().eval(), cfg)
        tensors = [torch.from_numpy(a) for a in arrays]
        session.run(None, {"input": arrays[0]})
        with torch.inference_mode():
            model(tensors[0])
        totals = {"service": [0, 0.0], "bare": [0, 0.0], "torch": [0, 0.0]}
        per_round = max(1, args.batches // args.rounds)
        for _ in range(args.rounds):
            n, seconds = service_round(per_round)
            totals["service"][0] += n
            totals["service"][1] += seconds
            start = time.perf_counter()
            for i in range(per_round * args.clients):
                session.run(None, {"input": arrays[i % len(arrays)]})
            totals["bare"][0] += per_round * args.clients * args.batch
            totals["bare"][1] += time.perf_counter() - start
            start = time.perf_counter()
            with torch.inference_mode():
                for i in range(max(1, per_round // 2)):
                    model(tensors[i % len(tensors)])
            totals["torch"][0] += max(1, per_round // 2) * args.batch
            totals["torch"][1] += time.perf_counter() - start
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    service_img_s, bare_img_s, torch_img_s = (totals[k][0] / totals[k][1] for k in ("service", "bare", "torch"))

    print(json.dumps({
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "img_per_s": round(service_img_s, 1),
        "ratio": round(service_img_s / bare_img_s, 3),
        "speedup_vs_torch": round(service_img_s / torch_img_s, 2),
        "bare_onnxruntime_img_per_s": round(bare_img_s, 1),
        "torch_eager_img_per_s": round(torch_img_s, 1),
        "model": f"{ARCH} {SIZE}px, {len(cfg['class_names'])} classes",
        "singles": args.singles, "batch": args.batch, "batches_per_client": args.batches,
        "rounds": args.rounds, "clients": args.clients,
        "service": f"gunicorn {args.workers} workers x {args.ort_threads} onnxruntime thread(s)",
        "torch_threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "full_size": "--singles 1000 --batches 40 (defaults)",
    }))  # fmt: skip


if __name__ == "__main__":
    main()
