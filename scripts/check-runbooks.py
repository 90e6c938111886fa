#!/usr/bin/env python3
"""Validate kai's built-in runbook corpus (docs/runbooks) and its labelled query set.

Checks, each failure reported with the file (and line) it is about:
- every docs/runbooks/<slug>.md (README.md aside) has a lowercase-dash slug, front matter
  in the simple YAML subset kai reads (title, causes, tags; scalars and flow lists whose
  items a full YAML parser would read the same way), an H1 equal to the title, and exactly
  the four sections Symptoms / How to confirm / Fix / Prevention, in that order, none empty;
- 40-120 lines per runbook, 5-12 distinct tags;
- every cause code of docs/causes.md plus the planned codes below appears in exactly one
  runbook's `causes`, and no runbook names a code that is neither;
- relative links between runbooks point at existing files;
- docs/runbooks/queries.tsv: at least 100 lines `query<TAB>slug`, every slug exists,
  no duplicate query, no query that is just a runbook's title, every runbook that covers a
  cause code is expected by at least one query.

Python 3 standard library only. Exit code 0 when everything passes, 1 otherwise.
"""

import argparse
import re
import sys
from pathlib import Path

# Cause codes issue 9 adds; they are checked until docs/causes.md lists them (then both
# sources agree and the union is the same set).
PLANNED_CODES = [
    "app-errors-in-logs",
    "rbac-missing-permission",
    "rbac-binding-missing-role",
    "resource-quota-exceeded",
    "limit-range-rejected",
    "admission-webhook-denied",
    "admission-webhook-unreachable",
    "network-policy-blocks-service",
    "network-policy-blocks-dns",
    "hpa-missing-metrics",
    "hpa-missing-requests",
    "hpa-at-max-replicas",
    "pdb-unsatisfiable",
    "cronjob-suspended",
    "cronjob-missed-deadline",
    "statefulset-stuck",
    "image-pull-rate-limited",
    "container-command-not-found",
    "tls-certificate-expired",
    "ingress-missing-class",
    "ingress-missing-tls-secret",
    "node-pressure",
]

SECTIONS = ["Symptoms", "How to confirm", "Fix", "Prevention"]
FRONT_KEYS = ["title", "causes", "tags"]
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CODE_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MIN_LINES, MAX_LINES = 40, 120
MIN_TAGS, MAX_TAGS = 5, 12
MIN_QUERIES = 100
# A plain (unquoted) YAML scalar must not start with an indicator character.
PLAIN_BAD_START = set("[]{}#&*!|>'\"%@`,")


class Errors:
    def __init__(self):
        self.items = []

    def add(self, where, msg):
        self.items.append(f"{where}: {msg}")


def plain_scalar_problem(text, in_flow):
    """Why `text` would not read back as the same string in real YAML, or None."""
    if text == "":
        return "empty value"
    if text != text.strip():
        return "leading or trailing blanks"
    if text[0] in PLAIN_BAD_START:
        return f"starts with YAML indicator {text[0]!r} (quote it or reword)"
    if text[:2] in ("- ", "? ", ": ") or text in ("-", "?", ":"):
        return "starts with a YAML indicator"
    if ": " in text or text.endswith(":"):
        return "contains ': ' (a YAML mapping separator)"
    if " #" in text:
        return "contains ' #' (a YAML comment)"
    if in_flow and any(c in text for c in ",[]{}"):
        return "contains a flow indicator ,[]{} inside a list item"
    if text.lower() in ("null", "~", "true", "false", "yes", "no", "on", "off"):
        return f"{text!r} would be read as a YAML keyword, not a string"
    if re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        return f"{text!r} would be read as a number"
    return None


def parse_scalar(raw, where, errors, in_flow):
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        inner = raw[1:-1]
        if raw[0] == '"' and ("\\" in inner or '"' in inner):
            errors.add(where, "double-quoted value with escapes or quotes is outside the subset")
        if raw[0] == "'" and "'" in inner.replace("''", ""):
            errors.add(where, "single-quoted value with an unpaired quote")
        return inner.replace("''", "'") if raw[0] == "'" else inner
    problem = plain_scalar_problem(raw, in_flow)
    if problem:
        errors.add(where, f"value {raw!r}: {problem}")
    return raw


