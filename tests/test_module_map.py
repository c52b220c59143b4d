"""The library layout: sub-packages per pipeline stage, each mapping its modules in its docstring.

The README's "Library layout" section is generated from these docstrings; this test fails when
the two differ. Rewrite the section with::

    .venv/bin/python tests/test_module_map.py --write
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "specfusion_lib"
README = ROOT / "README.md"
START, END = "<!-- module-map:start -->", "<!-- module-map:end -->"

#: Sub-packages in pipeline order (the order of the README's map).
STAGES = ("core", "data", "spectra", "simulate", "models", "training", "properties",
          "crystal_system", "interpret", "inference", "measured", "xas_structure", "plotting",
          "cli")
#: What may sit at the top level besides the sub-packages.
TOP_LEVEL = {"__init__.py", "__main__.py"}
MODULE_REF = re.compile(r"^\* :mod:`~?specfusion_lib\.(\w+)\.(\w+)`:\s*(.*)$")


def _docstring(package: str) -> str:
    tree = ast.parse((LIB / package / "__init__.py").read_text())
    return ast.get_docstring(tree) or ""


def _bullets(package: str) -> dict[str, str]:
    """Module name -> its description, from the ``* :mod:`...`: text`` bullets."""
    out: dict[str, str] = {}
    current = None
    for line in _docstring(package).splitlines():
        match = MODULE_REF.match(line.strip())
        if match and match.group(1) == package:
            current = match.group(2)
            out[current] = match.group(3).strip()
        elif current and line.startswith("  ") and line.strip():
            out[current] += " " + line.strip()
        else:
            current = None
    return out


def render_module_map() -> str:
    """The README section: every stage, its summary line and its modules."""
    lines = ["```"]
    for package in STAGES:
        lines.append(f"{package + '/':<16}{_docstring(package).splitlines()[0]}")
        for module, text in _bullets(package).items():
            lines.append(f"  {module + '.py':<22}{text}")
    lines.append("```")
    return "\n".join(lines)


def _readme_section() -> str:
    text = README.read_text()
    return text[text.index(START) + len(START):text.index(END)].strip()


def test_top_level_holds_only_the_stage_packages() -> None:
    modules = {p.name for p in LIB.glob("*.py")}
    assert modules <= TOP_LEVEL, f"move {sorted(modules - TOP_LEVEL)} into a sub-package"
    packages = {p.parent.name for p in LIB.glob("*/__init__.py")}
    assert packages == set(STAGES)


def test_every_module_is_mapped_in_its_package_docstring() -> None:
    for package in STAGES:
        files = {p.stem for p in (LIB / package).glob("*.py") if p.name != "__init__.py"}
        mapped = set(_bullets(package))
        assert files == mapped, (f"specfusion_lib/{package}/__init__.py: unmapped "
                                 f"{sorted(files - mapped)}, missing files "
                                 f"{sorted(mapped - files)}")


def test_readme_module_map_is_generated_from_the_docstrings() -> None:
    assert _readme_section() == render_module_map(), (
        "README.md's library layout is stale: run `.venv/bin/python tests/test_module_map.py "
        "--write`")


if __name__ == "__main__" and "--write" in sys.argv:
    text = README.read_text()
    head, tail = text[:text.index(START) + len(START)], text[text.index(END):]
    README.write_text(f"{head}\n{render_module_map()}\n{tail}")
    print("README.md: library layout rewritten")
