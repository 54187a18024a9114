"""tests/check_links.py (run by `make lint`) fails on a broken relative link or anchor, and only then."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_links  # noqa: E402

TARGET = """# Target page

## Errors you can match in `Retry`/`Catch`

## Soak: 100 pipelines through faults

## Twice

## Twice

<a id="explicit-anchor"></a>
"""


def site(tmp_path: Path, page: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "target.md").write_text(TARGET)
    (tmp_path / "chart.svg").write_text("<svg/>")
    readme = tmp_path / "README.md"
    readme.write_text(page)
    return readme


def problems(tmp_path: Path, page: str) -> list[str]:
    return check_links.check(site(tmp_path, page), tmp_path)


def test_good_links_and_anchors_pass(tmp_path):
    page = """# Front page

## Local section

See [the errors](docs/target.md#errors-you-can-match-in-retrycatch), [the soak](docs/target.md#soak-100-pipelines-through-faults),
[the second twice](docs/target.md#twice-1), [explicit](docs/target.md#explicit-anchor),
[a folder](docs/), [above](#local-section), ![chart](chart.svg), [AWS](https://docs.aws.amazon.com/x#y)
and [code](docs/target.md "with a title").
"""
    assert problems(tmp_path, page) == []


def test_a_missing_file_fails(tmp_path):
    found = problems(tmp_path, "# P\n\nSee [gone](docs/gone.md).\n")
    assert found == ["README.md:3: docs/gone.md: no such file or directory"]


def test_a_missing_anchor_fails(tmp_path):
    found = problems(tmp_path, "# P\n\nSee [soak](docs/target.md#soak).\n")
    assert found == ["README.md:3: docs/target.md#soak: no heading with anchor #soak in target.md"]


def test_a_missing_anchor_on_the_page_itself_fails(tmp_path):
    found = problems(tmp_path, "# P\n\n## Here\n\n[up](#here) [nowhere](#there)\n")
    assert found == ["README.md:5: #there: no heading with anchor #there in README.md"]


def test_a_missing_image_fails(tmp_path):
    found = problems(tmp_path, "# P\n\n![chart](bench/chart.svg)\n")
    assert found == ["README.md:3: bench/chart.svg: no such file or directory"]


def test_a_link_whose_text_wraps_is_checked(tmp_path):
    page = "# P\n\nSee [the\nsoak](docs/target.md#soak-100-pipelines-through-faults) and [the\nother\nsoak](docs/target.md#nope).\n"
    assert problems(tmp_path, page) == ["README.md:4: docs/target.md#nope: no heading with anchor #nope in target.md"]


def test_links_in_code_are_not_links(tmp_path):
    page = "# P\n\n`[x](gone.md)`\n\n```md\n[y](gone.md#nothing)\n```\n"
    assert problems(tmp_path, page) == []


def test_headings_in_code_blocks_are_not_anchors(tmp_path):
    page = "# P\n\n```bash\n# comment\n```\n\n[c](#comment)\n"
    assert problems(tmp_path, page) == ["README.md:7: #comment: no heading with anchor #comment in README.md"]


def test_the_command_exits_1_on_a_broken_link_and_0_when_fixed(tmp_path, capsys):
    readme = site(tmp_path, "# P\n\n[t](docs/target.md#twice-2)\n")
    assert check_links.main([str(readme)]) == 1
    assert "#twice-2" in capsys.readouterr().out
    readme.write_text("# P\n\n[t](docs/target.md#twice-1)\n")
    assert check_links.main([str(readme)]) == 0


def test_github_slugs():
    assert check_links.slug("Errors you can match in `Retry`/`Catch`") == "errors-you-can-match-in-retrycatch"
    assert check_links.slug("Fuzzing (`make fuzz`)") == "fuzzing-make-fuzz"
    assert check_links.slug("Callback vs polling vs long polling (`bench/compare.py`)") == \
        "callback-vs-polling-vs-long-polling-benchcomparepy"
    assert check_links.slug("Connections: opened by the first request, not during init") == \
        "connections-opened-by-the-first-request-not-during-init"
    assert check_links.slug("The **safety net**: `run_date`") == "the-safety-net-run_date"


def test_a_docs_page_missing_from_the_readme_map_fails(tmp_path):
    site(tmp_path, "# P\n\n[t](docs/target.md)\n")
    assert check_links.unlinked(tmp_path) == []
    (tmp_path / "docs" / "new-page.md").write_text("# New\n")
    assert check_links.unlinked(tmp_path) == [
        "README.md: docs/new-page.md is not linked from the README's map of docs/"]
