#!/usr/bin/env python3
"""Fails when modules of src/ import each other round a circle.

A module is a top-level file or folder of src/ (src/stack/ and its files are one module);
`src/bin/` and `lib.rs` are left out (lib.rs only declares and re-exports). A module
depends on another when its code names `crate::other` or an item the crate root
re-exports from it (`crate::LeakTracker` is `tracker`). Comments are ignored; the parse
is textual, which is enough for how this crate writes its paths.
"""
import glob
import os
import re
import sys

src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
lib = open(os.path.join(src, "lib.rs")).read()
root = {}
for mod, items in re.findall(r"pub use crate::([a-z_]+)::\{([^}]*)\}", lib):
    for it in items.split(","):
        it = it.strip().split(" as ")[-1].strip()
        if it:
            root[it] = mod
for mod, it in re.findall(r"pub use crate::([a-z_]+)::([A-Za-z_]+);", lib):
    root[it] = mod

deps = {}
for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
    rel = os.path.relpath(path, src)
    top = rel.split(os.sep)[0].removesuffix(".rs")
    if top in ("bin", "lib"):
        continue
    text = re.sub(r"//[^\n]*", "", open(path).read())
    names = set(re.findall(r"crate::([A-Za-z_]+)", text))
    for group in re.findall(r"use crate::\{([^}]*)\}", text):
        names.update(i.strip().split("::")[0] for i in group.split(","))
    mods = {root.get(n, n) for n in names if n}
    deps.setdefault(top, set()).update(m for m in mods if m != top)
graph = {m: {d for d in ds if d in deps} for m, ds in deps.items()}

# Tarjan's strongly connected components.
index, low, stack, on, cycles, n = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = n[0]
    n[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(graph[v]):
        if w not in index:
            visit(w)
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
            cycles.append(sorted(comp))


for v in sorted(graph):
    if v not in index:
        visit(v)
for comp in cycles:
    print("import circle among: " + ", ".join(comp))
    for m in comp:
        print(f"  {m} -> {', '.join(sorted(graph[m] & set(comp)))}")
if cycles:
    sys.exit(1)
print(f"no import circles among the {len(graph)} modules of src/")
