"""`python -m bench.geocode --national`: our geocoder vs addok on a SYNTHETIC national BAN.

1. builds a synthetic BAN (bench/geocode/synthetic_france.py): the real communes of France
   (INSEE's COG, with arrondissements and former communes), ~5.3 M made-up doors on streets named
   after Bruz's real ones; 2 % of the communes are LEFT OUT of the file (their doors are "not
   loaded");
2. derives typed queries from loaded doors, by typo kind: none, street (a slip of the finger,
   type dropped or abbreviated), number (suffix glued, spaced, abbreviated), commune (a slip,
   article, Saint/St, hyphens, the former commune's name), postcode (a digit wrong, missing,
   swapped, or no postcode); and the same kinds of queries for doors of the left-out communes;
3. loads the file with ``porte import addresses``'s code into a throwaway PostGIS, and the same
   doors into addok (+ addok-fr, addok-france) on a private Redis;
4. prints the match rate at the door (≤ 30 m) by kind, the wrong-commune answers for doors not
   loaded, throughput one at a time (with p50/p99) and in batches, and the ratios to addok.

Options: --doors N (default 6,000,000 asked, ≈5.3 M made: small communes get 20), --queries N
per kind (default 2,000), --no-addok, --single N (queries timed one at a time).

Reruns: ``--data DIR`` keeps the run's material in DIR — the generated BAN file, addok's
documents, the queries (``queries.json``), the loaded PostGIS cluster (``db/``) and addok's Redis
dump (``redis/dump.rdb``) — and a later run with the same DIR (and the same --doors/--queries)
generates nothing again and reuses addok's dump instead of indexing (≈20 min saved). The doors are
imported again into a fresh cluster unless ``--reuse`` is given: then the cluster loaded by the
previous run is reused as it is (migrations applied), and a porte-only rerun
(``--data DIR --reuse --no-addok``) takes a few minutes. Without --data everything is made in a
temporary directory and removed (one command, ≈45 min).

Besides wall-clock figures, the run prints the CPU time per query of the client (this process)
and of the PostgreSQL backend serving it (from /proc): on a shared machine wall-clock time
depends on the other jobs, CPU time much less.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import unicodedata
from dataclasses import asdict
from pathlib import Path

from bench.geocode.__main__ import ADDOK_CONFIG, addok_python, free_port, metres
from bench.geocode.synthetic_france import BAN_HEADER, Door, ban_line, generate, load_communes

ROOT = Path(__file__).resolve().parents[2]
BAL = ROOT / "data" / "addresses" / "bal_35047_bruz.csv"
CACHE = Path(__file__).with_name(".cache")
KINDS = ("none", "street", "number", "commune", "postcode")
QSEED = 77


def strip_accents(s: str) -> str:
    """'Noë' -> 'Noe'."""
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


def slip(word: str, rng: random.Random) -> str:
    """One slip of the finger in a word: a letter dropped, doubled, swapped or replaced."""
    letters = [i for i, c in enumerate(word) if c.isalpha()]
    if len(letters) < 4:
        return word
    pos = rng.choice(letters[1:-1])
    op = rng.choice(["delete", "swap", "replace", "double"])
    if op == "delete":
        return word[:pos] + word[pos + 1 :]
    if op == "swap" and pos + 1 < len(word):
        return word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    if op == "replace":
        keys = "azertyuiopqsdfghjklmwxcvbn"
        c = word[pos].lower()
        return word[:pos] + keys[(keys.find(c) + 1) % len(keys)] + word[pos + 1 :]
    return word[:pos] + word[pos] + word[pos:]


def typo_in_name(name: str, rng: random.Random) -> str:
    """A slip in the longest word of a name."""
    words = name.split(" ")
    i = max(range(len(words)), key=lambda k: len(words[k]))
    parts = words[i].split("-")
    j = max(range(len(parts)), key=lambda k: len(parts[k]))
    parts[j] = slip(parts[j], rng)
    words[i] = "-".join(parts)
    return " ".join(words)


STREET_ABBR = {"Rue": "r.", "Avenue": "av.", "Boulevard": "bd", "Allée": "all.", "Chemin": "ch.",
               "Impasse": "imp", "Place": "pl.", "Route": "rte", "Square": "sq.",
               "Résidence": "res.", "Lotissement": "lot."}  # fmt: skip


def typed_query(d: Door, kind: str, rng: random.Random) -> str:
    """A typed address for door ``d`` with a typo of the given kind."""
    num = f"{d.numero}{' ' + d.rep if d.rep else ''}"
    street, pc, city = d.nom_voie, d.code_postal, d.city_typed
    style = rng.choices(["comma", "nocomma", "nopc"], [0.6, 0.25, 0.15])[0]
    if kind == "street":
        u = rng.random()
        first, _, rest = street.partition(" ")
        if u < 0.6 or not rest:
            street = typo_in_name(street, rng)
        elif u < 0.8:
            street = rest  # no street type
        else:
            street = f"{STREET_ABBR.get(first, first.lower())} {rest}"
        style = "comma" if style == "nopc" else style
    elif kind == "number":
        if d.rep:
            s = d.rep.lower()
            if s in ("bis", "ter"):
                num = rng.choice([f"{d.numero}{s.upper()}", f"{d.numero}{s}", f"{d.numero} {s[0]}",
                                  f"{d.numero}{s[0].upper()}"])  # fmt: skip
            else:
                num = rng.choice(
                    [f"{d.numero}{s}", f"{d.numero} {s.upper()}", f"{d.numero}{s.upper()}"]
                )
        else:
            num = rng.choice([f"n° {d.numero}", f"{d.numero},", f"N°{d.numero}"])
        style = "comma" if style == "nopc" else style
    elif kind == "commune":
        u = rng.random()
        if u < 0.6:
            city = typo_in_name(city, rng)
        elif u < 0.75 and city.split(" ")[0] in ("Le", "La", "Les") or city.startswith("L'"):
            city = city.split("'", 1)[1] if city.startswith("L'") else city.split(" ", 1)[1]
        elif u < 0.85 and ("Saint" in city):
            city = city.replace("Saint-", "St ").replace("Sainte-", "Ste ")
        elif u < 0.95:
            city = strip_accents(city.replace("-", " ")).upper()
        else:
            city = typo_in_name(city, rng)
        style = rng.choices(["comma", "nopc"], [0.6, 0.4])[0]
    elif kind == "postcode":
        u = rng.random()
        i = rng.randrange(5)
        if u < 0.4:
            pc = pc[:i] + str((int(pc[i]) + rng.randint(1, 9)) % 10) + pc[i + 1 :]
        elif u < 0.7:
            pc = pc[:i] + pc[i + 1 :]
        elif u < 0.85:
            i = min(i, 3)
            pc = pc[:i] + pc[i + 1] + pc[i] + pc[i + 2 :] if pc[i] != pc[i + 1] else pc[:4]
        else:
            style = "nopc"
        if style == "nopc" and u < 0.85:
            style = "comma"
    if kind == "none" and rng.random() < 0.3:
        street, city = strip_accents(street).lower(), strip_accents(city).lower()
    if style == "comma":
        return f"{num} {street}, {pc} {city}"
    if style == "nocomma":
        return f"{num} {street} {pc} {city}"
    return f"{num} {street}, {city}"


# ---------------------------------------------------------------- data
def build(tmp: Path, total: int, per_kind: int):
    """Write the BAN CSV and addok's documents; return the queries (loaded, left out)."""
    from bench.geocode.synthetic_france import SEED

    communes = load_communes(CACHE)
    with BAL.open(encoding="utf-8-sig") as fh:
        bruz = sorted({r["voie_nom"] for r in csv.DictReader(fh, delimiter=";")})
    pick = random.Random(SEED + 1)
    # reservoirs: loaded doors (those with a suffix apart, for the number kind), left-out doors
    want = {"plain": per_kind * 5, "suffix": per_kind, "out": per_kind}
    pools: dict[str, list[Door]] = {k: [] for k in want}
    seen = dict.fromkeys(want, 0)
    n_doors = n_out = 0
    communes_loaded: set[str] = set()
    cities = {c.code: c for c in communes}
    csv_path, docs_path = tmp / "ban-synthetic-france.csv", tmp / "addok-docs.ndjson"
    with csv_path.open("w", encoding="utf-8") as out, docs_path.open("w") as docs:
        out.write(BAN_HEADER + "\n")
        street_key, street_doc = None, None

        def flush():
            if street_doc:
                pts = street_doc.pop("_pts")
                street_doc["lon"] = sum(p[0] for p in pts) / len(pts)
                street_doc["lat"] = sum(p[1] for p in pts) / len(pts)
                docs.write(json.dumps(street_doc) + "\n")

        for d, held in generate(communes, bruz, total, 0.02):
            pool = "out" if held else ("suffix" if d.rep else "plain")
            seen[pool] += 1
            if len(pools[pool]) < want[pool]:
                pools[pool].append(d)
            else:
                j = pick.randrange(seen[pool])
                if j < want[pool]:
                    pools[pool][j] = d
            if held:
                n_out += 1
                continue
            n_doors += 1
            out.write(ban_line(d))
            key = (d.code_insee, d.nom_voie)
            if key != street_key:
                flush()
                c = cities[d.code_insee]
                communes_loaded.add(d.code_insee)
                context = [d.code_insee[:2]]
                if c.parent:
                    context.append(d.nom_commune)
                if d.nom_ancienne:
                    context.append(d.nom_ancienne)
                street_key = key
                street_doc = {
                    "id": f"{d.code_insee}_{d.id.split('_')[1]}",
                    "type": "street",
                    "name": d.nom_voie,
                    "postcode": d.code_postal,
                    "citycode": d.code_insee,
                    "city": d.city_typed if c.parent else d.nom_commune,
                    "context": ", ".join(context),
                    "importance": 0.5,
                    "housenumbers": {},
                    "_pts": [],
                }
            hn = f"{d.numero} {d.rep}" if d.rep else str(d.numero)
            street_doc["housenumbers"][hn] = {"lat": d.lat, "lon": d.lon}
            street_doc["_pts"].append((d.lon, d.lat))
        flush()
        for code in sorted(communes_loaded):
            c = cities[code]
            docs.write(json.dumps({
                "id": code, "type": "municipality", "name": c.name, "postcode": c.postcodes[0],
                "citycode": code, "city": c.name, "lon": c.lon, "lat": c.lat,
                "importance": 0.6,
            }) + "\n")  # fmt: skip
    rng = random.Random(QSEED)
    loaded: list[tuple[str, str, Door]] = []
    plain = pools["plain"]
    for i, kind in enumerate(KINDS):
        if kind == "number":
            ds = pools["suffix"][: per_kind * 3 // 4] + plain[i * per_kind :][: per_kind // 4]
        else:
            ds = plain[i * per_kind : (i + 1) * per_kind]
        loaded += [(kind, typed_query(d, kind, rng), d) for d in ds]
    out_q = [(KINDS[i % 5], typed_query(d, KINDS[i % 5], rng), d)
             for i, d in enumerate(pools["out"])]  # fmt: skip
    stats = {
        "doors": n_doors,
        "communes": len(communes_loaded),
        "left_out_doors": n_out,
        "left_out_communes": len({d.code_insee for d in pools["out"]}),
    }
    return csv_path, docs_path, loaded, out_q, stats


# ---------------------------------------------------------------- ours
def proc_cpu(pid: int) -> float:
    """CPU seconds used so far by process ``pid``: /proc/PID/schedstat (nanoseconds), else
    /proc/PID/stat's user + system (clock ticks, 10 ms: fine for a total, not per query)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuClock:
    """Wall, client CPU and PostgreSQL backend CPU between two reads."""

    def __init__(self, backend_pid: int):
        self.pid = backend_pid

    def read(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), proc_cpu(self.pid)


def spent(a: tuple[float, float, float], b: tuple[float, float, float]) -> dict[str, float]:
    return {"wall": b[0] - a[0], "client_cpu": b[1] - a[1], "db_cpu": b[2] - a[2]}


async def run_ours(owner_url: str, loaded, out_q, single_n: int) -> dict:
    """Batch (all queries), then one at a time (``single_n`` of them, every kind)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.services.people.geocoder import geocode

    engine = create_async_engine(owner_url, pool_size=1)
    queries = [q for _k, q, _d in loaded]
    async with engine.connect() as conn:
        clock = CpuClock((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await geocode(conn, queries[:100])
        for q in queries[:20]:
            await geocode(conn, [q])
        t0 = clock.read()
        res = await geocode(conn, queries)
        batch = spent(t0, clock.read())
        res_out = await geocode(conn, [q for _k, q, _d in out_q])
        step = max(1, len(queries) // single_n)
        lat, cpu = [], []
        t0 = clock.read()
        for q in queries[::step]:
            a = clock.read()
            await geocode(conn, [q])
            b = clock.read()
            lat.append(b[0] - a[0])
            cpu.append(b[1] - a[1] + b[2] - a[2])
        single = spent(t0, clock.read())
    await engine.dispose()

    def conv(r):
        return (r.level, r.lon, r.lat, r.code_insee)

    return {
        "answers": [conv(r) for r in res],
        "answers_out": [conv(r) for r in res_out],
        "per_s_batch": len(queries) / batch["wall"],
        "latencies": lat,
        "cpu_per_query": cpu,
        "cpu_batch": {k: v / len(queries) for k, v in batch.items()},
        "cpu_single": {k: v / len(lat) for k, v in single.items()},
    }


# ---------------------------------------------------------------- addok
def run_addok(py: str, tmp: Path, docs_path: Path, loaded, out_q, single_n: int) -> dict:
    """Index the documents in addok on a private Redis (or load the Redis dump a previous run
    left in ``tmp/redis``), query one at a time, save the dump, stop Redis."""
    redis = shutil.which("redis-server")
    if not redis:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    rdir = tmp / "redis"
    rdir.mkdir(exist_ok=True)
    dump = rdir / "dump.rdb"
    indexed = rdir / "indexed.json"  # written once the dump holds a whole index
    reuse = dump.exists() and indexed.exists()
    if not reuse:
        dump.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(rdir), "--dbfilename", dump.name],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        conf = tmp / "addok.conf"
        conf.write_text(
            ADDOK_CONFIG.format(port=port, tmp=tmp).replace(
                "BATCH_WORKERS = 1", "BATCH_WORKERS = 2"
            )
        )
        env = {**os.environ, "ADDOK_CONFIG_MODULE": str(conf)}
        addok = str(Path(py).parent / "addok")
        _wait_redis(port, reuse)
        if reuse:
            index_s = json.loads(indexed.read_text())["index_s"]
            print(f"addok: reusing the index of a previous run ({dump}).", flush=True)
        else:
            t0 = time.perf_counter()
            print("Indexing the same doors in addok (takes a while)…", flush=True)
            for args in (["batch", str(docs_path)], ["ngrams"]):
                r = subprocess.run([addok, *args], env=env, capture_output=True, text=True)
                if r.returncode != 0:
                    raise RuntimeError(f"addok {args[0]} failed: {r.stderr.strip()[-500:]}")
            index_s = time.perf_counter() - t0
            r = subprocess.run(["redis-cli", "-p", str(port), "save"], capture_output=True,
                               text=True)  # fmt: skip
            if r.returncode == 0 and "OK" in r.stdout:
                indexed.write_text(json.dumps({"index_s": index_s}))
        side = Path(__file__).with_name("addok_side.py")
        answers = {}
        step = max(1, len(loaded) // single_n)
        for name, qs in (("main", [q for _k, q, _d in loaded]),
                         ("out", [q for _k, q, _d in out_q])):  # fmt: skip
            qf, rf = tmp / f"{name}.json", tmp / f"{name}.out.json"
            qf.write_text(json.dumps(qs))
            r = subprocess.run([py, str(side), str(qf), str(rf)], env=env, capture_output=True,
                               text=True)  # fmt: skip
            if r.returncode != 0:
                raise RuntimeError(f"addok search failed: {r.stderr.strip()[-500:]}")
            answers[name] = json.loads(rf.read_text())
        info = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"],
                              capture_output=True, text=True).stdout  # fmt: skip
        mem = next((ln.split(":")[1].strip() for ln in info.splitlines()
                    if ln.startswith("used_memory_human")), "?")  # fmt: skip

        def conv(a):
            if a is None:
                return None
            return (a["type"], a["lon"], a["lat"], a["citycode"], a["score"])

        main = answers["main"]
        return {
            "answers": [conv(a) for a in main["results"]],
            "answers_out": [conv(a) for a in answers["out"]["results"]],
            "latencies": main["latencies"][::step],
            "per_s_single": len(loaded) / main["seconds"],
            "index_s": index_s,
            "index_reused": reuse,
            "redis_memory": mem,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_redis(port: int, loading: bool) -> None:
    """Until Redis answers (and, after a dump, has loaded it: PING says LOADING until then)."""
    deadline = time.monotonic() + (600 if loading else 10)
    while time.monotonic() < deadline:
        r = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.2)
    raise RuntimeError(f"Redis on port {port} did not become ready")


# ---------------------------------------------------------------- figures
def at_door(d: Door, a) -> bool:
    """Answered at the door: a house-number answer within 30 m of the expected door."""
    return (
        bool(a)
        and a[0] == "housenumber"
        and a[1] is not None
        and (metres(d.lon, d.lat, a[1], a[2]) <= 30)
    )


def figures(loaded, out_q, answers, answers_out, min_score: float | None = None) -> dict:
    """Match rate by kind, wrong communes (loaded and left out)."""

    def keep(a):
        return a if a and (min_score is None or a[4] >= min_score) else None

    by_kind: dict[str, list[int]] = {k: [0, 0] for k in KINDS}
    wrong_loaded = 0
    for (kind, _q, d), a in zip(loaded, answers, strict=True):
        a = keep(a)
        by_kind[kind][1] += 1
        by_kind[kind][0] += at_door(d, a)
        if a and a[3] is not None and a[3] != d.code_insee:
            wrong_loaded += 1
    answered = wrong = 0
    for (_k, _q, d), a in zip(out_q, answers_out, strict=True):
        a = keep(a)
        if a and a[3] is not None:
            answered += 1
            wrong += a[3] != d.code_insee
    total = sum(v[0] for v in by_kind.values()) / max(1, sum(v[1] for v in by_kind.values()))
    return {
        "by_kind": {k: v[0] / v[1] for k, v in by_kind.items() if v[1]},
        "all": total,
        "wrong_loaded": wrong_loaded,
        "out_answered": answered,
        "out_wrong": wrong,
        "out_n": len(out_q),
    }


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, in milliseconds."""
    v = sorted(values)
    return 1000 * v[min(len(v) - 1, int(q * len(v)))]


def report(stats, ours, fo, addok, fa, fa60, why) -> None:
    """Print the comparison."""

    def row(name, o, a, fmt, ratio=True):
        a_txt = fmt.format(a) if a is not None else "n/a"
        r = f"{o / a:.2f}" if ratio and a else ""
        print(f"  {name:<40} {fmt.format(o):>10} {a_txt:>10} {r:>7}")

    print(f"{'':42} {'porte':>10} {'addok':>10} {'ratio':>7}")
    print("  match rate at the door (≤ 30 m), by typo kind:")
    for k in KINDS:
        row(f"  {k}", fo["by_kind"][k] * 100, fa and fa["by_kind"][k] * 100, "{:.1f} %")
    row("  all kinds", fo["all"] * 100, fa and fa["all"] * 100, "{:.1f} %")
    row("wrong-commune answers, doors loaded", fo["wrong_loaded"], fa and fa["wrong_loaded"],
        "{:d}", False)  # fmt: skip
    print(f"  doors NOT loaded ({fo['out_n']} queries, {stats['left_out_communes']} left-out "
          "communes):")  # fmt: skip
    row("  answered with a commune", fo["out_answered"], fa and fa["out_answered"], "{:d}", False)
    row("  wrong commune (count)", fo["out_wrong"], fa and fa["out_wrong"], "{:d}", False)
    row("  wrong commune (share)", 100 * fo["out_wrong"] / fo["out_n"],
        fa and 100 * fa["out_wrong"] / fa["out_n"], "{:.1f} %", False)  # fmt: skip
    lat_o = ours["latencies"]
    single_o = len(lat_o) / sum(lat_o)
    row("addresses/s, one at a time", single_o, addok and addok["per_s_single"], "{:.0f}")
    row("  p50 per query (ms)", pct(lat_o, 0.5), addok and pct(addok["latencies"], 0.5), "{:.1f}")
    row("  p99 per query (ms)", pct(lat_o, 0.99), addok and pct(addok["latencies"], 0.99),
        "{:.1f}")  # fmt: skip
    row("addresses/s, batches of 1,000", ours["per_s_batch"], addok and addok["per_s_single"],
        "{:.0f}")  # fmt: skip
    cq = ours["cpu_per_query"]
    print(f"  CPU per query one at a time (client + PostgreSQL backend): "
          f"p50 {pct(cq, 0.5):.1f} ms, p99 {pct(cq, 0.99):.1f} ms")  # fmt: skip
    for name, c in (("one at a time", ours["cpu_single"]), ("in batches", ours["cpu_batch"])):
        print(f"  CPU per address, {name}: client {1000 * c['client_cpu']:.2f} ms + PostgreSQL "
              f"{1000 * c['db_cpu']:.2f} ms (wall {1000 * c['wall']:.2f} ms)")  # fmt: skip
    if fa60:
        print(f"\naddok with a minimum score of 0.6 (a user's usual filter): match "
              f"{fa60['all'] * 100:.1f} %, doors not loaded: {fa60['out_answered']} answered, "
              f"{fa60['out_wrong']} wrong communes.")  # fmt: skip
    if addok:
        again = ", reused from a previous run's dump" if addok.get("index_reused") else ""
        print(f"addok index build {addok['index_s']:.0f} s{again}, Redis memory "
              f"{addok['redis_memory']} ({why}).")  # fmt: skip
    else:
        print(f"\naddok figures unavailable: {why}")


def _door_rows(qs) -> list:
    return [[k, q, asdict(d)] for k, q, d in qs]


def _doors(rows) -> list:
    return [(k, q, Door(**d)) for k, q, d in rows]


def prepare_data(data: Path, doors: int, per_kind: int):
    """The generated files and queries: made in ``data``, or reused from a previous run there
    (when made with the same --doors and --queries)."""
    manifest = data / "queries.json"
    want = {"doors": doors, "queries": per_kind, "format": 1}
    csv_path, docs_path = data / "ban-synthetic-france.csv", data / "addok-docs.ndjson"
    if manifest.exists() and csv_path.exists() and docs_path.exists():
        m = json.loads(manifest.read_text())
        if m["params"] == want:
            print(f"Reusing the SYNTHETIC national BAN and queries in {data}.", flush=True)
            return csv_path, docs_path, _doors(m["loaded"]), _doors(m["out"]), m["stats"], True
        raise SystemExit(
            f"{data} holds a run made with {m['params']}, not {want}: use another --data "
            "directory, or the same --doors/--queries."
        )
    print("Generating the SYNTHETIC national BAN (real communes, made-up doors)…", flush=True)
    csv_path, docs_path, loaded, out_q, stats = build(data, doors, per_kind)
    for stale in (data / "db", data / "redis"):  # made from other doors
        shutil.rmtree(stale, ignore_errors=True)
    tmp_manifest = manifest.with_suffix(".tmp")
    tmp_manifest.write_text(
        json.dumps(
            {"params": want, "stats": stats, "loaded": _door_rows(loaded), "out": _door_rows(out_q)}
        )
    )
    tmp_manifest.replace(manifest)  # fmt: skip
    return csv_path, docs_path, loaded, out_q, stats, False


def main(argv: list[str]) -> None:
    """Run the national benchmark."""
    from app.migrate import upgrade
    from app.pgcluster import Cluster

    ap = argparse.ArgumentParser(prog="python -m bench.geocode --national")
    ap.add_argument("--national", action="store_true")
    ap.add_argument("--doors", type=int, default=6_000_000)
    ap.add_argument("--queries", type=int, default=2000, help="per typo kind")
    ap.add_argument("--single", type=int, default=3000, help="queries timed one at a time")
    ap.add_argument("--no-addok", action="store_true")
    ap.add_argument(
        "--data",
        type=Path,
        help="keep the generated files, the loaded database "
        "and addok's Redis dump in DIR; reused by the next run with the same DIR",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --data: reuse the PostGIS "
        "database a previous run loaded (no import: a porte-only rerun in minutes)",
    )
    args = ap.parse_args(argv)  # fmt: skip
    if args.reuse and not args.data:
        ap.error("--reuse needs --data DIR (where a previous run kept its material)")
    if args.data:
        tmp = args.data.resolve()
        tmp.mkdir(parents=True, exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="porte-bench-geonat-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    db_dir = tmp / "db"
    loaded_mark = db_dir / "loaded.json"  # written once the import has finished
    loads = []
    cluster = None
    try:
        t0 = time.perf_counter()
        csv_path, docs_path, loaded, out_q, stats, _same = prepare_data(
            tmp, args.doors, args.queries
        )
        print(f"  {stats['doors']:,} doors in {stats['communes']:,} communes loaded; "
              f"{stats['left_out_doors']:,} doors of left-out communes; "
              f"{len(loaded):,} + {len(out_q):,} queries ({time.perf_counter() - t0:.0f} s)",
              flush=True)  # fmt: skip
        reuse_db = args.reuse and loaded_mark.exists()
        if args.reuse and not reuse_db:
            print(f"  no loaded database in {db_dir} yet: importing the doors.", flush=True)
        if not reuse_db:
            shutil.rmtree(db_dir, ignore_errors=True)
        port = free_port()
        cluster = Cluster(db_dir, port)
        if reuse_db:  # another port may be free this time: the last `port =` line wins
            with (cluster.pgdata / "postgresql.conf").open("a") as fh:
                fh.write(f"port = {port}\n")
        cluster.start()
        owner = cluster.url("owner", "bench")
        if reuse_db:
            upgrade(owner)
            print(f"  reusing the doors loaded in {db_dir} by a previous run", flush=True)
        else:
            cluster.create_database("bench")
            upgrade(owner)
            from app.services.reference.imports.addresses import import_addresses

            t0 = time.perf_counter()
            rep = asyncio.run(import_addresses(owner, csv_path, source="synthetic"))
            print(f"  imported into PostGIS in {time.perf_counter() - t0:.0f} s "
                  f"({rep.rows_loaded:,} doors)", flush=True)  # fmt: skip
            if args.data:
                loaded_mark.write_text(json.dumps({"doors": rep.rows_loaded}))
        sizes = asyncio.run(_sizes(owner))
        print("  sizes: " + ", ".join(f"{k} {v}" for k, v in sizes.items()), flush=True)
        loads.append(os.getloadavg()[0])
        ours = asyncio.run(run_ours(owner, loaded, out_q, args.single))
        loads.append(os.getloadavg()[0])
        cluster.stop()
        fo = figures(loaded, out_q, ours["answers"], ours["answers_out"])
        addok, fa, fa60, why = None, None, None, "skipped"
        if not args.no_addok:
            py, why = addok_python()
            if py:
                try:
                    addok = run_addok(py, tmp, docs_path, loaded, out_q, args.single)
                    loads.append(os.getloadavg()[0])
                    fa = figures(loaded, out_q, addok["answers"], addok["answers_out"])
                    fa60 = figures(loaded, out_q, addok["answers"], addok["answers_out"], 0.6)
                except Exception as exc:  # report, still print our figures
                    why = f"addok failed: {exc}"
        print(f"\nSYNTHETIC national BAN: {stats['doors']:,} doors, {stats['communes']:,} "
              f"communes. Machine: {os.cpu_count()} CPUs, load average "
              f"{', '.join(f'{x:.1f}' for x in loads)} at each phase (shared with other "
              "work; throughput figures drop when other jobs run).\n")  # fmt: skip
        report(stats, ours, fo, addok, fa, fa60, why)
    finally:
        if args.data:
            if cluster is not None:
                cluster.stop()
            print(f"\nKept in {tmp} for the next run (--data {args.data} [--reuse]).")
        else:
            if cluster is not None:
                cluster.destroy()
            shutil.rmtree(tmp, ignore_errors=True)


async def _sizes(owner: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(owner.replace("postgresql+asyncpg", "postgresql"))
    try:
        out = {}
        for t in ("address", "geocode_street", "geocode_commune"):
            out[t] = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size($1::regclass)) || ' (' || "
                "to_char((SELECT count(*) FROM " + t + "), 'FM9G999G999') || ' rows)'",
                t,
            )
        out["address_geocode_number (index)"] = await conn.fetchval(
            "SELECT pg_size_pretty(pg_relation_size('address_geocode_number'))"
        )
        return out
    finally:
        await conn.close()
