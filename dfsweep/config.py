"""YAML -> frozen dataclasses. Unknown keys, wrong types and bad ranges raise `DfsweepError` naming the key."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Literal, Mapping, Optional, Tuple, Union

import yaml

from .errors import DfsweepError
from .metric_spec import SET_NAME, parse_metric, parse_metrics
from .spaces import shipped_names, shipped_space

__all__ = [
    "Config", "DataConfig", "ModelConfig", "LossConfig", "AugmentConfig", "TrainConfig", "SweepConfig",
    "SchedulerConfig", "ResourcesConfig", "ConfirmConfig", "FinalizeConfig", "SubmissionConfig",
    "load_config", "config_from_dict", "apply_overrides", "parse_set",
]


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise DfsweepError(f"{key}: {msg}")


@dataclass(frozen=True)
class DataConfig:
    # folder (real/+fake/ or images+labels.csv), or `demo`; a list of folders: one domain each
    train: Union[str, Tuple[str, ...]] = "demo"
    test: Optional[str] = None           # unlabelled folder of images for predictions
    image_size: int = 256                # every image is decoded once to image_size x image_size
    val_fraction: float = 0.12
    labels_csv: str = "labels.csv"
    image_column: str = "image"
    label_column: str = "label"
    group_column: str = "group"
    real_values: Tuple[str, ...] = ("real", "0")
    fake_values: Tuple[str, ...] = ("fake", "1")
    cache_dir: str = "sweeps/cache"      # decoded-image cache, relative to the working directory
    shard_mib: float = 64                # the cache's unit of decoding, resuming and copying between nodes
    on_bad_image: Literal["error", "skip"] = "error"
    balanced_sampler: bool = True        # WeightedRandomSampler: 50/50 batches
    split_seed: Optional[int] = None     # seed of the train/validation split; None -> train.seed
    # labelled sets scored every epoch beside the in-domain split, as auc@NAME, recall@NAME, ...
    val_sets: Mapping[str, str] = field(default_factory=dict)
    domain_column: str = "domain"        # labels.csv column naming each image's domain (leave-one-domain-out)
    holdout_domain: Optional[str] = None  # the domain leave-one-domain-out validates on; None -> the last one

    def __post_init__(self):
        if not isinstance(self.val_sets, Mapping):
            raise DfsweepError(f"data.val_sets: expected a mapping name: folder, got {self.val_sets!r}")
        for name, path in self.val_sets.items():
            _check(isinstance(name, str) and SET_NAME.fullmatch(name) is not None, f"data.val_sets.{name}",
                   "a name is letters, digits, '_' or '-' (it becomes auc@NAME)")
            _check(isinstance(path, str) and bool(path), f"data.val_sets.{name}", f"expected a folder, got {path!r}")
        object.__setattr__(self, "val_sets", dict(self.val_sets))
        if isinstance(self.train, tuple) and len(self.train) == 1:
            object.__setattr__(self, "train", self.train[0])
        _check(not isinstance(self.train, tuple) or len(set(self.train)) == len(self.train), "data.train",
               "a folder is listed twice")
        _check(self.image_size >= 64, "data.image_size", f"must be >= 64, got {self.image_size}")
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        _check(self.shard_mib > 0, "data.shard_mib", f"must be > 0, got {self.shard_mib}")
        _check(not set(self.real_values) & set(self.fake_values), "data.real_values",
               "overlaps data.fake_values")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "deepfakenet"
    params: Mapping[str, Any] = field(default_factory=dict)  # the factory's keyword arguments
    input: str = "rgb"                   # input stem(s), `+`-joined: rgb, npr, srm, fft, rgb+npr, ...

    def __post_init__(self):
        from .models import MODELS  # registry lookup validates name and params
        from .models.inputs import build_input, input_names
        full = MODELS.check_params(self.name, dict(self.params), "model", fixed=("in_chans", "num_classes"))
        # keep only what was set: a changed model.name must not inherit another family's defaults
        object.__setattr__(self, "params", {k: full[k] for k in self.params})
        stem = build_input(self.input)  # an unknown or repeated name raises naming model.input
        object.__setattr__(self, "input", "+".join(input_names(self.input)))  # " rgb + npr" -> "rgb+npr"
        # range checks live in the factories: build once on the meta device (no memory, ~ms)
        import torch
        with torch.device("meta"):
            MODELS.get(self.name)(**full, in_chans=stem.out_channels)

    def resolved(self) -> Dict[str, Any]:
        """Every factory parameter, set or default."""
        from .models import MODELS
        return MODELS.check_params(self.name, dict(self.params), "model", fixed=("in_chans", "num_classes"))

    def as_dict(self) -> Dict[str, Any]:
        # `input` only when not rgb: configs (checkpoints, MLflow params) of rgb models stay as they were
        return {"name": self.name, **({"input": self.input} if self.input != "rgb" else {}), **self.params}


@dataclass(frozen=True)
class LossConfig:
    bce_weight: float = 0.6              # w in w*BCE + (1-w)*Focal
    gamma: float = 2.0                   # focal gamma
    pos_weight: Optional[float] = None   # BCE pos_weight; None -> n_real / n_fake of the training split

    def __post_init__(self):
        _check(0.0 <= self.bce_weight <= 1.0, "loss.bce_weight", f"must be in [0, 1], got {self.bce_weight}")
        _check(self.gamma >= 0, "loss.gamma", f"must be >= 0, got {self.gamma}")
        _check(self.pos_weight is None or self.pos_weight > 0, "loss.pos_weight", "must be > 0")


@dataclass(frozen=True)
class AugmentConfig:
    # the names dfsweep.augment registers (a test keeps the two equal): config never imports augmentation
    preset: Literal["seed", "sharp", "none"] = "seed"
    crop_scale_min: float = 0.8          # RandomResizedCrop scale=(crop_scale_min, 1.0)
    flip_p: float = 0.5
    jitter_p: float = 1.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.05
    blur_p: float = 0.3                  # `seed` preset only
    blur_sigma_max: float = 2.0
    sharpness_p: float = 0.3             # `sharp` preset only
    sharpness_factor: float = 2.0
    # how fakes are made and how images travel (uint8 stage, every preset; 0 = off)
    self_blend_p: float = 0.0            # a real face becomes a Self-Blended pseudo-fake, labelled fake
    jpeg_p: float = 0.0                  # JPEG re-compression at a quality in [jpeg_quality_min, _max]
    jpeg_quality_min: int = 60
    jpeg_quality_max: int = 95
    rescale_p: float = 0.0               # down-scale by a factor in [rescale_min, 1), then back up
    rescale_min: float = 0.5

    def __post_init__(self):
        for k in ("self_blend_p", "jpeg_p", "rescale_p"):
            v = getattr(self, k)
            _check(0.0 <= v <= 1.0, f"augment.{k}", f"must be a probability in [0, 1], got {v}")
        _check(1 <= self.jpeg_quality_min <= self.jpeg_quality_max <= 100, "augment.jpeg_quality_min",
               f"need 1 <= jpeg_quality_min <= jpeg_quality_max <= 100, got {self.jpeg_quality_min}, "
               f"{self.jpeg_quality_max}")
        _check(0.1 <= self.rescale_min < 1.0, "augment.rescale_min", f"must be in [0.1, 1), got {self.rescale_min}")
        _check(0.05 <= self.crop_scale_min <= 1.0, "augment.crop_scale_min", "must be in [0.05, 1]")
        for k in ("flip_p", "jitter_p", "blur_p", "sharpness_p"):
            v = getattr(self, k)
            _check(0.0 <= v <= 1.0, f"augment.{k}", f"must be a probability in [0, 1], got {v}")
        for k in ("brightness", "contrast", "saturation", "blur_sigma_max", "sharpness_factor"):
            _check(getattr(self, k) >= 0, f"augment.{k}", "must be >= 0")
        _check(0 <= self.hue <= 0.5, "augment.hue", "must be in [0, 0.5]")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 1e-4
    seed: int = 42
    threads: int = 0                     # torch.set_num_threads; 0 -> the process's CPU share
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True                     # bf16/fp16 autocast on CUDA; bf16 on CPUs with AMX/AVX512-BF16
    channels_last: bool = True
    lr_schedule: str = "plateau"         # dfsweep.schedules: plateau (the recipe), cosine, onecycle
    plateau_factor: float = 0.5          # ReduceLROnPlateau on validation loss
    plateau_patience: int = 2
    eval_batch_size: int = 64
    num_workers: int = 0                 # CPU: processes that gather + augment the next batches (spare cores only)
    compile: bool = False                # torch.compile the training forward/backward (first step costs 10-30 s)
    # torch.compile's mode; "reduce-overhead" replays the step as CUDA graphs on a GPU (one launch for a
    # step whose many small kernels are otherwise launch-bound), the same as "default" on a CPU
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "default"

    def __post_init__(self):
        _check(self.epochs >= 1, "train.epochs", f"must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 2, "train.batch_size", f"must be >= 2, got {self.batch_size}")
        _check(self.lr > 0, "train.lr", f"must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        _check(self.threads >= 0, "train.threads", "must be >= 0")
        _check(0 < self.plateau_factor < 1, "train.plateau_factor", "must be in (0, 1)")
        _check(self.plateau_patience >= 0, "train.plateau_patience", "must be >= 0")
        _check(self.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1")
        _check(self.num_workers >= 0, "train.num_workers", "must be >= 0")
        from .schedules import SCHEDULES
        SCHEDULES.get(self.lr_schedule, "train.lr_schedule")


@dataclass(frozen=True)
class SchedulerConfig:
    name: Literal["asha", "fifo"] = "asha"
    grace_period: int = 1                # epochs every trial gets before ASHA may stop it
    reduction_factor: float = 3.0

    def __post_init__(self):
        _check(self.grace_period >= 1, "sweep.scheduler.grace_period", "must be >= 1")
        _check(self.reduction_factor > 1, "sweep.scheduler.reduction_factor", "must be > 1")


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = 1.0
    gpu: float = 0.0                     # fractional allowed, e.g. 0.25 = four trials per GPU

    def __post_init__(self):
        _check(self.cpu > 0, "sweep.resources_per_trial.cpu", f"must be > 0, got {self.cpu}")
        _check(self.gpu >= 0, "sweep.resources_per_trial.gpu", f"must be >= 0, got {self.gpu}")


@dataclass(frozen=True)
class ConfirmConfig:
    """After the search: the top_k configurations and the recipe row trained again with new seeds."""
    top_k: int = 2                       # 0: no confirmation (the winner is the search's best trial)
    seeds: int = 2                       # new training seeds per configuration (train.seed + 1, + 2, ...)
    folds: int = 1                       # > 1: also on other group-aware validation splits (split seeds + 1, ...)

    def __post_init__(self):
        _check(self.top_k >= 0, "sweep.confirm.top_k", f"must be >= 0, got {self.top_k}")
        _check(self.seeds >= 1, "sweep.confirm.seeds", f"must be >= 1, got {self.seeds}")
        _check(self.folds >= 1, "sweep.confirm.folds", f"must be >= 1, got {self.folds}")

    def runs_per_config(self) -> int:
        return self.seeds * self.folds


@dataclass(frozen=True)
class SweepConfig:
    name: str = ""                       # default: the YAML file's stem
    # a name (auc, auc@ciplab), {mean: {name: weight}} or {min: [names]} (dfsweep/metric_spec.py)
    metric: Any = "f1"
    objectives: Tuple[Any, ...] = ()     # two or more: a multi-objective search; the leaderboard marks the front
    validation: Literal["split", "leave_one_domain_out"] = "split"
    min_precision: float = 0.9           # for recall_at_precision (and finalize's threshold rule)
    mode: Literal["max", "min"] = "max"
    num_samples: int = 16
    max_concurrent_trials: int = 0       # 0: as many as the resources allow
    time_budget_s: Optional[float] = None
    seed: int = 42
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    resources_per_trial: ResourcesConfig = field(default_factory=ResourcesConfig)
    max_failures: Optional[int] = None   # retries of a trial that crashed, from its last checkpoint; None:
                                         # 1 on a cluster (a node can be lost), 0 on one machine
    reuse_actors: bool = True            # saves a process start per trial
    data_fraction: float = 1.0           # multi-fidelity: trials use this stratified, group-aware share of
                                         # the data (finalize trains on all of it)
    sampler: str = "tpe"                 # dfsweep.samplers: tpe (multivariate, group, constant liar), random
    start_from_defaults: bool = True     # the YAML's own values are the first trial: the recipe row to beat
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)

    def __post_init__(self):
        parse_metric(self.metric, "sweep.metric")
        if not isinstance(self.objectives, (list, tuple)):
            raise DfsweepError(f"sweep.objectives: expected a list of metrics, got {self.objectives!r}")
        object.__setattr__(self, "objectives", tuple(self.objectives))
        objectives = parse_metrics(self.objectives, "sweep.objectives")
        _check(len(objectives) != 1, "sweep.objectives", "needs two or more (one objective is sweep.metric)")
        _check(len({o.key for o in objectives}) == len(objectives), "sweep.objectives", "an objective is named twice")
        _check(self.mode == "max" or not objectives, "sweep.objectives", "every objective is maximised (mode: max)")
        _check(self.num_samples >= 1, "sweep.num_samples", f"must be >= 1, got {self.num_samples}")
        _check(self.max_concurrent_trials >= 0, "sweep.max_concurrent_trials", "must be >= 0")
        _check(self.time_budget_s is None or self.time_budget_s > 0, "sweep.time_budget_s", "must be > 0")
        _check(0 < self.min_precision <= 1, "sweep.min_precision", "must be in (0, 1]")
        _check(self.max_failures is None or self.max_failures >= 0, "sweep.max_failures", "must be >= 0")
        _check(0 < self.data_fraction <= 1, "sweep.data_fraction", f"must be in (0, 1], got {self.data_fraction}")
        from .samplers import SAMPLERS
        SAMPLERS.get(self.sampler, "sweep.sampler")
        if self.name:
            import re
            _check(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name) is not None, "sweep.name",
                   f"{self.name!r} must be letters, digits, '_', '-' or '.'")


@dataclass(frozen=True)
class FinalizeConfig:
    epochs: int = 20                     # stage 1: the best config from scratch on an 88/12 split
    val_fraction: float = 0.12
    finetune_epochs: int = 5             # stage 2: stage 1's weights on 100% of the data
    finetune_lr: float = 5e-5
    min_precision: Optional[float] = None  # threshold rule: None -> max F1 (ties -> recall); p -> max recall at precision >= p
    min_recall: Optional[float] = None   # ... or a recall floor: r -> max precision at fake-recall >= r
    tta_flip: bool = False               # average the prediction of the image and its mirror
    register_model: bool = True          # MLflow model registry, under the sweep's name
    data: Optional[str] = None           # multi-fidelity: train the winner on this (larger) set; --data wins
    image_size: Optional[int] = None     # ... and at this resolution (e.g. sweep at 128, finalize at 224)
    lr: Optional[float] = None           # ... at this stage-1 learning rate (None: the winner's train.lr)
    lr_schedule: Optional[str] = None    # ... with this schedule, both stages (None: the winner's)
    # multi-objective: which Pareto-front member finalize trains (a metric rule, maximised); None -> the
    # worst case over the objectives ({min: objectives})
    pick: Any = None

    def __post_init__(self):
        if self.pick is not None:
            parse_metric(self.pick, "finalize.pick")
        _check(self.epochs >= 1, "finalize.epochs", f"must be >= 1, got {self.epochs}")
        _check(0 < self.val_fraction < 1, "finalize.val_fraction", "must be in (0, 1)")
        _check(self.image_size is None or self.image_size >= 64, "finalize.image_size", "must be >= 64")
        _check(self.lr is None or self.lr > 0, "finalize.lr", "must be > 0")
        if self.lr_schedule is not None:
            from .schedules import SCHEDULES
            SCHEDULES.get(self.lr_schedule, "finalize.lr_schedule")
        _check(self.finetune_epochs >= 0, "finalize.finetune_epochs", "must be >= 0")
        _check(self.finetune_lr > 0, "finalize.finetune_lr", "must be > 0")
        _check(self.min_precision is None or 0 < self.min_precision <= 1, "finalize.min_precision",
               "must be in (0, 1]")
        _check(self.min_recall is None or 0 < self.min_recall <= 1, "finalize.min_recall", "must be in (0, 1]")
        _check(self.min_recall is None or self.min_precision is None, "finalize.min_recall",
               "cannot be combined with finalize.min_precision (one threshold rule)")


@dataclass(frozen=True)
class SubmissionConfig:
    id_column: str = "id"
    label_column: str = "label"
    fake_label: str = "1"                # written as-is; "1"/"0" by default, e.g. fake/real
    real_label: str = "0"
    probability_column: Optional[str] = None   # e.g. "probability" to add the fake probability
    filename: str = "submission.csv"

    def __post_init__(self):
        _check(self.fake_label != self.real_label, "submission.fake_label", "must differ from real_label")
        _check(self.id_column != self.label_column, "submission.id_column", "must differ from label_column")
        _check("/" not in self.filename and self.filename not in ("", ".", ".."), "submission.filename",
               "must be a plain file name")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    search: Mapping[str, Any] = field(default_factory=dict)   # validated by dfsweep.space
    finalize: FinalizeConfig = field(default_factory=FinalizeConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)

    def __post_init__(self):
        # a metric on another set names one the data section defines (the held-out domain is known only
        # once the data is read)
        if self.sweep.validation == "leave_one_domain_out":
            return
        specs = [("sweep.metric", parse_metric(self.sweep.metric))]
        specs += [("sweep.objectives", o) for o in parse_metrics(self.sweep.objectives, "sweep.objectives")]
        if self.finalize.pick is not None:
            specs.append(("finalize.pick", parse_metric(self.finalize.pick, "finalize.pick")))
        for where, spec in specs:
            missing = sorted(spec.val_sets() - set(self.data.val_sets))
            _check(not missing, where, f"{spec.key} names validation set(s) {', '.join(missing)} that data.val_sets "
                   f"does not define (defined: {', '.join(self.data.val_sets) or 'none'})")

    def to_dict(self) -> Dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            sec = getattr(self, f.name)
            if isinstance(sec, ModelConfig):
                out[f.name] = sec.as_dict()
            elif dataclasses.is_dataclass(sec):
                out[f.name] = _plain(dataclasses.asdict(sec))
            else:
                out[f.name] = _plain(sec)
        return out

    def replace(self, overrides: Mapping[str, Any]) -> "Config":
        """A new Config with dotted-key overrides applied (`{"train.lr": 1e-3}`), fully re-validated."""
        raw = self.to_dict()
        for k, v in overrides.items():
            _set_dotted(raw, k, v)
        return config_from_dict(raw)


_SECTION_CLASSES = {
    "data": DataConfig, "model": ModelConfig, "loss": LossConfig, "augment": AugmentConfig, "train": TrainConfig,
    "sweep": SweepConfig, "search": dict, "finalize": FinalizeConfig, "submission": SubmissionConfig,
}


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _yaml11_float(value: Any) -> Any:
    """YAML 1.1 reads `1e-3` (no dot) as a string; where a number is expected, users mean a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X], or str | Tuple[str, ...] (one folder or several)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) > 1 and isinstance(value, (list, tuple)):
            return _coerce(next(a for a in options if typing.get_origin(a) in (tuple, Tuple)), value, key)
        return _coerce(options[0], value, key)
    if origin is Literal:
        if value not in args:
            raise DfsweepError(f"{key}: {value!r} is not valid; valid choices: {', '.join(map(str, args))}")
        return value
    if origin in (tuple, Tuple):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise DfsweepError(f"{key}: expected a list, got {value!r}")
        return tuple(value) if args and args[0] is Any else tuple(str(v) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise DfsweepError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            raise DfsweepError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        value = _yaml11_float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DfsweepError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, key)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise DfsweepError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _build_section(name: str, raw: Any):
    cls = _SECTION_CLASSES[name]
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DfsweepError(f"{name}: expected a mapping of keys, got {type(raw).__name__}")
    if cls is dict:
        return dict(raw)
    if cls is ModelConfig:
        raw = dict(raw)
        model_name = raw.pop("name", ModelConfig.name)
        if not isinstance(model_name, str):
            raise DfsweepError(f"model.name: expected a string, got {model_name!r}")
        model_input = raw.pop("input", ModelConfig.input)
        if not isinstance(model_input, str):
            raise DfsweepError(f"model.input: expected a string such as rgb or rgb+npr, got {model_input!r}")
        return ModelConfig(name=model_name, params=raw, input=model_input)
    return _build_dataclass(cls, raw, name)


