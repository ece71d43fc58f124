"""Render examples/*.yml into examples/<name>/, the committed example team repos.

The render comes from a copy of the template outside git, so it does not change with
every commit; `_src_path` is set to the published address. The template's own hooks
block of .pre-commit-config.yaml is therefore absent in the examples (it needs a release).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import copier
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PUBLISHED = "gh:org/edge-template"


def render_example(answers_file: Path, dst: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "edge-template"
        template.mkdir()
        shutil.copy2(ROOT / "copier.yml", template / "copier.yml")
        shutil.copytree(ROOT / "template", template / "template")
        shutil.copytree(ROOT / "includes", template / "includes")
        # The example team joins the example platform's site (examples/sites/), not sites/.
        shutil.copytree(EXAMPLES / "sites", template / "sites")
        shutil.copytree(ROOT / "hooks", template / "hooks")  # template/tools/ includes the hooks
        if dst.exists():
            shutil.rmtree(dst)
        copier.run_copy(str(template), str(dst), data=yaml.safe_load(answers_file.read_text()), defaults=True,
                        unsafe=False, quiet=True)
        answers = dst / ".copier-answers.yml"
        answers.write_text(re.sub(r"(?m)^_src_path: .*$", f"_src_path: {PUBLISHED}", answers.read_text()))
    return dst


def main() -> int:
    for answers_file in sorted(EXAMPLES.glob("*.yml")):
        dst = render_example(answers_file, EXAMPLES / answers_file.stem)
        print(f"rendered {answers_file.relative_to(ROOT)} -> {dst.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
