"""The docs cannot drift from the code.

- Every ``python`` block of ``docs/api.md`` and of the README runs, in order, in a
  fresh folder (the README's after its Quick start's first command).
- ``docs/cli.md`` against the real ``--help``: its command list is the one
  ``fractaldb --help`` gives; every option of every command appears in cli.md
  (or, for the training commands, in training.md); every option row of a
  command's table in cli.md is an option that command has.
- No doc points at a document that is not in the repository ("SPEC 2") or says
  "1 categories".

When a command or option is added, ``python tests/test_docs.py --write`` rewrites
cli.md's command list and adds a table row (from the option's ``--help``) for
each undocumented option, and a section for each undocumented command; edit the
rows' wording afterwards if you like, the test only checks that they exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"
TRAINING_MD = ROOT / "docs" / "training.md"
#: Commands documented in training.md rather than in a section of cli.md.
TRAINING = ("pretrain", "finetune", "experiment")


def _blocks(path: Path, lang: str) -> list:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def _run_python(code: str, cwd: Path) -> None:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_api_page_examples_run(tmp_path):
    blocks = _blocks(ROOT / "docs" / "api.md", "python")
    assert len(blocks) >= 5  # search, generate, rebuild/index, load (2), stream
    _run_python("\n".join(blocks), tmp_path)


def test_readme_examples_run(tmp_path):
    readme = ROOT / "README.md"
    first = "fractaldb generate --preset tiny --out data"
    assert first in _blocks(readme, "bash")[1], "the Quick start must begin with the tiny dataset the examples read"
    from tinyset import run_cli

    # the Quick start's first two lines (the rest are full-size jobs), run as written in tmp_path
    quick = _blocks(readme, "bash")[1].splitlines()[:2]
    assert quick[0].startswith(first)
    for line in quick:
        for part in re.sub(r"\s+#\s.*$", "", line).split(" && "):
            argv = [str(tmp_path / a) if a in ("data", "data.png") else a for a in part.split()[1:]]
            code, _, err = run_cli(argv)
            assert code == 0, f"{part}: {err}"
    assert (tmp_path / "data.png").is_file()
    blocks = _blocks(readme, "python")
    assert blocks
    _run_python("\n".join(blocks), tmp_path)


def _examples(text: str):
    """``(command, expected summary or None)`` of every ``bash`` block, in order: continuation
    lines joined, trailing comments dropped; a comment line right after a command that looks like
    a summary (``... -> PATH``) is its expected output, ``…`` standing for anything."""
    for block in _blocks_of(text, "bash"):
        lines = block.replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("fractaldb "):
                continue
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            expected = nxt[2:] if nxt.startswith("# ") and ("->" in nxt or nxt.startswith("# ok:")) else None
            yield command, expected


def _blocks_of(text: str, lang: str) -> list:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


#: Examples that need what a test machine has not: a Dask cluster, object storage, a GPU, /data.
_ELSEWHERE = ("--executor dask", "s3://", "--device cuda", "/data/")


@pytest.mark.slow
def test_cli_md_examples_run(tmp_path):
    import shlex

    from tinyset import run_cli

    text = CLI_MD.read_text()
    fdb = tmp_path / "fdb"
    fdb.mkdir()
    for block in _blocks_of(text, "yaml"):  # the preset files the examples read
        first = block.splitlines()[0]
        if first.startswith("# /tmp/fdb/"):
            (fdb / first[len("# /tmp/fdb/"):].split()[0]).write_text(block)
    ran = checked = 0
    for command, expected in _examples(text):
        if any(x in command for x in _ELSEWHERE):
            continue
        for part in command.split(" && "):
            argv = shlex.split(part.replace("/tmp/fdb", str(fdb)))[1:]
            code, out, err = run_cli(argv)
            assert code == 0, f"{part}: {err}"
            ran += 1
        if expected:
            pattern = re.escape(expected.replace("/tmp/fdb", str(fdb))).replace("…", ".*")
            assert re.fullmatch(pattern, out.strip().splitlines()[-1]), (part, expected, out)
            checked += 1
    assert ran >= 25 and checked >= 6, (ran, checked)


# --------------------------------------------------------------------------- cli.md vs --help


def _commands(group=None, path=()) -> dict:
    """``{"generate": command, "presets list": command, ...}`` of the real CLI."""
    from fractaldb.cli.main import cli

    group = group or cli
    out = {}
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out.update(_commands(cmd, path + (name,)))
        else:
            out[" ".join(path + (name,))] = cmd
    return out


def _options(cmd) -> list:
    return [o for p in cmd.params if isinstance(p, click.Option) for o in p.opts if o.startswith("--")
            and o != "--help"]


def _command_list() -> str:
    from fractaldb.cli.main import cli

    lines = ["fractaldb [--version] [-h] COMMAND ...", ""]
    width = max(len(n) for n in cli.commands)
    for name in _order(cli):
        first = " ".join((cli.commands[name].help or "").split("\n\n")[0].split())
        lines.append(f"  {name:<{width}}  {first}")
    return "\n".join(lines)


def _order(cli) -> list:
    """cli.md's order: the data commands first (as the page goes), then the rest alphabetically."""
    first = ["search", "render", "preview", "presets", "generate", "verify", "regenerate", "export", "index",
             "pretrain", "finetune", "experiment"]
    return [n for n in first if n in cli.commands] + sorted(n for n in cli.commands if n not in first)


