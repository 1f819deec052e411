"""The `search:` block -> an Optuna define-by-run space (conditional entries apply only when they match).

    search:
      train.lr:        {float: [1.0e-5, 1.0e-3], log: true}
      model.name:      {choice: [deepfakenet, hrnet]}
      augment.blur_p:  {float: [0.0, 0.5], when: {augment.preset: seed}}
      hrnet_width:     {key: model.width, int: [12, 24], step: 4, when: {model.name: hrnet}}

An entry's name is its Optuna parameter name; `key` (default: the name) is the config key it sets.
The forms mirror Optuna's own: `float: [low, high]` (+ `log`, `step`), `int: [low, high]` (+ `step`, `log`),
`choice: [values]`. `when: {config.key: value-or-list}` names a config key set earlier in the block
(or fixed in the config) and the values for which the entry applies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

import optuna.distributions as od

from .config import Config
from .errors import DfsweepError

__all__ = ["SearchEntry", "SearchSpace", "DefineByRun", "parse_space", "lookup"]

_SEARCHABLE_SECTIONS = ("data", "model", "loss", "augment", "train")
_ENTRY_KEYS = ("float", "int", "choice", "log", "step", "when", "key")


@dataclass(frozen=True)
class SearchEntry:
    name: str                                  # Optuna parameter name
    key: str                                   # dotted config key it sets
    distribution: od.BaseDistribution
    when: Tuple[Tuple[str, Tuple[Any, ...]], ...] = ()

    def applies(self, values: Mapping[str, Any], base: Config) -> bool:
        for key, allowed in self.when:
            current = values[key] if key in values else lookup(base, key)
            if current not in allowed:
                return False
        return True

    def suggest(self, trial) -> Any:
        d = self.distribution
        if isinstance(d, od.FloatDistribution):
            return trial.suggest_float(self.name, d.low, d.high, log=d.log, step=d.step)
        if isinstance(d, od.IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, log=d.log, step=d.step)
        return trial.suggest_categorical(self.name, list(d.choices))

    def contains(self, value: Any) -> bool:
        """Whether `value` is a point of this entry's distribution (in range, on the step grid, a choice)."""
        d = self.distribution
        if isinstance(d, od.CategoricalDistribution):
            return value in d.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(d, od.IntDistribution) and value != int(value):
            return False
        if not d.low <= value <= d.high:
            return False
        step = getattr(d, "step", None)
        return step is None or abs((value - d.low) / step - round((value - d.low) / step)) < 1e-8

    def witnesses(self) -> List[Any]:
        """Values that bound what this entry can produce (checked against the config before Ray starts)."""
        d = self.distribution
        if isinstance(d, od.CategoricalDistribution):
            return list(d.choices)
        return [d.low, d.high]


