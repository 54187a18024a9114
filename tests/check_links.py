#!/usr/bin/env python3
"""Check every relative link and #anchor in the project's Markdown (run by `make lint`).

    python tests/check_links.py [FILE.md ...]     (default: README.md, docs/*.md and the other
                                                    committed pages listed in PAGES)

A link `[text](target)` or image `![alt](target)` outside code is checked when its target is
relative (no scheme, not `//host`): the file or directory must exist, relative to the page; an
`#anchor` on a Markdown page (the page itself for `(#anchor)`) must be one of its headings' GitHub
anchors (or an explicit `<a id="...">`/`name="..."`). Anchors into other kinds of file (`x.rs#L10`)
are not checked. Without arguments, every page of docs/ must also be linked from README.md (its map
of the manual). Exit status 1 with one line per broken link (`page:line: target: reason`), 0 when
all resolve. Standard library only.

GitHub's anchor for a heading: the rendered text (inline code, emphasis and link markup removed),
lower-cased, every character that is not a letter, digit, space, `-` or `_` dropped, spaces made
`-`; a repeated anchor gets `-1`, `-2`, ... in order of appearance.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/*.md", "scripts/README.md", "local/redshift-data-emulator/README.md",
         "bench/results/*.md"]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
CODE_SPAN_WRAPPED = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# [text](target) and ![alt](target); the target ends at whitespace (an optional "title" follows) or ")"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:id|name)\s*=\s*\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's Markdown text (before the -1, -2 suffixes)."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)   # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)                       # inline HTML tags
    text = re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)     # emphasis markers, not snake_case
    out = []
    for ch in text.strip().lower():
        if ch in " -_" or unicodedata.category(ch)[0] in "LN":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def prose_lines(text: str):
    """(line number, line) for each line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)[0] * len(m.group(1))
            elif m.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def anchors(text: str) -> set[str]:
    """Every anchor a page defines: its headings' (with duplicate suffixes) and explicit ones."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def paragraphs(text: str):
    """(first line number, text) of each run of non-blank lines outside fenced code blocks, so a
    link whose text wraps onto the next line is still one link."""
    start, block, last = 0, [], -1
    for number, line in prose_lines(text):
        if not line.strip() or number != last + 1:
            if block:
                yield start, "\n".join(block)
            start, block = number, []
        if line.strip():
            if not block:
                start = number
            block.append(line)
        last = number
    if block:
        yield start, "\n".join(block)


def links(text: str):
    """(line number, target) of every link outside code."""
    for start, para in paragraphs(text):
        # code spans may wrap too; blank them out keeping their line breaks, so line numbers hold
        prose = CODE_SPAN_WRAPPED.sub(lambda m: "\n" * m.group(0).count("\n"), para)
        for m in LINK.finditer(prose):
            yield start + prose[:m.start()].count("\n"), m.group(1)


def check(page: Path, root: Path = ROOT) -> list[str]:
    """One message per broken relative link or anchor on `page`."""
    problems = []
    text = page.read_text(encoding="utf-8")
    cache: dict[Path, set[str]] = {}
    for number, target in links(text):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        where = f"{page.relative_to(root) if page.is_relative_to(root) else page}:{number}: {target}"
        dest = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not dest.exists():
            problems.append(f"{where}: no such file or directory")
            continue
        if not anchor or dest.suffix.lower() != ".md" or dest.is_dir():
            continue
        if dest not in cache:
            cache[dest] = anchors(dest.read_text(encoding="utf-8"))
        if anchor not in cache[dest]:
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
    return problems


def unlinked(root: Path = ROOT) -> list[str]:
    """One message per page of docs/ that README.md does not link to (its map of the manual)."""
    readme = root / "README.md"
    linked = {(root / target.partition("#")[0]).resolve()
              for _, target in links(readme.read_text(encoding="utf-8"))
              if target and not SCHEME.match(target)}
    return [f"README.md: docs/{page.name} is not linked from the README's map of docs/"
            for page in sorted((root / "docs").glob("*.md")) if page.resolve() not in linked]


def pages(root: Path = ROOT) -> list[Path]:
    found: list[Path] = []
    for pattern in PAGES:
        found.extend(sorted(root.glob(pattern)))
    return found


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv] if argv else pages()
    problems = [p for f in files for p in check(f)] + ([] if argv else unlinked())
    for p in problems:
        print(p)
    print(f"check_links: {len(files)} pages, {len(problems)} broken links", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
