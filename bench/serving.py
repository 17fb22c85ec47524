"""Prediction service latency and throughput over HTTP, against the bare onnxruntime session and torch eager, and
the INT8 service against the FP32 one.

Builds a throwaway project (SQLite) whose active version is EfficientNet-Lite0 (timm `tf_efficientnet_lite0`,
10 classes, 128 px input: the product's default backbone and the issue's size): the bundled ImageNet backbone with
a logistic-regression head fitted on --train CIFAR-10 train images, so the answers are a trained model's. 64 more
train images are the project's items (INT8 calibration reads them). The version is exported through the product's
model export (`manage.py export_model` path: ONNX checked against PyTorch, both INT8 files calibrated), an API key
is made, and `manage.py serve_predictions` (gunicorn) starts on loopback, once with LABELLOOP_SERVING_PRECISION=fp32
and, with --precision both (the default), once more with int8 (which serves the INT8 file that suits this CPU).
Then, with CIFAR-10 test JPEGs:

- p50/p95/p99 ms of one image per request (multipart, as curl -F sends it), one client, end to end;
- img/s of batches (--batch images per request, --clients concurrent clients);
- `ratio`: that img/s over the bare onnxruntime session's img/s on the same decoded, preprocessed inputs
  (same batch size, in this process: no HTTP, no decoding, no validation, no log);
- `speedup_vs_torch`: the service's img/s over the same checkpoint in torch eager (inference_mode, same inputs);
- `int8`: the INT8 service's latencies and img/s, `speedup_vs_fp32` (img/s over the FP32 service's, both measured
  in the same alternating rounds), and over --eval test images its accuracy beside FP32's, top-1 agreement with
  the FP32 service and the largest probability difference. The top-level keys stay the FP32 service's.

    .venv/bin/python bench/serving.py --data ../shared/datasets/cifar10            # full: 1000 singles, 40 batches
    .venv/bin/python bench/serving.py --data ../shared/datasets/cifar10 --singles 200 --batches 10
    .venv/bin/python bench/serving.py --precision fp32                              # the FP32 service alone
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


def build(workdir: Path, train: list[Path], calibration: list[Path]) -> tuple[str, str, Path, Path, float]:
    """Project with `calibration` as unlabeled train items, active Lite0 version (bundled backbone, head fitted on
    `train`) exported -> (slug, API token, checkpoint dir, FP32 onnx path, head's train accuracy)."""
    import zipfile

    import torch
    from django.conf import settings
    from django.core.management import call_command

    from labeling.models import LabelClass, Project, Split
    from labeling.services.imports.items import item_create_from_bytes
    from serving.services.keys import api_key_create
    from training.ml.checkpoint import save_checkpoint
    from training.ml.models import create_model
    from training.models import ModelVersion

    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="Bench serving", slug="bench-serving")
    names = sorted({p.parent.name for p in train})
    classes = [LabelClass.objects.create(project=project, name=n, order=i) for i, n in enumerate(names)]
    for path in calibration:
        item_create_from_bytes(project=project, name=path.name, data=path.read_bytes(), split=Split.TRAIN)
    torch.manual_seed(0)
    model = create_model(ARCH, num_classes=len(classes), weights="bundled")
    train_accuracy = fit_head(model, train)
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
    (zip_path,) = out.glob("*.zip")
    with zipfile.ZipFile(zip_path) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith("/model.onnx") or n == "model.onnx"]
        onnx_path = out / "model.onnx"
        onnx_path.write_bytes(zf.read(member))
    _, token = api_key_create(project=project, user=None, name="bench")
    return project.slug, token, ckpt, onnx_path, train_accuracy