def parse_flow_list(raw, where, errors):
    raw = raw.strip()
    if not (raw.startswith("[") and raw.endswith("]")):
        errors.add(where, f"expected a flow list [a, b, ...], got {raw!r}")
        return []
    inner = raw[1:-1].strip()
    if inner == "":
        return []
    return [parse_scalar(item, where, errors, in_flow=True) for item in inner.split(",")]


def parse_front_matter(lines, where, errors):
    """Returns (front matter dict, index of the first body line) or (None, 0)."""
    if not lines or lines[0] != "---":
        errors.add(where, "does not start with a '---' front matter line")
        return None, 0
    try:
        end = lines.index("---", 1)
    except ValueError:
        errors.add(where, "front matter is not closed by a '---' line")
        return None, 0
    front = {}
    for n in range(1, end):
        line = lines[n]
        at = f"{where}:{n + 1}"
        if line.strip() == "":
            continue
        m = re.fullmatch(r"([a-z_]+): (.*)", line)
        if not m:
            errors.add(at, f"front matter line is not 'key: value': {line!r}")
            continue
        key, value = m.group(1), m.group(2)
        if key in front:
            errors.add(at, f"duplicate key {key!r}")
        if key not in FRONT_KEYS:
            errors.add(at, f"unknown key {key!r} (allowed: {', '.join(FRONT_KEYS)})")
            continue
        if key == "title":
            front[key] = parse_scalar(value, at, errors, in_flow=False)
        else:
            front[key] = parse_flow_list(value, at, errors)
    for key in FRONT_KEYS:
        if key not in front:
            errors.add(where, f"front matter lacks {key!r}")
    return front, end + 1


def check_body(lines, start, title, where, errors):
    """H1 equal to the title, then exactly the four sections in order, none empty."""
    in_fence = False
    h1 = []
    h2 = []  # (name, line index)
    for n in range(start, len(lines)):
        line = lines[n]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if line.startswith("# "):
            h1.append((line[2:].strip(), n))
        elif line.startswith("## "):
            h2.append((line[3:].strip(), n))
    if in_fence:
        errors.add(where, "unclosed ``` code fence")
    first = next((n for n in range(start, len(lines)) if lines[n].strip()), None)
    if first is None:
        errors.add(where, "empty body")
        return
    if len(h1) != 1 or h1[0][1] != first:
        errors.add(where, "body must open with exactly one '# title' heading")
    elif title is not None and h1[0][0] != title:
        errors.add(f"{where}:{h1[0][1] + 1}", f"H1 {h1[0][0]!r} differs from title {title!r}")
    names = [name for name, _ in h2]
    if names != SECTIONS:
        errors.add(where, f"sections are {names}, expected exactly {SECTIONS} in this order")
        return
    bounds = [n for _, n in h2] + [len(lines)]
    for i, (name, n) in enumerate(h2):
        if not any(lines[k].strip() for k in range(n + 1, bounds[i + 1])):
            errors.add(f"{where}:{n + 1}", f"section {name!r} is empty")


def check_links(text, runbook_dir, where, errors):
    for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        if not (runbook_dir / target).is_file():
            errors.add(where, f"link to missing file {target}")


def causes_in_doc(causes_md):
    codes = []
    for line in causes_md.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"## ([a-z0-9-]+)\s*", line)
        if m:
            codes.append(m.group(1))
    return codes


