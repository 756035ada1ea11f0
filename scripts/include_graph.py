#!/usr/bin/env python3
"""Prints the include graph between the library's layers and checks that it
points one way (docs/design.md): cli, python -> serve -> predictor -> learners -> tasks /
modalities -> models / optim -> data -> checkpoints -> config, kernels.

  scripts/include_graph.py            edges of the working tree, then the check
  scripts/include_graph.py --rev REV  the same for a commit (read through git)
  scripts/include_graph.py --check    exit 1 when a file includes a higher layer
                                      or a sibling layer
"""
import argparse
import collections
import os
import re
import subprocess
import sys

# Rank of each layer: a file may include its own layer and lower ranks only.
RANKS = {
    "kernels": 0, "config": 0,
    "checkpoints": 1,
    "data": 2,
    "models": 3, "optim": 3,
    "tasks": 4, "modalities": 4,
    "learners": 5,
    "predictor": 6,
    "serve": 7,
    "cli": 8, "python": 8,
}
# Public headers belong to the layer that implements them.
PUBLIC = {
    "config.h": "config", "weights_io.h": "checkpoints", "table.h": "data", "predictions.h": "data",
    "options.h": "data", "metrics.h": "optim", "predictor.h": "predictor",
    "log.h": "config", "serve.h": "serve",
    # Headers of the design before tasks and learners (for --rev on old commits).
    "problem_type.h": "data", "data.h": "data", "text.h": "data", "models.h": "models", "optim.h": "optim",
    "batch_loader.h": "learners", "learner.h": "learners",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path):
    parts = path.split("/")
    if parts[0] == "include":
        return PUBLIC.get(parts[-1], "?" + parts[-1])
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    return None


def files(rev):
    if rev:
        names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "src", "include"], check=True,
                               capture_output=True, text=True).stdout.split()
        for name in names:
            if name.endswith((".h", ".cpp", ".inc")):
                yield name, subprocess.run(["git", "show", f"{rev}:{name}"], check=True, capture_output=True,
                                           text=True, errors="replace").stdout
        return
    for root in ("src", "include"):
        for folder, _, entries in os.walk(root):
            for entry in entries:
                if entry.endswith((".h", ".cpp", ".inc")):
                    path = os.path.join(folder, entry)
                    with open(path, encoding="utf-8", errors="replace") as f:
                        yield path, f.read()


def resolve(including, target, known):
    """The repository path an include names: relative to the including file,
    then to src/, then to include/."""
    for candidate in (os.path.normpath(os.path.join(os.path.dirname(including), target)),
                      "src/" + target, "include/" + target):
        if candidate in known:
            return candidate
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    sources = dict(files(args.rev))
    edges = collections.Counter()
    violations = []
    for path, text in sorted(sources.items()):
        source = layer_of(path)
        if source is None:
            continue
        for target in INCLUDE.findall(text):
            resolved = resolve(path, target, sources)
            if resolved is None:
                continue
            to = layer_of(resolved)
            if to is None or to == source:
                continue
            edges[(source, to)] += 1
            if RANKS.get(to, 99) >= RANKS.get(source, -1):
                violations.append(f"{path} ({source}) includes {resolved} ({to})")
    print(f"layer -> layer (includes){'  at ' + args.rev if args.rev else ''}")
    for (source, to), count in sorted(edges.items(), key=lambda e: (-RANKS.get(e[0][0], 0), e[0])):
        upward = RANKS.get(to, 99) >= RANKS.get(source, -1)
        print(f"  {source:11} -> {to:11} {count:3}{'   <- upward or sideways' if upward else ''}")
    print(f"{len(violations)} includes against the layering")
    for v in violations:
        print("  " + v)
    if args.check and violations:
        sys.exit(1)


if __name__ == "__main__":
    main()