def decoded_inputs(images: list[Path]):
    """The service's own decode + preprocessing of the bench images (what the bare session and torch get)."""
    import numpy as np

    from serving.runtime.preprocess import image_decode, serving_limits, to_input

    pre = {"image_size": SIZE, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic", "crop_pct": 1.0}
    limits = serving_limits()
    return np.stack([to_input(image_decode(p.read_bytes(), limits=limits).image, pre) for p in images])


def fit_head(model, train: list[Path]) -> float:
    """Fit the classifier on the frozen bundled backbone's pooled features of `train` (a logistic regression, as
    the product's head mode does), so the service answers like a trained model; returns its train accuracy."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    names = sorted({p.parent.name for p in train})
    labels = np.array([names.index(p.parent.name) for p in train])
    inputs = torch.from_numpy(decoded_inputs(train))
    model.eval()
    with torch.inference_mode():
        feats = torch.cat([model.forward_head(model.forward_features(x), pre_logits=True) for x in inputs.split(64)])
    head = LogisticRegression(max_iter=2000, C=0.5).fit(feats.numpy(), labels)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head.coef_).float())
        model.classifier.bias.copy_(torch.from_numpy(head.intercept_).float())
    return float(head.score(feats.numpy(), labels))


class Service:
    """One `manage.py serve_predictions` (gunicorn) on loopback with its precision."""

    def __init__(self, precision: str, workdir: Path, env: dict, workers: int, slug: str, token: str):
        self.precision, self.port = precision, free_port()
        self.log = workdir / f"predict-{precision}.log"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve_predictions", "--port", str(self.port), "--workers", str(workers)],
            cwd=ROOT, start_new_session=True,
            env={**os.environ, **env, "LABELLOOP_SERVING_PRECISION": precision, "LOG_LEVEL": "INFO"},
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"),
        )  # fmt: skip
        self.path = f"/v1/projects/{slug}/predict"
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, files: list[tuple[str, bytes]]) -> dict:
        body, ctype = multipart(files)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", self.path, body, {**self.headers, "Content-Type": ctype})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:300]!r}")
        return json.loads(data)

    def wait_ready(self, files: list[tuple[str, bytes]]) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                self.post(files[:1])
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(self.log.read_text()[-2000:]) from None
                time.sleep(0.3)
        for i in range(20):  # warm every worker
            self.post(files[i % len(files) : i % len(files) + 1])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def answers(service: Service, files: list[tuple[str, bytes]], batch: int):
    """N x C probabilities (the version's class order) of `files`, in order."""
    import numpy as np

    rows = []
    for i in range(0, len(files), batch):
        for answer in service.post(files[i : i + batch])["predictions"]:
            rows.append(answer["probabilities"])
    return np.array(rows)


def served_file_of(service: Service) -> str:
    """The ONNX file the service says it loaded ("serving project N with v1 (<file>)" in its log)."""
    import re

    found = re.findall(r"serving project \d+ with v\d+ \(([^)]+)\)", service.log.read_text())
    return found[-1] if found else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    parser.add_argument("--precision", choices=["fp32", "both"], default="both", help="both: FP32 and INT8 services")
    parser.add_argument("--singles", type=int, default=1000, help="one-image requests timed (per service)")
    parser.add_argument("--batches", type=int, default=40, help="batch requests timed (per client)")
    parser.add_argument("--batch", type=int, default=32, help="images per batch request")
    parser.add_argument("--workers", type=int, default=2, help="prediction service processes")
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients for the batch throughput")
    parser.add_argument("--ort-threads", type=int, default=1, help="onnxruntime threads per service process")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of service, bare session, torch")
    parser.add_argument("--train", type=int, default=50, help="train images per class the head is fitted on")
    parser.add_argument("--eval", type=int, default=1000, help="test images the INT8 service is compared on")
    args = parser.parse_args()

    data = Path(args.data)
    tests = sorted((data / "test").rglob("*.jpg"))
    images = tests[::7][: max(args.batch * 4, 64)]
    if not images:
        raise SystemExit(f"no CIFAR-10 test JPEGs under {args.data}/test")
    by_class: dict[str, list[Path]] = {}
    for path in sorted((data / "train").rglob("*.jpg")):
        by_class.setdefault(path.parent.name, []).append(path)
    train = [p for paths in by_class.values() for p in paths[: args.train]]
    calibration = [p for paths in by_class.values() for p in paths[args.train : args.train + 64 // len(by_class)]]
    evaluation = tests[3::max(1, len(tests) // args.eval)][: args.eval]  # fmt: skip
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
    slug, token, ckpt, onnx_path, train_accuracy = build(workdir, train, calibration)
    precisions = ["fp32", "int8"] if args.precision == "both" else ["fp32"]
    services = {p: Service(p, workdir, env, args.workers, slug, token) for p in precisions}

    try:
        files = [(p.name, p.read_bytes()) for p in images]
        for service in services.values():
            service.wait_ready(files)

        latencies: dict[str, list[float]] = {p: [] for p in services}
        for i in range(args.singles):  # the services take turns, so a load spike hits both
            one = files[i % len(files)]
            for precision, service in services.items():
                start = time.perf_counter()
                service.post([one])
                latencies[precision].append((time.perf_counter() - start) * 1000)

        batches = [files[i : i + args.batch] for i in range(0, len(files) - args.batch + 1, args.batch)]

        def service_round(service: Service, per_client: int) -> tuple[int, float]:
            counts = [0] * args.clients

            def client(c: int) -> None:
                for i in range(per_client):
                    counts[c] += len(service.post(batches[(i + c) % len(batches)])["predictions"])

            threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(counts), time.perf_counter() - start

        # The same inputs, decoded and preprocessed once, through the bare session and torch eager (same batch
        # size). Other work on a shared machine comes and goes: the services, the bare session and torch are
        # measured in alternating rounds and each figure is its images over its seconds summed over the rounds.
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
        totals = {k: [0, 0.0] for k in [*services, "bare", "torch"]}
        per_round = max(1, args.batches // args.rounds)
        for _ in range(args.rounds):
            for precision, service in services.items():
                n, seconds = service_round(service, per_round)
                totals[precision][0] += n
                totals[precision][1] += seconds
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

        import numpy as np

        class_names = cfg["class_names"]
        truth = np.array([class_names.index(p.parent.name) for p in evaluation])
        eval_files = [(p.name, p.read_bytes()) for p in evaluation]
        probs = {p: answers(service, eval_files, args.batch) for p, service in services.items()}
    finally:
        for service in services.values():
            service.stop()
    img_s = {k: totals[k][0] / totals[k][1] for k in totals}
    service_img_s, bare_img_s, torch_img_s = img_s["fp32"], img_s["bare"], img_s["torch"]
    fp32_top1 = probs["fp32"].argmax(axis=1)
    result = {
        "p50_ms": percentile(latencies["fp32"], 0.50),
        "p95_ms": percentile(latencies["fp32"], 0.95),
        "p99_ms": percentile(latencies["fp32"], 0.99),
        "img_per_s": round(service_img_s, 1),
        "ratio": round(service_img_s / bare_img_s, 3),
        "speedup_vs_torch": round(service_img_s / torch_img_s, 2),
        "bare_onnxruntime_img_per_s": round(bare_img_s, 1),
        "torch_eager_img_per_s": round(torch_img_s, 1),
        "accuracy": round(float((fp32_top1 == truth).mean()), 4),
    }
    if "int8" in services:
        top1 = probs["int8"].argmax(axis=1)
        result["int8"] = {
            "onnx_file": served_file_of(services["int8"]),
            "p50_ms": percentile(latencies["int8"], 0.50),
            "p95_ms": percentile(latencies["int8"], 0.95),
            "p99_ms": percentile(latencies["int8"], 0.99),
            "img_per_s": round(img_s["int8"], 1),
            "speedup_vs_fp32": round(img_s["int8"] / service_img_s, 2),
            "p50_ratio_vs_fp32": round(percentile(latencies["int8"], 0.5) / percentile(latencies["fp32"], 0.5), 3),
            "accuracy": round(float((top1 == truth).mean()), 4),
            "accuracy_drop_points": round(float((fp32_top1 == truth).mean() - (top1 == truth).mean()) * 100, 2),
            "top1_agreement_with_fp32": round(float((top1 == fp32_top1).mean()), 4),
            "max_probability_difference": round(float(np.abs(probs["int8"] - probs["fp32"]).max()), 3),
        }
    from training.ml.export_files import cpu_has_vnni

    print(json.dumps({
        **result,
        "model": f"{ARCH} {SIZE}px, {len(class_names)} classes, bundled backbone + head fitted on "
                 f"{len(train)} train images (train accuracy {train_accuracy:.3f})",
        "evaluated_on": f"{len(evaluation)} CIFAR-10 test images",
        "cpu_vnni": cpu_has_vnni(),
        "singles": args.singles, "batch": args.batch, "batches_per_client": args.batches,
        "rounds": args.rounds, "clients": args.clients,
        "service": f"gunicorn {args.workers} workers x {args.ort_threads} onnxruntime thread(s)",
        "torch_threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "full_size": "--singles 1000 --batches 40 --eval 1000 (defaults)",
    }))  # fmt: skip


if __name__ == "__main__":
    main()
