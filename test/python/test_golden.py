"""Golden vectors shared with the TypeScript sampler (test/fixtures/golden.json)."""
from __future__ import annotations

import json
import math

from conftest import REPO
from sdtrain import golden

GOLDEN = REPO / "test" / "fixtures" / "golden.json"


def assert_same(a, b, path="$", tol=1e-12):
    """Structural equality; floats within tol (relative for large values)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}", tol)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: length differs"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]", tol)
    elif isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or a is None:
        assert a == b, f"{path}: {a!r} != {b!r}"
    else:
        assert math.isfinite(a) and math.isfinite(b), f"{path}: not finite"
        assert abs(a - b) <= tol * max(1.0, abs(a), abs(b)), f"{path}: {a!r} != {b!r}"


def test_make_golden_is_deterministic():
    a, b = golden.make_golden(), golden.make_golden()
    assert json.dumps(a) == json.dumps(b)


def test_repo_golden_matches_fresh_computation():
    """Changing the math without `npm run golden` (python -m sdtrain.golden) fails here."""
    assert GOLDEN.exists(), f"{GOLDEN} missing: regenerate with python -m sdtrain.golden"
    stored = json.loads(GOLDEN.read_text())
    fresh = json.loads(json.dumps(golden.make_golden()))  # JSON round trip, as written to disk
    assert_same(fresh, stored)
    assert len(stored["cases"]) >= 10 and len(stored["update"]) == 6


def test_golden_main_writes_file(tmp_path, capsys):
    out = tmp_path / "sub" / "golden.json"
    assert golden.main(["--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert_same(written, json.loads(GOLDEN.read_text()))
    assert str(out) in capsys.readouterr().out
    # The loops' linear denoiser and update graph, as the browser loop test loads them; the committed
    # fixtures are the same graphs (operators and constants), so a changed LinearDenoiser needs `npm run golden`.
    import onnx
    from onnx import numpy_helper
    fixtures = GOLDEN.parent / "linear"
    for name, inputs, outputs in [("model.onnx", ["image", "timestep", "context"], ["noise"]),
                                  ("update.onnx", ["x", "eps", "z", "coef", "guidance"], ["x_next", "x_next_rep"])]:
        m = onnx.load(str(out.parent / "linear" / name))
        assert [i.name for i in m.graph.input] == inputs and [o.name for o in m.graph.output] == outputs
        committed = onnx.load(str(fixtures / name))
        assert [n.op_type for n in committed.graph.node] == [n.op_type for n in m.graph.node], name

        def consts(g):
            vals = [numpy_helper.to_array(t).tolist() for t in g.initializer]
            vals += [numpy_helper.to_array(a.t).tolist() for n in g.node if n.op_type == "Constant"
                     for a in n.attribute if a.name == "value"]
            return sorted(map(str, vals))
        assert consts(committed.graph) == consts(m.graph), f"{name}: rerun npm run golden"
    image = onnx.load(str(out.parent / "linear" / "model.onnx")).graph.input[0]
    assert [d.dim_value for d in image.type.tensor_type.shape.dim][1:] == [4, 4, 4]


def test_assert_same_detects_small_changes():
    g = json.loads(GOLDEN.read_text())
    h = json.loads(GOLDEN.read_text())
    h["cases"][0]["out"][3] += 1e-9
    try:
        assert_same(g, h)
    except AssertionError:
        return
    raise AssertionError("a 1e-9 change went unnoticed")