def _build_dataclass(cls, raw: Any, name: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DfsweepError(f"{name}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in raw.items():
        if k not in valid:
            raise DfsweepError(f"{name}.{k}: unknown key; valid keys: {', '.join(valid)}")
        kwargs[k] = _coerce(hints[k], v, f"{name}.{k}")
    return cls(**kwargs)


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DfsweepError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    for k in raw:
        if k not in _SECTION_CLASSES:
            raise DfsweepError(f"{k}: unknown section; valid sections: {', '.join(_SECTION_CLASSES)}")
    return Config(**{k: _build_section(k, v) for k, v in raw.items()})


def parse_set(item: str) -> Tuple[str, Any]:
    """`section.key=value` -> (key, YAML-parsed value)."""
    if "=" not in item:
        raise DfsweepError(f"--set {item!r}: expected section.key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    if key.count(".") < 1:
        raise DfsweepError(f"--set {key!r}: expected a dotted key such as train.epochs")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def _set_dotted(raw: Dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise DfsweepError(f"--set {key}: {p} is not a section")
        node = nxt
    node[parts[-1]] = value


def apply_overrides(raw: Dict[str, Any], sets: list[str]) -> Dict[str, Any]:
    for item in sets or []:
        k, v = parse_set(item)
        _set_dotted(raw, k, v)
    return raw


def read_yaml(path: str | Path) -> Dict[str, Any]:
    """A YAML file, or a shipped search space by name (`deepfakenet`) when no such file exists."""
    p = Path(path)
    if not p.is_file():
        p = shipped_space(str(path))
        if p is None:
            raise DfsweepError(f"{path}: config file not found (shipped spaces: {', '.join(shipped_names())})")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise DfsweepError(f"{path}: not valid YAML{where}") from None
    except UnicodeDecodeError:
        raise DfsweepError(f"{path}: not a text file") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DfsweepError(f"{path}: expected a YAML mapping of sections at the top level")
    return raw


def load_config(path: str | Path, sets: list[str] | None = None) -> Config:
    raw = apply_overrides(read_yaml(path), sets or [])
    try:
        return config_from_dict(raw)
    except DfsweepError as e:
        raise DfsweepError(f"{path}: {e}") from None


def flat_dict(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """A config dict as dotted keys (`train.lr`), as MLflow params show it; the `search` block stays whole."""
    out: Dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "search":
            out.update(flat_dict(v, key + "."))
        else:
            out[key] = v
    return out
