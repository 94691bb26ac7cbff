"""``--strategy darts``: differentiable architecture search of an MLP with an expected-hardware-cost penalty.

One over-parameterised MLP whose every searchable choice is a mixed op with architecture weights α:

* ``depth``: a mixture of exits (the head after layer d, weighted by softmax(α_depth)[d]);
* ``width`` (per layer or global): channel masks Σ_j p_j·1[c < w_j] over the largest layer (an int range is
  discretised to at most ``max_choices`` values on its grid);
* ``activation``: Σ_k p_k·act_k(z);
* ``quant`` / ``weight_bits``: the weight seen is Σ_q p_q·fake_quant(W, q) (straight-through per mode).

Weights learn on one half of the training split, α on the other (first-order DARTS, alternating steps);
α's loss adds ``λ · mean_o E[cost_o] / cost_o(largest)`` where ``E[cost] = offset + Σ P(op)·cost(op)`` comes
from :class:`~hwnas.supernet.costs.OpCostTable` (each op profiled as a tiny ONNX layer in its context). Each
``--constraint PROFILE.METRIC<=V`` is a hard budget handled as in RC-DARTS: a penalty multiplier on
``max(0, E[cost] − V)`` doubles after every epoch the expected cost is over budget (and halves, down to 1,
after an epoch within it), α-only steps continue
until it is within budget, and the derived (argmax) architecture is projected onto the budget if its own table
cost is still over it. ``gumbel=True`` samples the mixture weights with Gumbel-softmax instead. The derived
architecture is then trained from scratch and evaluated by the normal evaluator, as a trial of the study.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.engine.evaluator import Evaluator
from hwnas.engine.objectives import Constraint, Objective
from hwnas.engine.records import read_tag
from hwnas.errors import CandidateError, ConfigError
from hwnas.models.layers import ACTIVATIONS, uniform_init
from hwnas.models.mlp import precision
from hwnas.models.preprocess import Standardize
from hwnas.models.quant import fake_quant_mode
from hwnas.space import Categorical, Int, SearchSpace
from hwnas.supernet.costs import OpCostTable
from hwnas.supernet.spaces import Restriction, restrict
from hwnas.train import seed_everything
from hwnas.engine.tasks import ClassificationTask, Task
from hwnas.train.trainer import Batch, Trainer, TrainHook, TrainState

if TYPE_CHECKING:
    from hwnas.engine.session import SearchSession
    from hwnas.strategies.darts import DartsOptions

_log = logging.getLogger(__name__)
KINDS = ("width", "activation", "precision")


def discretise(p: Int, max_choices: int) -> tuple[int, ...]:
    """The values of an int range on its grid, thinned to ``max_choices`` (log-spaced when ``log``)."""
    grid = list(range(p.low, p.high + 1, p.step))
    if len(grid) <= max_choices:
        return tuple(grid)
    if p.log:
        raw = np.exp(np.linspace(math.log(p.low), math.log(p.high), max_choices))
    else:
        raw = np.linspace(p.low, grid[-1], max_choices)
    snapped = sorted({min(grid, key=lambda g: abs(g - v)) for v in raw})
    return tuple(snapped)


@dataclass(frozen=True)
class Choice:
    """One searchable choice: the space parameter it sets, its values, one α per layer or one shared."""

    param: str | None  # None: fixed by the space (a single value)
    values: tuple[Any, ...]
    per_layer: bool


class DartsSpace:
    """The mixed ops a restricted MLP space defines (see the module docstring)."""

    def __init__(self, r: Restriction, max_choices: int = 6) -> None:
        sp = r.space
        self.restriction = r
        depth = sp.params.get("depth")
        if isinstance(depth, Int):
            if depth.step != 1:
                raise ConfigError(f"space {sp.name!r}: param 'depth': DARTS needs step 1")
            self.depths = tuple(range(depth.low, depth.high + 1))
        else:
            self.depths = (int(sp.fixed.get("depth", 1)),)
        self.choices = {"width": self._choice(sp, "width", 32, max_choices),
                        "activation": self._choice(sp, "activation", "relu", max_choices)}
        if "quant" in sp.params and "weight_bits" in sp.params:
            raise ConfigError(f"space {sp.name!r}: params 'quant' and 'weight_bits' both set a precision; "
                              "DARTS mixes one of them")
        name = "weight_bits" if "weight_bits" in sp.params or sp.fixed.get("weight_bits") else "quant"
        self.choices["precision"] = self._choice(sp, name, "fp32", max_choices)
        self.precision_param = name
        for a in self.choices["activation"].values:
            if a not in ACTIVATIONS:
                raise ConfigError(f"space {sp.name!r}: param 'activation': unknown choice {a!r}")

    @staticmethod
    def _choice(sp: SearchSpace, name: str, default: Any, max_choices: int) -> Choice:
        p = sp.params.get(name)
        if p is None:
            value = sp.fixed.get(name, default)
            if isinstance(value, (list, tuple)):
                raise ConfigError(f"space {sp.name!r}: fixed '{name}' must be one value for DARTS")
            return Choice(None, (value,), False)
        if p.when:
            raise ConfigError(f"space {sp.name!r}: param '{name}': DARTS cannot mix a conditional parameter")
        if isinstance(p, Categorical):
            values = tuple(p.choices)
        elif isinstance(p, Int):
            values = discretise(p, max_choices)
        else:
            raise ConfigError(f"space {sp.name!r}: param '{name}': DARTS mixes categorical or int choices")
        return Choice(name, values, p.per_layer is not None)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    def key(self, kind: str, layer: int) -> str:
        return f"{kind}.{layer}" if self.choices[kind].per_layer else kind

    def alpha_keys(self) -> list[tuple[str, int]]:
        """(α name, number of choices) of every mixed op."""
        keys = [("depth", len(self.depths))]
        for kind in KINDS:
            c = self.choices[kind]
            layers = range(self.max_depth) if c.per_layer else [0]
            keys += [(self.key(kind, i), len(c.values)) for i in layers]
        return keys

    def bits(self, value: Any, fixed_point: Any) -> Any:
        """make_ffn ``bits`` of a precision choice (as build_mlp derives it)."""
        default = fixed_point.weight_bits if fixed_point else None
        if self.precision_param == "weight_bits":
            return precision(int(value), "fp32", default, "darts")
        return precision(None, str(value), default, "darts")

    def head_bits(self, value: Any, fixed_point: Any) -> Any:
        """The head's precision: a global ``quant`` applies to it; per-layer precision leaves it at the
        default (fixed-point bits, or the widest weight_bits choice as build_mlp takes the max)."""
        c = self.choices["precision"]
        default = fixed_point.weight_bits if fixed_point else None
        if self.precision_param == "weight_bits":
            return default or (int(value) if not c.per_layer else max(int(v) for v in c.values))
        return self.bits(value, fixed_point) if not c.per_layer else default



class DartsMLP(nn.Module):
    """The mixed-op MLP of a :class:`DartsSpace` (weights at the largest shapes, α per mixed op)."""

    def __init__(self, ds: DartsSpace, n_features: int, n_classes: int, stats: Any, fixed_point: Any = None) -> None:
        super().__init__()
        self.ds, self.fixed_point = ds, fixed_point
        widths = ds.choices["width"].values
        w = max(int(v) for v in widths)
        self.pre = Standardize(stats)
        ins = [n_features] + [w] * (ds.max_depth - 1)
        self.weights = nn.ParameterList(uniform_init((n, w), n) for n in ins)
        self.biases = nn.ParameterList(uniform_init((w,), n) for n in ins)
        self.head_w, self.head_b = uniform_init((w, n_classes), w), uniform_init((n_classes,), w)
        self.alpha = nn.ParameterDict({k.replace(".", "_"): nn.Parameter(torch.zeros(n)) for k, n in ds.alpha_keys()})
        masks = torch.tensor([[1.0 if c < int(v) else 0.0 for c in range(w)] for v in widths])
        self.register_buffer("masks", masks)
        self.acts = [ACTIVATIONS[a]() for a in ds.choices["activation"].values]
        self.modes = [ds.bits(v, fixed_point) for v in ds.choices["precision"].values]
        self.head_modes = [ds.head_bits(v, fixed_point) for v in ds.choices["precision"].values]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("alpha.")]

    def probs(self, gumbel: bool = False, tau: float = 1.0) -> dict[str, torch.Tensor]:
        return {k.replace("_", "."): (F.gumbel_softmax(a, tau=tau) if gumbel else a.softmax(0))
                for k, a in self.alpha.items()}

    def _mix_weight(self, w: torch.Tensor, p: torch.Tensor, modes: Sequence[Any]) -> torch.Tensor:
        if len(modes) == 1:
            return fake_quant_mode(w, modes[0])
        return sum(p[j] * fake_quant_mode(w, m) for j, m in enumerate(modes))

    def forward(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        ds = self.ds
        h = self.pre(x)
        logits = 0.0
        for i in range(ds.max_depth):
            pq = p[ds.key("precision", i)]
            z = h @ self._mix_weight(self.weights[i], pq, self.modes) + self.biases[i]
            pa = p[ds.key("activation", i)]
            a = sum(pa[k] * act(z) for k, act in enumerate(self.acts))
            h = a * (p[ds.key("width", i)] @ self.masks)
            if i + 1 in ds.depths:
                head_p = p[ds.key("precision", 0)] if not ds.choices["precision"].per_layer else None
                hw = (self._mix_weight(self.head_w, head_p, self.head_modes) if head_p is not None
                      else fake_quant_mode(self.head_w, self.head_modes[0]))
                logits = logits + p["depth"][ds.depths.index(i + 1)] * (h @ hw + self.head_b)
        return logits


class CostModel:
    """Expected (and discrete) cost of the mixed MLP for one metric, from an :class:`OpCostTable`."""

    def __init__(self, ds: DartsSpace, table: OpCostTable, metric: str, n_features: int, n_classes: int,
                 fixed_point: Any) -> None:
        self.ds, self.table, self.metric = ds, table, metric
        widths = [int(v) for v in ds.choices["width"].values]
        modes = [ds.bits(v, fixed_point) for v in ds.choices["precision"].values]
        heads = [ds.head_bits(v, fixed_point) for v in ds.choices["precision"].values]
        acts = list(ds.choices["activation"].values)
        m = metric
        self.lin0 = torch.tensor([[table.linear(n_features, o, q)[m] for q in modes] for o in widths])
        self.lin = torch.tensor([[[table.linear(i, o, q)[m] for q in modes] for o in widths] for i in widths])
        self.act = torch.tensor([[table.activation(o, a)[m] for a in acts] for o in widths])
        self.head = torch.tensor([[table.linear(i, n_classes, q)[m] for q in heads] for i in widths])

    def expected(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        ds = self.ds
        total = torch.tensor(self.table.offset[self.metric])
        prev = None
        for i in range(ds.max_depth):
            exist = sum(p["depth"][j] for j, d in enumerate(ds.depths) if d > i)
            pw, pa, pq = (p[ds.key(k, i)] for k in KINDS)
            lin = (torch.einsum("o,q,oq->", pw, pq, self.lin0) if prev is None
                   else torch.einsum("i,o,q,ioq->", prev, pw, pq, self.lin))
            total = total + exist * (lin + torch.einsum("o,a,oa->", pw, pa, self.act))
            if i + 1 in ds.depths:
                ph = p[ds.key("precision", 0)] if not ds.choices["precision"].per_layer else None
                head = (torch.einsum("i,q,iq->", pw, ph, self.head) if ph is not None
                        else pw @ self.head[:, 0])
                total = total + p["depth"][ds.depths.index(i + 1)] * head
            prev = pw
        return total


def one_hot(ds: DartsSpace, arch: dict[str, int]) -> dict[str, torch.Tensor]:
    """Probabilities that put all mass on ``arch`` (α name → chosen index)."""
    return {k: F.one_hot(torch.tensor(arch[k]), n).float() for k, n in ds.alpha_keys()}


def argmax_arch(p: dict[str, torch.Tensor]) -> dict[str, int]:
    return {k: int(v.argmax()) for k, v in p.items()}


def _budget_term(costs: dict[str, "CostModel"], budgets: dict[str, tuple[str, float]], mu: dict[str, float],
                 p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ multiplier · relative excess of the expected cost over each budget."""
    return sum((mu[n] * F.relu(costs[m].expected(p) - b) / max(abs(b), 1e-12) for n, (m, b) in budgets.items()),
               torch.tensor(0.0))


