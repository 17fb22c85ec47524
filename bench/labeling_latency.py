"""Labeling latency under load: simulated annotators doing next -> image -> submit over HTTP against gunicorn.

Builds a throwaway database (SQLite by default, or --database-url / $BENCH_DATABASE_URL for PostgreSQL)
with a 100,000-item and 1,000-item projects (rows via bulk_create, a few tiny shared PNGs), starts
gunicorn on loopback with config.settings.local, then for each (items, clients, via) drives that many
client processes, each with one keep-alive HTTP connection (http.client), a DRF token for the API and
a session cookie for the permission-checked media URL. Prints ONE JSON object: {"runs": [...], ...}.
--via api: GET next, the image, POST the annotation (REST API). --via page: the labeling page's own requests per
keypress (bench/labeling_latency_page.py): submit_ms is its label post answered by the next card, image_ms the
images that card brings, next_ms empty. Each run says its "via"; 1k-item projects get a copy per via.

    .venv/bin/python bench/labeling_latency.py                  # 100k and 1k items, 1 and 8 clients
    .venv/bin/python bench/labeling_latency.py --sizes 1000 --clients 8 --steps 50
    # consensus labeling: overlap 2, each annotator already has 5,000 labels awaiting a second annotator
    .venv/bin/python bench/labeling_latency.py --overlap 2 --awaiting 5000 --sizes 100000 --clients 1
"""

from __future__ import annotations

import argparse
import collections
import http.client
import io
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.labeling_latency_page import page_loop, step_extras  # noqa: E402  (the labeling page's requests per keypress)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


# --- setup (runs in this process with Django configured for the bench database) ---