def _sections(text: str) -> dict:
    """``{"generate": section text}`` for every ``## `fractaldb CMD``` heading of cli.md."""
    parts = re.split(r"^## `fractaldb ([a-z ]+)`\s*$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _table_options(section: str) -> list:
    """Options in the first cell of the section's table rows (before a ``###`` subsection)."""
    body = section.split("\n### ", 1)[0]
    return re.findall(r"^\| `(--[a-z0-9-]+)[^|]*\|", body, flags=re.M)


def _documented(cmd, section: str) -> set:
    """The command's options its section names: each row's option, and every option between
    the two ends of a range row (``| `--compat` … `--device` | as for `render` |``)."""
    opts = _options(cmd)
    found = {o for o in opts if f"`{o}" in section}
    for a, b in re.findall(r"^\| `(--[a-z0-9-]+)` … `(--[a-z0-9-]+)`", section, flags=re.M):
        if a in opts and b in opts:
            found.update(opts[opts.index(a):opts.index(b) + 1])
    return found


def test_cli_md_command_list_is_the_help():
    text = CLI_MD.read_text()
    block = re.search(r"^```\n(fractaldb \[--version\].*?)^```", text, flags=re.S | re.M)
    assert block, "cli.md must start with the command list"
    assert block.group(1).rstrip() == _command_list(), "run: python tests/test_docs.py --write"


def test_every_option_is_documented_and_every_documented_option_exists():
    text = CLI_MD.read_text()
    training = TRAINING_MD.read_text()
    sections = _sections(text)
    problems = []
    for name, cmd in _commands().items():
        top = name.split()[0]
        if top in TRAINING:
            problems += [f"{name} {o}: not in training.md" for o in _options(cmd) if o not in training]
            continue
        section = sections.get(top)
        if section is None:
            problems.append(f"{name}: no '## `fractaldb {top}`' section in cli.md")
            continue
        documented = _documented(cmd, section)
        problems += [f"{name} {o}: not in its cli.md section" for o in _options(cmd) if o not in documented]
    for top, section in sections.items():
        cmds = [c for n, c in _commands().items() if n.split()[0] == top]
        known = {o for c in cmds for o in _options(c)}
        problems += [f"cli.md documents {top} {o}, which --help does not have" for o in _table_options(section)
                     if o not in known]
    assert not problems, "\n".join(problems) + "\n(run: python tests/test_docs.py --write)"


def test_no_stale_references():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    bad = []
    for path in docs:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bSPEC\s*\d", line):
                bad.append(f"{path.name}:{i}: SPEC reference (a document not in the repository)")
            if re.search(r"(?<![\d.,])\b1 (categories|classes|shards|images)\b", line):
                bad.append(f"{path.name}:{i}: '1 categories'")
    from fractaldb.cli.main import cli

    for name, cmd in _commands(cli).items():
        with click.Context(cmd, info_name=name) as ctx:
            if re.search(r"\bSPEC\s*\d", cmd.get_help(ctx)):
                bad.append(f"fractaldb {name} --help: SPEC reference")
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------- the README's picture

README_IMAGE = ROOT / "docs" / "img" / "fractaldb-categories.png"


def readme_image() -> bytes:
    """The README's picture: FractalDB-1k's first 16 categories (the published ones: official
    sampler, seed 1), identity weight, 128x128, 100 000 points drawn one pixel each (point mode), gray, as PNG bytes."""
    from fractaldb import RenderConfig, SearchConfig, search
    from fractaldb.encode import encode_image
    from fractaldb.ifs.system import Categories
    from fractaldb.ifs.render import render_previews
    from fractaldb.preview import contact_sheet

    result = search(SearchConfig(categories=16, seed=1, workers=2))
    cats = Categories(list(range(16)), result.categories)
    images = render_previews(RenderConfig(size=128, points=100_000, mode="point", seed=1), cats, per_class=1, limit=16)
    return encode_image(contact_sheet(images, columns=8), "png")


def test_readme_image_is_ours_and_current():
    assert README_IMAGE.read_bytes() == readme_image(), "run: python tests/test_docs.py --write"
    assert "img/fractaldb-categories.png" in (ROOT / "README.md").read_text().split("\n## ", 1)[0]


# --------------------------------------------------------------------------- --write


def _row(opt: click.Option) -> str:
    long = next(o for o in opt.opts if o.startswith("--"))
    if opt.is_flag:
        default, allowed = "off", "flag"
    else:
        unset = opt.multiple or opt.default in (None, (), "") or "UNSET" in str(opt.default)
        default = "required" if opt.required else ("—" if unset else f"`{opt.default}`")
        allowed = " ".join(f"`{c}`," for c in opt.type.choices).rstrip(",") if isinstance(opt.type, click.Choice) \
            else (opt.metavar or opt.type.name)
    return f"| `{long}` | {default} | {allowed} | {' '.join((opt.help or '').split())} |"


def write() -> list:
    """Rewrite cli.md's command list; add rows and sections for undocumented options and commands."""
    text = CLI_MD.read_text()
    text = re.sub(r"^```\nfractaldb \[--version\].*?^```", lambda m: f"```\n{_command_list()}\n```", text,
                  count=1, flags=re.S | re.M)
    changes = []
    for name, cmd in _commands().items():
        top = name.split()[0]
        if top in TRAINING:
            continue
        sections = _sections(text)
        if top not in sections:
            rows = "\n".join(_row(p) for p in cmd.params if isinstance(p, click.Option) and _options_of(p))
            text = text.rstrip("\n") + (f"\n\n## `fractaldb {top}`\n\n{cmd.help.splitlines()[0]}\n\n"
                                        f"| option | default | allowed | meaning |\n|---|---|---|---|\n{rows}\n")
            changes.append(f"added a section for {top}")
            continue
        section = sections[top]
        documented = _documented(cmd, section)
        missing = [p for p in cmd.params if isinstance(p, click.Option) and _options_of(p)
                   and _options_of(p)[0] not in documented]
        if not missing:
            continue
        rows = re.findall(r"^\|.*\|$", section.split("\n### ", 1)[0], flags=re.M)
        if not rows:
            continue
        new_section = section.replace(rows[-1], rows[-1] + "\n" + "\n".join(_row(p) for p in missing), 1)
        text = text.replace(section, new_section, 1)
        changes += [f"{top}: added {_options_of(p)[0]}" for p in missing]
    CLI_MD.write_text(text)
    return changes


def _options_of(p) -> list:
    return [o for o in p.opts if o.startswith("--") and o != "--help"]


if __name__ == "__main__":
    if "--write" in sys.argv:
        sys.path.insert(0, str(ROOT / "tests"))
        for change in write() or ["command list rewritten"]:
            print(change)
        README_IMAGE.write_bytes(readme_image())
        print(f"wrote {README_IMAGE.relative_to(ROOT)}")
    else:
        sys.exit(pytest.main([__file__, "-q"]))
