"""Cost of the inline-code classifier (TrackerRules.match_inline) against the length of the code,
for ordinary snippets and for inputs built to make a regular expression backtrack: time per byte
should stay flat as the code grows (linear time). CPU time of this process, so that other
processes on a shared machine weigh less. Each row also gives the time of bytes.lower()
on the same input in the same run, as the baseline every classification pays anyway.

    python bench/bench_inline.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consentmw import load_policy  # noqa: E402
from consentmw.core.trackers import TrackerRules  # noqa: E402

SNIPPET = (Path(__file__).resolve().parent.parent / "tests" / "corpus" / "vendors" / "airbridge.html").read_text("utf-8")
# Each makes one part of the scan try hard at many places and fail.
SHAPES = {
    "vendor snippets": lambda n: (SNIPPET * (n // len(SNIPPET) + 1))[:n],
    "quote + long label": lambda n: ("'" + "a-" * 500) * (n // 1001 + 1),
    "quote + dotted label": lambda n: ("'" + "a." * 500 + "-") * (n // 1002 + 1),
    "'//' + no host": lambda n: "'//" * (n // 3 + 1),
    "' + ' without end": lambda n: ("' " + " " * 500 + "+ ") * (n // 504 + 1),
    "new + spaces": lambda n: ("new " + " " * 500 + "x") * (n // 505 + 1),
    "global + member": lambda n: ("ttq." + "a" * 500 + " ") * (n // 505 + 1),
    "global + spaces": lambda n: ("fbq" + " " * 500 + "x") * (n // 504 + 1),
    "window. chain": lambda n: "window." * (n // 7 + 1),
}


def timed(f, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    rules = TrackerRules(load_policy("default"))
    sizes = [16_000, 64_000, 256_000]
    print(f"{'input':24} " + " ".join(f"{s // 1000:>6} KB ns/B" for s in sizes) + "   growth   lower() ns/B")
    for name, make in SHAPES.items():
        per_byte = []
        base = 0.0
        for size in sizes:
            code = make(size)[:size].encode()
            per_byte.append(timed(lambda: rules._classify(code.lower()), rounds) / size * 1e9)
            base = timed(lambda: code.lower(), rounds) / size * 1e9
        print(f"{name:24} " + " ".join(f"{p:14.1f}" for p in per_byte) + f"   {per_byte[-1] / per_byte[0]:5.2f}x   {base:8.2f}")


if __name__ == "__main__":
    main()