def setup_django(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build_projects(
    sizes: list[int],
    clients: list[int],
    media_root: Path,
    *,
    overlap: int = 1,
    awaiting: int = 0,
    vias: tuple[str, ...] = ("api",),
) -> list[dict]:
    """Create projects and users; returns one spec per run: (items, clients, via, slug, credentials)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from PIL import Image

    from labeling.api.tokens import token_replace
    from labeling.models import Item, LabelClass, Membership, Project, Role

    call_command("migrate", verbosity=0)
    images = []
    (media_root / "bench").mkdir(parents=True, exist_ok=True)
    for i in range(32):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (i * 7 % 256, i * 31 % 256, i * 57 % 256)).save(buffer, "PNG")
        name = f"bench/{i}.png"
        (media_root / name).write_bytes(buffer.getvalue())
        images.append(name)

    users = []
    for c in range(max(clients)):
        user = get_user_model().objects.create_user(username=f"bench{c}", password="pw")
        token = token_replace(user=user)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        users.append({"user": user, "token": token.key, "session": session.session_key})

    def project_with(n: int, slug: str) -> dict:
        project = Project.objects.create(name=slug, slug=slug, holdout_fraction=0.1, annotations_per_item=overlap)
        classes = [
            LabelClass.objects.create(project=project, name=f"c{k}", hotkey=str(k + 1), order=k) for k in range(5)
        ]
        Membership.objects.bulk_create(
            [Membership(user=u["user"], project=project, role=Role.ANNOTATOR) for u in users]
        )
        batch = []
        for i in range(n):
            batch.append(
                Item(
                    project=project,
                    file=images[i % 32],
                    thumbnail=images[i % 32],
                    sha256=f"{i:064d}",
                    width=32,
                    height=32,
                    format="PNG",
                    original_name=f"{i}.png",
                    priority=(i * 7919 % n) / n,
                    split="holdout" if i % 10 == 0 else "train",
                )
            )
            if len(batch) == 5000:
                Item.objects.bulk_create(batch)
                batch = []
        Item.objects.bulk_create(batch)
        if awaiting:
            awaiting_labels(project, [u["user"] for u in users], classes[0])
        return {"slug": slug, "class_ids": [c.pk for c in classes], "project_id": project.pk}

    def awaiting_labels(project, annotators, label_class) -> None:
        """Each annotator's own `awaiting` labels on the best train items, each waiting for another annotator
        (an overlap-2 project where everyone worked alone so far)."""
        from labeling.models import Annotation, ItemState

        ranked = Item.objects.filter(project=project, split="train").order_by("-priority", "id")
        ids = list(ranked.values_list("pk", flat=True)[: awaiting * len(annotators)])
        for k, user in enumerate(annotators):
            mine = ids[k * awaiting : (k + 1) * awaiting]
            made = Annotation.objects.bulk_create([Annotation(item_id=i, user=user) for i in mine], batch_size=5000)
            Annotation.classes.through.objects.bulk_create(
                [Annotation.classes.through(annotation_id=a.pk, labelclass_id=label_class.pk) for a in made],
                batch_size=5000,
            )
        Item.objects.filter(pk__in=ids).update(state=ItemState.PARTIAL, annotation_count=1)

    runs = []
    for n in sizes:
        shared = project_with(n, f"bench-{n}-shared") if n >= 10_000 else None
        for c in clients:
            for via in vias:
                # Small projects get a fresh copy per run so that 8 fast clients never run out of items.
                project = shared or project_with(n, f"bench-{n}-{c}" + ("" if via == "api" else f"-{via}"))
                runs.append({"items": n, "clients": c, "via": via, **project})
    creds = [{"token": u["token"], "session": u["session"]} for u in users]
    from django.db import connection

    if connection.vendor == "sqlite":
        # Fold the bulk insert's write-ahead log into the database file, as a long-running server would have.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return runs, creds


# --- clients (separate processes, plain http.client with keep-alive) ---


def client_loop(args: tuple) -> dict:
    port, slug, cred, class_ids, steps, start_at = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {cred['token']}", "Cookie": f"sessionid={cred['session']}"}
    out = {"step": [], "next": [], "image": [], "submit": [], "errors": 0, "error_samples": [], "labeled": []}
    while time.time() < start_at:
        time.sleep(0.001)

    def request(method: str, url: str, body: bytes | None = None, extra: dict | None = None):
        conn.request(method, url, body=body, headers={**headers, **(extra or {})})
        response = conn.getresponse()
        return response.status, response.read()

    started = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        try:
            status, body = request("GET", f"/api/projects/{slug}/next/")
            t1 = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"next {status} {body[:200]!r}")
            item = json.loads(body)["item"]
            if item is None:
                break
            status, body = request("GET", item["original_url"])
            t2 = time.perf_counter()
            if status != 200 or not body.startswith(b"\x89PNG"):
                raise RuntimeError(f"image {status}")
            payload = json.dumps({"item_id": item["id"], "class_ids": [class_ids[item["id"] % len(class_ids)]],
                                  "seconds_spent": 1.0}).encode()  # fmt: skip
            status, body = request("POST", f"/api/projects/{slug}/annotations/", payload,
                                   {"Content-Type": "application/json"})  # fmt: skip
            t3 = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"submit {status} {body[:200]!r}")
        except Exception as exc:
            out["errors"] += 1
            if len(out["error_samples"]) < 3:
                out["error_samples"].append(repr(exc)[:300])
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        out["next"].append((t1 - t0) * 1000)
        out["image"].append((t2 - t1) * 1000)
        out["submit"].append((t3 - t2) * 1000)
        out["step"].append((t3 - t0) * 1000)
        out["labeled"].append(item["id"])
    out["elapsed"] = time.perf_counter() - started
    conn.close()
    return out


def server_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in gunicorn's process group (master and workers), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_for_server(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/livez")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000", help="project sizes in items")
    parser.add_argument("--clients", default="1,8", help="concurrent simulated annotators per run")
    parser.add_argument("--steps", type=int, default=0, help="steps per client (default: 300 / clients, min 60)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="PostgreSQL URL of an empty database (default: a temp SQLite file)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--overlap", type=int, default=1, help="annotations per item (consensus labeling when > 1)")
    parser.add_argument(
        "--awaiting", type=int, default=0, help="labels each annotator already has awaiting another (--overlap > 1)"
    )
    parser.add_argument("--via", default="api,page", help="api: the REST API; page: the labeling page's requests")
    args = parser.parse_args()
    if args.awaiting and args.overlap < 2:
        parser.error("--awaiting needs --overlap 2 or more")
    vias = tuple(v.strip() for v in args.via.split(",") if v.strip())
    if not vias or set(vias) - set(LOOPS):
        parser.error(f"--via takes a comma-separated list of {', '.join(LOOPS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    clients = [int(c) for c in args.clients.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="labelloop-bench-"))
    media = workdir / "media"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
        "LABELLOOP_MEDIA_ROOT": str(media),
        "LABELLOOP_DATA_ROOT": str(workdir / "data"),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    t0 = time.perf_counter()
    setup_django(env)
    runs, creds = build_projects(sizes, clients, media, overlap=args.overlap, awaiting=args.awaiting, vias=vias)
    from django.db import connections

    connections.close_all()
    setup_seconds = time.perf_counter() - t0

    port = free_port()
    gunicorn = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
        "-k", "gthread", "--threads", str(args.threads), "--keep-alive", "30", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(gunicorn, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    results = []
    try:
        wait_for_server(port, server)
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(max(clients)) as pool:
            # Warm up every worker process (imports, first queries) on the first project, each way in.
            for via in vias:
                first = next(r for r in runs if r["via"] == via)
                pool.map(
                    LOOPS[via],
                    [(port, first["slug"], creds[i], first["class_ids"], 25, 0) for i in range(max(clients))],
                )
            for run in runs:
                loop = LOOPS[run["via"]]
                steps = args.steps or max(60, 300 // run["clients"])
                pool.map(loop, [(port, run["slug"], creds[i], run["class_ids"], 3, 0) for i in range(run["clients"])])
                start_at = time.time() + 0.3
                saved_before = saved_labels(run["project_id"])
                cpu_before = server_cpu_seconds(server.pid)
                outs = pool.map(
                    loop,
                    [(port, run["slug"], creds[i], run["class_ids"], steps, start_at) for i in range(run["clients"])],
                )
                server_cpu = server_cpu_seconds(server.pid) - cpu_before
                saved = saved_labels(run["project_id"]) - saved_before
                wall = max(o["elapsed"] for o in outs)
                labeled = [i for o in outs for i in o["labeled"]]  # measured steps only (warm-up excluded)
                merged = {k: [v for o in outs for v in o[k]] for k in ("step", "next", "image", "submit")}
                results.append({
                    "items": run["items"], "clients": run["clients"], "via": run["via"], "steps": len(labeled),
                    **{f"{k}_ms": percentiles(v) for k, v in merged.items()},
                    "labels_per_s": round(len(labeled) / wall, 1) if wall else 0.0,
                    # Server CPU per label (all gunicorn processes): steadier than latency on a shared machine.
                    "server_cpu_ms_per_label": round(1000 * server_cpu / len(labeled), 2) if labeled else None,
                    "errors": sum(o["errors"] for o in outs),
                    "error_samples": [e for o in outs for e in o["error_samples"]][:3],
                    "duplicates": over_overlap(labeled, args.overlap) + db_duplicates(run["project_id"], args.overlap),
                    # Labels the server answered as saved that are not in the database (each answered post is one).
                    "unsaved": len(labeled) - saved,
                    **step_extras(outs),
                })  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({
        "runs": results,
        "overlap": args.overlap,
        "awaiting_per_annotator": args.awaiting,
        "database": "postgresql" if args.database_url else "sqlite",
        "server": f"gunicorn gthread {args.workers}x{args.threads}",
        "setup_seconds": round(setup_seconds, 1),
        "cpu_count": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }))  # fmt: skip


def over_overlap(labeled: list[int], overlap: int) -> int:
    """Labels the clients made beyond the overlap of their item (two clients labeling one item is right at 2)."""
    return sum(max(0, n - overlap) for n in collections.Counter(labeled).values())


def saved_labels(project_id: int) -> int:
    """Live labels (not skips, not withdrawn) in the project."""
    from labeling.models import Annotation

    return Annotation.objects.filter(item__project_id=project_id, skipped=False, undoes__isnull=True).count()


def db_duplicates(project_id: int, overlap: int = 1) -> int:
    """Items of the project with more live labels than the overlap."""
    from django.db.models import Count, Q

    from labeling.models import Item

    return (
        Item.objects.filter(project_id=project_id)
        .annotate(n=Count("annotations", filter=Q(annotations__skipped=False, annotations__undoes__isnull=True)))
        .filter(n__gt=overlap)
        .count()
    )


LOOPS = {"api": client_loop, "page": page_loop}

if __name__ == "__main__":
    main()