class _ArchitectureSteps(TrainHook):
    """DARTS's α side of the training loop: after every weight step (past ``warmup`` epochs) one α step on the
    next batch of the α half; after every epoch the RC-DARTS multipliers are doubled while the expected cost
    is over budget and halved (down to 1) while within it."""

    def __init__(self, net: "DartsMLP", optimizer: torch.optim.Optimizer, loss: Any, costs: dict[str, "CostModel"],
                 budgets: dict[str, tuple[str, float]], mu: dict[str, float], warmup: int) -> None:
        self.net, self.optimizer, self.loss, self.costs, self.budgets, self.mu = net, optimizer, loss, costs, budgets, mu
        self.warmup = warmup
        self.batches: Iterator[Batch] = iter(())
        self.history: list[dict[str, Any]] = []

    def on_step_end(self, state: TrainState) -> None:
        if state.epoch <= self.warmup:
            return
        xa, ya = next(self.batches)
        self.optimizer.zero_grad(set_to_none=True)
        self.loss(xa, ya).backward()
        self.optimizer.step()

    def on_epoch_end(self, state: TrainState) -> None:
        with torch.no_grad():
            p = self.net.probs()
            expected = {n: float(self.costs[m].expected(p)) for n, (m, _) in self.budgets.items()}
        if state.epoch > self.warmup:  # raise the multiplier while over budget, relax it while within
            for n, (_, b) in self.budgets.items():
                self.mu[n] = self.mu[n] * 2.0 if expected[n] > b else max(1.0, self.mu[n] / 2.0)
        self.history.append({"epoch": state.epoch, "loss": state.loss, "expected": expected, "mu": dict(self.mu)})


