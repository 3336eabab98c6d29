"""Graph rewrites that cut the GPU kernels one denoiser run launches; inputs, outputs and parameters stay.

onnxruntime-web's WebGPU execution provider launches at least one compute dispatch per operator, and on a
real GPU a sampling step of these small networks costs about a fixed overhead per dispatch, not arithmetic
(BENCHMARKS.md, "Real GPU"). `torch.onnx.export` writes a GroupNorm as five operators and every residual
block's timestep and context projections as separate Gemms. Two rewrites, each checked by the exporter's
parity test against PyTorch:

- **Group norms**: Reshape -> InstanceNormalization -> Reshape -> Mul -> Add (the WebGPU EP runs the
  instance norm as two kernels, the affine as two more) becomes Reshape -> LayerNormalization -> Reshape
  -> BatchNormalization (inference form: mean 0, variance 1, epsilon 0, so it is exactly the per-channel
  affine), two kernels. The affine's weight and bias become initializers named after the module
  (`down_blocks.0.norm1.weight`), so `teacher.state_dict_from_onnx` reads them like any other parameter.
- **Projections**: Gemms that read the same embedding with constant weights (every block's `c_proj`, every
  block's `t_proj`) become one Gemm over the concatenated weights and a Split; a `1 + c_proj(...)` after a
  projection is folded into its bias. The per-block initializers keep their names; the Concat and Add over
  them are constant, so onnxruntime folds them when it loads the model.

Both need the spatial size and channels of each norm's input, which ONNX shape inference gives for an
exported denoiser (only the batch is dynamic). A graph without these patterns is left as it is, so
applying the rewrites twice changes nothing.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np


def _const_value(name: str, inits: Dict, consts: Dict) -> Optional[np.ndarray]:
    from onnx import numpy_helper

    if name in inits:
        return numpy_helper.to_array(inits[name])
    if name in consts:
        return numpy_helper.to_array(consts[name].attribute[0].t)
    return None


def _index(graph) -> Tuple[Dict, Dict, Dict]:
    inits = {i.name: i for i in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"}
    users: Dict[str, List] = defaultdict(list)
    for n in graph.node:
        for i in n.input:
            users[i].append(n)
    for o in graph.output:
        users[o.name].append(None)
    return inits, consts, users


def _only_user(users: Dict, name: str, op: str):
    u = users.get(name, [])
    return u[0] if len(u) == 1 and u[0] is not None and u[0].op_type == op else None


def fuse_group_norms(model) -> int:
    """Rewrites each exported GroupNorm (see the module doc) in place; returns how many."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    shapes = {v.name: v for v in onnx.shape_inference.infer_shapes(model, data_prop=True).graph.value_info}
    shapes.update({v.name: v for v in graph.input})
    inits, consts, users = _index(graph)
    new_inits: Dict[str, object] = {}
    before: Dict[str, List] = defaultdict(list)
    drop = set()
    count = 0
    for inorm in [n for n in graph.node if n.op_type == "InstanceNormalization"]:
        r1 = next((n for n in graph.node if inorm.input[0] in n.output and n.op_type == "Reshape"), None)
        r2 = _only_user(users, inorm.output[0], "Reshape")
        mul = r2 and _only_user(users, r2.output[0], "Mul")
        add = mul and _only_user(users, mul.output[0], "Add")
        if r1 is None or add is None or len(users[r1.output[0]]) != 1:
            continue
        s, b = _const_value(inorm.input[1], inits, consts), _const_value(inorm.input[2], inits, consts)
        target = _const_value(r1.input[1], inits, consts)
        other = [i for i in mul.input if i != r2.output[0]] + [i for i in add.input if i != mul.output[0]]
        gamma, beta = (_const_value(i, inits, consts) for i in other)
        x = shapes.get(r1.input[0])
        if any(v is None for v in (s, b, target, gamma, beta)) or x is None or not np.all(s == 1) or not np.all(b == 0):
            continue
        dims = [d.dim_value for d in x.type.tensor_type.shape.dim]
        if len(dims) != 4 or 0 in dims[1:] or list(target) != [0, len(s), -1]:
            continue
        c, h, w = dims[1:]
        if gamma.size != c or beta.size != c:
            continue
        prefix = mul.name.strip("/").rsplit("/", 1)[0].replace("/", ".") if mul.name.startswith("/") else mul.name
        w_name, b_name = f"{prefix}.weight", f"{prefix}.bias"
        n_norm = c // len(s) * h * w
        ones_n, zeros_n = f"fuse.ones_{n_norm}", f"fuse.zeros_{n_norm}"
        mean_c, var_c = f"fuse.zeros_{c}", f"fuse.ones_{c}"
        new_inits[w_name] = numpy_helper.from_array(gamma.reshape(c).astype(np.float32), w_name)
        new_inits[b_name] = numpy_helper.from_array(beta.reshape(c).astype(np.float32), b_name)
        new_inits[mean_c] = numpy_helper.from_array(np.zeros(c, np.float32), mean_c)
        new_inits[var_c] = numpy_helper.from_array(np.ones(c, np.float32), var_c)
        size_name = f"fuse.shape_{n_norm}"
        new_inits[size_name] = numpy_helper.from_array(np.array([n_norm], np.int64), size_name)
        eps = next((a.f for a in inorm.attribute if a.name == "epsilon"), 1e-5)
        base = inorm.name or prefix
        fill = [helper.make_node("ConstantOfShape", [size_name], [ones_n + f"@{base}"], name=f"{base}/ones",
                                 value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
                helper.make_node("ConstantOfShape", [size_name], [zeros_n + f"@{base}"], name=f"{base}/zeros",
                                 value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))]
        ln = helper.make_node("LayerNormalization", [r1.output[0], fill[0].output[0], fill[1].output[0]],
                              [inorm.output[0]], name=f"/{prefix.replace('.', '/')}/LayerNormalization",
                              axis=-1, epsilon=eps)
        bn = helper.make_node("BatchNormalization", [r2.output[0], w_name, b_name, mean_c, var_c], [add.output[0]],
                              name=f"/{prefix.replace('.', '/')}/BatchNormalization", epsilon=0.0)
        before[inorm.output[0]] += [*fill, ln]
        before[add.output[0]].append(bn)
        drop.update(n.output[0] for n in (inorm, mul, add))
        count += 1
    _rebuild(graph, before, drop)
    _add_inits(graph, new_inits)
    _prune(graph)
    return count


