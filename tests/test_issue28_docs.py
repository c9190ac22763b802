"""Small promises of the docs (issue 28): the hash docs/cli.md shows for `regenerate` is the
one a real run makes, `preview` writes its image as any file the user makes (umask), and the
README shows no retired command."""

from __future__ import annotations

import json
import os
import re

from tinyset import ROOT, TINY_SHARDS, run_cli


def test_the_regenerate_hash_in_docs_cli_md_is_a_real_one(tiny):
    doc = (ROOT / "docs" / "cli.md").read_text()
    shown = re.search(r"# (tiny-000001\.tar): 16 samples, sha256 ([0-9a-f]{16})\.\.\. matches the manifest", doc)
    assert shown, "docs/cli.md's regenerate example moved"
    manifest = json.loads((tiny / "manifest.json").read_text())
    entry = next(e for e in manifest["shards"] if e["name"] == shown.group(1))
    assert entry["sha256"][:16] == shown.group(2)
    assert shown.group(1) in TINY_SHARDS


def test_preview_writes_its_image_with_the_users_umask(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        code, _, err = run_cli(["preview", tiny, "--out", tmp_path / "sheet.png"])
    finally:
        os.umask(old)
    assert code == 0, err
    assert (tmp_path / "sheet.png").stat().st_mode & 0o777 == 0o644


def test_the_docs_name_the_hub_command_that_exists():
    for name in ("README.md", "docs/cli.md", "docs/streaming.md"):
        text = (ROOT / name).read_text()
        assert "huggingface-cli upload" not in text, name
    assert "hf upload --repo-type dataset" in (ROOT / "README.md").read_text()
    assert 'pip install ".[torch]"' in (ROOT / "README.md").read_text()