def check_queries(path, shown, slugs, titles, cause_slugs, errors):
    """`shown` is how messages name the file (relative to the repository root)."""
    if not path.is_file():
        errors.add(shown, "missing")
        return 0
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        errors.add(shown, f"not UTF-8: {e}")
        return 0
    seen = {}
    expected = set()
    count = 0
    for n, line in enumerate(text.split("\n"), start=1):
        if line == "" and n == len(text.split("\n")):
            continue  # the final newline
        at = f"{shown}:{n}"
        fields = line.split("\t")
        if len(fields) != 2:
            errors.add(at, f"expected 'query<TAB>slug', got {len(fields)} field(s)")
            continue
        query, slug = fields[0], fields[1]
        if query.strip() == "" or query != query.strip():
            errors.add(at, "empty query or query with leading/trailing blanks")
        if slug not in slugs:
            errors.add(at, f"expected runbook {slug!r} does not exist")
        key = " ".join(query.lower().split())
        if key in seen:
            errors.add(at, f"duplicate of line {seen[key]}")
        seen.setdefault(key, n)
        if key in titles:
            errors.add(at, "query is a runbook title verbatim; rephrase it as a user would")
        expected.add(slug)
        count += 1
    if count < MIN_QUERIES:
        errors.add(shown, f"{count} queries, at least {MIN_QUERIES} required")
    for slug in sorted(cause_slugs - expected):
        errors.add(shown, f"no query expects cause runbook {slug!r}")
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: this script's repository)")
    args = parser.parse_args()
    root = args.root
    runbook_dir = root / "docs" / "runbooks"
    errors = Errors()

    known = causes_in_doc(root / "docs" / "causes.md")
    if not known:
        errors.add("docs/causes.md", "no '## code' headings found")
    required = list(dict.fromkeys(known + PLANNED_CODES))

    files = sorted(p for p in runbook_dir.glob("*.md") if p.name != "README.md")
    if not files:
        errors.add(runbook_dir, "no runbooks")
    covered = {}  # code -> [slugs]
    slugs, titles, cause_slugs = set(), set(), set()
    for path in files:
        where = str(path.relative_to(root))
        slug = path.stem
        slugs.add(slug)
        if not SLUG_RE.match(slug):
            errors.add(where, "file name is not a lowercase-dash slug")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            errors.add(where, f"not UTF-8: {e}")
            continue
        if "\r" in text:
            errors.add(where, "CR line endings")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        if not MIN_LINES <= len(lines) <= MAX_LINES:
            errors.add(where, f"{len(lines)} lines, expected {MIN_LINES}-{MAX_LINES}")
        front, body_start = parse_front_matter(lines, where, errors)
        if front is None:
            continue
        title = front.get("title")
        if title is not None:
            titles.add(" ".join(title.lower().split()))
        tags = front.get("tags", [])
        if not MIN_TAGS <= len(tags) <= MAX_TAGS:
            errors.add(where, f"{len(tags)} tags, expected {MIN_TAGS}-{MAX_TAGS}")
        if len({t.lower() for t in tags}) != len(tags):
            errors.add(where, "duplicate tags")
        for code in front.get("causes", []):
            if not CODE_RE.match(code):
                errors.add(where, f"cause {code!r} is not a cause-code shape")
            elif code not in required:
                errors.add(where, f"cause {code!r} is neither in docs/causes.md nor planned")
            covered.setdefault(code, []).append(slug)
        if front.get("causes"):
            cause_slugs.add(slug)
        check_body(lines, body_start, title, where, errors)
        check_links(text, runbook_dir, where, errors)

    for code in required:
        owners = covered.get(code, [])
        if len(owners) != 1:
            errors.add("docs/runbooks", f"cause {code!r} is covered by {len(owners)} runbooks "
                       f"({', '.join(owners) or 'none'}), expected exactly 1")

    queries = check_queries(runbook_dir / "queries.tsv", "docs/runbooks/queries.tsv", slugs, titles,
                           cause_slugs, errors)

    if errors.items:
        for item in errors.items:
            print(item, file=sys.stderr)
        print(f"check-runbooks: {len(errors.items)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-runbooks: ok: {len(files)} runbooks ({len(cause_slugs)} for cause codes), "
          f"{len(required)} cause codes covered once each, {queries} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