def fuse_projections(model) -> int:
    """Merges the Gemms that share an input (see the module doc) in place; returns how many Gemms went."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits, consts, users = _index(graph)
    groups: Dict[str, List] = defaultdict(list)
    for n in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if (n.op_type == "Gemm" and len(n.input) == 3 and n.input[1] in inits and n.input[2] in inits
                and attrs.get("transB") == 1 and not attrs.get("transA") and attrs.get("alpha", 1.0) == 1.0
                and attrs.get("beta", 1.0) == 1.0 and len(inits[n.input[1]].dims) == 2):
            groups[n.input[0]].append(n)
    drop = set()
    before: Dict[str, List] = defaultdict(list)
    new_inits: Dict[str, object] = {}
    merged = 0
    for src, gemms in groups.items():
        if len(gemms) < 2:
            continue
        tag = gemms[0].name.strip("/").replace("/", ".") or src
        biases, outputs, sizes, extra = [], [], [], []
        for g in gemms:
            bias, out = g.input[2], g.output[0]
            # 1 + Gemm(...)[:, :, None, None]: the constant goes into the bias
            u1 = _only_user(users, out, "Unsqueeze")
            u2 = u1 and _only_user(users, u1.output[0], "Unsqueeze")
            add = u2 and _only_user(users, u2.output[0], "Add")
            k = None
            if add is not None and None not in users[add.output[0]]:  # (an Add that is a graph output stays)
                k_name = next(i for i in add.input if i != u2.output[0])
                k = _const_value(k_name, inits, consts)
            if k is not None and k.size == 1:
                k_init = f"{g.name or out}.fold"
                new_inits[k_init] = numpy_helper.from_array(k.reshape(1).astype(np.float32), k_init)
                folded = f"{bias}+fold"
                extra.append(helper.make_node("Add", [bias, k_init], [folded], name=f"{g.name or out}/fold"))
                bias = folded
                for n in users[add.output[0]]:
                    n.input[:] = [u2.output[0] if i == add.output[0] else i for i in n.input]
                drop.add(add.output[0])
            biases.append(bias)
            outputs.append(out)
            sizes.append(inits[g.input[1]].dims[0])
        sizes_name = f"fuse.{tag}.split"
        new_inits[sizes_name] = numpy_helper.from_array(np.array(sizes, np.int64), sizes_name)
        w_cat, b_cat, y = f"fuse.{tag}.weight", f"fuse.{tag}.bias", f"fuse.{tag}.out"
        nodes = extra + [
            helper.make_node("Concat", [g.input[1] for g in gemms], [w_cat], axis=0, name=f"/fuse/{tag}/weights"),
            helper.make_node("Concat", biases, [b_cat], axis=0, name=f"/fuse/{tag}/biases"),
            helper.make_node("Gemm", [src, w_cat, b_cat], [y], transB=1, name=f"/fuse/{tag}/Gemm"),
            helper.make_node("Split", [y, sizes_name], outputs, axis=1, name=f"/fuse/{tag}/Split"),
        ]
        before[gemms[0].output[0]] += nodes
        drop.update(g.output[0] for g in gemms)
        merged += len(gemms) - 1
    _rebuild(graph, before, drop)
    _add_inits(graph, new_inits)
    _prune(graph)
    return merged


def _rebuild(graph, before: Dict[str, List], drop: set) -> None:
    """The node list again, each node keyed by its first output: `before[key]` goes in ahead of that
    node, a key in `drop` leaves it out (one pass, so no node is moved while another refers to it)."""
    from onnx import NodeProto

    out: List = []
    for n in graph.node:
        out.extend(before.get(n.output[0], []))
        if n.output[0] not in drop:
            c = NodeProto()
            c.CopyFrom(n)
            out.append(c)
    del graph.node[:]
    graph.node.extend(out)


def _add_inits(graph, new: Dict[str, object]) -> None:
    have = {i.name for i in graph.initializer}
    graph.initializer.extend(v for k, v in new.items() if k not in have)


def _prune(graph) -> None:
    """Drops nodes and initializers nothing reads any more (the old Shape and constant nodes)."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def fuse_file(src: Path, dst: Path) -> Dict[str, int]:
    """Applies both rewrites to an exported denoiser; writes dst; returns what changed."""
    import onnx

    model = onnx.load(str(src))
    done = {"group_norms": fuse_group_norms(model), "projections": fuse_projections(model)}
    onnx.checker.check_model(model)
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)
    return done
