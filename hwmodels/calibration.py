"""The calibration value: what fitting the simulator to one machine produced, as one object.

A fitted cluster file is a cluster file with a ``calibration:`` section. Loading it gives a
:class:`~hwmodels.specs.Cluster` whose ``calibration`` is a :class:`Calibration`; every
prediction (``gradsync simulate``, ``validate``, ``what_if``, the notebooks) runs through
:func:`simulator.api.prepare`, which asks it for the machine at a rank count
(:meth:`Calibration.adapt`) and for the compute of a model (:meth:`Calibration.compute`).
A validated prediction and a what-if answer therefore come from the same code.

What it holds (SI units; keys by rank count mean *ranks sharing one node*):

- ``links``: the fitted alpha/beta/gamma per link class at ``fit_ranks`` ranks, and
  ``mpi_overhead_s``, the MPI library's per-call constant;
- ``comm_scales``: per benchmarked rank count, the factors on the fixed and per-byte parts of
  the collective cost (about 1 where the closed form holds; larger when ranks share cores);
- ``profiles``: compute profiles keyed by (model, batch, occupancy), occupancy being how many
  ranks shared the machine when the profile was measured (1: a one-rank run; p: a ``--local``
  run at p ranks), with each profile's per-rank compute noise (step-time CV);
- ``compute_scales``: per rank count, the factor that carries a one-rank profile to a p-rank
  run (fitted on the fit runs), and ``bench_compute_s``, the benchmark's compute kernel per rank
  count, which carries a fitted factor to rank counts without one;
- ``ordering``: how the machine's MPI progresses concurrent collectives;
- ``collectives`` (schema 2): the NCCL collective model fitted from nccl-tests/OSU logs and the
  measured curves by rank layout (:class:`~hwmodels.collectives.measured.CollectiveFit`),
  which :class:`~hwmodels.commmodel.CommModel` reads from ``cluster.calibration``.

A profile measured at the rank count asked for is used as it is; otherwise the one-rank profile
is *extrapolated* (:attr:`Compute.extrapolated`), and :meth:`Compute.advice` names the command
that measures it instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from hwmodels.collectives.measured import CollectiveFit
from hwmodels.specs import LINK_CLASSES, AlphaBeta, require_positive
from vocab.errors import SpecError
from vocab.profile import ComputeProfile, profile_from_dict, profile_to_dict

if TYPE_CHECKING:
    from hwmodels.specs import Cluster

#: Version of the ``calibration:`` section; a file of another version is refused. Version 2
#: added ``collectives``; a version-1 section (without it) still reads.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
ORDERINGS = ("serial", "concurrent")


class ProfileKey(NamedTuple):
    """What a calibrated compute profile depends on."""

    model: str
    batch: int
    occupancy: int           # ranks that shared the machine when it was measured


@dataclass(frozen=True)
class CommScale:
    """Measured collective cost vs the fitted closed form at one rank count."""

    fixed: float = 1.0
    per_byte: float = 1.0
    rms_rel: float = 0.0          # relative RMS residual of that fit
    oversubscribed: bool = False  # more ranks than cores

    def __post_init__(self) -> None:
        require_positive("calibration.comm_scales.fixed", self.fixed)
        require_positive("calibration.comm_scales.per_byte", self.per_byte)


@dataclass(frozen=True)
class Compute:
    """The compute a prediction uses: a profile at the run's rank count and its noise."""

    profile: ComputeProfile
    noise_cv: float
    ranks: int
    measured_occupancy: int      # the occupancy of the profile it came from

    @property
    def extrapolated(self) -> bool:
        """True when a profile measured at another occupancy was carried to ``ranks``."""
        return self.measured_occupancy != self.ranks

    def advice(self) -> str:
        """What this compute rests on, and the command that measures it if it is carried."""
        p = self.profile
        if not self.extrapolated:
            return (f"{p.model} batch {p.batch} at {self.ranks} rank(s): compute measured at "
                    "that rank count")
        return (f"{p.model} batch {p.batch} at {self.ranks} ranks: compute extrapolated from a "
                f"{self.measured_occupancy}-rank profile; measure it with "
                f"'gradsync run -n {self.ranks} --local --model {p.model} --batch {p.batch} "
                f"--steps 24 --out DIR' and calibrate with DIR among the inputs")


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class Calibration:
    """A fitted machine's figures beyond the hardware file; see the module docstring."""

    cores: int
    fit_ranks: int
    mpi_overhead_s: float
    links: Mapping[str, AlphaBeta] = field(default_factory=dict)
    comm_scales: Mapping[int, CommScale] = field(default_factory=dict)
    compute_scales: Mapping[int, float] = field(default_factory=dict)
    bench_compute_s: Mapping[int, float] = field(default_factory=dict)
    profiles: Mapping[ProfileKey, ComputeProfile] = field(default_factory=dict)
    noise_cv: Mapping[ProfileKey, float] = field(default_factory=dict)
    ordering: str = "concurrent"
    collectives: CollectiveFit | None = None
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema not in READABLE_SCHEMAS:
            raise SpecError("calibration.schema", self.schema,
                            f"{SCHEMA_VERSION} (recalibrate with this gradsync version)")
        object.__setattr__(self, "schema", SCHEMA_VERSION)
        for name in ("cores", "fit_ranks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"calibration.{name}", value, "a whole number >= 1")
        require_positive("calibration.mpi_overhead_s", self.mpi_overhead_s, allow_zero=True)
        if self.ordering not in ORDERINGS:
            raise SpecError("calibration.ordering", self.ordering, " or ".join(ORDERINGS))
        for key in self.links:
            if key not in LINK_CLASSES:
                raise SpecError("calibration.links", key, f"link classes {', '.join(LINK_CLASSES)}")
        for key, profile in self.profiles.items():
            if (profile.model, profile.batch) != (key.model, key.batch):
                raise SpecError("calibration.profiles", f"{profile.model} batch {profile.batch}",
                                f"the profile of its key {key.model} batch {key.batch}")
        for name in ("links", "comm_scales", "compute_scales", "bench_compute_s", "profiles",
                     "noise_cv"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    # ----------------------------------------------------------------- the machine at p ranks

    def compute_scale(self, ranks: int) -> float:
        """One-rank profile -> p-rank run: fitted at p, else carried from the nearest fitted
        rank count by the benchmark's compute kernel, else by ``p / cores`` beyond the cores."""
        fitted = self.compute_scales
        if ranks in fitted:
            return fitted[ranks]
        ref = min(fitted, key=lambda p: abs(p - ranks)) if fitted else None
        base = fitted[ref] if ref is not None else 1.0
        bench = self.bench_compute_s
        if ref in bench and ranks in bench:
            return base * bench[ranks] / bench[ref]
        return base * max(1.0, ranks / self.cores) / max(1.0, (ref or ranks) / self.cores)

    def adapt(self, cluster: "Cluster") -> "Cluster":
        """``cluster`` (whose node already has its rank count) with the fitted links and
        per-call overhead as benchmarked at that rank count (closed-form costs scaled).
        Computed from ``links``, never from ``cluster.fitted``, so adapting twice is adapting
        once."""
        scale = self.comm_scales.get(cluster.devices_per_node, CommScale())
        fitted = dict(cluster.fitted)
        for name, ab in self.links.items():
            fitted[name] = ab if name != "intra" else AlphaBeta(
                ab.alpha_s * scale.fixed, ab.beta_s_per_B * scale.per_byte,
                ab.gamma_s_per_B * scale.per_byte)
        return replace(cluster, fitted=fitted, calibration=self,
                       collective_overhead_s=self.mpi_overhead_s * scale.fixed)

    # ----------------------------------------------------------------------------- compute

    def models(self) -> list[str]:
        return sorted({key.model for key in self.profiles})

    def batches(self, model: str) -> list[int]:
        """The batches ``model`` has calibrated profiles for."""
        return sorted({key.batch for key in self.profiles if key.model == model})

    def occupancies(self, model: str, batch: int) -> list[int]:
        return sorted(k.occupancy for k in self.profiles if (k.model, k.batch) == (model, batch))

    def compute(self, model: str, batch: int, ranks: int) -> Compute | None:
        """The profile for ``model`` at ``batch`` on ``ranks`` ranks of this machine, and its
        noise: the profile measured with ``ranks`` ranks sharing the machine when there is one,
        as it is; else the one-rank profile carried by :meth:`compute_scale`; None if neither."""
        own = ProfileKey(model, batch, ranks)
        if own in self.profiles:
            return Compute(self.profiles[own], self.noise_cv.get(own, 0.0), ranks, ranks)
        alone = ProfileKey(model, batch, 1)
        if alone not in self.profiles:
            return None
        scale = self.compute_scale(ranks)
        profile = self.profiles[alone]
        carried = replace(profile.scaled(scale), source=f"{profile.source}; carried from 1 to "
                          f"{ranks} ranks (x{scale:.4g}, calibration.compute_scales)")
        return Compute(carried, self.noise_cv.get(alone, 0.0), ranks, 1)

    def missing_compute(self, model: str, batch: int, ranks: int) -> SpecError:
        """The error for a model or batch without a calibrated profile, naming what to run."""
        known = ", ".join(f"{k.model} batch {k.batch} at {k.occupancy} rank(s)"
                          for k in sorted(self.profiles)) or "none"
        return SpecError("model", f"{model} batch {batch}",
                         f"a model with a calibrated profile (calibrated: {known}); measure one "
                         f"with 'gradsync run -n {ranks} --local --model {model} --batch "
                         f"{batch} --steps 24 --out DIR' (or -n 1) and calibrate with DIR among "
                         "the inputs")

    # ------------------------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        """The ``calibration:`` section of a fitted cluster file."""
        return {
            "schema": self.schema, "cores": self.cores, "fit_ranks": self.fit_ranks,
            "mpi_overhead_s": self.mpi_overhead_s, "ordering": self.ordering,
            "links": {k: {"alpha_s": ab.alpha_s, "beta_s_per_B": ab.beta_s_per_B,
                          "gamma_s_per_B": ab.gamma_s_per_B} for k, ab in self.links.items()},
            "comm_scales": {int(p): {"fixed": s.fixed, "per_byte": s.per_byte,
                                     "rms_rel": s.rms_rel, "oversubscribed": s.oversubscribed}
                            for p, s in sorted(self.comm_scales.items())},
            "compute_scales": {int(p): float(v) for p, v in sorted(self.compute_scales.items())},
            "bench_compute_s": {int(p): float(v)
                                for p, v in sorted(self.bench_compute_s.items())},
            "profiles": [{"model": k.model, "batch": k.batch, "occupancy": k.occupancy,
                          "noise_cv": float(self.noise_cv.get(k, 0.0)),
                          "profile": profile_to_dict(p)}
                         for k, p in sorted(self.profiles.items())],
            **({"collectives": self.collectives.to_dict()} if self.collectives else {}),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> "Calibration":
        """The value from its file form; every problem names its field."""
        raw = _mapping(raw, "calibration")
        known = {"schema", "cores", "fit_ranks", "mpi_overhead_s", "ordering", "links",
                 "comm_scales", "compute_scales", "bench_compute_s", "profiles", "collectives"}
        for key in raw:
            if key not in known:
                raise SpecError(f"calibration.{key}", raw[key],
                                "one of the keys " + ", ".join(sorted(known)))
        for key in ("schema", "cores", "fit_ranks", "mpi_overhead_s"):
            if key not in raw:
                raise SpecError(f"calibration.{key}", None, "a value (required)")
        profiles, noise = {}, {}
        for i, entry in enumerate(raw.get("profiles") or []):
            entry = _mapping(entry, f"calibration.profiles[{i}]")
            key = ProfileKey(str(entry.get("model")), _whole(entry.get("batch"),
                             f"calibration.profiles[{i}].batch"),
                             _whole(entry.get("occupancy", 1),
                                    f"calibration.profiles[{i}].occupancy"))
            profiles[key] = profile_from_dict(entry.get("profile"))
            noise[key] = _number(entry.get("noise_cv", 0.0), f"calibration.profiles[{i}].noise_cv")
        links = {k: AlphaBeta(**_mapping(v, f"calibration.links.{k}"))
                 for k, v in _mapping(raw.get("links") or {}, "calibration.links").items()}
        return cls(
            schema=raw["schema"], cores=_whole(raw["cores"], "calibration.cores"),
            fit_ranks=_whole(raw["fit_ranks"], "calibration.fit_ranks"),
            mpi_overhead_s=_number(raw["mpi_overhead_s"], "calibration.mpi_overhead_s"),
            ordering=str(raw.get("ordering", "concurrent")), links=links,
            comm_scales={_whole(p, "calibration.comm_scales"): CommScale(**_mapping(
                v, f"calibration.comm_scales.{p}")) for p, v in _mapping(
                raw.get("comm_scales") or {}, "calibration.comm_scales").items()},
            compute_scales=_by_ranks(raw.get("compute_scales"), "calibration.compute_scales"),
            bench_compute_s=_by_ranks(raw.get("bench_compute_s"), "calibration.bench_compute_s"),
            profiles=profiles, noise_cv=noise,
            collectives=(CollectiveFit.from_dict(raw["collectives"])
                         if raw.get("collectives") is not None else None))


def _mapping(raw: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SpecError(name, raw, "a mapping")
    return raw


def _whole(raw: Any, name: str) -> int:
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise SpecError(name, raw, "a whole number >= 1")
    return raw


def _number(raw: Any, name: str) -> float:
    require_positive(name, raw, allow_zero=True)
    return float(raw)


def _by_ranks(raw: Any, name: str) -> dict[int, float]:
    return {_whole(p, name): _number(v, f"{name}.{p}")
            for p, v in _mapping(raw or {}, name).items()}
