#!/usr/bin/env python3
"""test/layers.py — the calls between the C files of src/ go one way only.

Draws the references between files (a file refers to another when it uses a function or
variable the other defines, found with Universal Ctags; comments and strings are ignored),
then checks the layers of docs/internals.md:

    src/pg_durable_objects.c   (_PG_init)
    src/sql/  src/gateway/     (what sessions call; the listener)
    src/host/                  (the host workers)
    src/shared/                (settings, shared memory, messages, class cache)

A file may use files of its own layer and of the layers below it, never above it, and no
two files may refer to each other, directly or through others (no cycle).  sql/ and
gateway/ do not use each other.  Prints TAP lines ("ok - ..." / "not ok - ...") and, with
--dot, the drawing in Graphviz form.  Usage: test/layers.py [--dot] SRC_DIR
"""
import os
import re
import subprocess
import sys

LAYER = {"shared": 0, "host": 1, "sql": 2, "gateway": 2, "": 3}


def layer_of(path, src):
    rel = os.path.relpath(path, src)
    return os.path.dirname(rel)


def strip(code):
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    return re.sub(r'"(\\.|[^"\\])*"', '""', code)


def graph(src):
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".c"))
    out = subprocess.run(["ctags", "-x", "--c-kinds=fv", "--language-force=C"] + files,
                         capture_output=True, text=True, check=True).stdout
    defined = {}
    lines = {}
    for line in out.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 5 or parts[4].lstrip().startswith("static"):
            continue
        # PostgreSQL style puts "static" and the type on the line before the name
        if parts[3] not in lines:
            lines[parts[3]] = open(parts[3], errors="replace").read().split("\n")
        n = int(parts[2])
        if n >= 2 and lines[parts[3]][n - 2].lstrip().startswith("static"):
            continue
        defined.setdefault(parts[0], parts[3])
    edges = {f: set() for f in files}
    for f in files:
        for word in set(re.findall(r"[A-Za-z_]\w*", strip(open(f, errors="replace").read()))):
            g = defined.get(word)
            if g and g != f:
                edges[f].add(g)
    return files, edges


def cycles(files, edges):
    index, low, stack, on, found, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for f in files:
        if f not in index:
            visit(f)
    return found


def main():
    args = [a for a in sys.argv[1:] if a != "--dot"]
    src = args[0] if args else "src"
    files, edges = graph(src)
    rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(src)))
    if "--dot" in sys.argv:
        print("digraph src {")
        for f in files:
            for g in sorted(edges[f]):
                print(f'  "{rel(f)}" -> "{rel(g)}";')
        print("}")
        return 0
    bad = 0
    found = cycles(files, edges)
    if found:
        bad += 1
        print("not ok - no cycle between the files of src/: " +
              "; ".join(", ".join(rel(x) for x in c) for c in found))
    else:
        print(f"ok - no cycle between the {len(files)} files of src/")
    upward = []
    for f in files:
        for g in sorted(edges[f]):
            lf, lg = layer_of(f, src), layer_of(g, src)
            if LAYER.get(lg, 9) > LAYER.get(lf, 9) or (lf != lg and LAYER[lf] == LAYER[lg]):
                upward.append(f"{rel(f)} -> {rel(g)}")
    if upward:
        bad += 1
        print("not ok - every file uses only its own layer and those below: " + "; ".join(upward))
    else:
        arrows = sum(len(v) for v in edges.values())
        print(f"ok - every file uses only its own layer and those below ({arrows} references)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
