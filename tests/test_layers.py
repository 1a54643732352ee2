"""The imports flow one way: cli -> API (sim.simulate, experiments, sizing, report) -> result and
the engine registry -> engines side by side -> primitives. Checked by parsing every module."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).parent.parent / "sim"
ENGINES = ("des", "calendar", "stations")  # the engine packages of sim/


def _imports(path: Path, root: Path = SIM.parent) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in a file, relative imports made absolute."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            out.append((base, [alias.name for alias in node.names]))
    return out


def _under(module: str, *packages: str) -> bool:
    """`module` is one of `packages` or inside one (sim.design is not inside sim.des)."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def _modules(folder: str = "") -> list[Path]:
    return sorted((SIM / folder).rglob("*.py"))


def test_the_detector_sees_every_spelling(tmp_path: Path) -> None:
    probe = tmp_path / "sim" / "calendar" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import sim.des.engine\nfrom sim.des import station\nfrom ..des.kafka import x\n")
    assert [m for m, _ in _imports(probe, tmp_path)] == ["sim.des.engine", "sim.des", "sim.des.kafka"]


def test_no_engine_imports_another() -> None:
    for engine in ENGINES:
        others = [f"sim.{e}" for e in ENGINES if e != engine]
        for path in _modules(engine):
            bad = [m for m, _ in _imports(path) if any(m == o or m.startswith(o + ".") for o in others)]
            assert not bad, f"{path.relative_to(SIM)} imports {bad}"


def test_the_shared_array_primitives_import_no_engine() -> None:
    for path in _modules("arrays"):
        bad = [m for m, _ in _imports(path) if _under(m, *(f"sim.{e}" for e in ENGINES))]
        assert not bad, f"{path.relative_to(SIM)} imports an engine: {bad}"


def test_only_the_registry_knows_the_engines() -> None:
    for path in _modules():
        if path.parts[-2] in ENGINES or path.name == "engines.py":
            continue
        bad = [m for m, _ in _imports(path) if _under(m, *(f"sim.{e}" for e in ENGINES))]
        assert not bad, f"{path.relative_to(SIM)} imports an engine directly: {bad}"


def test_the_result_layer_does_not_import_the_report() -> None:
    for name in ("result.py", "slo.py", "summary.py", "run_state.py", "engines.py", "simulate.py"):
        bad = [m for m, _ in _imports(SIM / name) if m.startswith("sim.report")]
        assert not bad, f"sim/{name} imports {bad}"


def test_experiments_use_no_private_helper_of_the_report() -> None:
    for path in _modules("experiments"):
        for module, names in _imports(path):
            if module.startswith("sim.report"):
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{path.relative_to(SIM)} takes {private} from {module}"


def test_nothing_in_sim_imports_the_cli() -> None:
    for path in _modules():
        assert not [m for m, _ in _imports(path) if m == "cli"], path


def test_the_system_model_knows_no_engine_and_no_result() -> None:
    """sim/system/ is what both engines consume: it imports neither, nor anything built on runs."""
    for path in _modules("system"):
        above = (*(f"sim.{e}" for e in ENGINES), "sim.result", "sim.report", "sim.experiments", "sim.engines")
        bad = [m for m, _ in _imports(path) if _under(m, *above)]
        assert not bad, f"{path.relative_to(SIM)} imports {bad}"


def test_the_engines_take_flows_from_the_system() -> None:
    """Every engine compiles the scenario through sim.system (one home for placement and flows)."""
    for engine in ENGINES:
        imported = {m for path in _modules(engine) for m, _ in _imports(path)}
        assert any(m.startswith("sim.system") for m in imported), engine