@dataclass(frozen=True)
class SearchSpace:
    entries: Tuple[SearchEntry, ...]
    base: Config

    def __bool__(self) -> bool:
        return bool(self.entries)

    def define_by_run(self) -> "DefineByRun":
        return DefineByRun(self)

    def overrides(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        """Optuna params (by entry name) -> dotted config overrides."""
        by_name = {e.name: e for e in self.entries}
        unknown = [k for k in params if k not in by_name]
        if unknown:
            raise DfsweepError(f"search: sampled parameters not in the space: {', '.join(unknown)}")
        return {by_name[k].key: v for k, v in params.items()}

    def config_for(self, params: Mapping[str, Any]) -> Config:
        return self.base.replace(self.overrides(params))


@dataclass(frozen=True)
class DefineByRun:
    """Optuna define-by-run function; a picklable object (Tune pickles the searcher into its snapshots)."""
    space: SearchSpace

    def __call__(self, trial) -> None:
        values: Dict[str, Any] = {}
        for e in self.space.entries:
            if e.applies(values, self.space.base):
                values[e.key] = e.suggest(trial)
        return None


def lookup(cfg: Config, key: str) -> Any:
    """The value of dotted config `key` (a model parameter: set or default)."""
    section, field = key.split(".", 1)
    sec = getattr(cfg, section)
    if section == "model":
        return getattr(sec, field) if field in ("name", "input") else sec.resolved().get(field)
    return getattr(sec, field)


def _pair(spec: Any, kind: str, where: str) -> Tuple[Any, Any]:
    if not isinstance(spec, (list, tuple)) or len(spec) != 2:
        raise DfsweepError(f"{where}: '{kind}' needs [low, high], got {spec!r}")
    return spec[0], spec[1]


def _number(v: Any, where: str) -> float:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DfsweepError(f"{where}: expected a number, got {v!r}")
    return v


def _entry(name: str, spec: Any, base: Config) -> SearchEntry:
    where = f"search.{name}"
    if not isinstance(spec, Mapping):
        raise DfsweepError(f"{where}: expected a mapping such as {{float: [low, high]}}, got {spec!r}")
    for k in spec:
        if k not in _ENTRY_KEYS:
            raise DfsweepError(f"{where}.{k}: unknown key; valid keys: {', '.join(_ENTRY_KEYS)}")
    kinds = [k for k in ("float", "int", "choice") if k in spec]
    if len(kinds) != 1:
        raise DfsweepError(f"{where}: needs exactly one of float, int, choice")
    kind = kinds[0]
    key = spec.get("key", name)
    if not isinstance(key, str) or key.count(".") != 1 or key.split(".")[0] not in _SEARCHABLE_SECTIONS:
        raise DfsweepError(f"{where}: key {key!r} must be section.field with section one of "
                           f"{', '.join(_SEARCHABLE_SECTIONS)}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise DfsweepError(f"{where}.log: expected true/false, got {log!r}")
    step = spec.get("step")
    try:
        if kind == "float":
            low, high = (_number(v, where) for v in _pair(spec["float"], kind, where))
            dist = od.FloatDistribution(float(low), float(high), log=log,
                                        step=None if step is None else float(_number(step, f"{where}.step")))
        elif kind == "int":
            low, high = _pair(spec["int"], kind, where)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
                raise DfsweepError(f"{where}: 'int' bounds must be integers, got {[low, high]}")
            dist = od.IntDistribution(low, high, log=log, step=1 if step is None else int(step))
        else:
            choices = spec["choice"]
            if not isinstance(choices, (list, tuple)) or not choices:
                raise DfsweepError(f"{where}: 'choice' needs a non-empty list of values")
            if log or step is not None:
                raise DfsweepError(f"{where}: 'log' and 'step' apply to float and int only")
            dist = od.CategoricalDistribution(list(choices))
    except ValueError as e:  # Optuna's own bound checks (low > high, log with low <= 0, ...)
        raise DfsweepError(f"{where}: {str(e).splitlines()[0]}") from None
    when = spec.get("when", {}) or {}
    if not isinstance(when, Mapping):
        raise DfsweepError(f"{where}.when: expected a mapping such as {{model.name: hrnet}}")
    conds = []
    for ck, cv in when.items():
        allowed = tuple(cv) if isinstance(cv, (list, tuple)) else (cv,)
        conds.append((str(ck), allowed))
    return SearchEntry(name=str(name), key=key, distribution=dist, when=tuple(conds))


def parse_space(cfg: Config) -> SearchSpace:
    """Parse and validate `cfg.search` completely: every bound and choice must make a valid config.

    Entries are ordered so that an entry comes after the choices its `when` depends on (YAML tools may
    sort keys; the order in the file does not matter)."""
    raw = cfg.search or {}
    parsed = [_entry(name, spec, cfg) for name, spec in raw.items()]
    keys = {e.key for e in parsed}
    entries: List[SearchEntry] = []
    pending = list(parsed)
    while pending:  # stable topological order over `when` dependencies
        placed = {e.key for e in entries}
        ready = [e for e in pending if all(ck not in keys or ck in placed for ck, _ in e.when)]
        if not ready:
            raise DfsweepError(f"search.{pending[0].name}.when: conditions form a cycle")
        for e in ready:
            pending.remove(e)
        entries += ready
    by_key: Dict[str, SearchEntry] = {}
    for e in entries:
        if e.key in by_key and not e.when and not by_key[e.key].when:
            raise DfsweepError(f"search.{e.name}: key {e.key} is already searched by search.{by_key[e.key].name}")
        for ck, allowed in e.when:
            prior = by_key.get(ck)
            if ck == e.key:
                raise DfsweepError(f"search.{e.name}.when: an entry cannot depend on its own key")
            if prior is not None:
                if not isinstance(prior.distribution, od.CategoricalDistribution):
                    raise DfsweepError(f"search.{e.name}.when: {ck} is not a choice entry")
                missing = [v for v in allowed if v not in prior.distribution.choices]
                if missing:
                    raise DfsweepError(
                        f"search.{e.name}.when: {ck} has no choice {missing[0]!r}; its choices: "
                        f"{', '.join(map(str, prior.distribution.choices))}")
            else:
                try:
                    lookup(cfg, ck)
                except (ValueError, AttributeError):
                    raise DfsweepError(f"search.{e.name}.when: {ck} is not a config key") from None
        by_key.setdefault(e.key, e)
    space = SearchSpace(tuple(entries), cfg)
    for e in entries:
        witness = {ck: allowed[0] for ck, allowed in e.when}
        for v in e.witnesses():
            try:
                cfg.replace({**witness, e.key: v})
            except DfsweepError as err:
                raise DfsweepError(f"search.{e.name}: value {v!r} is not valid: {err}") from None
    return space