class DartsSearch:
    """The ``darts`` strategy's work for one MLP space (validated on construction, before any training)."""

    def __init__(self, space: SearchSpace, task: Task, constraints: Sequence[Constraint],
                 objectives: Sequence[Objective], *, seed: int, options: "DartsOptions") -> None:
        self.space = space
        self.restriction = restrict(space, "darts")
        if not isinstance(task, ClassificationTask):
            raise ConfigError("strategy 'darts' covers MLP classifiers on tabular data")
        o = options
        self.ds = DartsSpace(self.restriction, o.max_choices)
        self.task, self.seed = task, seed
        lam = o.darts_lambda
        if lam is None:  # a budget is the cost target (RC-DARTS); without one, trade cost softly
            lam = 0.0 if constraints else 1.0
        self.epochs, self.lam, self.gumbel, self.tau = int(o.darts_epochs), float(lam), bool(o.gumbel), float(o.tau)
        self.alpha_lr = float(o.alpha_lr)
        self.warmup = int(self.epochs // 5 if o.warmup is None else o.warmup)
        for c in constraints:
            if c.op not in ("<=", "<"):
                raise ConfigError(f"constraint {c.name}: DARTS takes upper bounds on costs (<=) only")
        self.constraints, self.objectives = list(constraints), list(objectives)
        self.lr = float(self.restriction.hyper.get("lr", 1e-2))
        self.batch_size = int(self.restriction.hyper.get("batch_size", 64))

    def settings(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lambda": self.lam, "gumbel": self.gumbel, "tau": self.tau,
                "alpha_lr": self.alpha_lr, "warmup": self.warmup, "lr": self.lr, "batch_size": self.batch_size,
                "space": self.restriction.describe()}

    # -- cost tables --------------------------------------------------------------------------------------
    def cost_models(self, evaluator: Evaluator, out: Path) -> dict[str, CostModel]:
        """One cost model per metric used (objectives, budgets), tables calibrated and cached in ``out``."""
        d = self.task.data
        by_name = {p.name: p for p in evaluator.profiles}
        wanted: dict[str, list[str]] = {}
        for o in [*self.objectives, *self.constraints]:
            if o.metric not in wanted.setdefault(o.profile, []):
                wanted[o.profile].append(o.metric)
        smallest = self.reference_values()
        config = self.restriction.space.config(smallest)
        path = evaluator.workdir / "darts_reference.onnx"
        model = evaluator.build(config, 0)
        evaluator.lower(model, config, 0, path)
        try:
            measured = evaluator.profile(path)
        except CandidateError as exc:  # no cost table without it: the search cannot start
            raise ConfigError(f"DARTS cannot price its reference architecture (the smallest): {exc}") from None
        finally:
            path.unlink(missing_ok=True)
        models = {}
        for profile, metrics in wanted.items():
            table = OpCostTable(by_name[profile], metrics, out / "darts_costs.json", seed=self.seed)
            w0 = int(self.ds.choices["width"].values[0])
            table.calibrate_overhead((d.n_features, w0), d.n_classes)
            for m in metrics:
                cm = CostModel(self.ds, table, m, d.n_features, d.n_classes, evaluator.fixed_point)
                predicted = float(cm.expected(one_hot(self.ds, self.reference_arch())))
                table.offset[m] = float(measured[profile].metrics[m].value) - predicted
                models[f"{profile}.{m}"] = cm
            table.save()
        return models

    def reference_arch(self) -> dict[str, int]:
        """The smallest architecture (shallowest, first choice of everything else) as α indices."""
        return {k: 0 for k, _ in self.ds.alpha_keys()}

    def reference_values(self) -> dict[str, Any]:
        return self.values(self.reference_arch())

    def values(self, arch: dict[str, int]) -> dict[str, Any]:
        """Space parameter values (per-layer ones as tuples) of an arch given as α indices."""
        ds = self.ds
        depth = ds.depths[arch["depth"]]
        values: dict[str, Any] = {}
        if "depth" in self.restriction.space.params:
            values["depth"] = depth
        for kind in KINDS:
            c = ds.choices[kind]
            if c.param is None:
                continue
            picked = [c.values[arch[ds.key(kind, i)]] for i in range(depth)]
            values[c.param] = tuple(picked) if c.per_layer else picked[0]
        return values

    def trial_params(self, arch: dict[str, int]) -> dict[str, Any]:
        """Optuna params of the derived architecture in the original space (``width[0]`` …, pinned, hyper)."""
        values = {**self.values(arch), **self.restriction.pinned, **self.restriction.hyper}
        depth = self.ds.depths[arch["depth"]]
        params: dict[str, Any] = {}
        for name, v in values.items():
            p = self.space.params.get(name)
            if p is None:
                continue
            if p.per_layer:
                for i in range(depth):
                    params[f"{name}[{i}]"] = v[i] if isinstance(v, tuple) else v
            else:
                params[name] = v
        return params

    # -- search -------------------------------------------------------------------------------------------
    def search(self, evaluator: Evaluator, out: Path) -> dict[str, Any]:
        """Run DARTS; return α, the derived architecture and its expected / table costs (also darts.json)."""
        began = time.perf_counter()
        costs = self.cost_models(evaluator, out)
        ref = {k: float(cm.expected(one_hot(self.ds, {kk: n - 1 for kk, n in self.ds.alpha_keys()})))
               for k, cm in costs.items()}
        budgets = {c.name: (f"{c.profile}.{c.metric}", float(c.bound)) for c in self.constraints}
        for name, (metric, bound) in budgets.items():
            cheapest = self.cheapest(costs[metric])
            low = float(costs[metric].expected(one_hot(self.ds, cheapest)))
            if low > bound:
                raise ConfigError(f"constraint {name} cannot be met: the cheapest architecture of the space costs "
                                  f"{low:.4g} by the per-op lookup table")
        pen = [f"{o.profile}.{o.metric}" for o in self.objectives]
        d = self.task.data
        seed_everything(self.seed)
        net = DartsMLP(self.ds, d.n_features, d.n_classes, self.task.stats, evaluator.fixed_point)
        x = torch.as_tensor(d.X_train, dtype=torch.float32)
        y = torch.as_tensor(d.y_train, dtype=torch.long)
        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(y), generator=gen)
        half = len(y) // 2
        w_idx, a_idx = order[:half], order[half:]
        w_opt = torch.optim.Adam(net.weight_parameters(), lr=self.lr)
        a_opt = torch.optim.Adam(net.alpha.parameters(), lr=self.alpha_lr, betas=(0.5, 0.999))
        mu = {name: 1.0 for name in budgets}

        def alpha_loss(xa: torch.Tensor, ya: torch.Tensor) -> torch.Tensor:
            loss = F.cross_entropy(net(xa, net.probs(self.gumbel, self.tau)), ya)
            p = net.probs()
            if self.lam and pen:
                loss = loss + self.lam * sum(costs[k].expected(p) / max(ref[k], 1e-12) for k in pen) / len(pen)
            return loss + _budget_term(costs, budgets, mu, p)

        steps = _ArchitectureSteps(net, a_opt, alpha_loss, costs, budgets, mu, self.warmup)

        def batches() -> Iterator[Batch]:  # weights learn on one half of the training split, α on the other
            wb = w_idx[torch.randperm(len(w_idx), generator=gen)].split(self.batch_size)
            ab = a_idx[torch.randperm(len(a_idx), generator=gen)].split(self.batch_size)
            steps.batches = iter((x[b], y[b]) for b in ab)
            for bw in wb[:len(ab)]:
                yield x[bw], y[bw]

        Trainer(self.epochs, hooks=[steps], threads=evaluator.train_threads).fit(
            net, w_opt, batches, forward=lambda xb: net(xb, net.probs(self.gumbel, self.tau)))
        previous = torch.get_num_threads()
        torch.set_num_threads(evaluator.train_threads)
        try:
            extra = self.enforce(net, costs, budgets, mu)
        finally:
            torch.set_num_threads(previous)
        history = steps.history
        with torch.no_grad():
            p = net.probs()
            expected = {k: float(cm.expected(p)) for k, cm in costs.items()}
        arch = argmax_arch(p)
        projected = self.project(arch, p, costs, budgets)
        table_cost = {k: float(cm.expected(one_hot(self.ds, projected))) for k, cm in costs.items()}
        result = {
            "settings": self.settings(),
            "alpha": {k: [round(float(v), 4) for v in t] for k, t in p.items()},
            "choices": {"depth": list(self.ds.depths),
                        **{k: list(c.values) for k, c in self.ds.choices.items()}},
            "derived": self.values(projected), "projected": projected != arch,
            "expected_cost": expected, "derived_table_cost": table_cost,
            "budgets": {n: {"metric": m, "bound": b, "expected": expected[m], "derived": table_cost[m],
                            "met_expected": expected[m] <= b, "met_derived": table_cost[m] <= b,
                            "multiplier": mu[n]} for n, (m, b) in budgets.items()},
            "enforce_steps": extra, "history": history, "seconds": time.perf_counter() - began,
            "cost_table": {k: {"offset": cm.table.offset[cm.metric], "overhead": cm.table.overhead[cm.metric],
                               "profiled_ops": cm.table.profiled} for k, cm in costs.items()},
        }
        result["trial_params"] = self.trial_params(projected)
        (out / "darts.json").write_text(json.dumps(result, indent=2, default=str))
        return result

    def enforce(self, net: DartsMLP, costs: dict[str, CostModel], budgets: dict[str, tuple[str, float]],
                mu: dict[str, float], max_steps: int = 2000) -> int:
        """α-only steps on the budget term (multiplier doubling every 50 steps) until E[cost] is in budget."""
        opt = torch.optim.Adam(net.alpha.parameters(), lr=self.alpha_lr)
        for step in range(max_steps):
            p = net.probs()
            over = {n: float(costs[m].expected(p).detach()) > b for n, (m, b) in budgets.items()}
            if not any(over.values()):
                return step
            if step and step % 50 == 0:
                for n in budgets:
                    mu[n] *= 2.0 if over[n] else 1.0
            opt.zero_grad(set_to_none=True)
            _budget_term(costs, budgets, mu, p).backward()
            opt.step()
        return max_steps

    def cheapest(self, cm: CostModel) -> dict[str, int]:
        """A (coordinate-descent) cheapest architecture by the table, for the feasibility check."""
        arch = self.reference_arch()
        for _ in range(3):
            for k, n in self.ds.alpha_keys():
                arch[k] = min(range(n), key=lambda j: float(cm.expected(one_hot(self.ds, {**arch, k: j}))))
        return arch

    def project(self, arch: dict[str, int], p: dict[str, torch.Tensor], costs: dict[str, CostModel],
                budgets: dict[str, tuple[str, float]]) -> dict[str, int]:
        """Greedy projection of the argmax architecture onto the budgets: change the choice that removes the
        most relative excess cost per unit of log-probability given up, until every budget holds."""
        arch = dict(arch)

        def excess(a: dict[str, int]) -> float:
            return sum(max(0.0, float(costs[m].expected(one_hot(self.ds, a))) - b) / max(abs(b), 1e-12)
                       for m, b in budgets.values())

        while excess(arch) > 0:
            now = excess(arch)
            best, best_score = None, 0.0
            for k, n in self.ds.alpha_keys():
                for j in range(n):
                    if j == arch[k]:
                        continue
                    cand = {**arch, k: j}
                    gain = now - excess(cand)
                    if gain <= 0:
                        continue
                    loss = float(torch.log(p[k][arch[k]]) - torch.log(p[k][j])) + 1e-6
                    score = gain / max(loss, 1e-6)
                    if score > best_score:
                        best, best_score = cand, score
            if best is None:
                break
            arch = best
        return arch

    # -- the plan ---------------------------------------------------------------------------------------
    def run(self, session: "SearchSession") -> bool:
        """Search (unless this very DARTS search already ran into the study), then train and record the
        derived architecture as a trial of the search's study."""
        settings = self.settings()
        for t in session.study.trials:
            tag = read_tag(t)
            if tag.get("name") == "darts" and tag.get("settings") == settings and t.state.is_finished() \
                    and t.state != optuna.trial.TrialState.FAIL:
                return True  # this DARTS search already ran and its derived architecture is recorded
        result = self.search(session.evaluator, session.out)
        tag = {"name": "darts", "settings": settings, "alpha": result["alpha"], "derived": result["derived"],
               "expected_cost": result["expected_cost"], "derived_table_cost": result["derived_table_cost"],
               "budgets": result["budgets"], "projected": result["projected"], "search_seconds": result["seconds"]}
        runner = session.runner(tag=tag)
        runner.remember(session.study)  # an architecture the study already trained is reused
        session.evaluate_architecture(runner, result["trial_params"])
        return True
