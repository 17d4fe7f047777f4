#!/usr/bin/env python3
"""No cycles between the files of src/ (docs/design.md §2): a module may name its own
ancestors (their items and re-exports) and anything below or beside it, but two files must
never name each other, directly or round about. Reads `crate::` and `super::` paths
outside comments; exits 1 naming each cycle. Called by scripts/check_layers.sh."""
import collections
import glob
import re
import sys

files = sorted(glob.glob("src/**/*.rs", recursive=True))


def modpath(f):
    p = f[4:-3].split("/")
    if p[-1] in ("mod", "lib", "main"):
        p = p[:-1]
    return tuple(p)


mods = {modpath(f): f for f in files}


def resolve(cur, parts):
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    else:
        base = list(cur)
        if not mods.get(cur, "").endswith(("mod.rs", "lib.rs")):
            base = base[:-1]
        while parts and parts[0] == "super":
            base, parts = base[:-1], parts[1:]
    for i in range(len(parts), 0, -1):
        t = tuple(base + parts[:i])
        if t in mods:
            return t
    return None


graph = collections.defaultdict(set)
for f in files:
    cur = modpath(f)
    for line in open(f, encoding="utf-8"):
        if line.strip().startswith("//"):
            continue
        for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", line):
            t = resolve(cur, m.group(1).split("::"))
            # A file naming one of its ancestors reaches the items of that mod.rs, which
            # declares it: not an edge of the graph.
            if t and t != cur and cur[: len(t)] != t:
                graph[cur].add(t)

index, low, stack, on, cycles = {}, {}, [], set(), []
counter = [0]
sys.setrecursionlimit(10000)


def strongconnect(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            strongconnect(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            cycles.append(comp)


for v in mods:
    if v not in index:
        strongconnect(v)
for c in cycles:
    names = " <-> ".join(sorted("::".join(m) for m in c))
    print(f"check_cycles: these files name each other: {names}", file=sys.stderr)
if cycles:
    sys.exit(1)
print(f"check_cycles: ok ({len(files)} files, no cycle)")
