#!/usr/bin/env bash
# Checks the documentation against the repository, in a second or two, with
# nothing but bash and python3 (run by `make test`):
#
#  1. every test, fuzz target or benchmark that README.md, docs/*.md or
#     SECURITY.md names (`TestX`, `proxy.TestX`, `TestX/subtest`, `TestX_*`
#     for a family; in code spans, prose or code blocks) exists as
#     `func Name(` in a *_test.go file —
#     in that package when the name carries one; pgx's own tests, which the
#     compatibility page names, are looked up in pgx's module source when it
#     is in the Go module cache;
#  2. every relative Markdown link points to an existing file, and every
#     `#anchor` to a heading of its target (GitHub's rules: lowercase, spaces
#     to `-`, punctuation other than `-` and `_` dropped, `-1`, `-2`… for
#     repeated headings);
#  3. README.md is at most 16 KB.
#
# Prints one line per problem and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

exec python3 - "$@" <<'PY'
import glob, os, re, sys

DOCS = ["README.md", "SECURITY.md"] + sorted(glob.glob("docs/*.md"))
README_MAX = 16 * 1024

# Tests of pgx's own suite that docs/compatibility.md names. They are not in
# this repository; when pgx v5's source is in the module cache they are
# checked there like ours.
PGX_TESTS = {
    "TestConnect",
    "TestLoadTypeSameNameInDifferentSchemas",
    "TestConnCheckConn",
    "TestListenNotifyWhileBusyIsSafe",
    "TestConnSendBatchErrorDoesNotLeaveOrphanedPreparedStatement",
    "TestTimestampCodecWithScanLocationLocal",
    "TestSendBatchHandlesTimeoutBetweenParseAndDescribe",
}

problems = []


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def prose_blocks(text):
    """Yields (first line number, paragraph) for each paragraph outside fenced
    code blocks, so that code spans and links broken across lines are whole."""
    fence, block, start = None, [], 0
    for n, line in enumerate(text.split("\n"), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m or fence is not None:
            if m:
                mark = m.group(1)[0] * 3
                if fence is None:
                    fence = mark
                elif mark == fence:
                    fence = None
            if block:
                yield start, "\n".join(block)
                block = []
            continue
        if line.strip() == "" or re.match(r"^#{1,6}\s", line):
            if block:
                yield start, "\n".join(block)
                block = []
            if line.strip():
                yield n, line
            continue
        if not block:
            start = n
        block.append(line)
    if block:
        yield start, "\n".join(block)


def headings(text):
    """Yields the text of each ATX heading outside fenced code blocks."""
    for _, block in prose_blocks(text):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", block)
        if m and "\n" not in block:
            yield m.group(1)


# --- 1. named tests exist -------------------------------------------------

def test_funcs():
    """Maps package name -> set of test function names, and '*' -> all."""
    funcs = {"*": set()}
    for root, dirs, files in os.walk("."):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "testdata"]
        for name in files:
            if not name.endswith("_test.go"):
                continue
            src = read(os.path.join(root, name))
            pkg = re.search(r"^package\s+(\w+)", src, re.M)
            pkg = pkg.group(1).removesuffix("_test") if pkg else ""
            names = set(re.findall(r"^func\s+((?:Test|Fuzz|Benchmark)\w*)\s*\(", src, re.M))
            funcs.setdefault(pkg, set()).update(names)
            funcs["*"].update(names)
    return funcs


def pgx_funcs():
    """Test function names in pgx v5's source in the module cache, or None."""
    gopath = (os.environ.get("GOPATH") or os.path.expanduser("~/go")).split(os.pathsep)[0]
    cache = os.environ.get("GOMODCACHE") or os.path.join(gopath, "pkg", "mod")
    want = None
    if os.path.exists("go.mod"):
        m = re.search(r"github\.com/jackc/pgx/v5\s+(v\S+)", read("go.mod"))
        want = m.group(1) if m else None
    if not want:
        return None
    root = os.path.join(cache, "github.com", "jackc", "pgx", "v5@" + want)
    if not os.path.isdir(root):
        return None
    names = set()
    for path in glob.glob(os.path.join(root, "**", "*_test.go"), recursive=True):
        names.update(re.findall(r"^func\s+((?:Test|Fuzz|Benchmark)\w*)\s*\(", read(path), re.M))
    return names


NAME = re.compile(r"(?<![\w.])(?:([a-z][a-z0-9]*)\.)?((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)(\*)?")

funcs = test_funcs()
pgx = pgx_funcs()
# Names are checked wherever they appear — code spans, prose and code blocks
# (a log or a command line names real tests too).
for path in DOCS:
    text = read(path)
    for m in NAME.finditer(text):
        pkg, name, star = m.group(1), m.group(2), m.group(3)
        if name in ("Test", "Fuzz", "Benchmark") or not re.match(r"(Test|Fuzz|Benchmark)[A-Z_0-9]", name):
            continue
        n = text.count("\n", 0, m.start()) + 1
        family = star is not None or name.endswith("_")
        pool = funcs.get(pkg, set()) if pkg else funcs["*"]
        if family:
            ok = any(f.startswith(name) for f in pool)
        else:
            ok = name in pool
        if not ok and not pkg and name in PGX_TESTS:
            ok = pgx is None or name in pgx
        if not ok:
            where = f"package {pkg}" if pkg else "any *_test.go file"
            shown = (pkg + "." if pkg else "") + name + ("*" if family else "")
            problems.append(f"{path}:{n}: `{shown}`: no func {name}{'…' if family else ''}( in {where}")


# --- 2. relative links and anchors ---------------------------------------

def slug(heading):
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


anchor_cache = {}


def anchors(path):
    if path not in anchor_cache:
        seen, found = {}, set()
        for heading in headings(read(path)):
            base = slug(heading)
            k = seen.get(base, 0)
            seen[base] = k + 1
            found.add(base if k == 0 else f"{base}-{k}")
        anchor_cache[path] = found
    return anchor_cache[path]


LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")

for path in DOCS:
    for n, block in prose_blocks(read(path)):
        # Link syntax inside a code span is not a link.
        block = re.sub(r"(?<!`)`[^`]+`(?!`)", lambda m: m.group(0) if "](" not in m.group(0) else "``", block)
        for m in LINK.finditer(block):
            target, line = m.group(1), n + block.count("\n", 0, m.start())
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            if not os.path.exists(dest):
                problems.append(f"{path}:{line}: link to {target}: {dest} does not exist")
                continue
            if anchor:
                if not dest.endswith(".md"):
                    problems.append(f"{path}:{line}: link to {target}: anchor into a non-Markdown file")
                elif anchor not in anchors(dest):
                    problems.append(f"{path}:{line}: link to {target}: no heading with anchor #{anchor} in {dest}")


# --- 3. README size -------------------------------------------------------

size = os.path.getsize("README.md")
if size > README_MAX:
    problems.append(f"README.md: {size} bytes, more than {README_MAX} (16 KB): move detail to docs/")

for p in problems:
    print(p)
if problems:
    print(f"check-docs: {len(problems)} problem(s)")
    sys.exit(1)
PY
