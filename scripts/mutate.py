"""Mutation testing of one module against its test modules, with cosmic-ray.

    .venv/bin/python scripts/mutate.py consentmw/core/catalog.py tests/test_catalog.py [more tests]
        [--sample 60] [--seed 26] [--timeout 120] [-k EXPR] [--out DIR]

cosmic-ray changes the module in place, so the run happens in a copy of the checkout under a
temporary folder (the checkout is never touched). Every mutant is a one-line bug: a test module
that passes with it in place does not guard that line. With --sample N only N mutants, drawn with
a fixed seed, are run (a module like core/html.py has thousands); the same seed draws the same
mutants, so a run after new tests is comparable with the one before. Prints killed/total and the
diff of each surviving mutant. Exit status 0 when at least --goal of the sampled mutants were
killed, 1 otherwise. See docs/development.md for when to run it.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the module to mutate, e.g. consentmw/core/catalog.py")
    parser.add_argument("tests", nargs="+", help="test modules (pytest node ids) that guard it")
    parser.add_argument("--sample", type=int, default=0, help="run this many mutants, drawn with --seed (0: all)")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant run (a hang counts as killed)")
    parser.add_argument("-k", dest="keyword", default="", help="pytest -k expression: a fast subset of the tests")
    parser.add_argument("--goal", type=float, default=0.9)
    parser.add_argument("--out", type=Path, help="keep the session database and a JSON summary here")
    parser.add_argument("--again", type=Path, help="a JSON summary of an earlier run: run its survivors only (after new tests)")
    parser.add_argument("--allow-skips", action="store_true", help="run even when some of the tests skip (a skipped test kills nothing)")
    args = parser.parse_args(argv)

    if shutil.which("cosmic-ray", path=str(Path(sys.executable).parent)) is None:
        print("scripts/mutate.py: cosmic-ray is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="consentmw-mutate-") as tmp:
        work = Path(tmp) / "repo"
        copy_checkout(work)
        pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-rs", "-p", "no:cacheprovider", "--hypothesis-seed=0", *args.tests]
        if args.keyword:
            pytest += ["-k", args.keyword]
        env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        baseline = subprocess.run(pytest, cwd=work, env=env, capture_output=True, text=True)
        if baseline.returncode != 0:
            print(baseline.stdout[-3000:], baseline.stderr[-2000:], sep="\n")
            print("scripts/mutate.py: the tests fail without any mutant; fix that first", file=sys.stderr)
            return 2
        skipped = [line for line in baseline.stdout.splitlines() if line.startswith("SKIPPED")]
        if skipped and not args.allow_skips:
            # A test that skips (no PostgreSQL, no Chromium) kills nothing: the figure would flatter.
            print(*skipped, sep="\n")
            print("scripts/mutate.py: some tests skip without any mutant; give them what they need (CONSENTMW_TEST_POSTGRES_URL...) or pass --allow-skips", file=sys.stderr)
            return 2
        config = work / "cosmic-ray.toml"
        config.write_text(
            "[cosmic-ray]\n"
            f"module-path = {json.dumps(args.module)}\n"
            f"timeout = {args.timeout}\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(shlex.join(pytest))}\n"
            "[cosmic-ray.distributor]\nname = \"local\"\n"
        )
        session = work / "session.sqlite"
        cr = str(Path(sys.executable).parent / "cosmic-ray")
        subprocess.run([cr, "init", str(config), str(session)], cwd=work, env=env, check=True)
        earlier = json.loads(args.again.read_text()) if args.again else None
        # Matched by operator and the text of the line it changed: other changes may have moved lines.
        only = {(m["operator"], removed_line(m["diff"])) for m in earlier["survived"]} if earlier else None
        total, running = sample(session, args.sample, args.seed, annotations(work / args.module), only, (work / args.module).read_text("utf-8").splitlines())
        print(f"{args.module}: {total} mutants outside annotations, running {running}", flush=True)
        subprocess.run([cr, "exec", str(config), str(session)], cwd=work, env=env, check=True)
        # A line may hold several mutants of one operator: only the earlier survivors themselves count.
        summary = report(session, args.module, earlier["survived"] if earlier else None)
        if earlier:
            # Killed mutants stay killed when tests are only added: the earlier sample's figure, updated.
            summary = {**summary, "run": earlier["run"], "killed": earlier["run"] - len(summary["survived"]), "before": earlier["killed"]}
            print(f"{args.module}: before {earlier['killed']}/{earlier['run']}, now {summary['killed']}/{summary['run']} killed")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            stem = args.module.replace("/", "_").removesuffix(".py")
            shutil.copy(session, args.out / f"{stem}.sqlite")
            (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["killed"] >= args.goal * summary["run"] else 1


def copy_checkout(dest: Path) -> None:
    """The checkout's files as they are now (committed or not), without ignored ones."""
    names = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def annotations(module: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's type annotations are: with ``from __future__ import annotations`` they
    are never evaluated, so a mutant there (``str | None`` into ``str * None``) is equivalent."""
    spans = []
    for node in ast.walk(ast.parse(module.read_text("utf-8"))):
        found = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            found.append(node.returns)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            found.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        spans += [((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0)) for a in found]
    return spans


def sample(session: Path, size: int, seed: int, skip: list[tuple[tuple[int, int], tuple[int, int]]], only: set[tuple[str, str]] | None = None, lines: list[str] | None = None) -> tuple[int, int]:
    """Leaves out the mutants inside ``skip`` and all but ``size`` of the others (drawn with
    ``seed``), or all but those of ``only``'s (operator, line text), marked as skipped; returns how
    many others there are and how many will run."""
    with sqlite3.connect(session) as db:
        specs = {
            job: (op, row, col, occurrence)
            for job, op, row, col, occurrence in db.execute("SELECT job_id, operator_name, start_pos_row, start_pos_col, occurrence FROM mutation_specs")
        }
        # The jobs' ids are random; their mutation specs (operator, place) are not.
        ordered = sorted(specs, key=lambda job: specs[job])
        eligible = [job for job in ordered if not any(start <= specs[job][1:3] < end for start, end in skip)]
        if only is not None:
            keep = {job for job in eligible if lines and (specs[job][0], lines[specs[job][1] - 1].strip()) in only}
        else:
            keep = set(random.Random(seed).sample(eligible, size)) if size and size < len(eligible) else set(eligible)
        db.executemany(
            "INSERT INTO work_results (job_id, worker_outcome, output, test_outcome, diff) VALUES (?, 'SKIPPED', 'not sampled', NULL, NULL)",
            [(job,) for job in ordered if job not in keep],
        )
        return len(eligible), len(keep)


def removed_line(diff: str) -> str:
    return next(line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))


def mutation(operator: str, diff: str) -> tuple[str, str, str]:
    """A mutant as (operator, line before, line after), which survives changes elsewhere in the module."""
    added = next(line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    return operator, removed_line(diff), added


def hunk(diff: str) -> str:
    """A mutant's diff without its file names and line numbers: the changed line in its context."""
    return "\n".join(line for line in diff.splitlines() if not line.startswith(("---", "+++", "@@")))


def report(session: Path, module: str, earlier: list[dict[str, str]] | None = None) -> dict[str, object]:
    """Prints each surviving mutant and the figure. With ``earlier`` (an earlier run's survivors),
    only those are counted: each is found again by its operator and changed line, and where several
    mutants share them (a "break" on many lines), by the lines around it too; one no longer found is
    counted as surviving."""
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT r.worker_outcome, r.test_outcome, r.diff, s.operator_name, s.start_pos_row FROM work_results r JOIN mutation_specs s USING (job_id) WHERE r.worker_outcome != 'SKIPPED' ORDER BY s.start_pos_row"
        ).fetchall()
    if earlier is None:
        survivors = [{"line": line, "operator": op, "diff": diff} for outcome, test, diff, op, line in rows if outcome == "NORMAL" and test == "SURVIVED"]
        killed, total = len(rows) - len(survivors), len(rows)
    else:
        survivors = []
        for e in earlier:
            same = [row for row in rows if row[2] and mutation(row[3], row[2]) == mutation(e["operator"], e["diff"])]
            found = [row for row in same if hunk(row[2]) == hunk(e["diff"])] or same
            alive = [row for row in found if row[0] == "NORMAL" and row[1] == "SURVIVED"]
            if not found:
                print(f"\nNOT FOUND in {module} now (counted as surviving): {e['operator']}\n{e['diff']}")
                survivors.append(e)
            elif alive:
                survivors.append({"line": alive[0][4], "operator": alive[0][3], "diff": alive[0][2]})
        killed, total = len(earlier) - len(survivors), len(earlier)
    # An abnormal worker (a mutant that hangs past the timeout or crashes the interpreter) is caught too.
    for m in survivors:
        print(f"\nSURVIVED {module}:{m['line']} {m['operator']}\n{m['diff']}")
    print(f"\n{module}: {killed}/{total} killed ({100 * killed / max(total, 1):.0f} %)")
    return {"module": module, "run": total, "killed": killed, "survived": survivors}


if __name__ == "__main__":
    sys.exit(main())
